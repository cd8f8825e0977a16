"""Pins how hostnames become endpoint addresses and when they are looked up again.

Every lookup goes to the loopback DNS server of ``tests/dnsserver.py``, never to the internet:
addresses come back IPv4 first, sorted and canonical; the re-resolve delay is the smallest TTL
along a CNAME chain, clamped to the configured bounds; negative answers use the SOA's negative
TTL and failures a doubling retry delay; every problem (NXDOMAIN, no records, timeouts, server
failures, unusable addresses, malformed names) is a Resolution with a readable error and never
an exception; and nothing is cached, so a changed record is seen on the next lookup.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

import dnsserver
from dnsserver import LoopbackDNSServer
from shared_services.dns import HostnameResolver, Resolution, hostname_problem, parse_nameservers

dns_server = dnsserver.fixture()

NAME = "db.example.test"


def resolver_for(server: LoopbackDNSServer, **options: float) -> HostnameResolver:
    return HostnameResolver(nameservers=[server.nameserver], **options)


def resolve(resolver: HostnameResolver, hostname: str, *, previous_failures: int = 0) -> Resolution:
    return asyncio.run(resolver.resolve(hostname, previous_failures=previous_failures))


# Addresses


def test_ipv4_only(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["192.0.2.10"], ttl=30)

    result = resolve(resolver_for(dns_server), NAME)

    assert result == Resolution(addresses=("192.0.2.10",), ttl=30, error=None)


def test_ipv6_only(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["2001:db8::10"], ttl=30)

    result = resolve(resolver_for(dns_server), NAME)

    assert result == Resolution(addresses=("2001:db8::10",), ttl=30, error=None)


def test_both_families_come_back_v4_first_sorted_canonical_and_unique(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.set(
        NAME,
        ["2001:DB8:0:0::10", "192.0.2.10", "2001:db8::9", "192.0.2.9", "192.0.2.10"],
        ttl=30,
    )

    result = resolve(resolver_for(dns_server), NAME)

    # Numeric order: 192.0.2.9 before 192.0.2.10, which text order would swap.
    assert result.addresses == ("192.0.2.9", "192.0.2.10", "2001:db8::9", "2001:db8::10")
    assert result.error is None


def test_a_trailing_dot_is_accepted(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["192.0.2.10"])

    assert resolve(resolver_for(dns_server), NAME + ".").addresses == ("192.0.2.10",)


def test_one_question_per_family_per_lookup(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["192.0.2.10"])

    resolve(resolver_for(dns_server), NAME)

    assert dns_server.queries == {(NAME, "A"): 1, (NAME, "AAAA"): 1}


def test_a_changed_record_is_seen_on_the_next_lookup(dns_server: LoopbackDNSServer) -> None:
    resolver = resolver_for(dns_server)
    dns_server.set(NAME, ["192.0.2.10"], ttl=300)
    assert resolve(resolver, NAME).addresses == ("192.0.2.10",)

    dns_server.set(NAME, ["198.51.100.20", "2001:db8::20"], ttl=300)

    assert resolve(resolver, NAME).addresses == ("198.51.100.20", "2001:db8::20")
    # Both lookups reached the server: nothing answered from a cache despite the long TTL.
    assert dns_server.count(NAME, "A") == 2
    assert dns_server.count(NAME, "AAAA") == 2


def test_a_removed_record_is_seen_on_the_next_lookup(dns_server: LoopbackDNSServer) -> None:
    resolver = resolver_for(dns_server)
    dns_server.set(NAME, ["192.0.2.10"], ttl=300)
    assert resolve(resolver, NAME).error is None

    dns_server.remove(NAME)

    assert resolve(resolver, NAME).error == f"{NAME}: no such name (NXDOMAIN)"


# TTL


def test_cname_chain_ttl_is_the_smallest_along_the_chain(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_cname("alias.example.test", "middle.example.test", ttl=100)
    dns_server.set_cname("middle.example.test", NAME, ttl=20)
    dns_server.set(NAME, ["192.0.2.10", "2001:db8::10"], ttl=200)

    result = resolve(resolver_for(dns_server), "alias.example.test")

    # The final A RRset alone says 200; the middle alias expires first.
    assert result == Resolution(addresses=("192.0.2.10", "2001:db8::10"), ttl=20, error=None)


def test_cname_chain_ttl_when_the_addresses_expire_first(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_cname("alias.example.test", NAME, ttl=250)
    dns_server.set(NAME, ["192.0.2.10"], ttl=40)

    assert resolve(resolver_for(dns_server), "alias.example.test").ttl == 40


@pytest.mark.parametrize(
    ("record_ttl", "expected"),
    [(0, 5), (1, 5), (5, 5), (120, 120), (300, 300), (301, 300), (86400, 300)],
)
def test_ttl_is_clamped_to_default_bounds(
    dns_server: LoopbackDNSServer, record_ttl: int, expected: float
) -> None:
    dns_server.set(NAME, ["192.0.2.10", "2001:db8::10"], ttl=record_ttl)

    assert resolve(resolver_for(dns_server), NAME).ttl == expected


@pytest.mark.parametrize(("record_ttl", "expected"), [(0, 1), (7, 7), (3600, 10)])
def test_ttl_bounds_are_configurable(
    dns_server: LoopbackDNSServer, record_ttl: int, expected: float
) -> None:
    dns_server.set(NAME, ["192.0.2.10", "2001:db8::10"], ttl=record_ttl)

    resolver = resolver_for(dns_server, min_ttl=1, max_ttl=10)

    assert resolve(resolver, NAME).ttl == expected


def test_a_missing_family_expiring_first_brings_the_next_lookup_forward(
    dns_server: LoopbackDNSServer,
) -> None:
    # An AAAA record added later must be picked up once the NODATA answer expires.
    dns_server.negative_ttl = 30
    dns_server.set(NAME, ["192.0.2.10"], ttl=200)

    assert resolve(resolver_for(dns_server), NAME).ttl == 30


# Negative answers


def test_nxdomain_is_an_error_with_the_soa_negative_ttl(dns_server: LoopbackDNSServer) -> None:
    dns_server.negative_ttl = 45

    result = resolve(resolver_for(dns_server), "missing.example.test")

    assert result == Resolution(
        addresses=(), ttl=45, error="missing.example.test: no such name (NXDOMAIN)"
    )


@pytest.mark.parametrize(("negative_ttl", "expected"), [(0, 5), (86400, 300)])
def test_negative_ttl_is_clamped(
    dns_server: LoopbackDNSServer, negative_ttl: int, expected: float
) -> None:
    dns_server.negative_ttl = negative_ttl

    assert resolve(resolver_for(dns_server), "missing.example.test").ttl == expected


@pytest.mark.parametrize(("previous_failures", "expected"), [(0, 7), (1, 14), (2, 28), (3, 50)])
def test_nxdomain_without_soa_waits_the_retry_delay(
    dns_server: LoopbackDNSServer, previous_failures: int, expected: float
) -> None:
    dns_server.negative_ttl = None
    resolver = resolver_for(dns_server, retry_initial=7, retry_max=50)

    result = resolve(resolver, "missing.example.test", previous_failures=previous_failures)

    assert result.ttl == expected
    assert result.error == "missing.example.test: no such name (NXDOMAIN)"


def test_nxdomain_behind_an_alias_names_the_missing_target(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_cname(NAME, "gone.example.test")

    result = resolve(resolver_for(dns_server), NAME)

    assert result.addresses == ()
    assert result.error == f"{NAME}: no such name (NXDOMAIN) at its alias target gone.example.test"


def test_a_name_without_addresses_says_so(dns_server: LoopbackDNSServer) -> None:
    dns_server.negative_ttl = 20
    dns_server.set(NAME, [])

    result = resolve(resolver_for(dns_server), NAME)

    assert result == Resolution(addresses=(), ttl=20, error=f"{NAME}: no A or AAAA records")


def test_a_name_with_only_names_below_it_has_no_records(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["192.0.2.10"])

    result = resolve(resolver_for(dns_server), "example.test")

    assert result.error == "example.test: no A or AAAA records"


# Failures


@pytest.fixture
def silent_nameserver() -> Iterator[str]:
    """A UDP port that takes questions and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_a_silent_server_gives_a_timeout_error_within_the_timeout(silent_nameserver: str) -> None:
    resolver = HostnameResolver(nameservers=[silent_nameserver], timeout=0.3)

    started = time.monotonic()
    result = resolve(resolver, NAME, previous_failures=1)
    elapsed = time.monotonic() - started

    assert result == Resolution(
        addresses=(), ttl=10, error=f"{NAME}: DNS servers did not answer (timeout)"
    )
    assert 0.25 < elapsed < 0.8


