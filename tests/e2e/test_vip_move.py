"""A VIP move, as a client on the workload cluster sees it.

The shared Redis moves to a new VIP (a new server there; the old VIP leaves the
load-balancer network with the status change). A client opening a new connection every
50 ms by the service's local name goes on reaching the old server until the operator and
kube-proxy have followed, then only the new one: no connection ever reaches anything else,
none reaches the old server once one reached the new, and the old VIP answers nobody. The
time from the status change to the first connection reaching the new server is recorded,
with the operator's part of it (until the local EndpointSlice held the new VIP).
"""

from __future__ import annotations

import time

from e2e.toolkit import (
    SliceWatch,
    errors,
    finish_probe,
    servers,
    start_probe,
    wait_answered_by,
)
from harness import probe
from harness.dataplane import DataPlane
from harness.servers import RedisServer
from kit import Kit
from suite import Row

NEW_VIP = "198.51.100.20"
PROBE_SECONDS = 8.0


def test_a_client_follows_the_vip_to_the_new_server(kit: Kit, plane: DataPlane, row: Row) -> None:
    assert plane.lb_network is not None
    kit.remote_cluster()
    old_vip = kit.load_balancer("cache", ports=[{"name": "redis", "port": 6379}])
    row.injected = f"status.loadBalancer.ingress {old_vip} -> {NEW_VIP}, a server at each"
    with (
        RedisServer(plane, name="old", address=old_vip),
        RedisServer(plane, name="new", address=NEW_VIP),
    ):
        kit.import_remote("cache", "cache")
        kit.wait_condition("cache", "Ready", "True", "Synced")
        wait_answered_by(plane, kit.namespace, "cache", "old")
        client = start_probe(
            plane, kit.namespace, "cache", 6379, every=0.05, seconds=PROBE_SECONDS, timeout=1.0
        )
        with SliceWatch(kit, "cache") as slices:
            time.sleep(2.0)  # the client reaches the old server for a while first
            moved = time.monotonic()
            kit.set_ingress("cache", [{"ip": NEW_VIP}])
            sliced = slices.when(NEW_VIP)
        attempts = finish_probe(client, seconds=PROBE_SECONDS)
        plane.lb_network.wait_for(absent=[old_vip])
        at_old_vip = plane.run_in_pod(
            kit.namespace, *probe.command(old_vip, 6379, "--count=1", "--timeout=2")
        )

    before = [a for a in attempts if a.at < moved]
    after = [a for a in attempts if a.at >= moved]
    answers = servers(after)
    first_new = next((a for a in after if a.ok and a.server == "new"), None)
    row.happened = (
        f"{len(before)} connections before the move, all to old; after it "
        f"{answers.count('old')} to old, {answers.count(None)} failed {errors(after)}, "
        f"{answers.count('new')} to new; the old VIP: {probe.attempts(at_old_vip.stdout)}"
    )
    assert before, "the client made no connection before the move"
    assert servers(before) == ["old"] * len(before)
    assert first_new is not None, f"no connection reached the new server: {answers}"
    row.figure(
        "status change to first connection at the new server", (first_new.at - moved) * 1000, "ms"
    )
    row.figure("of which the operator (local EndpointSlice)", (sliced - moved) * 1000, "ms")
    switched = answers[answers.index("new") :]
    row.figure("failed connections in between", answers[: answers.index("new")].count(None))
    # A client's attempt that failed while neither VIP answered leaves a conntrack entry
    # (SYN_SENT, two minutes) pointing at the old VIP, and a later attempt that gets the
    # same source port follows it and fails too: counted, not asserted.
    row.figure("failed connections after the switch", switched.count(None))
    # Nothing but the two servers ever answered, and never the old one after the new one.
    assert set(answers) <= {"old", "new", None}, answers
    assert "old" not in switched, answers
    # Once switched, it stays switched: the last second's answers all come from the new one.
    assert "new" in switched[-20:], answers
    (direct,) = probe.attempts(at_old_vip.stdout)
    assert not direct.ok, f"something still answers at the old VIP {old_vip}: {direct}"
