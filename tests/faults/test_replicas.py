"""Two replicas with leader election, as the chart's HA setting runs them: no fighting, no
flapping.

While both run and VIPs move, only the leader writes, the lease never changes hands, and
each local EndpointSlice changes exactly once per remote move. A clean shutdown of the
leader hands over at once, and the new leader, finding everything in place, writes no
object.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from kubernetes import client as k8s

from faults.toolkit import FaultEnv, Row, Sampler, load_balancer, slice_state, wait_for, writes
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import Kit

SERVICES = ("db", "cache", "queue")
MOVES = 6


def _lease(kit: Kit) -> Any:
    return k8s.CoordinationV1Api(kit.core.api_client).read_namespaced_lease(
        "shared-services-operator", OPERATOR_NAMESPACE
    )


def _changes(samples: list[tuple[float, dict[str, Any]]]) -> int:
    """How often the sampled state differed from the sample before it."""
    values = [value for _, value in samples]
    return sum(1 for before, after in itertools.pairwise(values) if before != after)


def test_two_replicas_do_not_fight(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = (
        f"2 replicas with --leader-elect, {len(SERVICES)} remote + 2 fixed imports, "
        f"{MOVES} VIP moves; then the leader stopped"
    )
    replicas = [
        OperatorProcess(
            kubeconfig=fault_env.workload_kubeconfig,
            log_path=fault_env.logs / f"replica-{name}.log",
            extra_args=[
                "--leader-elect",
                f"--namespace={kit.namespace}",
                f"--dns-servers={fault_env.dns.nameserver}",
            ],
        )
        for name in ("a", "b")
    ]
    kit.operator.stop()
    try:
        for replica in replicas:
            replica.start()
        for number, name in enumerate(SERVICES):
            load_balancer(kit, name, [f"192.0.2.{80 + number}"])
        kit.remote_cluster()
        for name in SERVICES:
            kit.import_remote(name, name)
        for name in ("fixed-a", "fixed-b"):
            kit.create_import(
                name, {"source": {"addresses": ["203.0.113.80"]}, "ports": [{"port": 80}]}
            )
        for name in (*SERVICES, "fixed-a", "fixed-b"):
            kit.wait_condition(name, "Ready", "True", "Synced", timeout=60)
        counts = [kit.settled(lambda r=r: writes(r), quiet=1.0) for r in replicas]
        lease = _lease(kit)
        holder, transitions = lease.spec.holder_identity, lease.spec.lease_transitions
        leader, standby = (0, 1) if counts[0] else (1, 0)
        assert counts[standby] == 0, f"the standby wrote {counts[standby]} times"
        with Sampler(lambda: slice_state(kit), interval=0.1) as sampler:
            for move in range(MOVES):
                name = SERVICES[move % len(SERVICES)]
                kit.set_ingress(name, [{"ip": f"198.51.100.{100 + move}"}])
                kit.wait_addresses(name, {"IPv4": [f"198.51.100.{100 + move}"]})
                time.sleep(1.0)
        after = [kit.settled(lambda r=r: writes(r), quiet=1.0) for r in replicas]
        lease = _lease(kit)
        assert lease.spec.holder_identity == holder
        assert lease.spec.lease_transitions == transitions
        assert after[standby] == 0, f"the standby wrote {after[standby]} times"
        moved = after[leader] - counts[leader]
        flips = _changes(sampler.samples)
        row.figure("writes to sync (leader/standby)", f"{counts[leader]:.0f}/{counts[standby]:.0f}")
        row.figure(f"writes for {MOVES} moves (leader/standby)", f"{moved:.0f}/0")
        row.figure("slice changes seen", flips)
        # A move: the slice, the Endpoints and the status; never a write back and forth.
        assert moved <= MOVES * 3
        assert flips == MOVES, f"{flips} changes of the endpoints for {MOVES} moves"

        # A clean stop releases the lease: the standby takes over at once and, finding
        # every object as it should be, changes none.
        stopped = time.monotonic()
        replicas[leader].stop()
        took = wait_for(
            lambda: _lease(kit).spec.holder_identity not in (None, "", holder),
            timeout=30,
            what="the standby to take the lease",
        )
        kit.set_ingress("db", [{"ip": "198.51.100.120"}])
        kit.wait_addresses("db", {"IPv4": ["198.51.100.120"]}, timeout=30)
        handover = time.monotonic() - stopped
        successor = replicas[standby]
        objects = sum(
            v
            for k, v in successor.metrics().items()
            if k.startswith("shared_services_writes_total{")
        )
        kit.settled(lambda: writes(successor), quiet=1.0)
        row.figure("lease taken over after", took, "s")
        row.figure("a move synced after the leader stopped", handover, "s")
        row.figure("object writes by the new leader", objects)
        # The one move made after the handover: its slice and its Endpoints.
        assert objects <= 2, f"the new leader rewrote {objects} objects"
    finally:
        for replica in replicas:
            replica.stop()
        kit.operator.start()
    row.happened = (
        "one leader, lease never changed hands, standby wrote nothing, one slice change per "
        "move; clean handover"
    )
