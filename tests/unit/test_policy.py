"""The address policy refuses, by default, every address the API server refuses and every
address of the local cluster (Service ranges, Pod ranges, Node addresses); it applies the
deny-list, then the allow-list; it keeps the allowed part of a multi-address answer; it
judges IPv4-mapped IPv6 as the IPv4 address; it survives garbage Node and ServiceCIDR
objects; and each refusal names the address and the rule in words a person can act on.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from shared_services import api
from shared_services.policy import (
    AddressPolicy,
    ClusterNetworks,
    NodeNetworks,
    Verdict,
    cluster_networks,
    judge,
    node_networks,
    parse_cidr,
    parse_cidrs,
    service_cidr_networks,
    static_source_refusal,
)


def _node(name: str, *, pods: list[Any] | None = None, addresses: list[Any] | None = None) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "resourceVersion": "7"},
        "spec": {"podCIDR": (pods or [None])[0], "podCIDRs": pods or []},
        "status": {
            "addresses": addresses or [],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _service_cidr(name: str, *cidrs: Any) -> Any:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": name},
        "spec": {"cidrs": list(cidrs)},
    }


# A dual-stack cluster as kind or kubeadm sets one up.
SERVICE_CIDRS = [_service_cidr("kubernetes", "10.96.0.0/16", "fd00:10:96::/112")]
NODES = [
    _node(
        "worker-1",
        pods=["10.244.1.0/24", "fd00:10:244:1::/64"],
        addresses=[
            {"type": "InternalIP", "address": "172.18.0.3"},
            {"type": "InternalIP", "address": "fc00:f853:ccd:e793::3"},
            {"type": "ExternalIP", "address": "203.0.113.50"},
            {"type": "Hostname", "address": "worker-1"},
        ],
    ),
    _node(
        "worker-2",
        pods=["10.244.2.0/24", "fd00:10:244:2::/64"],
        addresses=[{"type": "InternalIP", "address": "172.18.0.4"}],
    ),
]
NETWORKS = cluster_networks(service_cidrs=SERVICE_CIDRS, nodes=NODES)
OPEN = AddressPolicy()


def _one(
    address: object, policy: AddressPolicy = OPEN, networks: ClusterNetworks = NETWORKS
) -> str:
    """The one refusal's message, or "" when allowed."""
    verdict = judge([address], policy=policy, networks=networks)
    assert len(verdict.allowed) + len(verdict.refused) == 1
    return verdict.refused[0].message if verdict.refused else ""


# --- what the API server refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",
        "224.0.0.1",
        "239.1.2.3",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "febf:ffff::1",
        "ff02::1",
        "ff05::2",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_what_the_api_server_refuses_is_refused_first(address: str) -> None:
    # Even with the cluster rule off and an allow-list holding everything.
    everything = AddressPolicy(
        allowed=parse_cidrs(["0.0.0.0/0", "::/0"]), allow_cluster_networks=True
    )
    (refusal,) = judge([address], policy=everything, networks=NETWORKS).refused
    assert refusal.rule == "api-server"
    assert refusal.message.startswith(address)
    assert refusal.message.endswith("the API server refuses it as an endpoint")


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0",
        "0.0.0.1",
        "126.255.255.255",
        "127.0.0.0",
        "128.0.0.0",
        "169.253.255.255",
        "169.254.0.0",
        "169.255.0.0",
        "223.255.255.255",
        "224.0.0.0",
        "239.255.255.255",
        "240.0.0.0",
        "255.255.255.254",
        "255.255.255.255",
        "::",
        "::1",
        "::2",
        "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::",
        "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fec0::",
        "feff::1",
        "ff00::",
        "ff12::1",
        "192.0.2.10",
        "2001:db8::10",
    ],
)
def test_the_api_server_rule_agrees_with_the_admission_check(address: str) -> None:
    # The policy checks ranges for speed; api.endpoint_address_problem is the reference.
    everything = AddressPolicy(allow_cluster_networks=True)
    refused = bool(judge([address], policy=everything, networks=NETWORKS).refused)
    assert refused == (api.endpoint_address_problem(address) is not None)


