"""Where endpoints may point is the platform team's decision, not the tenant's.

The harness runs no kubelet, so the scenario creates Node objects itself, with Pod ranges
and addresses, beside the ServiceCIDR the API server makes. Under the default policy, no
endpoint may point into the local cluster: an import of fixed addresses, a hostname whose
DNS answer turns internal, a remote VIP inside a Pod range, and an address that becomes a
Node's when that Node is added later are each refused (``Ready=False``,
``AddressNotAllowed``, naming the address and the rule, with a Warning Event) and never
written, while the allowed rest of a multi-address answer is served. The tenant is told
"the local cluster's Pod range", never which Node or which range; the operator's log names
them.

An address is judged by what it really is: an IPv6 address under a NAT64 prefix by the
IPv4 address it carries as well, so that a Node is not reached through ``64:ff9b::/96``,
nor through the AAAA record that DNS64 makes of a name's A record; the other IPv6 forms of
IPv4 addresses (IPv4-compatible, 6to4, Teredo) and the local-use NAT64 range without a
prefix in the settings are refused; and so are the cloud metadata services outside the
link-local range. Where NAT64 prefixes are set and metadata services allowed, that is what
the operator does.

"The cluster's Pods" means the addresses Pods really have, whichever CNI allocated them: a
Pod whose address lies outside every Node's Pod range (Calico's IPAM, Cilium's cluster
pool, the cloud CNIs) is refused as well, and an import already served at an address that a
new Pod then takes is judged again and emptied.

Then an operator started with an allow-list and with static sources turned off serves only
VIPs inside the allow-list and refuses ``addresses`` and ``hostname`` sources
(``SourceNotAllowed``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from faults.toolkit import FaultEnv, load_balancer
from harness.operator import OperatorProcess
from kit import Kit
from suite import Row
from support import eventually

PORTS = [{"port": 80}]


@pytest.fixture
def nodes(fault_env: FaultEnv) -> Iterator[list[str]]:
    """Node objects the scenario creates (deleted at the end: they are cluster-wide)."""
    made: list[str] = []
    yield made
    core = k8s.CoreV1Api(fault_env.workload_api)
    for name in made:
        try:
            core.delete_node(name)
        except k8s.ApiException as error:
            if error.status != 404:
                raise


def _node(kit: Kit, made: list[str], *, pod_cidr: str | None, addresses: list[str]) -> str:
    name = f"node-{secrets.token_hex(3)}"
    spec = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {}
    kit.core.create_node({"metadata": {"name": name}, "spec": spec})
    made.append(name)
    kit.core.patch_node_status(
        name,
        {"status": {"addresses": [{"type": "InternalIP", "address": a} for a in addresses]}},
    )
    return name


def _refused(kit: Kit, name: str, *needles: str) -> dict[str, Any]:
    ready = kit.wait_condition(name, "Ready", "False", "AddressNotAllowed", timeout=30)
    for needle in needles:
        assert needle in ready["message"], ready["message"]
    return ready


def _logged(kit: Kit, *needles: str) -> None:
    """Wait until the operator's log holds every needle (what the tenant is not told)."""

    def found() -> bool:
        text = kit.operator.log_path.read_text(errors="replace")
        return all(needle in text for needle in needles)

    eventually(found, timeout=30)


def _told_nothing_of(kit: Kit, names: list[str], *hidden: str) -> None:
    """The tenant's conditions and Events name none of ``hidden``."""
    for name in names:
        said = [(kit.condition(name, "Ready") or {}).get("message", "")]
        said += [str(e.message) for e in kit.events(name)]
        for text in said:
            for secret in hidden:
                assert secret not in text, f"{name} was told {secret!r}: {text}"


