"""Readiness: /readyz answers 200 only once every local cache is filled, and says what it waits for.

- Started under the chart's identity with one list permission taken away, the operator is
  live but not ready: /readyz and its log name the cache that waits and the API server's
  403, and it syncs nothing. Given the permission back (a change of the Role), it becomes
  ready and syncs, without a restart.
- With every permission it is ready, and /healthz still answers as before.
- With leader election, a standby is ready once its caches are warm, before it leads.

The session's operator (an administrator) is stopped meanwhile where it would do the work.
A ready answer's first line says what the replica does; the lines after it, what it does
without on this release (see test_releases.py), so only the first is compared here.
"""

from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from deploykit import CHART, Helm, kubectl, operator_as, service_account_token, wait_allowed
from harness.cluster import Cluster
from harness.helm import ensure_helm
from harness.operator import OperatorProcess
from kit import Kit
from support import eventually

pytestmark = pytest.mark.releases

_RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def _chart_rbac(tmp_path: Path, *, release: str, namespace: str) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC for a release serving ``namespace`` alone."""
    helm = Helm(ensure_helm(), home=tmp_path / "helm")
    rendered = helm.run(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        f"watchNamespaces={{{namespace}}}",
    ).stdout
    return [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in _RBAC_KINDS]


def _without_endpoints_list(objects: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """The same objects, but the Role ``role`` may not list (nor watch) Endpoints."""
    changed = copy.deepcopy(objects)
    (target,) = [o for o in changed if o["kind"] == "Role" and o["metadata"]["name"] == role]
    rules = []
    for rule in target["rules"]:
        if "endpoints" in rule["resources"]:
            others = [r for r in rule["resources"] if r != "endpoints"]
            if others:
                rules.append(rule | {"resources": others})
            verbs = [v for v in rule["verbs"] if v not in ("list", "watch")]
            rules.append(rule | {"resources": ["endpoints"], "verbs": verbs})
        else:
            rules.append(rule)
    target["rules"] = rules
    return changed


def _readyz(process: OperatorProcess) -> tuple[int, str]:
    """The readiness status and the first line of its answer."""
    status, body = process.probe("/readyz")
    return status, (body.splitlines() or [""])[0]


def _apply(kubeconfig: Path, objects: list[dict[str, Any]]) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def test_a_missing_permission_is_live_not_ready_until_granted(
    kit: Kit, workload: Cluster, workload_api: k8s.ApiClient, tmp_path: Path
) -> None:
    namespace = kit.namespace
    release = f"ready-{secrets.token_hex(3)}"
    fullname = f"{release}-shared-services-operator"
    admin = workload.write_kubeconfig(tmp_path / "admin.kubeconfig")
    full = _chart_rbac(tmp_path, release=release, namespace=namespace)
    _apply(admin, _without_endpoints_list(full, fullname))
    token = service_account_token(workload_api, namespace=namespace, name=fullname)
    wait_allowed(workload, token, ("v1", "services", namespace))
    restricted = operator_as(
        workload,
        token=token,
        operator_namespace=namespace,
        directory=tmp_path,
        name="restricted",
        # The operator's own namespace holds the imports here, which it refuses by default.
        extra_args=[f"--namespace={namespace}", "--allow-system-namespaces"],
    )
    kit.operator.stop()
    try:
        restricted.start(wait=False)
        restricted.wait_live()
        kit.create_import(
            "db", {"source": {"addresses": ["203.0.113.70"]}, "ports": [{"port": 80}]}
        )
        waiting = f"local endpoints {namespace}: 403 Forbidden"

        def refused() -> str:
            status, body = restricted.probe("/readyz")
            assert status == 503, (status, body)
            assert waiting in body, body
            # Only the one cache waits: the others fill (their lists may still be under way
            # when the refused one first says so), and then say nothing.
            assert f"local services {namespace}" not in body, body
            return body

        eventually(refused, timeout=30)
        assert restricted.probe("/healthz")[0] == 200
        eventually(
            lambda: f"not ready, waiting for {waiting}" in restricted.log_path.read_text(),
            timeout=30,
        )
        assert "status" not in kit.get_import("db"), "synced before its caches were filled"

        _apply(admin, full)  # the permission is granted: the same Role, as the chart has it
        eventually(lambda: _readyz(restricted) == (200, "ready"), timeout=90)
        kit.wait_condition("db", "Ready", "True", "Synced", timeout=30)
        assert kit.slice_addresses("db") == {"IPv4": ["203.0.113.70"]}
        assert restricted.process is not None
        assert restricted.process.poll() is None, "it restarted instead"
        eventually(
            lambda: any(
                line.endswith("] ready") for line in restricted.log_path.read_text().splitlines()
            )
        )
    finally:
        restricted.stop()
        kit.operator.start()
        rbac = k8s.RbacAuthorizationV1Api(workload_api)
        for obj in full:
            if obj["kind"] == "ClusterRole":
                rbac.delete_cluster_role(obj["metadata"]["name"])
            elif obj["kind"] == "ClusterRoleBinding":
                rbac.delete_cluster_role_binding(obj["metadata"]["name"])


def test_with_every_permission_it_is_ready(kit: Kit) -> None:
    # The session's operator runs as an administrator.
    assert _readyz(kit.operator) == (200, "ready")
    status, body = kit.operator.probe("/healthz")
    assert status == 200
    assert isinstance(json.loads(body)["imports"], int)
    assert kit.operator.probe("/nothing")[0] == 404


def _replica(workload: Cluster, tmp_path: Path, namespace: str, name: str) -> OperatorProcess:
    return OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / f"{name}.kubeconfig"),
        log_path=tmp_path / f"{name}.log",
        operator_namespace=namespace,
        # The operator's own namespace holds the imports here, which it refuses by default.
        extra_args=["--leader-elect", f"--namespace={namespace}", "--allow-system-namespaces"],
    )


def test_a_standby_is_ready_once_warm(kit: Kit, workload: Cluster, tmp_path: Path) -> None:
    for name in ("a", "b"):
        kit.create_import(
            name, {"source": {"addresses": ["203.0.113.71"]}, "ports": [{"port": 80}]}
        )
    kit.operator.stop()
    replicas = [_replica(workload, tmp_path, kit.namespace, name) for name in ("first", "second")]
    try:
        for replica in replicas:
            replica.start()  # returns once /readyz answers 200
        for name in ("a", "b"):
            kit.wait_condition(name, "Ready", "True", "Synced", timeout=30)

        def roles() -> list[str]:
            return sorted(_readyz(r)[1] for r in replicas)

        eventually(lambda: roles() == ["ready: leading", "ready: standing by"])
        (standby,) = [r for r in replicas if _readyz(r)[1] == "ready: standing by"]
        # Warm: the standby knows every import already, and has synced none of them.
        assert json.loads(standby.probe("/healthz")[1]) == {"imports": 2}
        assert standby.metric("shared_services_syncs_total", result="ok") == 0
    finally:
        for replica in replicas:
            replica.stop()
        kit.operator.start()