def test_the_api_server_refusal_says_why() -> None:
    assert _one("127.0.0.1") == (
        f"127.0.0.1 {api.LOOPBACK_MESSAGE}: the API server refuses it as an endpoint"
    )
    assert _one("169.254.169.254").startswith(f"169.254.169.254 {api.LINK_LOCAL_MESSAGE}")
    assert _one("255.255.255.255").startswith(f"255.255.255.255 {api.NOT_UNICAST_MESSAGE}")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("db.example.internal", "db.example.internal is not an IP address"),
        ("192.0.2.010", "192.0.2.010 is not an IP address"),
        ("192.0.2.0/24", "192.0.2.0/24 is not an IP address"),
        (" 192.0.2.10", " 192.0.2.10 is not an IP address"),
        ("", " is not an IP address"),
        (7, "7 is not an IP address"),
        (None, "None is not an IP address"),
        (b"\xc0\x00\x02\x0a", "b'\\xc0\\x00\\x02\\n' is not an IP address"),
        ("fe80::1%eth0", "fe80::1%eth0 has a zone index, which means nothing off its host"),
        ("1" * 10_000, f"{'1' * 80}... (10000 chars) is not an IP address"),
        ("192.0.2.1\n", "'192.0.2.1\\n' is not an IP address"),
    ],
)
def test_garbage_is_refused_with_a_bounded_printable_message(raw: object, shown: str) -> None:
    (refusal,) = judge([raw], policy=OPEN, networks=NETWORKS).refused
    assert refusal.rule == "not-an-address"
    assert refusal.message == shown


# --- the local cluster -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "rule", "where"),
    [
        (
            "10.96.0.1",
            "service-range",
            "is in the cluster's Service range 10.96.0.0/16 (ServiceCIDR kubernetes)",
        ),
        (
            "10.96.255.255",
            "service-range",
            "is in the cluster's Service range 10.96.0.0/16 (ServiceCIDR kubernetes)",
        ),
        (
            "fd00:10:96::a",
            "service-range",
            "is in the cluster's Service range fd00:10:96::/112 (ServiceCIDR kubernetes)",
        ),
        ("10.244.1.17", "pod-range", "is in the Pod range 10.244.1.0/24 of Node worker-1"),
        ("10.244.2.0", "pod-range", "is in the Pod range 10.244.2.0/24 of Node worker-2"),
        (
            "fd00:10:244:2::99",
            "pod-range",
            "is in the Pod range fd00:10:244:2::/64 of Node worker-2",
        ),
        ("172.18.0.3", "node-address", "is the address of Node worker-1"),
        ("172.18.0.4", "node-address", "is the address of Node worker-2"),
        ("203.0.113.50", "node-address", "is the address of Node worker-1"),
        ("fc00:f853:ccd:e793::3", "node-address", "is the address of Node worker-1"),
    ],
)
def test_the_local_cluster_is_refused_by_default(address: str, rule: str, where: str) -> None:
    (refusal,) = judge([address], policy=OPEN, networks=NETWORKS).refused
    assert refusal.rule == rule
    assert refusal.message == (
        f"{address} {where}: endpoints may not point into the local cluster "
        "(--allow-cluster-networks)"
    )


@pytest.mark.parametrize(
    "address",
    [
        "10.97.0.1",  # next to the Service range
        "10.244.3.1",  # a Pod range no Node has
        "172.18.0.5",  # the Node network, but no Node's address
        "fd00:10:96::1:0",  # just past fd00:10:96::/112
        "192.0.2.10",
        "2001:db8::10",
    ],
)
def test_addresses_next_to_the_cluster_are_allowed(address: str) -> None:
    assert judge([address], policy=OPEN, networks=NETWORKS).allowed == (address,)


def test_allow_cluster_networks_turns_the_cluster_rule_off_and_only_it() -> None:
    policy = AddressPolicy(allow_cluster_networks=True, denied=parse_cidrs(["10.244.2.0/24"]))
    verdict = judge(
        ["10.96.0.1", "10.244.1.17", "172.18.0.3", "10.244.2.9", "127.0.0.1"],
        policy=policy,
        networks=NETWORKS,
    )
    assert verdict.allowed == ("10.96.0.1", "10.244.1.17", "172.18.0.3")
    assert [r.rule for r in verdict.refused] == ["denied", "api-server"]


