"""Two replicas with leader election, as the chart's HA setting runs them: never two leaders.

- While both run and VIPs move, only the leader writes, the lease never changes hands, and
  each local EndpointSlice changes exactly once per remote move. A clean shutdown of the
  leader hands over at once, and the new leader, finding everything in place, writes no
  object.
- A leader frozen (SIGSTOP) for longer than its lease is replaced: the standby takes the
  lease and follows the VIP moves. Thawed, the old leader sends not one write before it
  exits, although it has news to act on (its watches delivered the moves it slept
  through, and a DNS answer changed just before the thaw). The writes are counted by the
  API server's audit log, not by the operator, and no endpoint ever flips back.
"""

from __future__ import annotations

import dataclasses
import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from faults.toolkit import (
    FaultEnv,
    Sampler,
    SpareApiServer,
    load_balancer,
    slice_state,
    wait_for,
    writes,
)
from harness.cluster import AuditedRequest, AuditLog
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import Kit
from suite import Row

SERVICES = ("db", "cache", "queue")
MOVES = 6


# The frozen-leader scenario's replicas, each with an identity of its own, so that the audit
# log tells their requests apart.
REPLICAS = ("frozen-a", "frozen-b")
READS = frozenset({"get", "list", "watch"})
# Longer than the lease (15 s): the old leader may believe it still leads, if it goes by
# what its clock said before the freeze.
FREEZE = 20.0


