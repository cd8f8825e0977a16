"""Turns a hostname into endpoint addresses, and says when the answer should be looked up again.

Two sources name their service by DNS: an import with ``spec.source.hostname``, and a remote
LoadBalancer Service whose ingress holds a ``hostname`` instead of an ``ip``. A DNS answer is
only true for its TTL, so every :class:`Resolution` carries the delay after which the caller
should ask again. That delay is clamped: a TTL of 0 must not spin the operator in a busy loop,
and a TTL of a day must not leave the endpoints of a moved service stale for a day. Failures
carry a growing retry delay instead, so an unreachable DNS server is not hammered.

Nothing is cached here. The operator keeps the timing itself, and a cache in between would only
hide a changed answer from it. Names are looked up as written, as fully qualified names: a
search list would make the result depend on the namespace the operator happens to run in, and
with Kubernetes' ``ndots:5`` it would send several doomed queries before the real one.

:func:`resolve` never raises for a DNS, network or input problem; it returns a Resolution whose
``error`` says, in words a person can act on, what went wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Final, Literal, TypeAlias

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.resolver

from shared_services import api

logger = logging.getLogger(__name__)

IPAddress: TypeAlias = api.IPAddress

DEFAULT_PORT: Final = 53

# Beyond this the doubling would overflow a float long after reaching any sane maximum.
_MAX_BACKOFF_EXPONENT: Final = 32


@dataclasses.dataclass(frozen=True)
class Resolution:
    """The outcome of one lookup of a hostname, and when to make the next one.

    ``addresses`` are the usable endpoint addresses in canonical text, IPv4 before IPv6, each
    family sorted by numeric value and without duplicates; it is empty when ``error`` is set.
    ``ttl`` is the number of seconds after which the name should be looked up again, already
    clamped to the resolver's bounds (or the retry delay after a failure). ``error`` is None on
    success, otherwise a short message naming the hostname and the problem.
    """

    addresses: tuple[str, ...]
    ttl: float
    error: str | None


@dataclasses.dataclass(frozen=True)
class _Lookup:
    """What the query for one record type (A or AAAA) came back with.

    ``ttl`` is the minimum TTL of the answer's chain for an answer, the negative-caching TTL
    from the SOA for NODATA and NXDOMAIN (None when the server sent no SOA), and None for
    failures. ``detail`` says what failed, or which name did not exist.
    """

    kind: Literal["answer", "nodata", "nxdomain", "timeout", "failed"]
    addresses: tuple[IPAddress, ...] = ()
    ttl: float | None = None
    detail: str = ""


def hostname_problem(hostname: str) -> str | None:
    """Say why a hostname cannot be looked up, or return None when it can: the one rule."""
    return api.hostname_problem(hostname)


def parse_nameservers(value: str) -> tuple[str, ...]:
    """Read a comma-separated nameserver setting into the forms HostnameResolver accepts.

    The setting comes from an environment variable or a flag, so it is checked here, once, at
    start-up, and a typo stops the operator with a message rather than making every lookup
    fail later. Each entry is ``host``, ``host:port`` or ``[v6]:port``, where the host is an
    IP address: a nameserver given by name would need another nameserver to find it. Entries
    come back normalized (port 53 left out, IPv6 in brackets when a port follows) and without
    duplicates. An empty setting gives an empty tuple, which means the system's resolver
    configuration. Raises ValueError naming the entry that is wrong.
    """
    normalized: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        address, port = _parse_nameserver(entry)
        text = _format_nameserver(address, port)
        if text not in normalized:
            normalized.append(text)
    return tuple(normalized)


def _parse_nameserver(entry: str) -> tuple[IPAddress, int]:
    """Split one nameserver entry into its address and port, or raise ValueError."""
    host = entry
    port_text: str | None = None
    if entry.startswith("["):
        match = re.fullmatch(r"\[([^\]]+)\](?::([^:]*))?", entry)
        if match is None:
            msg = f"nameserver {entry!r}: expected [IPv6 address] or [IPv6 address]:port"
            raise ValueError(msg)
        host, port_text = match.group(1), match.group(2)
    elif entry.count(":") == 1:
        # One colon is host:port; two or more can only be a bare IPv6 address, whose port
        # would need the brackets to be told apart from the address.
        host, port_text = entry.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        msg = (
            f"nameserver {entry!r}: {host!r} is not an IP address (a nameserver is given by "
            "address, since looking up its name would need a nameserver)"
        )
        raise ValueError(msg) from None
    if entry.startswith("[") and address.version != 6:
        msg = f"nameserver {entry!r}: brackets are only for IPv6 addresses"
        raise ValueError(msg)
    port = DEFAULT_PORT
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            msg = f"nameserver {entry!r}: the port must be a number from 1 to 65535"
            raise ValueError(msg)
        port = int(port_text)
    return address, port


def _format_nameserver(address: IPAddress, port: int) -> str:
    """Write a nameserver back in the form that _parse_nameserver reads."""
    if port == DEFAULT_PORT:
        return str(address)
    if address.version == 6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def _unusable_reason(address: IPAddress) -> str | None:
    """Say why an answer cannot be an endpoint address, or return None if it can.

    The API server rejects these in Endpoints and EndpointSlices, and they would point the
    Service at the node or pod itself rather than at the shared service.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # An IPv6 EndpointSlice refuses the mapped form of an IPv4 address.
        return "IPv4-mapped IPv6"
    return api.unusable_reason(address)