def test_default_policy_keeps_endpoints_out_of_the_cluster(
    kit: Kit, row: Row, fault_env: FaultEnv, nodes: list[str]
) -> None:
    row.injected = (
        "Nodes with Pod ranges and addresses; imports pointing at the Service range, a Pod "
        "range, a Node address (beside an allowed one), a hostname turning internal, a remote "
        "VIP in a Pod range, and an address that becomes a new Node's"
    )
    node = _node(kit, nodes, pod_cidr="10.244.71.0/24", addresses=["198.51.100.71"])
    dns = fault_env.dns
    host = f"{kit.namespace}.policy.test"
    dns.set(host, ["203.0.113.72"], ttl=5)
    kit.create_import("svc", {"source": {"addresses": ["10.96.0.1"]}, "ports": PORTS})
    kit.create_import("pod", {"source": {"addresses": ["10.244.71.5"]}, "ports": PORTS})
    kit.create_import(
        "mixed", {"source": {"addresses": ["198.51.100.71", "203.0.113.71"]}, "ports": PORTS}
    )
    kit.create_import("dns", {"source": {"hostname": host}, "ports": PORTS})
    kit.create_import("later", {"source": {"addresses": ["198.51.100.73"]}, "ports": PORTS})
    kit.remote_cluster()
    load_balancer(kit, "vip", ["10.244.71.9"])
    kit.import_remote("vip", "vip")

    _refused(kit, "svc", "10.96.0.1", "is in the local cluster's Service range 10.96.0.0/16:")
    _refused(kit, "pod", "10.244.71.5", "is in the local cluster's Pod range:")
    mixed = _refused(
        kit,
        "mixed",
        "198.51.100.71 is an address of one of the local cluster's Nodes",
        "203.0.113.71",
    )
    _refused(kit, "vip", "10.244.71.9", "is in the local cluster's Pod range")
    # The tenant is told the rule; the Node, its range and the ServiceCIDR are the log's.
    _told_nothing_of(kit, ["svc", "pod", "mixed", "vip"], node, "10.244.71.0/24", "ServiceCIDR")
    _logged(
        kit,
        "10.96.0.1 is in the local cluster's Service range 10.96.0.0/16 (ServiceCIDR kubernetes)",
        f"10.244.71.5 is in the Pod range 10.244.71.0/24 of Node {node}",
        f"198.51.100.71 is the address of Node {node}",
    )
    kit.wait_condition("dns", "Ready", "True", "Synced")
    kit.wait_condition("later", "Ready", "True", "Synced")
    kit.wait_addresses("mixed", {"IPv4": ["203.0.113.71"]})
    assert kit.get_import("mixed")["status"]["addresses"] == ["203.0.113.71"]
    for name in ("svc", "pod", "vip"):
        assert kit.slice_addresses(name) == {}, f"{name}: a refused address was written"

    # A DNS answer may turn internal at any time; the next answer is judged like the first.
    dns.set(host, ["10.96.0.10"], ttl=5)
    _refused(kit, "dns", "10.96.0.10", "local cluster's Service range")
    kit.wait_addresses("dns", {})
    # A Node added later makes an address that was fine a cluster address.
    late = _node(kit, nodes, pod_cidr=None, addresses=["198.51.100.73"])
    _refused(kit, "later", "198.51.100.73", "an address of one of the local cluster's Nodes")
    _logged(kit, f"198.51.100.73 is the address of Node {late}")
    kit.wait_addresses("later", {})
    # And a VIP moved out of the cluster's ranges is served.
    kit.set_ingress("vip", [{"ip": "192.0.2.74"}])
    kit.wait_condition("vip", "Ready", "True", "Synced")
    kit.wait_addresses("vip", {"IPv4": ["192.0.2.74"]})
    warnings = [e for e in kit.events("mixed") if e.reason == "AddressNotAllowed"]
    assert warnings, "no Warning Event"
    assert warnings[0].type == "Warning"
    row.figure("refused", "6 imports (6 addresses)")
    row.figure("allowed rest kept", "203.0.113.71")
    row.happened = (
        "every address into the cluster refused and never written, naming the rule: "
        f"e.g. {mixed['message'][:90]}..."
    )


def _pod(kit: Kit, name: str, address: str) -> None:
    """A Pod with ``address``, as a kubelet would report it (no kubelet runs here)."""
    kit.core.create_namespaced_pod(
        kit.namespace,
        {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "app:1"}]}},
    )
    kit.core.patch_namespaced_pod_status(
        name, kit.namespace, {"status": {"podIP": address, "podIPs": [{"ip": address}]}}
    )


