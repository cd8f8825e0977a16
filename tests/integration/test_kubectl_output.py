"""What a person reads with kubectl about imports the operator is serving.

``kubectl get ssi`` shows each import's source in one line (not JSON), wide output the
local Service and the reason, and ``kubectl describe`` of an import that is not Ready says
what to do about it.
"""

from __future__ import annotations

from pathlib import Path

from harness.cluster import Cluster
from harness.kubectl import kubectl, kubectl_get
from kit import Kit
from shared_services import advice


def test_kubectl_get_shows_each_source_in_one_line_and_wide_the_service(
    kit: Kit, workload: Cluster, tmp_path: Path
) -> None:
    kit.load_balancer("db")
    kit.remote_cluster()
    kit.import_remote("by-remote", "db")
    kit.create_import(
        "by-address",
        {
            "source": {"addresses": ["198.51.100.7", "198.51.100.8"]},
            "ports": [{"port": 5432}],
            "serviceName": "legacy-db",
        },
    )
    kit.wait_condition("by-remote", "Ready", "True", "Synced")
    kit.wait_condition("by-address", "Ready", "True", "Synced")
    kubeconfig = workload.write_kubeconfig(tmp_path / "k")

    table = kubectl_get(kubeconfig, "ssi", "-n", kit.namespace)
    assert table.rows["by-remote"]["SOURCE"] == f"{kit.cluster_name}/{kit.namespace}/db"
    assert table.rows["by-address"]["SOURCE"] == "198.51.100.7,198.51.100.8"

    wide = kubectl_get(kubeconfig, "ssi", "-n", kit.namespace, "-o", "wide")
    assert (wide.rows["by-remote"]["SERVICE"], wide.rows["by-remote"]["REASON"]) == (
        "by-remote",
        "Synced",
    )
    assert wide.rows["by-address"]["SERVICE"] == "legacy-db"


def test_kubectl_describe_says_what_to_do_about_an_import_that_is_not_ready(
    kit: Kit, workload: Cluster, tmp_path: Path
) -> None:
    kit.create_import(
        "lost",
        {"source": {"remoteService": {"cluster": "nowhere", "namespace": "x", "name": "db"}}},
    )
    kit.wait_condition("lost", "Ready", "False", "RemoteClusterNotFound")
    kubeconfig = workload.write_kubeconfig(tmp_path / "k")

    described = kubectl(kubeconfig, "describe", "ssi", "lost", "-n", kit.namespace)

    # kubectl folds long messages; what it prints, joined again, holds the step.
    flat = " ".join(described.split())
    assert "RemoteCluster 'nowhere' does not exist." in flat
    assert " ".join(advice.IMPORT_STEPS["RemoteClusterNotFound"].split()) in flat
    assert "Source: nowhere/x/db" in flat