def test_a_silent_server_among_others_is_skipped(
    dns_server: LoopbackDNSServer, silent_nameserver: str
) -> None:
    dns_server.set(NAME, ["192.0.2.10"])
    resolver = HostnameResolver(nameservers=[silent_nameserver, dns_server.nameserver], timeout=1)

    assert resolve(resolver, NAME).addresses == ("192.0.2.10",)


def test_server_failure_on_both_families_names_the_server(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["192.0.2.10"])
    dns_server.fail(NAME, "A")
    dns_server.fail(NAME, "AAAA")

    result = resolve(resolver_for(dns_server), NAME, previous_failures=2)

    assert result == Resolution(
        addresses=(),
        ttl=20,
        error=f"{NAME}: DNS servers failed: {dns_server.nameserver} answered SERVFAIL",
    )


def test_retry_delay_stops_doubling_at_its_maximum(dns_server: LoopbackDNSServer) -> None:
    dns_server.fail(NAME, "A", "refused")
    dns_server.fail(NAME, "AAAA", "refused")
    resolver = resolver_for(dns_server)

    assert resolve(resolver, NAME, previous_failures=0).ttl == 5
    assert resolve(resolver, NAME, previous_failures=3).ttl == 40
    assert resolve(resolver, NAME, previous_failures=4).ttl == 60
    assert resolve(resolver, NAME, previous_failures=10_000).ttl == 60


