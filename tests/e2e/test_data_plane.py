"""The data plane itself: the load-balancer network follows the supervisor's VIPs.

Every address in any LoadBalancer Service's ``status.loadBalancer.ingress`` is on the
load-balancer network: the allocator's, then the addresses a test sets (IPv4 and IPv6), and
it goes when the status changes or the Service is deleted. A Service's hostname ingress is
no address and adds none.
"""

from __future__ import annotations

from harness.dataplane import DataPlane
from kit import Kit
from suite import Row


def test_the_load_balancer_network_follows_every_ingress(
    kit: Kit, plane: DataPlane, row: Row
) -> None:
    network = plane.lb_network
    assert network is not None
    allocated = kit.load_balancer("db", ports=[{"name": "pg", "port": 5432}])
    network.wait_for(present=[allocated])
    moved = ["198.51.100.71", "2001:db8::5:71"]
    kit.set_ingress("db", [{"ip": moved[0]}, {"ip": moved[1]}, {"hostname": "db.example.test"}])
    network.wait_for(present=moved, absent=[allocated])
    assert not [a for a in network.addresses if "example" in a]
    kit.remote.delete_namespaced_service("db", kit.namespace)
    network.wait_for(absent=[allocated, *moved])
    row.injected = "a LoadBalancer Service: allocated, moved (IPv4, IPv6, a hostname), deleted"
    row.happened = f"{allocated} came and went; {moved} came and went; no hostname address"
