"""Nothing blocks the event loop: a frozen central cluster stalls only its own imports.

The supervisor's API server is frozen (SIGSTOP) while imports read from new remote
namespaces of it, so the watches opened for them hang in their first list; the imports are
then deleted, which closes those hung watches. Meanwhile an import of another RemoteCluster
(the supervisor's second API server, which keeps answering) and an import of fixed
addresses change again and again. Each change is synced while the freeze still lasts, and
the liveness endpoint keeps answering. The worst sync and health-check latencies during the
freeze go into the summary.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.request
from collections.abc import Callable

import yaml
from kubernetes import client as k8s

from faults.toolkit import FaultEnv, SpareApiServer, load_balancer, remote_condition
from kit import Kit
from suite import Row
from support import eventually

HUNG = 3  # watches left hanging in their first list, each closed on the loop
CHANGES = 6


class _HealthProbe:
    """Asks the liveness endpoint every 0.2 s, for as long as it runs; keeps the latencies."""

    def __init__(self, port: int) -> None:
        self._url = f"http://127.0.0.1:{port}/healthz"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.latencies: list[float] = []
        self.failures = 0

    def __enter__(self) -> _HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self._url, timeout=5) as response:
                    response.read()
            except OSError:
                self.failures += 1
            else:
                self.latencies.append(time.monotonic() - started)
            self._stop.wait(0.2)


def _synced_within(check: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``check()`` holds, or None if it did not within ``timeout``."""
    started = time.monotonic()
    try:
        eventually(check, timeout=timeout, interval=0.02)
    except AssertionError:
        return None
    return time.monotonic() - started


def test_frozen_supervisor_stalls_nothing_else(
    kit: Kit, row: Row, fault_env: FaultEnv, spare_supervisor: SpareApiServer
) -> None:
    row.injected = (
        f"supervisor frozen; {HUNG} imports of it opened watches that hang in their first "
        f"list, then were deleted; meanwhile {CHANGES} changes each to an import of another "
        "RemoteCluster and to a fixed-address import"
    )
    frozen = kit.remote_cluster()
    steady = kit.remote_cluster(
        name=f"{kit.cluster_name}-steady", kubeconfig=yaml.safe_dump(spare_supervisor.kubeconfig())
    )
    load_balancer(kit, "db", ["192.0.2.40"])
    kit.create_import(
        "steady",
        {
            "source": {
                "remoteService": {"cluster": steady, "namespace": kit.namespace, "name": "db"}
            }
        },
    )
    kit.create_import("fixed", {"source": {"addresses": ["203.0.113.40"]}, "ports": [{"port": 80}]})
    for name in ("steady", "fixed"):
        kit.wait_condition(name, "Ready", "True", "Synced")
    eventually(lambda: remote_condition(kit, frozen).get("status") == "True", timeout=30)
    hung = [f"{kit.namespace}-hung{i}" for i in range(HUNG)]
    for namespace in hung:
        kit.remote.create_namespace({"metadata": {"name": namespace}})
    supervisor = fault_env.supervisor
    latencies: list[float | None] = []
    supervisor.signal_apiserver(signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        for i, namespace in enumerate(hung):
            kit.create_import(
                f"hung{i}",
                {
                    "source": {
                        "remoteService": {"cluster": frozen, "namespace": namespace, "name": "x"}
                    }
                },
            )
        time.sleep(1.0)  # their watches are opened, and hang in their first list
        with _HealthProbe(kit.operator.health_port) as probe:
            for i in range(HUNG):
                kit.delete_import(f"hung{i}")
            with spare_supervisor.api_client() as api:
                remote = k8s.CoreV1Api(api)
                for step in range(CHANGES):
                    fixed, vip = f"203.0.113.{50 + step}", f"198.51.100.{50 + step}"
                    kit.patch_import("fixed", {"spec": {"source": {"addresses": [fixed]}}})
                    remote.patch_namespaced_service_status(
                        "db",
                        kit.namespace,
                        {"status": {"loadBalancer": {"ingress": [{"ip": vip}]}}},
                    )
                    latencies.append(
                        _synced_within(
                            lambda f=fixed, v=vip: (
                                kit.slice_addresses("fixed") == {"IPv4": [f]}
                                and kit.slice_addresses("steady") == {"IPv4": [v]}
                            ),
                            timeout=10,
                        )
                    )
                    time.sleep(0.3)
        still_frozen = time.monotonic() - frozen_at
    finally:
        supervisor.signal_apiserver(signal.SIGCONT)
    for namespace in hung:
        kit.remote.delete_namespace(namespace)
    worst_health = max(probe.latencies, default=0.0)
    synced = [x for x in latencies if x is not None]
    row.figure("changes synced during the freeze", f"{len(synced)}/{len(latencies)}")
    row.figure("worst sync latency", max(synced, default=0.0), "s")
    row.figure("worst /healthz latency", worst_health, "s")
    row.figure("/healthz failures", probe.failures)
    row.figure("freeze", still_frozen, "s")
    assert len(synced) == len(latencies), f"changes not synced while frozen: {latencies}"
    assert probe.failures == 0, f"{probe.failures} health checks got no answer within 5 s"
    row.happened = "every change synced during the freeze; the liveness endpoint kept answering"
