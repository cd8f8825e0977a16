"""An authoritative DNS server on loopback whose records a test changes while it runs.

Tests of hostname sources must see a record change, expire and disappear, and must be able to
prove that a name was looked up again after its TTL and not in a tight loop; no public
resolver can do that, and tests must not need the internet. The server answers on 127.0.0.1
over UDP and TCP on one port chosen by the operating system, counts every question by name
and type, answers NXDOMAIN for names it does not know, and puts an SOA in the authority
section of negative answers so that negative caching can be tested.

It is authoritative for the root, so any name a test picks is in its zone; use names under
documentation or reserved domains (``example.test``, ``example.internal``).
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import ipaddress
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Final, Literal, Self

import pytest
from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, SOA, A, DNSRecord
from dnslib.server import DNSHandler, DNSServer

FailureMode = Literal["servfail", "refused", "drop"]

# A reply to a TCP client that stalls must not hold up stop() for long.
_TCP_READ_TIMEOUT: Final = 5.0
# How long stop() may wait for each serving thread to notice it should end.
_POLL_INTERVAL: Final = 0.02
_MAX_CHAIN: Final = 8
_BIND_ATTEMPTS: Final = 20


def _normalize(name: str) -> str:
    """Key names without the final dot and in lower case, as DNS compares them."""
    return name.rstrip(".").lower()


@dataclasses.dataclass(frozen=True)
class _Addresses:
    v4: tuple[str, ...]
    v6: tuple[str, ...]
    ttl: int


@dataclasses.dataclass(frozen=True)
class _Alias:
    target: str
    ttl: int


class _Zone:
    """The records and counters, shared between the test thread and the handler threads."""

    def __init__(self, *, negative_ttl: int | None) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, _Addresses | _Alias] = {}
        self.failures: dict[tuple[str, str], FailureMode] = {}
        self.queries: collections.Counter[tuple[str, str]] = collections.Counter()
        self.negative_ttl = negative_ttl

    def resolve(self, request: Any, handler: Any) -> Any:
        """Answer one question; return None to send nothing at all."""
        del handler  # The answer depends on the question only.
        qname = _normalize(str(request.q.qname))
        qtype = str(QTYPE[request.q.qtype])
        with self.lock:
            self.queries[(qname, qtype)] += 1
            failure = self.failures.get((qname, qtype))
            if failure == "drop":
                return None
            reply = request.reply()
            if failure is not None:
                reply.header.rcode = RCODE.SERVFAIL if failure == "servfail" else RCODE.REFUSED
                return reply
            self._answer(reply, qname, qtype)
            return reply

    def _answer(self, reply: Any, qname: str, qtype: str) -> None:
        """Fill a reply by following aliases, the way an authoritative server does in-zone."""
        name = qname
        for _ in range(_MAX_CHAIN):
            record = self.records.get(name)
            if isinstance(record, _Alias) and qtype != "CNAME":
                reply.add_answer(
                    RR(name + ".", QTYPE.CNAME, ttl=record.ttl, rdata=CNAME(record.target + "."))
                )
                name = record.target
                continue
            break
        else:
            # An alias loop: an authoritative server gives up with SERVFAIL.
            reply.header.rcode = RCODE.SERVFAIL
            return
        record = self.records.get(name)
        if record is None and not self._has_descendants(name):
            reply.header.rcode = RCODE.NXDOMAIN
            self._add_soa(reply)
            return
        data: list[Any] = []
        if isinstance(record, _Alias) and qtype == "CNAME":
            data = [(QTYPE.CNAME, record.ttl, CNAME(record.target + "."))]
        elif isinstance(record, _Addresses) and qtype == "A":
            data = [(QTYPE.A, record.ttl, A(address)) for address in record.v4]
        elif isinstance(record, _Addresses) and qtype == "AAAA":
            data = [(QTYPE.AAAA, record.ttl, AAAA(address)) for address in record.v6]
        for rtype, ttl, rdata in data:
            reply.add_answer(RR(name + ".", rtype, ttl=ttl, rdata=rdata))
        if not data:
            # NODATA: the name exists (or has names below it, RFC 8020) but not this type.
            self._add_soa(reply)

    def _has_descendants(self, name: str) -> bool:
        suffix = "." + name
        return any(other.endswith(suffix) for other in self.records)

    def _add_soa(self, reply: Any) -> None:
        if self.negative_ttl is None:
            return
        # RFC 2308: the negative TTL is the lesser of the SOA's own TTL and its MINIMUM field.
        times = (1, 3600, 600, 86400, self.negative_ttl)
        soa = SOA("ns.loopback.test.", "hostmaster.loopback.test.", times)
        reply.add_auth(RR(".", QTYPE.SOA, ttl=self.negative_ttl, rdata=soa))


class _Handler(DNSHandler):  # type: ignore[misc]
    """dnslib's handler, able to stay silent and bounded in how long it waits for TCP data."""

    def setup(self) -> None:
        if self.server.socket_type == socket.SOCK_STREAM:
            self.request.settimeout(_TCP_READ_TIMEOUT)

    def handle(self) -> None:
        if self.server.socket_type == socket.SOCK_STREAM:
            data = self._read_tcp()
            if data is None:
                return
        else:
            data = self.request[0]
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        if reply is None:
            return
        wire = reply.pack()
        if self.server.socket_type == socket.SOCK_STREAM:
            self.request.sendall(struct.pack("!H", len(wire)) + wire)
        else:
            self.request[1].sendto(wire, self.client_address)

    def _read_tcp(self) -> bytes | None:
        data = b""
        while len(data) < 2 or len(data) - 2 < struct.unpack("!H", data[:2])[0]:
            chunk = self.request.recv(8192)
            if not chunk:
                return None
            data += chunk
        return data[2:]


