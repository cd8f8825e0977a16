"""Where endpoints may point is the platform team's decision, not the tenant's.

The harness runs no kubelet, so the scenario creates Node objects itself, with Pod ranges
and addresses, beside the ServiceCIDR the API server makes. Under the default policy, no
endpoint may point into the local cluster: an import of fixed addresses, a hostname whose
DNS answer turns internal, a remote VIP inside a Pod range, and an address that becomes a
Node's when that Node is added later are each refused (``Ready=False``,
``AddressNotAllowed``, naming the address and the rule, with a Warning Event) and never
written, while the allowed rest of a multi-address answer is served. Then an operator
started with an allow-list and with static sources turned off serves only VIPs inside the
allow-list and refuses ``addresses`` and ``hostname`` sources (``SourceNotAllowed``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from faults.toolkit import FaultEnv, Row, load_balancer
from harness.operator import OperatorProcess
from kit import Kit

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

    _refused(kit, "svc", "10.96.0.1", "Service range 10.96.0.0/16", "ServiceCIDR kubernetes")
    _refused(kit, "pod", "10.244.71.5", f"Pod range 10.244.71.0/24 of Node {node}")
    mixed = _refused(kit, "mixed", "198.51.100.71", f"address of Node {node}", "203.0.113.71")
    _refused(kit, "vip", "10.244.71.9", "Pod range")
    kit.wait_condition("dns", "Ready", "True", "Synced")
    kit.wait_condition("later", "Ready", "True", "Synced")
    kit.wait_addresses("mixed", {"IPv4": ["203.0.113.71"]})
    assert kit.get_import("mixed")["status"]["addresses"] == ["203.0.113.71"]
    for name in ("svc", "pod", "vip"):
        assert kit.slice_addresses(name) == {}, f"{name}: a refused address was written"

    # A DNS answer may turn internal at any time; the next answer is judged like the first.
    dns.set(host, ["10.96.0.10"], ttl=5)
    _refused(kit, "dns", "10.96.0.10", "Service range")
    kit.wait_addresses("dns", {})
    # A Node added later makes an address that was fine a cluster address.
    late = _node(kit, nodes, pod_cidr=None, addresses=["198.51.100.73"])
    _refused(kit, "later", "198.51.100.73", f"address of Node {late}")
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