def test_a_pod_outside_every_node_range_is_refused(
    kit: Kit, row: Row, fault_env: FaultEnv, nodes: list[str]
) -> None:
    row.injected = (
        "a Node with Pod range 10.244.81.0/24 and Pods at 10.50.81.7 and (later) 10.50.81.8, "
        "outside it, as another CNI allocates them; imports pointing at both"
    )
    _node(kit, nodes, pod_cidr="10.244.81.0/24", addresses=["198.51.100.81"])
    _pod(kit, "payments-0", "10.50.81.7")
    kit.create_import("pod", {"source": {"addresses": ["10.50.81.7"]}, "ports": PORTS})
    kit.create_import("later", {"source": {"addresses": ["10.50.81.8"]}, "ports": PORTS})
    _refused(kit, "pod", "10.50.81.7 is the address of a Pod of the local cluster")
    _logged(kit, f"10.50.81.7 is the address of Pod {kit.namespace}/payments-0")
    kit.wait_condition("later", "Ready", "True", "Synced")
    kit.wait_addresses("later", {"IPv4": ["10.50.81.8"]})
    # A Pod that takes a served address later makes that import's endpoints point into
    # the cluster: judged again at once, not at the next resync.
    _pod(kit, "payments-1", "10.50.81.8")
    _refused(kit, "later", "10.50.81.8 is the address of a Pod of the local cluster")
    kit.wait_addresses("later", {})
    assert kit.slice_addresses("pod") == {}, "a Pod's address was written"
    _told_nothing_of(kit, ["pod", "later"], "payments")
    row.figure("refused", "2 imports (a Pod's address, one of them served until the Pod came)")
    row.happened = "both refused and emptied; the tenant told 'a Pod', the log which Pod"


# A Node's address that the scenarios below reach through IPv6 forms of it (API data only).
NODE_V4 = "10.0.0.5"


def test_an_address_is_judged_by_the_ipv4_address_it_carries(
    kit: Kit, row: Row, fault_env: FaultEnv, nodes: list[str]
) -> None:
    row.injected = (
        f"a Node at {NODE_V4}; imports of 64:ff9b::{NODE_V4} (NAT64) and 64:ff9b:1::a00:5 "
        "(local-use NAT64), a hostname with an A and a DNS64 AAAA record of the Node, remote "
        "VIPs in 6to4, Teredo and IPv4-compatible form, and cloud metadata services"
    )
    node = _node(kit, nodes, pod_cidr=None, addresses=[NODE_V4])
    host = f"{kit.namespace}.dns64.test"
    # What a DNS64 server answers for a name whose only record is the Node's A record.
    fault_env.dns.set(host, [NODE_V4, "64:ff9b::a00:5", "203.0.113.81"], ttl=5)
    kit.create_import("nat64", {"source": {"addresses": [f"64:ff9b::{NODE_V4}"]}, "ports": PORTS})
    kit.create_import("local", {"source": {"addresses": ["64:ff9b:1::a00:5"]}, "ports": PORTS})
    kit.create_import("dns64", {"source": {"hostname": host}, "ports": PORTS})
    kit.create_import("imds", {"source": {"addresses": ["100.100.100.200"]}, "ports": PORTS})
    kit.remote_cluster()
    load_balancer(kit, "tunnels", ["2002:a00:5::1", "2001:0:c000:20a::1", "::a00:5", "192.0.2.82"])
    load_balancer(kit, "metadata", ["168.63.129.16", "fd00:ec2::254", "198.51.100.83"])
    kit.import_remote("tunnels", "tunnels")
    kit.import_remote("metadata", "metadata")

    carried = f"carries {NODE_V4} (NAT64 prefix 64:ff9b::/96), which is an address of one of"
    nat64 = _refused(kit, "nat64", carried)
    _refused(kit, "local", "is in the local-use NAT64 range 64:ff9b:1::/48", "--nat64-prefixes")
    _refused(kit, "dns64", f"{NODE_V4} is an address of one", f"64:ff9b::a00:5 {carried}")
    _refused(
        kit,
        "tunnels",
        "2002:a00:5::1 is an IPv6 address in 6to4 form (2002::/16)",
        "2001:0:c000:20a::1 is an IPv6 address in Teredo form (2001::/32)",
        "::a00:5 is an IPv6 address in IPv4-compatible form (::/96)",
    )
    _refused(
        kit,
        "metadata",
        "168.63.129.16 is Azure's WireServer",
        "fd00:ec2::254 is the EC2 instance metadata service (IPv6)",
        "--allow-metadata-services",
    )
    _refused(kit, "imds", "100.100.100.200 is Alibaba Cloud's metadata service")
    # The allowed rest of each answer is served, and nothing refused is ever written.
    kit.wait_addresses("dns64", {"IPv4": ["203.0.113.81"]})
    kit.wait_addresses("tunnels", {"IPv4": ["192.0.2.82"]})
    kit.wait_addresses("metadata", {"IPv4": ["198.51.100.83"]})
    for name in ("nat64", "local", "imds"):
        assert kit.slice_addresses(name) == {}, f"{name}: a refused address was written"
    _told_nothing_of(kit, ["nat64", "dns64"], node)
    _logged(
        kit,
        f"64:ff9b::a00:5 carries {NODE_V4} (NAT64 prefix 64:ff9b::/96), which is the "
        f"address of Node {node}",
    )
    row.figure("refused", "9 addresses in 6 imports")
    row.figure("allowed rest kept", "203.0.113.81, 192.0.2.82, 198.51.100.83")
    row.happened = (
        "each IPv6 form of the Node's address and each metadata service refused and never "
        f"written: e.g. {nat64['message'][:100]}..."
    )