class HostnameResolver:
    """Looks hostnames up in DNS, for A and AAAA records at once, without caching.

    ``nameservers`` are entries as :func:`parse_nameservers` returns them (``"127.0.0.1:5353"``,
    ``"::1"``, ``"[::1]:5353"``); None or an empty sequence means the system configuration
    (``/etc/resolv.conf``). Answers are re-resolved after their TTL clamped to
    ``[min_ttl, max_ttl]``; failures are retried after ``retry_initial`` seconds, doubling
    with each failure in a row up to ``retry_max``. ``timeout`` bounds one lookup, in seconds.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[str] | None = None,
        min_ttl: float = 5,
        max_ttl: float = 300,
        timeout: float = 2.0,
        retry_initial: float = 5,
        retry_max: float = 60,
    ) -> None:
        if isinstance(nameservers, str):
            msg = "nameservers must be a sequence of entries; parse_nameservers() reads a setting"
            raise TypeError(msg)
        if not 0 < min_ttl <= max_ttl:
            msg = f"need 0 < min_ttl <= max_ttl, got min_ttl={min_ttl} and max_ttl={max_ttl}"
            raise ValueError(msg)
        if not 0 < retry_initial <= retry_max:
            msg = (
                "need 0 < retry_initial <= retry_max, got "
                f"retry_initial={retry_initial} and retry_max={retry_max}"
            )
            raise ValueError(msg)
        if timeout <= 0:
            msg = f"timeout must be positive, got {timeout}"
            raise ValueError(msg)
        self._servers = tuple(_parse_nameserver(entry.strip()) for entry in nameservers or ())
        self._min_ttl = float(min_ttl)
        self._max_ttl = float(max_ttl)
        self._timeout = float(timeout)
        self._retry_initial = float(retry_initial)
        self._retry_max = float(retry_max)
        # The system configuration is read once; if it cannot be read now, each lookup tries
        # again and reports the reason, so a resolv.conf that appears later is picked up.
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._configuration_error = ""
        self._configure()

    def _configure(self) -> dns.asyncresolver.Resolver | None:
        """Build the dnspython resolver, or record why it cannot be built."""
        if self._resolver is not None:
            return self._resolver
        if self._servers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(str(address), port) for address, port in self._servers
            ]
        else:
            try:
                resolver = dns.asyncresolver.Resolver()
            except (dns.exception.DNSException, OSError) as exc:
                self._configuration_error = f"no usable DNS configuration ({exc})"
                return None
        # A cache would hide a changed answer until its own expiry; the caller keeps the timing.
        resolver.cache = None
        resolver.search = []
        resolver.use_search_by_default = False
        resolver.lifetime = self._timeout
        # Each server gets two tries within the lifetime, so one lost datagram or one dead
        # server among several does not fail the lookup.
        resolver.timeout = self._timeout / (2 * max(1, len(resolver.nameservers)))
        self._resolver = resolver
        return resolver

    def _clamp(self, ttl: float) -> float:
        return min(max(ttl, self._min_ttl), self._max_ttl)

    def _backoff(self, previous_failures: int) -> float:
        exponent = min(max(previous_failures, 0), _MAX_BACKOFF_EXPONENT)
        return min(self._retry_initial * 2.0**exponent, self._retry_max)

    async def resolve(self, hostname: str, *, previous_failures: int = 0) -> Resolution:
        """Look the hostname up and say when to look again; never raises for DNS problems.

        ``previous_failures`` is how many lookups of this name failed in a row just before
        this one; it sets the retry delay if this one fails too, so that the delay grows while
        the resolver itself keeps no state between calls.
        """
        problem = hostname_problem(hostname)
        if problem is not None:
            # Looking again will not fix the name; a changed spec brings a new lookup anyway.
            return Resolution(addresses=(), ttl=self._retry_max, error=problem)
        resolver = self._configure()
        if resolver is None:
            return Resolution(
                addresses=(),
                ttl=self._backoff(previous_failures),
                error=f"{hostname}: {self._configuration_error}",
            )
        try:
            name = dns.name.from_text(hostname)
        except dns.exception.DNSException as exc:
            return Resolution(
                addresses=(), ttl=self._retry_max, error=f"{hostname!r} is not a valid name ({exc})"
            )
        lookups = await asyncio.gather(
            self._lookup(resolver, name, dns.rdatatype.A),
            self._lookup(resolver, name, dns.rdatatype.AAAA),
        )
        return self._combine(hostname, lookups, previous_failures)

    async def _lookup(
        self,
        resolver: dns.asyncresolver.Resolver,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
    ) -> _Lookup:
        """Query one record type, turning every failure into a _Lookup rather than raising."""
        try:
            # dnspython checks its lifetime only between tries and can overrun it by its retry
            # pause; the deadline on the task makes ``timeout`` a hard bound for the caller.
            async with asyncio.timeout(self._timeout):
                answer = await resolver.resolve(
                    name, rdtype, search=False, raise_on_no_answer=False
                )
        except Exception as exc:
            # Whatever a server's reply or the network can provoke must not reach the
            # operator's event loop; it becomes a failed lookup that is retried later.
            return _from_failure(exc, name=name, rdtype=rdtype)
        else:
            return _from_answer(answer)

    def _combine(
        self, hostname: str, lookups: Sequence[_Lookup], previous_failures: int
    ) -> Resolution:
        """Merge the A and AAAA outcomes into one Resolution."""
        retry = self._backoff(previous_failures)
        known_ttls = [lookup.ttl for lookup in lookups if lookup.ttl is not None]
        answers = [lookup for lookup in lookups if lookup.kind == "answer"]
        if answers:
            found = {address for lookup in answers for address in lookup.addresses}
            # The soonest expiry wins, a negative answer's included: a family that is missing
            # now may appear once its NODATA expires.
            ttl = self._clamp(min(known_ttls))
            if any(lookup.kind in {"timeout", "failed"} for lookup in lookups):
                # The other family failed and may hold addresses; ask again within the retry
                # limit, not only at the TTL of the half that answered.
                logger.debug("Only part of %s resolved: %s", hostname, lookups)
                ttl = min(ttl, self._retry_max)
            usable = [address for address in found if _unusable_reason(address) is None]
            if usable:
                return Resolution(addresses=_canonical(usable), ttl=ttl, error=None)
            return Resolution(addresses=(), ttl=ttl, error=_unusable_message(hostname, found))
        negative_ttl = self._clamp(min(known_ttls)) if known_ttls else retry
        nxdomain = next((lookup for lookup in lookups if lookup.kind == "nxdomain"), None)
        if nxdomain is not None:
            # NXDOMAIN is about the name, not a record type: it settles the question even when
            # the other query failed.
            where = f" at its alias target {nxdomain.detail}" if nxdomain.detail else ""
            return Resolution(
                addresses=(),
                ttl=negative_ttl,
                error=f"{hostname}: no such name (NXDOMAIN){where}",
            )
        failed = [lookup for lookup in lookups if lookup.kind in {"timeout", "failed"}]
        if failed:
            details = [lookup.detail for lookup in failed if lookup.kind == "failed"]
            reason = details[0] if details else "DNS servers did not answer (timeout)"
            return Resolution(addresses=(), ttl=retry, error=f"{hostname}: {reason}")
        return Resolution(addresses=(), ttl=negative_ttl, error=f"{hostname}: no A or AAAA records")


def _from_answer(answer: dns.resolver.Answer) -> _Lookup:
    """Read the addresses of a NOERROR answer and how long they hold."""
    if answer.rrset is None:
        return _Lookup(kind="nodata", ttl=_negative_ttl(answer.response))
    # answer.rrset.ttl covers only the final RRset. The chain's CNAME RRsets were taken from
    # answer.response.answer while following the aliases, and whichever of them expires first
    # may change the answer, so the TTL is the minimum over all of them.
    chain = answer.chaining_result
    ttl = min(rrset.ttl for rrset in (*chain.cnames, answer.rrset))
    addresses = tuple(ipaddress.ip_address(rdata.to_text()) for rdata in answer.rrset)
    return _Lookup(kind="answer", addresses=addresses, ttl=float(ttl))


def _from_failure(
    exc: Exception, *, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> _Lookup:
    """Turn what a query raised into a _Lookup that says what went wrong."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return _nxdomain(exc, name)
    if isinstance(exc, dns.exception.Timeout | TimeoutError):
        return _Lookup(kind="timeout")
    if isinstance(exc, dns.resolver.NoNameservers):
        return _Lookup(kind="failed", detail=_describe_server_errors(exc))
    if isinstance(exc, dns.resolver.YXDOMAIN):
        return _Lookup(kind="failed", detail="the name is too long after DNAME rewriting")
    logger.debug("Looking up %s %s failed", name, rdtype.name, exc_info=exc)
    return _Lookup(kind="failed", detail=f"lookup failed ({type(exc).__name__}: {exc})")


