"""Each kind of source ends in a selectorless Service whose endpoints hold the right addresses.

remoteService (a VIP move propagates; ports mirrored, and overridden by spec.ports; IPv6;
hostname ingress), hostname (re-resolved when its TTL runs out) and fixed addresses.
"""

from __future__ import annotations

from dnsserver import LoopbackDNSServer
from kit import Kit
from support import eventually


def test_remote_service_and_vip_move(kit: Kit) -> None:
    vip = kit.load_balancer("db")
    kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_condition("db", "Ready", "True", "Synced")
    kit.wait_addresses("db", {"IPv4": [vip]})

    service = kit.core.read_namespaced_service("db", kit.namespace)
    assert service.spec.selector is None
    assert service.spec.type == "ClusterIP"
    assert [(p.name, p.port, p.target_port, p.protocol) for p in service.spec.ports] == [
        ("postgres", 5432, 5432, "TCP")
    ]
    endpoints = kit.core.read_namespaced_endpoints("db", kit.namespace)
    assert endpoints.metadata.labels["endpointslice.kubernetes.io/skip-mirror"] == "true"
    assert [a.ip for a in endpoints.subsets[0].addresses] == [vip]

    kit.set_ingress("db", [{"ip": "198.51.100.20"}])
    kit.wait_addresses("db", {"IPv4": ["198.51.100.20"]})
    # The status follows the objects, a moment later.
    eventually(lambda: kit.get_import("db")["status"]["addresses"] == ["198.51.100.20"])
    assert any(
        e.reason == "AddressesChanged" and e.message == f"{vip} -> 198.51.100.20"
        for e in kit.events("db")
    )


def test_ports_follow_the_remote_service_unless_given(kit: Kit) -> None:
    kit.load_balancer(
        "cache",
        ports=[{"name": "redis", "port": 6379}, {"name": "sentinel", "port": 26379}],
    )
    kit.remote_cluster()
    kit.import_remote("mirrored", "cache")
    kit.import_remote(
        "overridden",
        "cache",
        ports=[{"name": "redis", "port": 16379, "targetPort": 6379}],
    )
    kit.wait_condition("mirrored", "Ready", "True")
    kit.wait_condition("overridden", "Ready", "True")
    mirrored = kit.core.read_namespaced_service("mirrored", kit.namespace).spec.ports
    assert [(p.name, p.port, p.target_port) for p in mirrored] == [
        ("redis", 6379, 6379),
        ("sentinel", 26379, 26379),
    ]
    overridden = kit.core.read_namespaced_service("overridden", kit.namespace).spec.ports
    assert [(p.name, p.port, p.target_port) for p in overridden] == [("redis", 16379, 6379)]
    (slice_,) = kit.discovery.list_namespaced_endpoint_slice(
        kit.namespace, label_selector="kubernetes.io/service-name=overridden"
    ).items
    assert [(p.name, p.port) for p in slice_.ports] == [("redis", 6379)]


def test_ipv6_and_dual_stack_ingress(kit: Kit) -> None:
    kit.load_balancer("db")
    kit.remote_cluster()
    kit.set_ingress("db", [{"ip": "2001:db8::10"}])
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv6": ["2001:db8::10"]})
    kit.set_ingress("db", [{"ip": "192.0.2.200"}, {"ip": "2001:db8::10"}])
    kit.wait_addresses("db", {"IPv4": ["192.0.2.200"], "IPv6": ["2001:db8::10"]})
    kit.set_ingress("db", [{"ip": "192.0.2.200"}])
    kit.wait_addresses("db", {"IPv4": ["192.0.2.200"]})


def test_hostname_ingress_is_resolved(kit: Kit, dns_server: LoopbackDNSServer) -> None:
    name = f"db.{kit.namespace}.lb.example.test"
    dns_server.set(name, ["198.51.100.31"], ttl=5)
    kit.load_balancer("db")
    kit.remote_cluster()
    kit.set_ingress("db", [{"hostname": name}])
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": ["198.51.100.31"]})


def test_hostname_source_follows_dns_changes(kit: Kit, dns_server: LoopbackDNSServer) -> None:
    name = f"cache.{kit.namespace}.example.test"
    dns_server.set(name, ["192.0.2.51", "2001:db8::51"], ttl=5)
    kit.create_import(
        "cache", {"source": {"hostname": name}, "ports": [{"name": "redis", "port": 6379}]}
    )
    kit.wait_addresses("cache", {"IPv4": ["192.0.2.51"], "IPv6": ["2001:db8::51"]})
    asked = dns_server.count(name)
    dns_server.set(name, ["192.0.2.52"], ttl=5)
    kit.wait_addresses("cache", {"IPv4": ["192.0.2.52"]}, timeout=20)
    # Re-resolved because the TTL ran out, not in a tight loop: a handful of queries.
    assert dns_server.count(name) - asked <= 6


def test_fixed_addresses(kit: Kit) -> None:
    kit.create_import(
        "legacy",
        {
            "source": {"addresses": ["203.0.113.5", "2001:DB8::5"]},
            "ports": [{"port": 443}],
        },
    )
    kit.wait_condition("legacy", "Ready", "True", "Synced")
    kit.wait_addresses("legacy", {"IPv4": ["203.0.113.5"], "IPv6": ["2001:db8::5"]})
    status = kit.get_import("legacy")["status"]
    assert status["observedGeneration"] == 1
    assert sorted(status["addresses"]) == ["2001:db8::5", "203.0.113.5"]
    eventually(
        lambda: kit.operator.metric("shared_services_imports", ready="True", reason="Synced") >= 1
    )
