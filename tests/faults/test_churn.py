"""State that follows churn: what the operator holds goes back down when imports go.

Cycle after cycle, RemoteClusters (each with its own Secret and remote namespace) and
imports of all three kinds are created, synced, then deleted. After each cycle the
operator's resident memory, the entries of its in-memory tables (the
``shared_services_tracked_items`` series) and the number of metric series it exports are
taken; at the end each must be within 10% of the first cycle's. A table keyed by import or
by RemoteCluster that never forgets, a metric series per deleted RemoteCluster, or a cache
of every Secret in the operator's namespace would each grow cycle after cycle.

The operator here is one of the scenario's own, so nothing of other scenarios counts.
The default run is short; ``-m slow`` runs 20 cycles of 500 imports and 5 RemoteClusters.
"""

from __future__ import annotations

import base64
import concurrent.futures
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from faults.toolkit import FaultEnv
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import GROUP, VERSION, Kit
from suite import Row
from support import eventually

CLUSTERS = 5
SERVICES = 10  # per remote namespace, shared by the imports of that cluster
HOSTNAMES = 5
SOAKS = [
    pytest.param(4, 60, id="4x60"),
    pytest.param(20, 500, id="20x500", marks=[pytest.mark.slow, pytest.mark.timeout(3600)]),
]


@dataclass(frozen=True)
class Reading:
    """What the operator held once a cycle's objects were all gone."""

    rss_mb: float
    tracked: int
    series: int


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _tracked(operator: OperatorProcess) -> dict[str, float]:
    prefix = 'shared_services_tracked_items{table="'
    return {
        key[len(prefix) : -2]: value
        for key, value in operator.metrics().items()
        if key.startswith(prefix)
    }


def _ready(kit: Kit) -> int:
    listing = kit.custom.list_namespaced_custom_object(
        GROUP, VERSION, kit.namespace, "sharedserviceimports"
    )
    return sum(
        1
        for item in listing["items"]
        for c in (item.get("status") or {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    )


def _spec(kit: Kit, index: int, cycle: int) -> dict[str, object]:
    kind = index % 10
    if kind == 0:
        return {
            "source": {"hostname": f"h{index % HOSTNAMES}.churn.test"},
            "ports": [{"port": 80}],
        }
    if kind == 1:
        return {"source": {"addresses": [f"203.0.113.{index % 200 + 1}"]}, "ports": [{"port": 80}]}
    cluster = index % CLUSTERS
    return {
        "source": {
            "remoteService": {
                "cluster": f"{kit.cluster_name}-{cycle}-{cluster}",
                "namespace": f"{kit.namespace}-r{cluster}",
                "name": f"s{index % SERVICES}",
            }
        }
    }


def _clusters(kit: Kit, cycle: int, *, create: bool) -> None:
    for number in range(CLUSTERS):
        name = f"{kit.cluster_name}-{cycle}-{number}"
        if create:
            kit.remote_cluster(name=name)
        else:
            kit.delete_remote_cluster(name)


def _remote_services(kit: Kit) -> None:
    for number in range(CLUSTERS):
        namespace = f"{kit.namespace}-r{number}"
        kit.remote.create_namespace({"metadata": {"name": namespace}})
        for index in range(SERVICES):
            name = f"s{index}"
            kit.remote.create_namespaced_service(
                namespace,
                {
                    "metadata": {"name": name},
                    "spec": {"type": "LoadBalancer", "ports": [{"name": "tcp", "port": 5432}]},
                },
            )
            kit.remote.patch_namespaced_service_status(
                name,
                namespace,
                {"status": {"loadBalancer": {"ingress": [{"ip": f"192.0.2.{100 + index}"}]}}},
            )


def _cycle(kit: Kit, operator: OperatorProcess, cycle: int, imports: int) -> Reading:
    _clusters(kit, cycle, create=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: kit.create_import(f"i{i}", _spec(kit, i, cycle)), range(imports)))
    eventually(lambda: _ready(kit) == imports, timeout=60 + imports, interval=1.0)
    # Only the Secrets that RemoteClusters name are held, not the namespace's others.
    assert _tracked(operator).get("cached_secrets") == CLUSTERS
    kit.custom.delete_collection_namespaced_custom_object(
        GROUP, VERSION, kit.namespace, "sharedserviceimports"
    )
    _clusters(kit, cycle, create=False)

    def drained() -> bool:
        tracked = _tracked(operator)
        busy = ("imports", "connections", "secret_watches", "local_cached_objects", "hostnames")
        return all(tracked.get(table, 0) == 0 for table in busy)

    eventually(drained, timeout=60 + imports / 5, interval=0.5)
    time.sleep(1.0)
    tracked = _tracked(operator)
    assert operator.process is not None
    return Reading(
        rss_mb=_rss_mb(operator.process.pid),
        tracked=int(sum(tracked.values())),
        series=len(operator.metrics()),
    )


@pytest.mark.parametrize(("cycles", "imports"), SOAKS)
def test_churn_soak(kit: Kit, row: Row, fault_env: FaultEnv, cycles: int, imports: int) -> None:
    row.injected = (
        f"{cycles} cycles of {imports} imports (remote, hostname, fixed) and {CLUSTERS} "
        "RemoteClusters with their Secrets, created, synced and deleted"
    )
    for number in range(HOSTNAMES):
        fault_env.dns.set(f"h{number}.churn.test", [f"198.51.100.{200 + number}"], ttl=5)
    _remote_services(kit)
    # What else lives in an operator's namespace: Helm's release Secrets, each a chart.
    others = [f"sh.helm.release.v1.{kit.namespace}.v{n}" for n in range(3)]
    for name in others:
        kit.core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            {
                "metadata": {"name": name},
                "data": {"release": base64.b64encode(b"x" * 65536).decode()},
            },
        )
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "churn.log",
        extra_args=[f"--dns-servers={fault_env.dns.nameserver}"],
    )
    kit.operator.stop()
    readings: list[Reading] = []
    try:
        operator.start()
        for cycle in range(cycles):
            readings.append(_cycle(kit, operator, cycle, imports))
    finally:
        operator.stop()
        kit.operator.start()
        for name in others:
            kit.core.delete_namespaced_secret(name, OPERATOR_NAMESPACE)
        for number in range(CLUSTERS):
            try:
                kit.remote.delete_namespace(f"{kit.namespace}-r{number}")
            except k8s.ApiException as error:
                if error.status != 404:
                    raise
    first, last = readings[0], readings[-1]
    row.figure("RSS first/last cycle", f"{first.rss_mb:.0f}/{last.rss_mb:.0f} MB")
    row.figure("peak RSS after a cycle", f"{max(r.rss_mb for r in readings):.0f} MB")
    row.figure("tracked items first/last", f"{first.tracked}/{last.tracked}")
    row.figure("metric series first/last", f"{first.series}/{last.series}")
    assert last.rss_mb <= first.rss_mb * 1.1, readings
    assert last.tracked <= max(first.tracked * 1.1, first.tracked + 1), readings
    assert last.series <= first.series * 1.1, readings
    row.happened = "memory, tables and series came back to the first cycle's level"
