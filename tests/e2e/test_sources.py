"""Every way an import names its target is reached by a real client on the workload cluster.

- A local port other than the remote one (``spec.ports[].targetPort``): the client calls the
  local port, the server at the VIP answers on the remote port.
- A ``hostname`` source: the operator resolves the name (the test's DNS server), the client
  reaches the server at the address it resolved to.
- An ``addresses`` source: fixed addresses, reached the same way.

The targets of the last two are addresses no LoadBalancer Service announces, so the test
puts them on the load-balancer network itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from e2e.conftest import EndToEnd
from e2e.toolkit import redis_cli, wait_answered_by
from harness.dataplane import DataPlane
from harness.servers import RedisServer
from kit import Kit
from suite import Row


@contextlib.contextmanager
def _static(plane: DataPlane, address: str) -> Iterator[None]:
    assert plane.lb_network is not None
    plane.lb_network.add_static(address)
    try:
        yield
    finally:
        plane.lb_network.remove_static(address)


def test_a_local_port_other_than_the_remote_one(kit: Kit, plane: DataPlane, row: Row) -> None:
    kit.remote_cluster()
    vip = kit.load_balancer("cache", ports=[{"name": "redis", "port": 6379}])
    row.injected = "remote port 6379, spec.ports [{port: 16379, targetPort: 6379}]"
    with RedisServer(plane, name="remote-6379", address=vip):
        kit.import_remote(
            "cache", "cache", ports=[{"name": "redis", "port": 16379, "targetPort": 6379}]
        )
        kit.wait_condition("cache", "Ready", "True", "Synced")
        local = kit.core.read_namespaced_service("cache", kit.namespace).spec.ports
        assert [(p.port, p.target_port) for p in local] == [(16379, 6379)]
        seconds = wait_answered_by(plane, kit.namespace, "cache", "remote-6379", port=16379)
        at_remote_port = redis_cli(plane, kit.namespace, "cache", "PING", port=6379)
        row.happened = (
            "redis-cli -h cache -p 16379 answered by the server on 6379; -p 6379: "
            f"{(at_remote_port.stdout + at_remote_port.stderr).strip()!r}"
        )
        row.figure("first answer after Ready", seconds, "s")
        # Only the local port is served: the ClusterIP has nothing on the remote one.
        assert at_remote_port.returncode != 0 or "PONG" not in at_remote_port.stdout


def test_a_hostname_source(kit: Kit, e2e: EndToEnd, row: Row) -> None:
    address, name = "203.0.113.61", f"cache.{kit.namespace}.example.test"
    e2e.dns.set(name, [address], ttl=30)
    row.injected = f"source.hostname {name} -> {address} (the operator's DNS server)"
    with _static(e2e.plane, address), RedisServer(e2e.plane, name="by-name", address=address):
        kit.create_import(
            "cache", {"source": {"hostname": name}, "ports": [{"name": "redis", "port": 6379}]}
        )
        kit.wait_condition("cache", "Ready", "True")
        seconds = wait_answered_by(e2e.plane, kit.namespace, "cache", "by-name")
        row.happened = f"redis-cli -h cache answered by the server at {address}"
        row.figure("first answer after Ready", seconds, "s")
    e2e.dns.remove(name)


def test_an_addresses_source(kit: Kit, plane: DataPlane, row: Row) -> None:
    address = "203.0.113.62"
    row.injected = f"source.addresses [{address}]"
    with _static(plane, address), RedisServer(plane, name="fixed", address=address):
        kit.create_import(
            "cache",
            {"source": {"addresses": [address]}, "ports": [{"name": "redis", "port": 6379}]},
        )
        kit.wait_condition("cache", "Ready", "True")
        seconds = wait_answered_by(plane, kit.namespace, "cache", "fixed")
        row.happened = f"redis-cli -h cache answered by the server at {address}"
        row.figure("first answer after Ready", seconds, "s")