def test_one_failed_family_does_not_fail_the_other(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["192.0.2.10", "2001:db8::10"], ttl=30)
    dns_server.fail(NAME, "AAAA")

    result = resolve(resolver_for(dns_server), NAME)

    assert result == Resolution(addresses=("192.0.2.10",), ttl=30, error=None)


def test_an_unanswered_family_brings_the_next_lookup_within_the_retry_limit(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.set(NAME, ["192.0.2.10", "2001:db8::10"], ttl=250)
    dns_server.fail(NAME, "AAAA", "drop")

    result = resolve(resolver_for(dns_server, timeout=0.3), NAME)

    # The AAAA addresses may exist; they are looked for again after a minute, not after 250 s.
    assert result == Resolution(addresses=("192.0.2.10",), ttl=60, error=None)


def test_nxdomain_wins_over_a_failed_family(dns_server: LoopbackDNSServer) -> None:
    dns_server.fail("missing.example.test", "AAAA")

    result = resolve(resolver_for(dns_server), "missing.example.test")

    assert result.error == "missing.example.test: no such name (NXDOMAIN)"


# Unusable addresses


# Broadcast is refused here, by the same table as a spec's addresses, not later by the build.
@pytest.mark.parametrize(
    ("address", "reason"), [("127.0.0.1", "loopback"), ("255.255.255.255", "broadcast")]
)
def test_an_answer_of_one_unusable_address_cannot_be_an_endpoint(
    dns_server: LoopbackDNSServer, address: str, reason: str
) -> None:
    dns_server.set(NAME, [address], ttl=30)

    result = resolve(resolver_for(dns_server), NAME)

    assert result == Resolution(
        addresses=(),
        ttl=30,
        error=f"{NAME}: resolves only to {address} ({reason}), which cannot be an endpoint address",
    )


def test_several_unusable_addresses_are_all_named(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["169.254.1.1", "::1", "ff02::1", "0.0.0.0", "::"])

    result = resolve(resolver_for(dns_server), NAME)

    assert result.error == (
        f"{NAME}: resolves only to 0.0.0.0 (unspecified), 169.254.1.1 (link-local), "
        ":: (unspecified), ::1 (loopback) and ff02::1 (multicast), "
        "which cannot be endpoint addresses"
    )


def test_an_ipv4_mapped_ipv6_address_cannot_be_an_endpoint(dns_server: LoopbackDNSServer) -> None:
    # An IPv6 EndpointSlice refuses it, and the IPv4 address it carries was not asked for.
    dns_server.set(NAME, ["::ffff:192.0.2.1"])

    result = resolve(resolver_for(dns_server), NAME)

    assert result.addresses == ()
    assert result.error is not None
    assert "(IPv4-mapped IPv6), which cannot be an endpoint address" in result.error


def test_unusable_addresses_are_dropped_next_to_usable_ones(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.set(
        NAME, ["127.0.0.1", "192.0.2.10", "224.0.0.1", "fe80::1", "2001:db8::10"], ttl=30
    )

    result = resolve(resolver_for(dns_server), NAME)

    assert result == Resolution(addresses=("192.0.2.10", "2001:db8::10"), ttl=30, error=None)


# Hostname validation


@pytest.mark.parametrize(
    ("hostname", "message"),
    [
        ("", "the hostname is empty"),
        ("db..example.test", "'db..example.test' is not a valid hostname: it has an empty label"),
        (".example.test", "'.example.test' is not a valid hostname: it has an empty label"),
        ("-db.example.test", "the label '-db' may not start or end with '-'"),
        ("db-.example.test", "the label 'db-' may not start or end with '-'"),
        ("db .example.test", "the label 'db ' may hold only letters, digits and '-'"),
        ("db/1.example.test", "the label 'db/1' may hold only letters, digits and '-'"),
        ("x" * 64 + ".example.test", "is 64 characters long, at most 63 are allowed"),
        (("a" * 62 + ".") * 4 + "xyz", "it is 255 characters long, at most 253 are allowed"),
        ("bücher.example.test", "write an internationalized name in its xn-- form"),
        ("192.0.2.10", "'192.0.2.10' is an IP address, not a hostname"),
        ("2001:db8::10", "'2001:db8::10' is an IP address, not a hostname"),
        ("db.example.123", "its last label '123' is all digits"),
        # SRV and TXT records name services with '_'; Kubernetes refuses it in hostnames.
        ("_service.example.test", "the label '_service' may hold only letters, digits and '-'"),
    ],
)
def test_invalid_hostnames_are_an_error_without_a_query(
    dns_server: LoopbackDNSServer, hostname: str, message: str
) -> None:
    result = resolve(resolver_for(dns_server), hostname)

    assert result.addresses == ()
    assert result.error is not None
    assert message in result.error
    assert result.ttl == 60
    assert dns_server.queries == {}


@pytest.mark.parametrize(
    "hostname",
    [
        "db",
        "db.example.test.",
        "x" * 63 + ".example.test",
        "xn--bcher-kva.example.test",
        "10.example.test",
        ("a" * 62 + ".") * 4 + "x",
    ],
)
def test_valid_hostnames_pass(hostname: str) -> None:
    assert hostname_problem(hostname) is None


def test_the_longest_valid_name_is_253_characters() -> None:
    name = ("a" * 62 + ".") * 4 + "x"
    assert len(name) == 253
    assert hostname_problem(name) is None
    assert hostname_problem(name + "x") is not None


# Nameserver settings


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("", ()),
        (" , ", ()),
        ("10.0.0.53", ("10.0.0.53",)),
        ("10.0.0.53:53", ("10.0.0.53",)),
        ("127.0.0.1:5353", ("127.0.0.1:5353",)),
        ("::1", ("::1",)),
        ("[::1]:5353", ("[::1]:5353",)),
        ("[2001:DB8:0::53]", ("2001:db8::53",)),
        ("[2001:db8::53]:53", ("2001:db8::53",)),
        (
            " 10.0.0.53 , [fd00::53]:5353,10.0.0.54:1053, ",
            ("10.0.0.53", "[fd00::53]:5353", "10.0.0.54:1053"),
        ),
        ("10.0.0.53,10.0.0.53:53", ("10.0.0.53",)),
    ],
)
def test_parse_nameservers(setting: str, expected: tuple[str, ...]) -> None:
    assert parse_nameservers(setting) == expected


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("dns.example.test", "'dns.example.test' is not an IP address"),
        ("dns.example.test:53", "'dns.example.test' is not an IP address"),
        ("10.0.0.53:0", "the port must be a number from 1 to 65535"),
        ("10.0.0.53:65536", "the port must be a number from 1 to 65535"),
        ("10.0.0.53:dns", "the port must be a number from 1 to 65535"),
        ("10.0.0.53:", "the port must be a number from 1 to 65535"),
        ("[10.0.0.53]:53", "brackets are only for IPv6 addresses"),
        ("[::1", "expected [IPv6 address] or [IPv6 address]:port"),
        ("[::1]5353", "expected [IPv6 address] or [IPv6 address]:port"),
        ("10.0.0.53,nameserver", "nameserver 'nameserver'"),
    ],
)
def test_parse_nameservers_rejects(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_nameservers(setting)


def test_parsed_settings_configure_the_resolver(dns_server: LoopbackDNSServer) -> None:
    dns_server.set(NAME, ["192.0.2.10"])
    resolver = HostnameResolver(nameservers=parse_nameservers(f" {dns_server.nameserver} ,"))

    assert resolve(resolver, NAME).addresses == ("192.0.2.10",)


def test_resolver_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="is not an IP address"):
        HostnameResolver(nameservers=["dns.example.test"])
    with pytest.raises(TypeError, match="parse_nameservers"):
        HostnameResolver(nameservers="127.0.0.1")
    with pytest.raises(ValueError, match="min_ttl <= max_ttl"):
        HostnameResolver(min_ttl=10, max_ttl=5)
    with pytest.raises(ValueError, match="min_ttl <= max_ttl"):
        HostnameResolver(min_ttl=0)
    with pytest.raises(ValueError, match="retry_initial <= retry_max"):
        HostnameResolver(retry_initial=90)
    with pytest.raises(ValueError, match="timeout"):
        HostnameResolver(timeout=0)


