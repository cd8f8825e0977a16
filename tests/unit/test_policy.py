"""The address policy refuses, by default, every address the API server refuses and every
address of the local cluster (Service ranges, Pod ranges, Node addresses); it applies the
deny-list, then the allow-list; it keeps the allowed part of a multi-address answer; it
judges IPv4-mapped IPv6 as the IPv4 address, and an address under a NAT64 prefix by the
IPv4 address it carries as well; it refuses the other IPv6 forms of IPv4 addresses and the
cloud metadata services; it survives garbage Node and ServiceCIDR objects; and each refusal
names the address and the rule in words a person can act on, telling the tenant nothing of
the cluster's Nodes and Pod ranges, which only the operator's log reads.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from shared_services import api
from shared_services.policy import (
    METADATA_SERVICES,
    AddressPolicy,
    ClusterNetworks,
    NodeNetworks,
    ServiceCIDRNetworks,
    Verdict,
    cluster_networks,
    judge,
    nat64_ipv4,
    node_networks,
    parse_cidr,
    parse_cidrs,
    parse_nat64_prefixes,
    server_refusal,
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


def _detail(
    address: object, policy: AddressPolicy = OPEN, networks: ClusterNetworks = NETWORKS
) -> str:
    """The one refusal's detail, for the operator's log, or "" when allowed."""
    verdict = judge([address], policy=policy, networks=networks)
    return verdict.refused[0].detail if verdict.refused else ""


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
    refused = judge([address], policy=everything, networks=NETWORKS).refused
    by_api_server = bool(refused) and refused[0].rule == "api-server"
    assert by_api_server == (api.endpoint_address_problem(address) is not None)


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


SERVICE_RANGE = "is in the local cluster's Service range"
POD_RANGE = "is in the local cluster's Pod range"
NODE_ADDRESS = "is an address of one of the local cluster's Nodes"


@pytest.mark.parametrize(
    ("address", "rule", "where", "detail"),
    [
        (
            "10.96.0.1",
            "service-range",
            f"{SERVICE_RANGE} 10.96.0.0/16",
            f"{SERVICE_RANGE} 10.96.0.0/16 (ServiceCIDR kubernetes)",
        ),
        (
            "10.96.255.255",
            "service-range",
            f"{SERVICE_RANGE} 10.96.0.0/16",
            f"{SERVICE_RANGE} 10.96.0.0/16 (ServiceCIDR kubernetes)",
        ),
        (
            "fd00:10:96::a",
            "service-range",
            f"{SERVICE_RANGE} fd00:10:96::/112",
            f"{SERVICE_RANGE} fd00:10:96::/112 (ServiceCIDR kubernetes)",
        ),
        (
            "10.244.1.17",
            "pod-range",
            POD_RANGE,
            "is in the Pod range 10.244.1.0/24 of Node worker-1",
        ),
        (
            "10.244.2.0",
            "pod-range",
            POD_RANGE,
            "is in the Pod range 10.244.2.0/24 of Node worker-2",
        ),
        (
            "fd00:10:244:2::99",
            "pod-range",
            POD_RANGE,
            "is in the Pod range fd00:10:244:2::/64 of Node worker-2",
        ),
        ("172.18.0.3", "node-address", NODE_ADDRESS, "is the address of Node worker-1"),
        ("172.18.0.4", "node-address", NODE_ADDRESS, "is the address of Node worker-2"),
        ("203.0.113.50", "node-address", NODE_ADDRESS, "is the address of Node worker-1"),
        ("fc00:f853:ccd:e793::3", "node-address", NODE_ADDRESS, "is the address of Node worker-1"),
    ],
)
def test_the_local_cluster_is_refused_by_default(
    address: str, rule: str, where: str, detail: str
) -> None:
    (refusal,) = judge([address], policy=OPEN, networks=NETWORKS).refused
    assert refusal.rule == rule
    hint = "endpoints may not point into the local cluster (--allow-cluster-networks)"
    assert refusal.message == f"{address} {where}: {hint}"
    # The operator's log names the Node, its range and the ServiceCIDR.
    assert refusal.detail == f"{address} {detail}: {hint}"


@pytest.mark.parametrize(
    ("address", "logged"),
    [
        ("10.244.1.17", "is in the Pod range 10.244.1.0/24 of Node worker-1"),
        ("fd00:10:244:2::99", "is in the Pod range fd00:10:244:2::/64 of Node worker-2"),
        ("172.18.0.3", "is the address of Node worker-1"),
        ("64:ff9b::172.18.0.4", "which is the address of Node worker-2"),
    ],
)
def test_the_tenant_is_not_told_the_nodes_or_their_pod_ranges(address: str, logged: str) -> None:
    verdict = judge([address, "10.96.0.1"], policy=OPEN, networks=NETWORKS)
    told = verdict.message()
    # What the tenant wrote, and the IPv4 address it carries, are theirs to be told.
    for own in (address, "64:ff9b::ac12:4", "carries 172.18.0.4"):
        told = told.replace(own, "")
    for secret in ("worker-", "Node ", "10.244.", "fd00:10:244:", "172.18.", "ServiceCIDR"):
        assert secret not in told, told
    # The Service range is named: the API server names it to anyone creating a Service.
    assert "10.96.0.0/16" in told
    assert logged in verdict.details()
    assert "(ServiceCIDR kubernetes)" in verdict.details()


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
        "::ffff:10.96.0.1 (that is 10.96.0.1) is in the local cluster's Service range "
        "10.96.0.0/16: endpoints may not point into the local cluster "
        "(--allow-cluster-networks)"
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


# --- IPv4 addresses inside IPv6 ones -----------------------------------------------------------

NAT64_HINT = "(NAT64 prefix 64:ff9b::/96), which"


@pytest.mark.parametrize(
    ("address", "rule", "carried"),
    [
        ("64:ff9b::10.96.0.1", "service-range", f"10.96.0.1 {NAT64_HINT} {SERVICE_RANGE}"),
        ("64:ff9b::a60:1", "service-range", f"10.96.0.1 {NAT64_HINT} {SERVICE_RANGE}"),
        ("64:ff9b::10.244.1.17", "pod-range", f"10.244.1.17 {NAT64_HINT} {POD_RANGE}"),
        ("64:ff9b::172.18.0.3", "node-address", f"172.18.0.3 {NAT64_HINT} {NODE_ADDRESS}"),
        ("64:FF9B::AC12:4", "node-address", f"172.18.0.4 {NAT64_HINT} {NODE_ADDRESS}"),
        (
            "64:ff9b::127.0.0.1",
            "api-server",
            f"127.0.0.1 {NAT64_HINT} {api.LOOPBACK_MESSAGE}",
        ),
        (
            "64:ff9b::169.254.169.254",
            "api-server",
            f"169.254.169.254 {NAT64_HINT} {api.LINK_LOCAL_MESSAGE}",
        ),
        (
            "64:ff9b::168.63.129.16",
            "metadata-service",
            f"168.63.129.16 {NAT64_HINT} is Azure's WireServer",
        ),
    ],
)
def test_a_nat64_address_is_judged_by_the_ipv4_address_it_carries(
    address: str, rule: str, carried: str
) -> None:
    # A NAT64 translator sends 64:ff9b::a.b.c.d on to a.b.c.d, a Node among them; with
    # DNS64, every name that has an A record has such an AAAA record too.
    (refusal,) = judge([address], policy=OPEN, networks=NETWORKS).refused
    assert refusal.rule == rule
    assert f" carries {carried}" in refusal.message, refusal.message
    assert refusal.message.startswith(address)


def test_a_nat64_address_is_refused_if_either_form_is() -> None:
    deny_v4 = AddressPolicy(denied=parse_cidrs(["203.0.113.0/24"]))
    assert _one("64:ff9b::203.0.113.9", deny_v4).endswith(
        "carries 203.0.113.9 (NAT64 prefix 64:ff9b::/96), which is in the denied range "
        "203.0.113.0/24 (--denied-cidrs)"
    )
    deny_v6 = AddressPolicy(denied=parse_cidrs(["64:ff9b::/96"]))
    assert _one("64:ff9b::198.51.100.7", deny_v6).endswith(
        "is in the denied range 64:ff9b::/96 (--denied-cidrs)"
    )
    # An allow-list must hold both forms: the translator's prefix and the IPv4 address.
    both = AddressPolicy(allowed=parse_cidrs(["198.51.100.0/24", "64:ff9b::/96"]))
    assert _one("64:ff9b::198.51.100.7", both) == ""
    assert "carries 192.0.2.1" in _one("64:ff9b::192.0.2.1", both)
    v4_only = AddressPolicy(allowed=parse_cidrs(["198.51.100.0/24"]))
    assert "is outside the allowed ranges" in _one("64:ff9b::198.51.100.7", v4_only)
    # Nowhere in the cluster, not denied: allowed, as any address is.
    assert _one("64:ff9b::198.51.100.7") == ""
    assert _one("64:ff9b::172.18.0.5") == ""


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        # RFC 6052, 2.4: 192.0.2.33 under a prefix of each length.
        ("2001:db8:c000:221::", "2001:db8::/32"),
        ("2001:db8:1c0:2:21::", "2001:db8:100::/40"),
        ("2001:db8:122:c000:2:2100::", "2001:db8:122::/48"),
        ("2001:db8:122:3c0:0:221::", "2001:db8:122:300::/56"),
        ("2001:db8:122:344:c0:2:2100:0", "2001:db8:122:344::/64"),
        ("2001:db8:122:344::192.0.2.33", "2001:db8:122:344::/96"),
        ("64:ff9b::192.0.2.33", "64:ff9b::/96"),
    ],
)
def test_the_ipv4_address_is_read_where_rfc_6052_puts_it(address: str, prefix: str) -> None:
    network = ipaddress.IPv6Network(prefix)
    assert nat64_ipv4(ipaddress.IPv6Address(address), network) == ipaddress.IPv4Address(
        "192.0.2.33"
    )
    # And under a NAT64 prefix of the settings, the policy judges that IPv4 address.
    policy = AddressPolicy(
        nat64_prefixes=parse_nat64_prefixes([prefix]), denied=parse_cidrs(["192.0.2.32/28"])
    )
    (refusal,) = judge([address], policy=policy, networks=NETWORKS).refused
    assert refusal.rule == "denied"
    assert f"carries 192.0.2.33 (NAT64 prefix {prefix})" in refusal.message
    assert judge([address], policy=OPEN, networks=NETWORKS).allowed == (address,)


def test_the_local_use_nat64_range_is_judged_only_under_a_prefix_of_the_settings() -> None:
    # RFC 8215's 64:ff9b:1::/48 carries the IPv4 address where the network decides; until
    # the settings say where, nothing in it can be judged, so nothing in it is let through.
    (refusal,) = judge(["64:ff9b:1::172.18.0.3"], policy=OPEN, networks=NETWORKS).refused
    assert refusal.rule == "ipv4-in-ipv6"
    assert refusal.message == (
        "64:ff9b:1::172.18.0.3 (that is 64:ff9b:1::ac12:3) is in the local-use NAT64 range "
        "64:ff9b:1::/48, and no NAT64 prefix (--nat64-prefixes) says which IPv4 address it "
        "carries"
    )
    local = AddressPolicy(nat64_prefixes=parse_nat64_prefixes(["64:ff9b:1:ab::/96"]))
    verdict = judge(
        ["64:ff9b:1:ab::172.18.0.3", "64:ff9b:1:ab::198.51.100.7", "64:ff9b:1:ac::7"],
        policy=local,
        networks=NETWORKS,
    )
    assert verdict.allowed == ("64:ff9b:1:ab::198.51.100.7",)
    assert [r.rule for r in verdict.refused] == ["node-address", "ipv4-in-ipv6"]
    # The well-known prefix is judged whatever the settings say.
    assert judge(["64:ff9b::172.18.0.3"], policy=local, networks=NETWORKS).refused


@pytest.mark.parametrize(
    ("address", "form"),
    [
        ("::10.96.0.1", "IPv4-compatible form (::/96)"),
        ("::198.51.100.7", "IPv4-compatible form (::/96)"),
        ("::ffff:0:172.18.0.3", "IPv4-translated form (::ffff:0:0:0/96)"),
        ("2002:a60:1::1", "6to4 form (2002::/16)"),
        ("2002:c633:6407::", "6to4 form (2002::/16)"),
        ("2001:0:c000:20a:0:f227:3fff:fdd2", "Teredo form (2001::/32)"),
    ],
)
def test_the_other_ipv6_forms_of_ipv4_addresses_are_refused(address: str, form: str) -> None:
    # Even with the cluster rule off and an allow-list holding everything: no VIP takes
    # these forms, and the IPv4 address behind a tunnel is not the one to judge.
    everything = AddressPolicy(
        allowed=parse_cidrs(["0.0.0.0/0", "::/0"]), allow_cluster_networks=True
    )
    (refusal,) = judge([address], policy=everything, networks=NETWORKS).refused
    assert refusal.rule == "ipv4-in-ipv6"
    assert f"is an IPv6 address in {form}, which stands for an IPv4 address" in refusal.message
    # The CRD's rule refuses the same addresses, with its own message.
    assert api.ipv4_in_ipv6_problem(ipaddress.ip_address(address)) == api.IPV4_IN_IPV6_MESSAGE


@pytest.mark.parametrize(
    "address",
    ["2001:db8::10.96.0.1", "2001:db8:0:1::1", "2003::1", "2001:1::1", "64:ff9a::1", "::1:0:0:1"],
)
def test_addresses_next_to_those_forms_are_ordinary_ipv6(address: str) -> None:
    assert judge([address], policy=OPEN, networks=NETWORKS).allowed == (address,)


@pytest.mark.parametrize(
    "text",
    ["192.0.2.0/24", "2001:db8::/33", "2001:db8::/128", "64:ff9b::1/96", "banana"],
)
def test_a_nat64_prefix_must_be_an_ipv6_prefix_of_an_rfc_6052_length(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(text.split("/", maxsplit=1)[0])):
        parse_nat64_prefixes([text])


def test_a_policy_refuses_a_nat64_prefix_of_another_length() -> None:
    with pytest.raises(ValueError, match=r"length must be one of /32, /40.*--nat64-prefixes"):
        AddressPolicy(nat64_prefixes=(ipaddress.IPv6Network("2001:db8::/33"),))


# --- cloud metadata services -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "service"),
    [
        ("fd00:ec2::254", "the EC2 instance metadata service (IPv6)"),
        ("FD00:EC2:0::254", "the EC2 instance metadata service (IPv6)"),
        ("168.63.129.16", "Azure's WireServer"),
        ("100.100.100.200", "Alibaba Cloud's metadata service"),
        ("::ffff:100.100.100.200", "Alibaba Cloud's metadata service"),
    ],
)
def test_cloud_metadata_services_are_refused_unless_allowed(address: str, service: str) -> None:
    (refusal,) = judge([address], policy=OPEN, networks=ClusterNetworks()).refused
    assert refusal.rule == "metadata-service"
    assert refusal.message.endswith(
        f"is {service}, a cloud's metadata and control endpoint, where endpoints may not "
        "point (--allow-metadata-services)"
    )
    allowed = AddressPolicy(allow_metadata_services=True)
    assert judge([address], policy=allowed, networks=ClusterNetworks()).allowed == (address,)


def test_the_metadata_services_are_the_named_addresses_only() -> None:
    assert {str(a) for a, _ in METADATA_SERVICES} == {
        "fd00:ec2::254",
        "168.63.129.16",
        "100.100.100.200",
    }
    for neighbour in ("fd00:ec2::253", "168.63.129.17", "100.100.100.201"):
        assert _one(neighbour, networks=ClusterNetworks()) == ""


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
    assert _detail("10.250.7.200", networks=networks).startswith(
        "10.250.7.200 is in the Pod range 10.250.7.0/24 of Node sloppy"
    )
    assert _detail("10.251.0.9", networks=networks).startswith(
        "10.251.0.9 is in the Pod range 10.251.0.0/16 of Node sloppy"
    )
    assert _detail("10.252.1.1", networks=networks).startswith(
        "10.252.1.1 is in the local cluster's Service range 10.252.0.0/16 (ServiceCIDR (unnamed))"
    )


def test_an_unknown_service_range_refuses_every_address_and_says_what_to_set() -> None:
    # Before Kubernetes 1.33 no ServiceCIDR names the range; when nothing else did either,
    # no address can be judged against it, and none is let through (never fail open).
    unknown = ClusterNetworks.of(
        service_cidrs=[], nodes=[], unknown_service_range="the range is unknown (why)"
    )
    verdict = judge(["203.0.113.10", "10.96.0.1"], policy=OPEN, networks=unknown)
    assert verdict.allowed == ()
    assert [r.rule for r in verdict.refused] == ["service-range", "service-range"]
    message = verdict.refused[0].message
    assert message.startswith("203.0.113.10 cannot be judged: the range is unknown (why)")
    assert "--service-cidrs" in message
    assert "addressPolicy.serviceCIDRs" in message
    assert "--allow-cluster-networks" in message
    # The rule the platform team turned off is not applied, known range or not.
    assert judge(
        ["203.0.113.10"], policy=AddressPolicy(allow_cluster_networks=True), networks=unknown
    ).allowed == ("203.0.113.10",)
    assert unknown != ClusterNetworks()


def test_a_range_from_elsewhere_than_a_service_cidr_is_named_by_its_origin() -> None:
    given = ServiceCIDRNetworks(
        "--service-cidrs", (ipaddress.ip_network("10.96.0.0/16"),), "set by"
    )
    networks = ClusterNetworks.of(service_cidrs=[given], nodes=[])
    assert _detail("10.96.3.4", networks=networks).startswith(
        "10.96.3.4 is in the local cluster's Service range 10.96.0.0/16 (set by --service-cidrs)"
    )
    assert _one("10.96.3.4", networks=networks).startswith(
        "10.96.3.4 is in the local cluster's Service range 10.96.0.0/16: "
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
    assert _detail("10.103.231.1", networks=networks).startswith(
        "10.103.231.1 is in the Pod range 10.103.231.0/24 of Node worker-999"
    )
    assert _one("10.103.232.1", networks=networks) == ""
    assert _detail("172.20.3.231", networks=networks).startswith(
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


def test_a_pod_address_outside_every_node_range_is_refused_without_naming_the_pod() -> None:
    # Calico's IPAM, Cilium's cluster pool and the cloud CNIs give Pods addresses outside
    # every Node's podCIDRs: the rule holds for the addresses Pods really have.
    pods = {ipaddress.ip_address("10.50.3.7"): "other-tenant/payments-0"}
    networks = ClusterNetworks.of(service_cidrs=[], nodes=[], pods=pods)
    verdict = judge(["10.50.3.7", "10.50.3.8"], policy=OPEN, networks=networks)
    assert verdict.allowed == ("10.50.3.8",)
    (refusal,) = verdict.refused
    assert refusal.rule == "pod-address"
    assert refusal.message.startswith("10.50.3.7 is the address of a Pod of the local cluster")
    assert "payments" not in refusal.message
    assert "other-tenant" not in refusal.message
    assert "Pod other-tenant/payments-0" in refusal.detail
    # The table is read where it is kept, not copied: a Pod seen later counts at once.
    pods[ipaddress.ip_address("10.50.3.8")] = "other-tenant/payments-1"
    assert judge(["10.50.3.8"], policy=OPEN, networks=networks).allowed == ()
    assert judge(
        ["10.50.3.8"], policy=AddressPolicy(allow_cluster_networks=True), networks=networks
    ).allowed == ("10.50.3.8",)


# --- where remote servers may be ----------------------------------------------------------


def _server(address: str, policy: AddressPolicy = OPEN) -> str:
    return server_refusal(ipaddress.ip_address(address), policy=policy, networks=NETWORKS) or ""


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("127.0.0.1", "must not be a loopback address"),
        ("::1", "must not be a loopback address"),
        ("169.254.169.254", "must not be a link-local address"),
        ("fe80::1", "must not be a link-local address"),
        ("0.0.0.0", "must not be the unspecified address"),
        ("10.96.0.1", "is in the local cluster's Service range 10.96.0.0/16"),
        ("172.18.0.3", "is the address of Node worker-1"),
        ("10.244.2.9", "is in the Pod range 10.244.2.0/24 of Node worker-2"),
        ("168.63.129.16", "Azure's WireServer"),
        ("64:ff9b::a60:1", "carries 10.96.0.1 (NAT64 prefix 64:ff9b::/96)"),
        ("2002:a60:1::1", "6to4"),
    ],
)
def test_a_server_is_never_loopback_link_local_a_metadata_service_or_the_cluster(
    address: str, says: str
) -> None:
    said = _server(address)
    assert says in said
    assert said.endswith(
        "unless --remote-server-cidrs (chart value addressPolicy.remoteServerCIDRs) lists its range"
    )


@pytest.mark.parametrize("address", ["192.0.2.10", "10.0.0.5", "2001:db8::5", "172.18.0.9"])
def test_a_server_elsewhere_is_allowed_whatever_the_endpoints_allow_list(address: str) -> None:
    narrow = AddressPolicy(allowed=parse_cidrs(["198.51.100.0/24"]))
    assert _server(address) == ""
    assert _server(address, narrow) == ""


def test_the_deny_list_keeps_servers_out_too() -> None:
    denied = AddressPolicy(denied=parse_cidrs(["192.0.2.0/24"]))
    assert "is in the denied range 192.0.2.0/24 (--denied-cidrs)" in _server("192.0.2.10", denied)


def test_the_server_ranges_alone_decide_where_set() -> None:
    ranges = AddressPolicy(remote_servers=parse_cidrs(["127.0.0.0/8", "198.51.100.0/28"]))
    assert _server("127.0.0.1", ranges) == ""
    assert _server("::ffff:127.0.0.9", ranges) == ""
    assert _server("198.51.100.14", ranges) == ""
    assert _server("198.51.100.16", ranges) == (
        "is outside the ranges where remote servers may be, 127.0.0.0/8, 198.51.100.0/28 "
        "(--remote-server-cidrs)"
    )
