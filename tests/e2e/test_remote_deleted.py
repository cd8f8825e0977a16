"""The remote Service is deleted: a client is refused at once, it does not hang.

The operator empties the local endpoints when the remote Service is known to be gone (the
VIP may be given to someone else), and kube-proxy rejects connections to a Service without
endpoints. So the client's connection is refused (ECONNREFUSED) well within its 10 s
connect timeout, which would otherwise be its fate; the local Service and its DNS name stay.

Recorded too: a client retrying every 0.1 s meanwhile. kube-proxy's refusal is an ICMP
reply, which the kernel rate-limits per client host (one a second beyond a burst), so most
of its attempts time out instead: kube-proxy's behaviour on any node, not the operator's.
"""

from __future__ import annotations

import time

from e2e.toolkit import errors, finish_probe, start_probe, wait_answered_by
from harness import probe
from harness.dataplane import DataPlane
from harness.servers import RedisServer
from kit import Kit
from suite import Row
from support import eventually

CONNECT_TIMEOUT = 10.0


def _no_addresses(kit: Kit, service: str) -> bool:
    return not any(kit.slice_addresses(service).values())


def test_a_client_is_refused_fast_once_the_remote_service_is_deleted(
    kit: Kit, plane: DataPlane, row: Row
) -> None:
    kit.remote_cluster()
    vip = kit.load_balancer("gone", ports=[{"name": "redis", "port": 6379}])
    row.injected = "the remote LoadBalancer Service deleted"
    with RedisServer(plane, name="gone", address=vip):
        kit.import_remote("gone", "gone")
        kit.wait_condition("gone", "Ready", "True", "Synced")
        wait_answered_by(plane, kit.namespace, "gone", "gone")
        # A client every 0.1 s shows what happens meanwhile: until kube-proxy has followed
        # the emptied slice, a connection may still go to the VIP that went away.
        client = start_probe(plane, kit.namespace, "gone", 6379, every=0.1, seconds=6.0)
        time.sleep(1.0)
        deleted = time.monotonic()
        kit.remote.delete_namespaced_service("gone", kit.namespace)
        eventually(lambda: _no_addresses(kit, "gone"), timeout=20, interval=0.01)
        emptied = time.monotonic()
        attempts = [a for a in finish_probe(client, seconds=6.0) if a.at >= deleted]
        first = next((a for a in attempts if a.error == "ECONNREFUSED"), None)
        # Then a client with a long connect timeout: refused at once, not left hanging. The
        # refusal is an ICMP reply, which the node sends at most once a second to a client
        # host beyond a small burst (net.ipv4.icmp_ratelimit), so the client waits that
        # long: the probe before it may have used the allowance up.
        time.sleep(1.5)
        done = plane.run_in_pod(
            kit.namespace,
            *probe.command("gone", 6379, "--count=1", f"--timeout={CONNECT_TIMEOUT}"),
            timeout=CONNECT_TIMEOUT + 20,
        )
        (refused,) = probe.attempts(done.stdout)
    ready = kit.condition("gone", "Ready") or {}
    row.happened = (
        f"connection {refused.error} after {refused.ms:.1f} ms; the import says "
        f"Ready={ready.get('status')} ({ready.get('reason')}); the local Service stays"
    )
    row.figure("deletion to empty local endpoints", (emptied - deleted) * 1000, "ms")
    if first is not None:
        row.figure("deletion to the first refused client", (first.at - deleted) * 1000, "ms")
    row.figure("errors of the clients meanwhile", str(errors(attempts)))
    assert refused.error == "ECONNREFUSED"
    assert refused.ms < CONNECT_TIMEOUT * 1000 / 2, "refused, but only after a long wait"
    kit.core.read_namespaced_service("gone", kit.namespace)  # still there, by its name
