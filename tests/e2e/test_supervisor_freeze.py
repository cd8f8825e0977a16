"""The central cluster's API server freezes for 30 s: clients on the workload cluster carry on.

The supervisor's kube-apiserver is stopped with SIGSTOP (connections stay open, nothing
answers) for 30 s, longer than the operator's heartbeat needs to notice. A client opening a
new connection every 50 ms by the service's local name reaches the shared server every
single time, before, during and after: the operator keeps the last known addresses, and
the data path never depended on the central cluster's API.
"""

from __future__ import annotations

import signal
import time

from e2e.conftest import EndToEnd
from e2e.toolkit import errors, finish_probe, servers, start_probe, wait_answered_by
from harness.servers import RedisServer
from kit import Kit
from suite import Row

FREEZE_SECONDS = 30.0
MARGIN = 2.0


def test_clients_keep_working_while_the_supervisor_is_frozen(
    kit: Kit, e2e: EndToEnd, row: Row
) -> None:
    plane = e2e.plane
    row.injected = f"supervisor kube-apiserver SIGSTOP for {FREEZE_SECONDS:.0f} s"
    kit.remote_cluster()
    vip = kit.load_balancer("db", ports=[{"name": "redis", "port": 6379}])
    with RedisServer(plane, name="db", address=vip):
        kit.import_remote("db", "db")
        kit.wait_condition("db", "Ready", "True", "Synced")
        wait_answered_by(plane, kit.namespace, "db", "db")
        seconds = FREEZE_SECONDS + 2 * MARGIN
        client = start_probe(plane, kit.namespace, "db", 6379, every=0.05, seconds=seconds)
        time.sleep(MARGIN)
        frozen = time.monotonic()
        e2e.supervisor.signal_apiserver(signal.SIGSTOP)
        try:
            time.sleep(FREEZE_SECONDS)
            # What the import says at the end of the freeze (the workload cluster answers).
            said = kit.condition("db", "Ready") or {}
        finally:
            e2e.supervisor.signal_apiserver(signal.SIGCONT)
            thawed = time.monotonic()
        attempts = finish_probe(client, seconds=seconds)
        during = [a for a in attempts if frozen <= a.at <= thawed]
        row.happened = (
            f"{len(attempts)} connections, {len(during)} of them during the freeze: "
            f"{servers(attempts).count('db')} answered by the server, failures {errors(attempts)}; "
            f"the import said Ready={said.get('status')} ({said.get('reason')})"
        )
        row.figure("slowest connection", max(a.ms for a in attempts), "ms")
        assert len(during) >= FREEZE_SECONDS / 0.05 * 0.8, "the client hardly ran meanwhile"
        assert servers(attempts) == ["db"] * len(attempts), errors(attempts)
        assert said.get("status") == "True", said
    # Back to normal before the next scenario: the operator talks to the supervisor again.
    kit.wait_condition("db", "Ready", "True", "Synced", timeout=60)
