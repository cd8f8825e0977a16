"""Where the operator's own connections may go: each address judged before it is dialled.

A listener on loopback stands for whatever a refused server would be: a guarded pool must
not connect to it at all, while the rule lets it in once its range is listed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import urllib3

from shared_services import destinations
from shared_services.policy import AddressPolicy, ClusterNetworks, parse_cidrs


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://192.0.2.1:6443/k8s/clusters/SECRET", "https://192.0.2.1:6443"),
        ("https://supervisor.example/", "https://supervisor.example:443"),
        ("https://[2001:db8::1]:6443/x?y", "https://[2001:db8::1]:6443"),
        ("https://h:notaport/x", "https://h:443"),
    ],
)
def test_a_server_is_shown_without_its_path(url: str, shown: str) -> None:
    assert destinations.origin(url) == shown


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.5)
    yield sock
    sock.close()


def _accepted(sock: socket.socket) -> bool:
    try:
        connection, _ = sock.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


def _pool(policy: AddressPolicy) -> urllib3.PoolManager:
    pool = urllib3.PoolManager()
    rule = destinations.Destinations(policy=policy, networks=ClusterNetworks)
    destinations.guard(pool, rule, what="the kubeconfig's server https://localhost:1")
    return pool


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_refused_server_is_never_dialled(listener: socket.socket, host: str) -> None:
    port = listener.getsockname()[1]
    pool = _pool(AddressPolicy())
    with pytest.raises(destinations.Refused) as refused:
        pool.request("GET", f"https://{host}:{port}/version", retries=False, timeout=2)
    assert "must not be a loopback address" in refused.value.message
    if host == "localhost":
        assert "resolves to 127.0.0.1, which must not be" in refused.value.message
    assert not _accepted(listener)


def test_a_listed_range_is_dialled(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    pool = _pool(AddressPolicy(remote_servers=parse_cidrs(["127.0.0.0/8"])))
    # Nothing answers TLS there: the request fails, but only after the connection was made.
    with pytest.raises(urllib3.exceptions.HTTPError):
        pool.request("GET", f"https://127.0.0.1:{port}/version", retries=False, timeout=1)
    assert _accepted(listener)


def test_plain_http_is_refused(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    pool = _pool(AddressPolicy(remote_servers=parse_cidrs(["127.0.0.0/8"])))
    with pytest.raises(destinations.Refused, match="over https only"):
        pool.request("GET", f"http://127.0.0.1:{port}/version", retries=False, timeout=1)
    assert not _accepted(listener)