def _lease(kit: Kit, name: str = "shared-services-operator") -> Any:
    return k8s.CoordinationV1Api(kit.core.api_client).read_namespaced_lease(
        name, OPERATOR_NAMESPACE
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


def _user(replica: str) -> str:
    return f"system:serviceaccount:{OPERATOR_NAMESPACE}:{replica}"


@dataclasses.dataclass(frozen=True)
class Audited:
    """A second API server of the workload cluster that records the replicas' requests."""

    server: SpareApiServer
    log: AuditLog
    tokens: dict[str, str]


@pytest.fixture
def audited(fault_env: FaultEnv, tmp_path: Path) -> Iterator[Audited]:
    """ServiceAccounts for the replicas, and an API server that audits what they send.

    The replicas talk to it alone; it shares etcd with the cluster's first API server, which
    the test observes through. Their identities may do anything: this scenario is about who
    writes, not about what the chart grants (the RBAC tests prove that).
    """
    core = k8s.CoreV1Api(fault_env.workload_api)
    rbac = k8s.RbacAuthorizationV1Api(fault_env.workload_api)
    tokens = {}
    for replica in REPLICAS:
        core.create_namespaced_service_account(OPERATOR_NAMESPACE, {"metadata": {"name": replica}})
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": replica},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": replica, "namespace": OPERATOR_NAMESPACE}
                ],
            }
        )
        token = core.create_namespaced_service_account_token(
            replica, OPERATOR_NAMESPACE, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        tokens[replica] = fault_env.credentials.add(str(token), f"the token of {replica}")
    log = AuditLog(path=tmp_path / "audit.log", users=tuple(_user(r) for r in REPLICAS))
    server = SpareApiServer(
        dataclasses.replace(fault_env.workload, audit=log),
        log_path=fault_env.logs / "kube-apiserver-audited.log",
    ).start()
    try:
        yield Audited(server=server, log=log, tokens=tokens)
    finally:
        server.stop()
        for replica in REPLICAS:
            rbac.delete_cluster_role_binding(replica)
            core.delete_namespaced_service_account(replica, OPERATOR_NAMESPACE)


def _flipped_back(samples: list[tuple[float, dict[str, Any]]]) -> dict[str, list[Any]]:
    """Per Service whose endpoints went back to an earlier state, its states in order."""
    found = {}
    for service in sorted({name for _, state in samples for name in state}):
        states: list[Any] = []
        for _, state in samples:
            if not states or state.get(service) != states[-1]:
                states.append(state.get(service))
        if len(states) != len({repr(s) for s in states}):
            found[service] = states
    return found


def test_a_frozen_leader_writes_nothing_after_it_thaws(
    kit: Kit, row: Row, fault_env: FaultEnv, audited: Audited, tmp_path: Path
) -> None:
    row.injected = (
        "2 replicas with --leader-elect, each its own identity; the leader frozen (SIGSTOP) "
        "past its lease while VIPs moved, a DNS answer changed, then thawed"
    )
    lease = f"frozen-{kit.namespace}"
    hostname = f"web.{kit.namespace}.example.test"
    replicas = {}
    for replica in REPLICAS:
        config = fault_env.workload.kubeconfig(token=audited.tokens[replica])
        config["clusters"][0]["cluster"]["server"] = audited.server.url
        kubeconfig = tmp_path / f"{replica}.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        kubeconfig.chmod(0o600)
        replicas[replica] = OperatorProcess(
            kubeconfig=kubeconfig,
            log_path=fault_env.logs / f"{replica}.log",
            env={"HOSTNAME": replica},  # the start of its identity in the Lease
            extra_args=[
                "--leader-elect",
                f"--lease-name={lease}",
                f"--namespace={kit.namespace}",
                f"--dns-servers={fault_env.dns.nameserver}",
            ],
        )
    kit.operator.stop()
    try:
        for process in replicas.values():
            process.start()
        load_balancer(kit, "db", ["192.0.2.90"])
        load_balancer(kit, "cache", ["192.0.2.91"])
        kit.remote_cluster()
        kit.import_remote("db", "db")
        kit.import_remote("cache", "cache")
        fault_env.dns.set(hostname, ["203.0.113.90"], ttl=5)
        kit.create_import("web", {"source": {"hostname": hostname}, "ports": [{"port": 80}]})
        for name in ("db", "cache", "web"):
            kit.wait_condition(name, "Ready", "True", "Synced", timeout=60)
        holder = str(_lease(kit, lease).spec.holder_identity)
        old = next(r for r in REPLICAS if holder.startswith(f"{r}-"))
        leader = replicas[old]
        assert leader.process is not None
        kit.settled(lambda: writes(leader), quiet=1.0)
        before = [r for r in audited.log.requests() if r.user == _user(old)]
        assert any(r.verb not in READS for r in before), "the audit log shows no write at all"

        with Sampler(lambda: slice_state(kit), interval=0.1) as sampler:
            frozen = time.monotonic()
            leader.process.send_signal(signal.SIGSTOP)
            try:
                kit.set_ingress("db", [{"ip": "198.51.100.90"}])
                wait_for(
                    lambda: _lease(kit, lease).spec.holder_identity not in (None, "", holder),
                    timeout=60,
                    what="the standby to take the lease",
                )
                took = time.monotonic() - frozen
                kit.wait_addresses("db", {"IPv4": ["198.51.100.90"]}, timeout=30)
                followed = time.monotonic() - frozen
                for name, ip in (("cache", "198.51.100.91"), ("db", "198.51.100.92")):
                    kit.set_ingress(name, [{"ip": ip}])
                    kit.wait_addresses(name, {"IPv4": [ip]}, timeout=30)
                # Frozen for longer than the lease, whenever the standby took over.
                time.sleep(max(0.0, frozen + FREEZE - time.monotonic()))
                # News that the thawed process sees before the new leader does: its own
                # look-up of the name is overdue, the new leader's is up to a TTL away.
                fault_env.dns.set(hostname, ["203.0.113.91"], ttl=5)
                held = time.monotonic() - frozen
                thawed = time.time()
            finally:
                leader.process.send_signal(signal.SIGCONT)
            code = leader.process.wait(timeout=60)
            kit.wait_addresses("web", {"IPv4": ["203.0.113.91"]}, timeout=30)
        after = [r for r in audited.log.requests() if r.user == _user(old) and r.received >= thawed]
        written = [r for r in after if r.verb not in READS]
        flips = _flipped_back(sampler.samples)
        row.figure("frozen for", held, "s")
        row.figure("lease changed hands after the freeze", took, "s")
        row.figure("moved VIP synced after the freeze", followed, "s")
        row.figure("old leader's writes after the thaw (audit log)", len(written))
        row.figure("its reads after the thaw", len(after) - len(written))
        assert not written, f"the old leader wrote after it thawed: {_said(written)}"
        assert not flips, f"endpoints went back to an earlier state: {flips}"
        assert code == 0, f"the old leader exited with {code}:\n{leader.log_tail()}"
        assert "lost the lease" in leader.log_path.read_text()
    finally:
        for process in replicas.values():
            if process.process is not None and process.process.poll() is None:
                process.process.send_signal(signal.SIGCONT)
            process.stop()
        kit.operator.start()
    row.happened = (
        "standby took the lease and followed every move; the thawed leader wrote nothing "
        "(audit log) and exited; no endpoint flipped back"
    )


def _said(requests: list[AuditedRequest]) -> list[str]:
    return [f"{r.verb} {r.uri} -> {r.code}" for r in requests]