def test_nat64_prefixes_and_metadata_services_are_the_platform_teams(
    kit: Kit, row: Row, fault_env: FaultEnv, nodes: list[str]
) -> None:
    row.injected = (
        "operator with --nat64-prefixes=64:ff9b:1:ab::/96 --allow-metadata-services; a Node at "
        f"{NODE_V4}; imports under that prefix, outside it, and of a metadata service"
    )
    node = _node(kit, nodes, pod_cidr=None, addresses=[NODE_V4])
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "policy-nat64.log",
        extra_args=[
            f"--namespace={kit.namespace}",
            "--nat64-prefixes=64:ff9b:1:ab::/96",
            "--allow-metadata-services",
        ],
    )
    session = kit.operator
    session.stop()
    try:
        operator.start()
        kit.operator = operator  # so that failures show this operator's log
        for name, address in (
            ("inside", "64:ff9b:1:ab::198.51.100.84"),
            ("node", f"64:ff9b:1:ab::{NODE_V4}"),
            ("outside", "64:ff9b:1:cd::c633:6454"),
            ("wireserver", "168.63.129.16"),
        ):
            kit.create_import(name, {"source": {"addresses": [address]}, "ports": PORTS})
        kit.wait_condition("inside", "Ready", "True", "Synced", timeout=30)
        kit.wait_addresses("inside", {"IPv6": ["64:ff9b:1:ab::c633:6454"]})
        _refused(kit, "node", f"carries {NODE_V4} (NAT64 prefix 64:ff9b:1:ab::/96)")
        _refused(kit, "outside", "is in the local-use NAT64 range 64:ff9b:1::/48")
        kit.wait_condition("wireserver", "Ready", "True", "Synced")
        kit.wait_addresses("wireserver", {"IPv4": ["168.63.129.16"]})
        _logged(kit, f"which is the address of Node {node}")
    finally:
        operator.stop()
        kit.operator = session
        session.start()
    row.figure("served", "64:ff9b:1:ab::c633:6454; 168.63.129.16")
    row.happened = (
        "the prefix of the settings was read for the IPv4 address it carries (the Node's "
        "refused), the rest of 64:ff9b:1::/48 refused, the metadata service served"
    )


def test_allow_list_and_static_sources_off(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = (
        "operator with --allowed-cidrs=192.0.2.0/24 --static-sources=none; remote VIPs inside "
        "and outside the allow-list, a fixed-address and a hostname import"
    )
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "policy.log",
        extra_args=[
            f"--namespace={kit.namespace}",
            f"--dns-servers={fault_env.dns.nameserver}",
            "--allowed-cidrs=192.0.2.0/24",
            "--static-sources=none",
        ],
    )
    session = kit.operator
    session.stop()
    try:
        operator.start()
        kit.operator = operator  # so that failures show this operator's log
        kit.remote_cluster()
        load_balancer(kit, "inside", ["192.0.2.75"])
        load_balancer(kit, "outside", ["198.51.100.75", "192.0.2.76"])
        kit.import_remote("inside", "inside")
        kit.import_remote("outside", "outside")
        kit.create_import("fixed", {"source": {"addresses": ["192.0.2.77"]}, "ports": PORTS})
        kit.create_import("named", {"source": {"hostname": "db.example.test"}, "ports": PORTS})
        kit.wait_condition("inside", "Ready", "True", "Synced")
        kit.wait_addresses("inside", {"IPv4": ["192.0.2.75"]})
        _refused(kit, "outside", "198.51.100.75", "outside the allowed ranges 192.0.2.0/24")
        kit.wait_addresses("outside", {"IPv4": ["192.0.2.76"]})
        for name, field in (("fixed", "addresses"), ("named", "hostname")):
            ready = kit.wait_condition(name, "Ready", "False", "SourceNotAllowed")
            assert f"spec.source.{field} is turned off" in ready["message"]
            assert kit.slice_addresses(name) == {}
    finally:
        operator.stop()
        kit.operator = session
        session.start()
    row.figure("served", "192.0.2.75; 192.0.2.76 of a two-address answer")
    row.happened = "only the allow-list was served; static sources refused with SourceNotAllowed"