def test_ipv4_mapped_ipv6_is_judged_as_the_ipv4_address() -> None:
    # The same Service IP spelt as IPv6 must not slip past the Service range.
    assert _one("::ffff:10.96.0.1") == (
        "::ffff:10.96.0.1 (that is 10.96.0.1) is in the cluster's Service range "
        "10.96.0.0/16 (ServiceCIDR kubernetes): endpoints may not point into the local "
        "cluster (--allow-cluster-networks)"
    )
    assert judge(["::ffff:172.18.0.4"], policy=OPEN, networks=NETWORKS).refused[0].rule == (
        "node-address"
    )
    allow = AddressPolicy(allowed=parse_cidrs(["198.51.100.0/24"]))
    assert judge(["::ffff:198.51.100.7"], policy=allow, networks=NETWORKS).allowed == (
        "::ffff:198.51.100.7",
    )
    deny = AddressPolicy(denied=parse_cidrs(["::ffff:203.0.113.0/120"]))
    assert _one("203.0.113.9", deny) == (
        "203.0.113.9 is in the denied range 203.0.113.0/24 (--denied-cidrs)"
    )


def test_a_node_address_is_refused_whatever_its_type_says() -> None:
    node = _node(
        "edge",
        addresses=[
            {"type": "Hostname", "address": "198.51.100.4"},
            {"type": "InternalDNS", "address": "edge.cluster.internal"},
            {"type": "ExternalIP", "address": "::ffff:198.51.100.5"},
        ],
    )
    networks = cluster_networks(service_cidrs=[], nodes=[node])
    assert networks.nodes == (
        NodeNetworks(
            "edge",
            (),
            (ipaddress.ip_address("198.51.100.4"), ipaddress.ip_address("198.51.100.5")),
        ),
    )
    verdict = judge(["198.51.100.4", "198.51.100.5"], policy=OPEN, networks=networks)
    assert [r.rule for r in verdict.refused] == ["node-address", "node-address"]


# --- deny-list and allow-list ----------------------------------------------------------------

SUPERVISOR = AddressPolicy(
    allowed=parse_cidrs(["198.51.100.0/24", "2001:db8:100::/48"]),
    denied=parse_cidrs(["198.51.100.128/25,2001:db8:100:ff::/64"]),
)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("198.51.100.7", ""),
        ("198.51.100.127", ""),
        ("2001:db8:100::7", ""),
        ("2001:db8:100:fe:ffff:ffff:ffff:ffff", ""),
        (
            "198.51.100.128",
            "198.51.100.128 is in the denied range 198.51.100.128/25 (--denied-cidrs)",
        ),
        (
            "2001:db8:100:ff::1",
            "2001:db8:100:ff::1 is in the denied range 2001:db8:100:ff::/64 (--denied-cidrs)",
        ),
        (
            "192.0.2.7",
            "192.0.2.7 is outside the allowed ranges 198.51.100.0/24, "
            "2001:db8:100::/48 (--allowed-cidrs)",
        ),
        (
            "2001:db8:101::1",
            "2001:db8:101::1 is outside the allowed ranges 198.51.100.0/24, "
            "2001:db8:100::/48 (--allowed-cidrs)",
        ),
        (
            "2001:DB8:101::1",
            "2001:DB8:101::1 is outside the allowed ranges 198.51.100.0/24, "
            "2001:db8:100::/48 (--allowed-cidrs)",
        ),
    ],
)
def test_deny_list_then_allow_list(address: str, message: str) -> None:
    assert _one(address, SUPERVISOR) == message


def test_no_allow_list_means_anywhere_not_denied() -> None:
    policy = AddressPolicy(denied=parse_cidrs(["192.0.2.0/25"]))
    verdict = judge(["192.0.2.1", "192.0.2.200", "2001:db8::1"], policy=policy, networks=NETWORKS)
    assert verdict.allowed == ("192.0.2.200", "2001:db8::1")
    assert [r.address for r in verdict.refused] == ["192.0.2.1"]


def test_the_cluster_rule_comes_before_the_allow_list() -> None:
    # An allow-list that overlaps the cluster does not open the cluster to endpoints.
    policy = AddressPolicy(allowed=parse_cidrs(["10.0.0.0/8"]))
    (refusal,) = judge(["10.244.1.5"], policy=policy, networks=NETWORKS).refused
    assert refusal.rule == "pod-range"


