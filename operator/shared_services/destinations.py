"""Where the operator's own connections to remote servers may go, checked as each is made.

A RemoteCluster's kubeconfig names the server the operator connects to, and whoever can edit
that Secret chooses it. Judged once, by its text, a server could still be a name that
resolves to a kubelet on loopback, a metadata service or the local API server, or resolves
elsewhere a second later. So the check sits where the connection is made: each new
connection of a remote client resolves the host itself, judges every address it gets by
``policy.server_refusal``, and connects only to a judged address; TLS is still verified
against the host name the kubeconfig gives. If any address of a name is refused, none is
used: a name that mixes a good address with a bad one is not to be trusted with either.

A refusal is a :class:`Refused` error (not a urllib3 error, so no retry of the library
resends it); the client turns it into a :class:`~shared_services.kube.KubeError` whose
reason, ``ServerNotAllowed``, the RemoteCluster's condition carries.

Messages show a server as ``scheme://host:port`` only (:func:`origin`): a kubeconfig's URL may
carry a path, and a path may carry a secret (some proxies put a token there).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from shared_services.policy import (
    SERVER_NOT_ALLOWED,
    AddressPolicy,
    ClusterNetworks,
    server_refusal,
)


class Refused(Exception):
    """A connection the rules do not allow; never sent."""

    reason = SERVER_NOT_ALLOWED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, the port always given; what messages may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True)
class Destinations:
    """The rule for remote servers, with the local cluster's networks as they are now."""

    policy: AddressPolicy
    networks: Callable[[], ClusterNetworks]

    def addresses(self, host: str, port: int, *, what: str) -> list[str]:
        """Every address ``host`` stands for, each allowed; :class:`Refused` if any is not.

        ``what`` names the server for the message ("the kubeconfig's server
        https://h:6443"). Raises ``socket.gaierror`` when the name does not resolve.
        """
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found: list[str] = []
        for _family, _type, _proto, _name, sockaddr in answers:
            text = str(sockaddr[0]).split("%", 1)[0]
            if text not in found:
                found.append(text)
        networks = self.networks()
        for text in found:
            address = ipaddress.ip_address(text)
            refusal = server_refusal(address, policy=self.policy, networks=networks)
            if refusal is not None:
                via = "" if text == host.strip("[]") else f" resolves to {text}, which"
                raise Refused(f"{what}{via} {refusal}" if via else f"{what}: {text} {refusal}")
        return found


def guard(pool_manager: urllib3.PoolManager, destinations: Destinations, *, what: str) -> None:
    """Make every new connection of ``pool_manager`` go only where ``destinations`` allows.

    Only https pools are kept: a remote server is always reached over TLS, so a plain
    connection is refused outright.
    """

    class CheckedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            # self.host is the kubeconfig's host (what TLS verifies); only the socket goes
            # to the judged address.
            try:
                allowed = destinations.addresses(self._dns_host, self.port, what=what)
            except socket.gaierror as error:
                raise NameResolutionError(self.host, self, error) from error
            last: OSError | None = None
            for address in allowed:
                try:
                    return urllib3_connection.create_connection(
                        (address, self.port),
                        self.timeout,
                        source_address=self.source_address,
                        socket_options=self.socket_options,
                    )
                except TimeoutError as error:
                    raise ConnectTimeoutError(
                        self, f"Connection to {self.host} timed out"
                    ) from error
                except OSError as error:
                    last = error
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {last}"
            ) from last

    class CheckedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPSConnection

    class _NoPlain(HTTPSConnectionPool):
        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            raise Refused(f"{what}: a remote server is reached over https only")

    pool_manager.pool_classes_by_scheme = {"https": CheckedHTTPSConnectionPool, "http": _NoPlain}