def _nxdomain(exc: dns.resolver.NXDOMAIN, name: dns.name.Name) -> _Lookup:
    """Describe an NXDOMAIN, naming the alias target when a CNAME led to the missing name."""
    try:
        response = exc.kwargs["responses"].get(name)
        missing = exc.canonical_name
    except Exception:
        # A malformed exception payload still means the name does not exist.
        logger.debug("Unreadable NXDOMAIN for %s", name, exc_info=True)
        return _Lookup(kind="nxdomain")
    detail = missing.to_text(omit_final_dot=True) if missing != name else ""
    ttl = _negative_ttl(response) if response is not None else None
    return _Lookup(kind="nxdomain", ttl=ttl, detail=detail)


def _negative_ttl(response: dns.message.Message) -> float | None:
    """Return how long a negative answer holds (RFC 2308), or None without an SOA.

    dnspython's chaining result would substitute a fixed default when the SOA is missing, but
    a missing SOA means the server said nothing about it, and then the retry delay applies.
    """
    if not isinstance(response, dns.message.QueryMessage):
        return None
    try:
        chain = response.resolve_chaining()
    except dns.exception.DNSException:
        return None
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and chain.canonical_name.is_subdomain(rrset.name):
            soa = rrset[0]
            assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
            return float(min(rrset.ttl, soa.minimum, *(cname.ttl for cname in chain.cnames)))
    return None