def test_a_long_allow_list_is_named_in_part() -> None:
    policy = AddressPolicy(allowed=tuple(parse_cidr(f"198.51.100.{i * 16}/28") for i in range(6)))
    assert _one("192.0.2.1", policy) == (
        "192.0.2.1 is outside the allowed ranges 198.51.100.0/28, 198.51.100.16/28, "
        "198.51.100.32/28, 198.51.100.48/28 and 2 more (--allowed-cidrs)"
    )
    assert _one("198.51.100.95", policy) == ""
    assert _one("198.51.100.96", policy).startswith("198.51.100.96 is outside")


# --- multi-address answers -------------------------------------------------------------------


def test_the_allowed_rest_of_a_multi_address_answer_is_kept_in_order() -> None:
    answer = [
        "198.51.100.20",
        "10.96.0.10",
        "2001:db8:100::20",
        "127.0.0.1",
        "198.51.100.10",
        "192.0.2.1",
    ]
    verdict = judge(answer, policy=SUPERVISOR, networks=NETWORKS)
    assert verdict.allowed == ("198.51.100.20", "2001:db8:100::20", "198.51.100.10")
    assert [(r.address, r.rule) for r in verdict.refused] == [
        ("10.96.0.10", "service-range"),
        ("127.0.0.1", "api-server"),
        ("192.0.2.1", "not-allowed"),
    ]


def test_the_verdict_message_names_the_first_refusals_and_counts_the_rest() -> None:
    verdict = judge([f"192.0.2.{i}" for i in range(1, 8)], policy=SUPERVISOR, networks=NETWORKS)
    assert verdict.allowed == ()
    message = verdict.message()
    assert message.startswith("192.0.2.1 is outside the allowed ranges")
    assert "192.0.2.3 is outside" in message
    assert "192.0.2.4" not in message
    assert message.endswith("; and 4 more refused")
    assert judge(["192.0.2.1"], policy=SUPERVISOR, networks=NETWORKS).message() == (
        "192.0.2.1 is outside the allowed ranges 198.51.100.0/24, 2001:db8:100::/48 "
        "(--allowed-cidrs)"
    )
    assert Verdict((), ()).message() == ""


def test_an_empty_answer_is_an_empty_verdict() -> None:
    assert judge([], policy=SUPERVISOR, networks=NETWORKS) == Verdict((), ())


# --- building the cluster's networks ---------------------------------------------------------


def test_networks_compare_equal_when_nothing_that_matters_changed() -> None:
    heartbeat = [dict(n, metadata={**n["metadata"], "resourceVersion": "8"}) for n in NODES]
    heartbeat[0]["status"] = {**heartbeat[0]["status"], "conditions": []}
    reordered = [*reversed(heartbeat)]
    reordered[1]["status"]["addresses"] = [*reversed(NODES[0]["status"]["addresses"])]
    assert cluster_networks(service_cidrs=SERVICE_CIDRS, nodes=reordered) == NETWORKS
    moved = [NODES[0], _node("worker-2", pods=["10.244.2.0/24"], addresses=[])]
    assert cluster_networks(service_cidrs=SERVICE_CIDRS, nodes=moved) != NETWORKS
    renamed = [NODES[0], dict(NODES[1], metadata={"name": "worker-3"})]
    assert cluster_networks(service_cidrs=SERVICE_CIDRS, nodes=renamed) != NETWORKS
    assert cluster_networks(service_cidrs=[], nodes=NODES) != NETWORKS


def test_networks_can_be_assembled_node_by_node() -> None:
    entries = {n["metadata"]["name"]: node_networks(n) for n in NODES}
    services = [service_cidr_networks(s) for s in SERVICE_CIDRS]
    assert None not in entries.values()
    assert None not in services
    assert (
        ClusterNetworks.of(
            service_cidrs=[s for s in services if s], nodes=[n for n in entries.values() if n]
        )
        == NETWORKS
    )
    # A Node event whose ranges and addresses did not change gives an equal entry.
    assert (
        node_networks(dict(NODES[0], status={**NODES[0]["status"], "phase": "x"}))
        == (entries["worker-1"])
    )


