"""Two replicas with leader election: one syncs, the other stands by and takes over.

The session's operator (no election, every namespace) is stopped meanwhile, and the two
replicas are confined to the test's namespace, which also serves as their operator
namespace, where the Lease lives.
"""

from __future__ import annotations

import signal
from pathlib import Path

from kubernetes import client as k8s

from harness.cluster import Cluster
from harness.operator import OperatorProcess
from kit import Kit
from support import eventually


def _replica(workload: Cluster, tmp_path: Path, namespace: str, name: str) -> OperatorProcess:
    return OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / f"{name}.kubeconfig"),
        log_path=tmp_path / f"{name}.log",
        operator_namespace=namespace,
        # The operator's own namespace holds the imports here, which it refuses by default.
        extra_args=["--leader-elect", f"--namespace={namespace}", "--allow-system-namespaces"],
    )


def test_one_leader_and_a_takeover(kit: Kit, workload: Cluster, tmp_path: Path) -> None:
    kit.operator.stop()
    try:
        first = _replica(workload, tmp_path, kit.namespace, "first").start()
        second = _replica(workload, tmp_path, kit.namespace, "second").start()
        try:
            kit.create_import(
                "db", {"source": {"addresses": ["203.0.113.20"]}, "ports": [{"port": 80}]}
            )
            kit.wait_condition("db", "Ready", "True")
            lease = k8s.CoordinationV1Api(kit.core.api_client).read_namespaced_lease(
                "shared-services-operator", kit.namespace
            )
            syncs = {
                "first": first.metric("shared_services_syncs_total", result="ok"),
                "second": second.metric("shared_services_syncs_total", result="ok"),
            }
            # Exactly one replica syncs.
            assert sorted(v > 0 for v in syncs.values()) == [False, True]
            leader, standby = (first, second) if syncs["first"] else (second, first)
            assert lease.spec.holder_identity
            # What the no-leader alert reads: 1 on the leader, 0 on the standby.
            assert (
                leader.metric("shared_services_leading"),
                standby.metric("shared_services_leading"),
            ) == (1, 0)

            leader.stop(signal.SIGKILL)  # a crash: the lease must run out first
            kit.patch_import("db", {"spec": {"source": {"addresses": ["203.0.113.21"]}}})
            kit.wait_addresses("db", {"IPv4": ["203.0.113.21"]}, timeout=40)
            # The sync is counted once its writes have returned, a moment after the slice
            # shows the new address: wait for the count, do not race it.
            eventually(lambda: standby.metric("shared_services_syncs_total", result="ok") > 0)
            assert standby.metric("shared_services_leading") == 1
        finally:
            first.stop()
            second.stop()
    finally:
        kit.operator.start()

    # A clean shutdown hands the lease over at once.
    def released() -> bool:
        lease = k8s.CoordinationV1Api(kit.core.api_client).read_namespaced_lease(
            "shared-services-operator", kit.namespace
        )
        return not lease.spec.holder_identity

    eventually(released)


def test_the_lease_timings_are_the_settings(kit: Kit, workload: Cluster, tmp_path: Path) -> None:
    """--lease-duration and the rest reach the Lease: the duration is what a standby waits."""
    replica = _replica(workload, tmp_path, kit.namespace, "timed")
    replica.env = {"LEASE_DURATION": "7", "RENEW_DEADLINE": "5", "RETRY_PERIOD": "1"}
    kit.operator.stop()
    try:
        replica.start()
        try:
            lease = eventually(
                lambda: k8s.CoordinationV1Api(kit.core.api_client).read_namespaced_lease(
                    "shared-services-operator", kit.namespace
                ),
                retry_on=(k8s.ApiException,),
            )
            assert lease.spec.lease_duration_seconds == 7
        finally:
            replica.stop()
    finally:
        kit.operator.start()