def _describe_server_errors(exc: dns.resolver.NoNameservers) -> str:
    """Say which servers failed and how, without repeating a server that was tried twice."""
    reasons: list[str] = []
    for error in exc.kwargs.get("errors") or ():
        server, problem = _server_text(error[0], error[2]), error[3]
        if isinstance(problem, str):
            # A response code such as SERVFAIL or REFUSED.
            text = f"{server} answered {problem}"
        elif isinstance(problem, OSError) and problem.strerror:
            text = f"{server}: {problem.strerror.lower()}"
        else:
            text = f"{server}: {problem}"
        if text not in reasons:
            reasons.append(text)
    if not reasons:
        return "DNS servers failed"
    return "DNS servers failed: " + "; ".join(reasons)


def _server_text(server: str, port: int) -> str:
    """Write dnspython's name for a classic DNS server the way the settings spell it."""
    address = server.removeprefix("Do53:").rpartition("@")[0]
    try:
        return _format_nameserver(ipaddress.ip_address(address), port)
    except ValueError:
        return server


def _canonical(addresses: Iterable[IPAddress]) -> tuple[str, ...]:
    """Order addresses IPv4 first, each family by numeric value, and write them as text."""
    unique = set(addresses)
    ordered = sorted(a for a in unique if a.version == 4) + sorted(
        a for a in unique if a.version == 6
    )
    return tuple(str(address) for address in ordered)


def _unusable_message(hostname: str, addresses: set[IPAddress]) -> str:
    """Explain that every address found is one that cannot be an endpoint."""
    described = [
        f"{text} ({_unusable_reason(ipaddress.ip_address(text))})" for text in _canonical(addresses)
    ]
    listed = described[0] if len(described) == 1 else ", ".join(described[:-1])
    if len(described) > 1:
        listed += f" and {described[-1]}"
    if len(described) == 1:
        return f"{hostname}: resolves only to {listed}, which cannot be an endpoint address"
    return f"{hostname}: resolves only to {listed}, which cannot be endpoint addresses"