GARBAGE: list[Any] = [
    None,
    "node",
    7,
    [],
    {},
    {"metadata": None, "spec": None, "status": None},
    {"metadata": {"name": 7}, "spec": {"podCIDRs": "10.1.0.0/16"}},
    {"metadata": {"name": "x"}, "spec": {"podCIDRs": [None, 7, {}, "banana", "10.1.0.0/33"]}},
    {"metadata": {"name": "x"}, "spec": {"podCIDR": ["10.1.0.0/16"]}},
    {"metadata": {"name": "x"}, "spec": {"cidrs": {"a": "10.1.0.0/16"}}},
    {"metadata": {"name": "x"}, "spec": {"cidrs": ["1" * 100_000, "fe80::%eth0/64"]}},
    {"metadata": {"name": "x"}, "status": {"addresses": "10.1.0.1"}},
    {"metadata": {"name": "x"}, "status": {"addresses": [None, 7, "10.1.0.1", {"type": "x"}]}},
    {"metadata": {"name": "x"}, "status": {"addresses": [{"address": ["10.1.0.1"]}]}},
    {"metadata": {"name": "x"}, "status": {"addresses": [{"address": "10.1.0.01"}]}},
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_objects_are_skipped_without_raising(garbage: Any) -> None:
    networks = cluster_networks(service_cidrs=[garbage], nodes=[garbage])
    assert networks == ClusterNetworks()
    assert judge(["10.1.0.1"], policy=OPEN, networks=networks).allowed == ("10.1.0.1",)


def test_garbage_beside_good_objects_keeps_the_good_ones() -> None:
    networks = cluster_networks(
        service_cidrs=[*GARBAGE, *SERVICE_CIDRS], nodes=[*GARBAGE, *NODES, *GARBAGE]
    )
    assert networks == NETWORKS


def test_loosely_written_ranges_are_read_as_the_api_server_reads_them() -> None:
    # The API server stores podCIDRs as Go parses them: host bits masked off.
    node = _node("sloppy", pods=["10.250.7.9/24", "::ffff:10.251.0.0/112"])
    unnamed = {"metadata": {"name": "\x1b[2J"}, "spec": {"cidrs": ["10.252.0.0/16"]}}
    networks = cluster_networks(service_cidrs=[unnamed], nodes=[node])
    assert _one("10.250.7.200", networks=networks).startswith(
        "10.250.7.200 is in the Pod range 10.250.7.0/24 of Node sloppy"
    )
    assert _one("10.251.0.9", networks=networks).startswith(
        "10.251.0.9 is in the Pod range 10.251.0.0/16 of Node sloppy"
    )
    assert _one("10.252.1.1", networks=networks).startswith(
        "10.252.1.1 is in the cluster's Service range 10.252.0.0/16 (ServiceCIDR (unnamed))"
    )


def test_nothing_known_refuses_nothing_of_the_cluster() -> None:
    # The controller judges only once its Node and ServiceCIDR caches are filled.
    assert judge(["10.96.0.1"], policy=OPEN, networks=ClusterNetworks()).allowed == ("10.96.0.1",)


def test_a_thousand_nodes_are_judged_against_collapsed_ranges() -> None:
    nodes = [
        _node(
            f"worker-{i}",
            pods=[f"10.{100 + i // 256}.{i % 256}.0/24"],
            addresses=[{"type": "InternalIP", "address": f"172.20.{i // 256}.{i % 256}"}],
        )
        for i in range(1000)
    ]
    networks = cluster_networks(service_cidrs=SERVICE_CIDRS, nodes=nodes)
    assert len(networks.nodes) == 1000
    assert _one("10.103.231.1", networks=networks).startswith(
        "10.103.231.1 is in the Pod range 10.103.231.0/24 of Node worker-999"
    )
    assert _one("10.103.232.1", networks=networks) == ""
    assert _one("172.20.3.231", networks=networks).startswith(
        "172.20.3.231 is the address of Node worker-999"
    )
    assert _one("172.20.3.232", networks=networks) == ""


# --- parsing the flags' CIDRs ----------------------------------------------------------------


def test_parse_cidrs() -> None:
    assert parse_cidrs(["198.51.100.0/24, 2001:db8::/32", "", "192.0.2.7"]) == (
        ipaddress.ip_network("198.51.100.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert parse_cidrs([" , "]) == ()
    assert parse_cidr("::ffff:198.51.100.0/120") == ipaddress.ip_network("198.51.100.0/24")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("10.1.2.3/8", "10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8?"),
        ("banana", "banana is not a CIDR such as 198.51.100.0/24"),
        ("10.0.0.0/33", "10.0.0.0/33 is not a CIDR such as 198.51.100.0/24"),
        ("2001:db8::/129", "2001:db8::/129 is not a CIDR"),
        ("010.0.0.0/8", "010.0.0.0/8 is not a CIDR"),
        ("", " is not a CIDR"),
        ("fe80::%eth0/64", "fe80::%eth0/64 has a zone index"),
    ],
)
def test_a_malformed_cidr_is_refused_clearly(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_cidr(text)


def test_listed_static_sources_need_a_namespace() -> None:
    with pytest.raises(ValueError, match="--static-sources=listed needs at least one"):
        AddressPolicy(static_sources="listed")
    with pytest.raises(ValueError, match="must be one of all, none, listed"):
        AddressPolicy(static_sources="some")  # type: ignore[arg-type]


# --- static sources --------------------------------------------------------------------------


def test_static_sources_all_by_default() -> None:
    for kind in ("addresses", "hostname", "remoteService"):
        assert static_source_refusal(kind, "web", policy=OPEN) is None


def test_static_sources_none() -> None:
    policy = AddressPolicy(static_sources="none")
    assert static_source_refusal("addresses", "web", policy=policy) == (
        "spec.source.addresses is turned off on this cluster (--static-sources=none); "
        "import from a RemoteCluster with spec.source.remoteService instead"
    )
    assert static_source_refusal("hostname", "web", policy=policy) == (
        "spec.source.hostname is turned off on this cluster (--static-sources=none); "
        "import from a RemoteCluster with spec.source.remoteService instead"
    )
    assert static_source_refusal("remoteService", "web", policy=policy) is None


def test_static_sources_listed() -> None:
    policy = AddressPolicy(static_sources="listed", static_source_namespaces=frozenset({"ops"}))
    assert static_source_refusal("addresses", "ops", policy=policy) is None
    assert static_source_refusal("hostname", "ops", policy=policy) is None
    assert static_source_refusal("remoteService", "web", policy=policy) is None
    refusal = static_source_refusal("hostname", "web", policy=policy)
    assert refusal == (
        "spec.source.hostname is not allowed in namespace web: static sources are limited "
        "to listed namespaces (--static-sources=listed, --static-source-namespace)"
    )
    # Other tenants' namespace names are not told to this one.
    assert "ops" not in refusal


def test_policies_compare_by_their_rules() -> None:
    assert AddressPolicy(denied=parse_cidrs(["::ffff:192.0.2.0/120"])) == AddressPolicy(
        denied=parse_cidrs(["192.0.2.0/24"])
    )
    assert AddressPolicy() != AddressPolicy(allow_cluster_networks=True)
    assert hash(AddressPolicy()) == hash(AddressPolicy())


def test_overlapping_and_adjacent_ranges_are_all_still_held() -> None:
    # Collapsing must keep the wider of two overlapping ranges and bridge adjacent ones.
    policy = AddressPolicy(
        denied=parse_cidrs(["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/24", "11.0.1.0/24"])
    )
    verdict = judge(
        ["10.200.0.1", "10.1.2.3", "11.0.0.255", "11.0.1.0", "11.0.2.0", "9.255.255.255"],
        policy=policy,
        networks=ClusterNetworks(),
    )
    assert verdict.allowed == ("11.0.2.0", "9.255.255.255")
    assert [r.message for r in verdict.refused] == [
        "10.200.0.1 is in the denied range 10.0.0.0/8 (--denied-cidrs)",
        "10.1.2.3 is in the denied range 10.0.0.0/8 (--denied-cidrs)",
        "11.0.0.255 is in the denied range 11.0.0.0/24 (--denied-cidrs)",
        "11.0.1.0 is in the denied range 11.0.1.0/24 (--denied-cidrs)",
    ]
