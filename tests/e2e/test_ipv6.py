"""IPv6 through the data plane: the harness carries it, and an IPv6 VIP is reached by name.

The workload cluster is dual-stack (Service ranges 10.96.0.0/16 and 2001:db8:96::/112, IPv4
first, as most are), kube-proxy programs both families and CoreDNS answers AAAA.

- A dual-stack Service made by hand, with an IPv6 endpoint, is reached over IPv6 from a pod:
  the data plane itself carries IPv6.
- A remote Service whose VIP is IPv6 only: a pod calling the import by its name reaches it.
- A remote Service with both an IPv4 and an IPv6 VIP: a pod reaches it over both families.

The local Service takes the families of its addresses that the cluster has Service ranges
for, so the name resolves to exactly the families that lead to the VIP.
"""

from __future__ import annotations

from e2e.toolkit import wait_answered_by
from harness.dataplane import DataPlane
from harness.servers import RedisServer
from kit import Kit
from suite import Row

IPV6_VIP = "2001:db8::5:10"
IPV4_VIP = "198.51.100.61"


def _addresses(plane: DataPlane, namespace: str, name: str, family: str) -> list[str]:
    """What a pod's resolver gives for ``name`` in one family (getent ahostsv4/ahostsv6)."""
    found = plane.run_in_pod(namespace, "getent", f"ahosts{family}", name)
    addresses = {line.split()[0] for line in found.stdout.splitlines() if line.strip()}
    # ahostsv6 maps IPv4 answers into ::ffff:0:0/96 when there is no AAAA; those are not IPv6.
    return sorted(a for a in addresses if not a.startswith("::ffff:"))


def test_the_data_plane_carries_ipv6(kit: Kit, plane: DataPlane, row: Row) -> None:
    row.injected = f"a hand-made dual-stack Service, its IPv6 endpoint {IPV6_VIP}"
    assert plane.lb_network is not None
    plane.lb_network.add_static(IPV6_VIP)
    try:
        kit.core.create_namespaced_service(
            kit.namespace,
            {
                "metadata": {"name": "by-hand"},
                "spec": {
                    "ipFamilyPolicy": "RequireDualStack",
                    "ports": [{"name": "redis", "port": 6379}],
                },
            },
        )
        kit.discovery.create_namespaced_endpoint_slice(
            kit.namespace,
            {
                "metadata": {
                    "name": "by-hand-ipv6",
                    "labels": {"kubernetes.io/service-name": "by-hand"},
                },
                "addressType": "IPv6",
                "endpoints": [{"addresses": [IPV6_VIP], "conditions": {"ready": True}}],
                "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}],
            },
        )
        with RedisServer(plane, name="six", address=IPV6_VIP):
            (cluster_ip,) = _addresses(plane, kit.namespace, "by-hand", "v6")
            assert cluster_ip.startswith("2001:db8:96::")
            wait_answered_by(plane, kit.namespace, cluster_ip, "six")
            row.happened = f"redis-cli -h {cluster_ip} (the Service's IPv6 ClusterIP) answered"
    finally:
        plane.lb_network.remove_static(IPV6_VIP)


def test_an_ipv6_vip_is_reached_by_the_import_name(kit: Kit, plane: DataPlane, row: Row) -> None:
    kit.remote_cluster()
    row.injected = f"remote ingress [{IPV6_VIP}] only"
    kit.load_balancer("cache", ports=[{"name": "redis", "port": 6379}])
    kit.set_ingress("cache", [{"ip": IPV6_VIP}])
    with RedisServer(plane, name="six", address=IPV6_VIP):
        kit.import_remote("cache", "cache")
        kit.wait_condition("cache", "Ready", "True", "Synced")
        kit.wait_addresses("cache", {"IPv6": [IPV6_VIP]})
        families = kit.core.read_namespaced_service("cache", kit.namespace).spec.ip_families
        row.happened = f"local Service ipFamilies {families}"
        wait_answered_by(plane, kit.namespace, "cache", "six", timeout=10)


def _dual_stack_import(kit: Kit, row: Row) -> None:
    kit.remote_cluster()
    row.injected = f"remote ingress [{IPV4_VIP}, {IPV6_VIP}]"
    kit.load_balancer("cache", ports=[{"name": "redis", "port": 6379}])
    kit.set_ingress("cache", [{"ip": IPV4_VIP}, {"ip": IPV6_VIP}])
    kit.import_remote("cache", "cache")
    kit.wait_condition("cache", "Ready", "True", "Synced")
    kit.wait_addresses("cache", {"IPv4": [IPV4_VIP], "IPv6": [IPV6_VIP]})


def test_a_dual_stack_vip_is_reached_by_name_over_ipv4(
    kit: Kit, plane: DataPlane, row: Row
) -> None:
    with RedisServer(plane, name="four", address=IPV4_VIP):
        _dual_stack_import(kit, row)
        seconds = wait_answered_by(plane, kit.namespace, "cache", "four")
        row.happened = f"redis-cli -h cache answered by the server at {IPV4_VIP}"
        row.figure("first answer after Ready", seconds, "s")


def test_a_dual_stack_vip_is_reached_by_name_over_ipv6(
    kit: Kit, plane: DataPlane, row: Row
) -> None:
    with RedisServer(plane, name="six", address=IPV6_VIP):
        _dual_stack_import(kit, row)
        v6 = _addresses(plane, kit.namespace, "cache", "v6")
        row.happened = f"the import name's IPv6 addresses: {v6}"
        assert v6, "the import's Service has no IPv6 ClusterIP"
        wait_answered_by(plane, kit.namespace, v6[0], "six", timeout=10)