class _ServerMixin:
    """Handler threads are joined on close, and their errors kept rather than printed."""

    daemon_threads = False
    block_on_close = True
    errors: list[BaseException]

    def handle_error(self, request: Any, client_address: Any) -> None:
        del request, client_address
        error = sys.exc_info()[1]
        if error is not None:
            self.errors.append(error)


class _UDPServer(_ServerMixin, socketserver.ThreadingMixIn, socketserver.UDPServer):
    # SO_REUSEADDR on UDP would let a second server bind the same port and steal datagrams.
    allow_reuse_address = False

    def __init__(self, server_address: tuple[str, int], handler: Any) -> None:
        self.errors = []
        super().__init__(server_address, handler)


class _TCPServer(_ServerMixin, socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True

    def __init__(self, server_address: tuple[str, int], handler: Any) -> None:
        self.errors = []
        super().__init__(server_address, handler)


class LoopbackDNSServer:
    """A DNS server on 127.0.0.1 (UDP and TCP, same port) whose records tests set at run time.

    ``negative_ttl`` is the TTL of the SOA put in negative answers (None: send no SOA).
    ``nameserver`` is the ``"127.0.0.1:<port>"`` form that resolvers take.
    """

    host: Final = "127.0.0.1"

    def __init__(self, *, negative_ttl: int | None = 60) -> None:
        self._zone = _Zone(negative_ttl=negative_ttl)
        self._servers: list[DNSServer] = []
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self.port = 0

    # Lifecycle

    def start(self) -> Self:
        """Bind UDP and TCP on one free port and serve each from its own thread."""
        if self._servers:
            msg = "the server is already running"
            raise RuntimeError(msg)
        self._bind()
        for server in self._servers:
            thread = threading.Thread(
                target=server.server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"dns-{self.port}-{server.server.socket_type}",
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _bind(self) -> None:
        # UDP takes a free port first; TCP then asks for the same one, which another process
        # may hold, so a few ports are tried.
        for _ in range(_BIND_ATTEMPTS):
            udp = DNSServer(
                self._zone, address=self.host, port=0, handler=_Handler, server=_UDPServer
            )
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    self._zone, address=self.host, port=port, handler=_Handler, server=_TCPServer
                )
            except OSError as exc:
                udp.server.server_close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._servers = [udp, tcp]
            self.port = port
            return
        msg = "found no port free for both UDP and TCP"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Stop serving, join every thread (handlers included) and close the sockets."""
        for server in self._servers:
            server.server.shutdown()
        for thread in self._threads:
            thread.join()
        for server in self._servers:
            # block_on_close makes this join the handler threads still finishing a reply.
            server.server.server_close()
            self._errors.extend(server.server.errors)
        self._servers = []
        self._threads = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def nameserver(self) -> str:
        """The address and port, as HostnameResolver and parse_nameservers take them."""
        return f"{self.host}:{self.port}"

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while handling requests; a healthy test run leaves none."""
        running = [error for server in self._servers for error in server.server.errors]
        return self._errors + running

    # Records

    def set(self, name: str, addresses: Iterable[str], *, ttl: int = 60) -> None:
        """Make ``name`` answer with these addresses (A and AAAA), replacing what it had."""
        parsed = [ipaddress.ip_address(address) for address in addresses]
        record = _Addresses(
            v4=tuple(str(a) for a in parsed if a.version == 4),
            v6=tuple(str(a) for a in parsed if a.version == 6),
            ttl=ttl,
        )
        with self._zone.lock:
            self._zone.records[_normalize(name)] = record

    def set_cname(self, name: str, target: str, *, ttl: int = 60) -> None:
        """Make ``name`` an alias of ``target``, replacing what it had."""
        with self._zone.lock:
            self._zone.records[_normalize(name)] = _Alias(target=_normalize(target), ttl=ttl)

    def remove(self, name: str) -> None:
        """Forget ``name`` and its failures, so that it answers NXDOMAIN."""
        key = _normalize(name)
        with self._zone.lock:
            self._zone.records.pop(key, None)
            for failure in [f for f in self._zone.failures if f[0] == key]:
                del self._zone.failures[failure]

    def fail(self, name: str, qtype: str, mode: FailureMode = "servfail") -> None:
        """Make questions for ``name`` and ``qtype`` fail: SERVFAIL, REFUSED, or no reply."""
        with self._zone.lock:
            self._zone.failures[(_normalize(name), qtype.upper())] = mode

    @property
    def negative_ttl(self) -> int | None:
        """The TTL of the SOA in negative answers; None sends negative answers without one."""
        return self._zone.negative_ttl

    @negative_ttl.setter
    def negative_ttl(self, value: int | None) -> None:
        with self._zone.lock:
            self._zone.negative_ttl = value

    # Counters

    @property
    def queries(self) -> collections.Counter[tuple[str, str]]:
        """A snapshot of how many questions came, by (name without final dot, type)."""
        with self._zone.lock:
            return collections.Counter(self._zone.queries)

    def count(self, name: str, qtype: str | None = None) -> int:
        """How many questions came for ``name``, of one type or of all types."""
        key = _normalize(name)
        return sum(
            number
            for (qname, kind), number in self.queries.items()
            if qname == key and (qtype is None or kind == qtype.upper())
        )

    def reset_counts(self) -> None:
        """Start counting from zero, so a test can look at what one step caused."""
        with self._zone.lock:
            self._zone.queries.clear()


def running_server(*, negative_ttl: int | None = 60) -> Iterator[LoopbackDNSServer]:
    """Yield a started server and stop it afterwards; the body of a fixture."""
    with LoopbackDNSServer(negative_ttl=negative_ttl) as server:
        yield server
    assert not server.errors, f"the DNS server failed to handle requests: {server.errors}"


def fixture(
    *, name: str = "dns_server", scope: Literal["function", "module", "session"] = "function"
) -> Callable[..., Any]:
    """Make a pytest fixture that provides a running LoopbackDNSServer.

    Assign the result to a module attribute, or in a conftest, to make it available:
    ``dns_server = dnsserver.fixture()``.
    """

    def provide() -> Iterator[LoopbackDNSServer]:
        yield from running_server()

    return pytest.fixture(provide, name=name, scope=scope)
