"""Releases that shard one cluster share its RemoteClusters; one of them writes each status.

Two installations of the operator that serve different namespaces of one workload cluster
(two Helm releases, say) use the same cluster-scoped RemoteCluster. Each connects on its
own; if both wrote its status, their reports would overwrite each other. The annotation
``sharedservices.io/status-writer`` names the installation (``--instance``) that writes it:

- the session's operator (no instance) serves an import from a RemoteCluster annotated for
  ``release-b``, and writes none of its status;
- an operator started as ``release-b``, serving another namespace, writes it;
- annotated for yet another installation, release-b writes it no more: a change of the
  connection (its Secret removed) shows in neither operator's report.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from harness.cluster import Cluster
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import GROUP, VERSION, Kit
from support import eventually

WRITER = "sharedservices.io/status-writer"


@pytest.fixture
def release_b(
    workload: Cluster, workload_api: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """A second installation, named release-b, serving a namespace of its own."""
    directory = tmp_path_factory.mktemp("release-b")
    namespace = f"b-{directory.name[-6:].lower().replace('_', '-')}"
    k8s.CoreV1Api(workload_api).create_namespace({"metadata": {"name": namespace}})
    process = OperatorProcess(
        kubeconfig=workload.write_kubeconfig(directory / "workload.kubeconfig"),
        log_path=directory / "operator.log",
        env={"INSTANCE": "release-b", "WATCH_NAMESPACES": namespace},
    )
    yield process
    process.stop()
    k8s.CoreV1Api(workload_api).delete_namespace(namespace)


def _conditions(kit: Kit, name: str) -> list[dict[str, str]]:
    body = kit.custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", name)
    return list((body.get("status") or {}).get("conditions") or [])


def test_only_the_named_installation_writes_a_shared_status(
    kit: Kit, release_b: OperatorProcess
) -> None:
    vip = kit.load_balancer("db")
    cluster = kit.remote_cluster(annotations={WRITER: "release-b"})
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [vip]})
    kit.wait_condition("db", "Ready", "True", "Synced")
    time.sleep(2.0)  # a report of the session's operator would have been written by now
    assert _conditions(kit, cluster) == [], "an installation not named wrote the status"

    release_b.start()
    connected = eventually(
        lambda: [c for c in _conditions(kit, cluster) if c["type"] == "Connected"], timeout=30
    )
    assert connected[0]["status"] == "True", connected

    # Named for another installation: neither writes, whatever happens to the connection.
    kit.custom.patch_cluster_custom_object(
        GROUP, VERSION, "remoteclusters", cluster, {"metadata": {"annotations": {WRITER: "c"}}}
    )
    time.sleep(1.0)  # the annotation reached both operators
    kit.core.delete_namespaced_secret(f"{cluster}-kubeconfig", OPERATOR_NAMESPACE)
    time.sleep(3.0)
    assert _conditions(kit, cluster) == connected, "a report was written for another writer"
    kit.core.create_namespaced_secret(
        OPERATOR_NAMESPACE, {"metadata": {"name": f"{cluster}-kubeconfig"}}
    )  # so that the kit's cleanup finds the Secret it made
