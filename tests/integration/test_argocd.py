"""Argo CD's view of the operator's resources: the Lua health checks of deploy/argocd/, run
on statuses the operator really wrote, say Healthy, Progressing and Degraded when they
should; and the objects the operator writes carry nothing by which Argo CD would take them
for its own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml
from kubernetes import client as k8s

from deploykit import (
    DEPLOY,
    delete_remote_cluster,
    grant_reader,
    remote_cluster,
    supervisor_access,
)
from harness.cluster import Cluster
from harness.operator import OPERATOR_NAMESPACE
from kit import GROUP, VERSION, Kit
from support import eventually

HEALTH = DEPLOY / "argocd" / "health"


def health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run Argo CD's health script for ``kind`` on ``obj``, as Argo CD does: ``obj`` global."""
    runtime = lupa.LuaRuntime()
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute((HEALTH / f"sharedservices.io_{kind}.lua").read_text())
    return {"status": str(result["status"]), "message": str(result["message"])}


@pytest.fixture
def clusters_made(kit: Kit, workload_api: k8s.ApiClient) -> Iterator[list[str]]:
    """RemoteClusters a test makes, removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        delete_remote_cluster(workload_api, name=name, secret_namespace=OPERATOR_NAMESPACE)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word, so connecting never ends."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


def _cluster(kit: Kit, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kit.custom.get_cluster_custom_object(
        GROUP, VERSION, "remoteclusters", name
    )
    return found


def _reason(obj: dict[str, Any], type_: str) -> str | None:
    for condition in (obj.get("status") or {}).get("conditions", []):
        if condition["type"] == type_:
            return str(condition["reason"])
    return None


def _when(obj: dict[str, Any], type_: str, reason: str) -> dict[str, Any] | None:
    """``obj`` if its condition ``type_`` has ``reason``, else None."""
    return obj if _reason(obj, type_) == reason else None


def test_health_follows_what_the_operator_wrote(
    kit: Kit,
    supervisor: Cluster,
    workload_api: k8s.ApiClient,
    clusters_made: list[str],
    silent_server: int,
    tmp_path: Path,
) -> None:
    access = supervisor_access(supervisor, tmp_path)
    grant_reader(supervisor, access, kit.namespace)
    ns = kit.namespace

    # Progressing: a central cluster that is still being connected to, and its import.
    silent = yaml.safe_load(access.kubeconfig_text)
    silent["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{silent_server}"
    clusters_made.append(f"slow-{ns}")
    remote_cluster(
        workload_api,
        name=f"slow-{ns}",
        kubeconfig_text=yaml.safe_dump(silent),
        secret_namespace=OPERATOR_NAMESPACE,
    )
    kit.create_import(
        "waiting",
        {"source": {"remoteService": {"cluster": f"slow-{ns}", "namespace": ns, "name": "x"}}},
    )
    # The first attempt gives up after the client's timeouts: look before that.
    connecting = eventually(lambda: _when(kit.get_import("waiting"), "Ready", "Connecting"))
    slow = _cluster(kit, f"slow-{ns}")
    assert _reason(slow, "Connected") in (None, "Connecting")  # not connected, not failed yet
    assert health("SharedServiceImport", connecting)["status"] == "Progressing"
    assert health("RemoteCluster", slow)["status"] == "Progressing"

    # Healthy: connected with the read-only identity, and an import that is Ready.
    clusters_made.append(kit.cluster_name)
    remote_cluster(
        workload_api,
        name=kit.cluster_name,
        kubeconfig_text=access.kubeconfig_text,
        secret_namespace=OPERATOR_NAMESPACE,
    )
    vip = kit.load_balancer("db")
    kit.import_remote("db", "db")
    kit.wait_condition("db", "Ready", "True")
    verdict = health("SharedServiceImport", kit.get_import("db"))
    assert verdict == {"status": "Healthy", "message": f"Service db points at {vip}"}
    eventually(lambda: _reason(_cluster(kit, kit.cluster_name), "Connected") == "Connected")
    assert health("RemoteCluster", _cluster(kit, kit.cluster_name))["status"] == "Healthy"

    # Degraded: a conflict, a namespace the RemoteCluster denies, a Secret that is missing.
    kit.core.create_namespaced_service(
        ns, {"metadata": {"name": "taken"}, "spec": {"ports": [{"port": 80}]}}
    )
    kit.create_import("taken", {"source": {"addresses": ["203.0.113.50"]}, "ports": [{"port": 80}]})
    kit.wait_condition("taken", "Ready", "False", "Conflict")
    verdict = health("SharedServiceImport", kit.get_import("taken"))
    assert verdict["status"] == "Degraded"
    assert verdict["message"].startswith("Conflict: Service")

    clusters_made.append(f"strict-{ns}")
    remote_cluster(
        workload_api,
        name=f"strict-{ns}",
        kubeconfig_text=access.kubeconfig_text,
        secret_namespace=OPERATOR_NAMESPACE,
        allowedNamespaces=["somewhere-else"],
    )
    kit.create_import(
        "denied",
        {"source": {"remoteService": {"cluster": f"strict-{ns}", "namespace": ns, "name": "db"}}},
    )
    kit.wait_condition("denied", "Ready", "False", "NamespaceDenied")
    assert health("SharedServiceImport", kit.get_import("denied"))["status"] == "Degraded"

    k8s.CustomObjectsApi(workload_api).create_cluster_custom_object(
        GROUP,
        VERSION,
        "remoteclusters",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RemoteCluster",
            "metadata": {"name": f"nosecret-{ns}"},
            "spec": {"kubeconfigSecretRef": {"name": f"absent-{ns}"}},
        },
    )
    clusters_made.append(f"nosecret-{ns}")
    eventually(lambda: _reason(_cluster(kit, f"nosecret-{ns}"), "Connected") == "SecretNotFound")
    verdict = health("RemoteCluster", _cluster(kit, f"nosecret-{ns}"))
    assert verdict["status"] == "Degraded"
    assert "SecretNotFound" in verdict["message"]


def test_written_objects_carry_no_argo_cd_tracking(kit: Kit) -> None:
    # An import as Argo CD applies it: with its tracking label and annotation.
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SharedServiceImport",
        "metadata": {
            "name": "tracked",
            "labels": {"app.kubernetes.io/instance": "shop-imports"},
            "annotations": {
                "argocd.argoproj.io/tracking-id": (
                    f"shop-imports:{GROUP}/SharedServiceImport:{kit.namespace}/tracked"
                ),
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "spec": {"source": {"addresses": ["203.0.113.51"]}, "ports": [{"port": 80}]},
    }
    kit.custom.create_namespaced_custom_object(
        GROUP, VERSION, kit.namespace, "sharedserviceimports", body
    )
    kit.wait_addresses("tracked", {"IPv4": ["203.0.113.51"]})
    written = [
        kit.core.read_namespaced_service("tracked", kit.namespace),
        kit.core.read_namespaced_endpoints("tracked", kit.namespace),
        *kit.discovery.list_namespaced_endpoint_slice(
            kit.namespace, label_selector="kubernetes.io/service-name=tracked"
        ).items,
    ]
    for obj in written:
        labels = obj.metadata.labels or {}
        annotations = obj.metadata.annotations or {}
        # Argo CD would count them as its own, and prune them as missing from Git.
        assert "app.kubernetes.io/instance" not in labels
        assert not any(key.startswith("argocd.argoproj.io/") for key in annotations)
        assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
        # It finds them through their owner instead, and shows them under the import.
        assert [r.name for r in obj.metadata.owner_references] == ["tracked"]