# The loopback server itself


def test_server_answers_over_tcp_and_counts_by_name_and_type(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.set(NAME, ["192.0.2.10"], ttl=30)

    raw = DNSRecord.question(NAME, "A").send("127.0.0.1", dns_server.port, tcp=True, timeout=2)
    reply = DNSRecord.parse(raw)

    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.10"]
    assert dns_server.queries == {(NAME, "A"): 1}
    assert dns_server.count(NAME) == 1
    dns_server.reset_counts()
    assert dns_server.count(NAME) == 0


def test_server_puts_an_soa_in_negative_answers(dns_server: LoopbackDNSServer) -> None:
    dns_server.negative_ttl = 17

    raw = DNSRecord.question("missing.example.test", "A").send("127.0.0.1", dns_server.port)
    reply = DNSRecord.parse(raw)

    assert reply.header.rcode == RCODE.NXDOMAIN
    assert [(QTYPE[rr.rtype], rr.ttl) for rr in reply.auth] == [("SOA", 17)]


def test_server_stops_cleanly() -> None:
    before = set(threading.enumerate())
    with LoopbackDNSServer() as server:
        server.set(NAME, ["192.0.2.10"])
        assert resolve(resolver_for(server), NAME).error is None
        assert set(threading.enumerate()) - before

    assert set(threading.enumerate()) == before
    assert server.errors == []
