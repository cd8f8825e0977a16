"""Running the operator: its metrics, liveness endpoint, log format and namespace scope."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from harness.cluster import Cluster
from harness.operator import OperatorProcess
from kit import Kit
from support import eventually


def test_metrics_tell_the_story(kit: Kit) -> None:
    vip = kit.load_balancer("db")
    cluster = kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [vip]})
    metric = kit.operator.metric
    # The counters are the whole operator's: start from a moment other tests left alone.
    changes = kit.settled(lambda: metric("shared_services_address_changes_total"))
    propagations = metric("shared_services_propagation_seconds_count")
    slice_patches = metric("shared_services_writes_total", kind="EndpointSlice", verb="patch")

    kit.set_ingress("db", [{"ip": "198.51.100.80"}])
    kit.wait_addresses("db", {"IPv4": ["198.51.100.80"]})
    eventually(lambda: metric("shared_services_address_changes_total") == changes + 1)
    assert metric("shared_services_propagation_seconds_count") >= propagations + 1
    assert (
        metric("shared_services_writes_total", kind="EndpointSlice", verb="patch")
        >= slice_patches + 1
    )
    assert metric("shared_services_imports", ready="True", reason="Synced") >= 1
    assert metric("shared_services_syncs_total", result="ok") > 0
    assert "shared_services_sync_errors_total" in kit.operator.metrics()
    assert metric("shared_services_remote_watches", cluster=cluster, state="up") == 1
    assert metric("shared_services_remote_cluster_connected", cluster=cluster) == 1

    url = f"http://127.0.0.1:{kit.operator.health_port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert isinstance(json.loads(response.read())["imports"], int)


def test_json_logs_and_one_namespace(kit: Kit, workload: Cluster, tmp_path: Path) -> None:
    kit.create_import("mine", {"source": {"addresses": ["203.0.113.7"]}, "ports": [{"port": 80}]})
    kit.wait_condition("mine", "Ready", "True")
    scoped = OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / "kubeconfig"),
        log_path=tmp_path / "scoped.log",
        extra_args=["--log-format=json", f"--namespace={kit.namespace}"],
    )
    with scoped:
        # It knows the imports of its namespace and no other, although others exist.
        eventually(
            lambda: scoped.metric("shared_services_imports", ready="True", reason="Synced") == 1
        )
        assert (
            sum(v for k, v in scoped.metrics().items() if k.startswith("shared_services_imports{"))
            == 1
        )
    lines = [line for line in (tmp_path / "scoped.log").read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any(f"namespaces {kit.namespace}" in r.get("message", "") for r in records)


def test_listed_namespaces_each_get_their_own_cache(
    kit: Kit, workload: Cluster, tmp_path: Path
) -> None:
    # Two listed namespaces: the writer must find its objects in the second one too, or a
    # rename there would leave the old Service behind.
    second = f"{kit.namespace}-b"
    kit.core.create_namespace({"metadata": {"name": second}})
    kit.operator.stop()
    scoped = OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / "kubeconfig"),
        log_path=tmp_path / "two.log",
        extra_args=[f"--namespace={kit.namespace}", f"--namespace={second}"],
    )
    try:
        with scoped:
            body = {
                "apiVersion": "sharedservices.io/v1alpha1",
                "kind": "SharedServiceImport",
                "metadata": {"name": "db"},
                "spec": {"source": {"addresses": ["203.0.113.8"]}, "ports": [{"port": 80}]},
            }
            kit.custom.create_namespaced_custom_object(
                "sharedservices.io", "v1alpha1", second, "sharedserviceimports", body
            )

            def services() -> list[str]:
                return sorted(
                    s.metadata.name
                    for s in kit.core.list_namespaced_service(
                        second, label_selector="sharedservices.io/import=db"
                    ).items
                )

            eventually(lambda: services() == ["db"])
            kit.custom.patch_namespaced_custom_object(
                "sharedservices.io",
                "v1alpha1",
                second,
                "sharedserviceimports",
                "db",
                {"spec": {"serviceName": "db-v2"}},
            )
            eventually(lambda: services() == ["db-v2"])
    finally:
        kit.operator.start()
        kit.core.delete_namespace(second)


def test_the_operator_warns_before_its_memory_limit(
    kit: Kit, workload: Cluster, tmp_path: Path
) -> None:
    # A limit below what the process already holds (about 80 MiB): the first check warns.
    # Watching an empty namespace, it leaves the session operator's imports alone.
    log_path = tmp_path / "memory.log"
    tight = OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / "kubeconfig"),
        log_path=log_path,
        extra_args=[f"--namespace={kit.namespace}", "--memory-limit=48Mi"],
    )
    with tight:
        eventually(lambda: "of the 48 MiB limit" in log_path.read_text(), timeout=30)
        assert tight.metric("shared_services_memory_limit_bytes") == 48 * 2**20
    warnings = [line for line in log_path.read_text().splitlines() if "MiB limit" in line]
    # Said once, not at every check, while the use stays above the line.
    assert len(warnings) == 1
    assert "raise resources.limits.memory" in warnings[0]
