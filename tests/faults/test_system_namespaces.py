"""Imports in ``kube-system`` and in the operator's own namespace are refused by default.

Those namespaces hold the cluster's own Services and the operator's credentials; a Service
that the operator writes there, for whoever may create an import there, is one that the
platform team has to ask for. So by default such an import says ``Ready=False``,
``NamespaceNotAllowed``, naming the namespace and the setting that allows it, and nothing
is written for it. An operator started with ``ALLOW_SYSTEM_NAMESPACES=true`` serves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from faults.toolkit import FaultEnv
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import GROUP, VERSION, Kit
from suite import Row
from support import eventually

SYSTEM = ("kube-system", OPERATOR_NAMESPACE)


def _import(kit: Kit, namespace: str, name: str) -> None:
    kit.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "sharedserviceimports",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceImport",
            "metadata": {"name": name},
            "spec": {"source": {"addresses": ["192.0.2.40"]}, "ports": [{"port": 80}]},
        },
    )


def _ready(kit: Kit, namespace: str, name: str) -> dict[str, Any]:
    body = kit.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "sharedserviceimports", name
    )
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def _wait_reason(kit: Kit, namespace: str, name: str, reason: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        ready = _ready(kit, namespace, name)
        return ready if ready.get("reason") == reason else None

    found = eventually(check, timeout=30)
    assert found is not None
    return found


def _written(kit: Kit, namespace: str, name: str) -> list[str]:
    """The kinds of object of ``name`` in ``namespace``."""
    selector = f"metadata.name={name}"
    found = []
    if kit.core.list_namespaced_service(namespace, field_selector=selector).items:
        found.append("Service")
    if kit.core.list_namespaced_endpoints(namespace, field_selector=selector).items:
        found.append("Endpoints")
    slices = kit.discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={name}"
    )
    if slices.items:
        found.append("EndpointSlice")
    return found


@pytest.fixture
def system_imports(kit: Kit) -> Iterator[str]:
    """The name of this scenario's imports in the system namespaces; deleted at the end."""
    name = f"{kit.namespace}-db"
    yield name
    for namespace in SYSTEM:
        try:
            kit.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "sharedserviceimports", name
            )
        except k8s.ApiException as error:
            if error.status != 404:  # a failed create left nothing to delete
                raise
        for delete in (kit.core.delete_namespaced_service, kit.core.delete_namespaced_endpoints):
            try:
                delete(name, namespace)
            except k8s.ApiException as error:
                if error.status != 404:  # the garbage collector may be first
                    raise


def test_system_namespaces_refused_by_default(
    kit: Kit, row: Row, fault_env: FaultEnv, system_imports: str
) -> None:
    row.injected = (
        "imports in kube-system and in the operator's namespace, under the default and "
        "then with ALLOW_SYSTEM_NAMESPACES=true"
    )
    name = system_imports
    for namespace in SYSTEM:
        _import(kit, namespace, name)
    refusals = {}
    for namespace in SYSTEM:
        ready = _wait_reason(kit, namespace, name, "NamespaceNotAllowed")
        assert ready["status"] == "False"
        assert repr(namespace) in ready["message"], ready["message"]
        assert "ALLOW_SYSTEM_NAMESPACES" in ready["message"], ready["message"]
        assert "allowSystemNamespaces" in ready["message"], ready["message"]
        # The status is written after any write would have been: none was.
        assert _written(kit, namespace, name) == [], f"written in {namespace}"
        refusals[namespace] = ready["message"]

    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "system-namespaces.log",
        env={"ALLOW_SYSTEM_NAMESPACES": "true"},
    )
    session = kit.operator
    session.stop()
    try:
        operator.start()
        kit.operator = operator
        for namespace in SYSTEM:
            _wait_reason(kit, namespace, name, "Synced")
            assert _written(kit, namespace, name) == ["Service", "Endpoints", "EndpointSlice"]
    finally:
        operator.stop()
        kit.operator = session
        session.start()
    row.figure("objects written while refused", "0")
    row.happened = f"NamespaceNotAllowed: {refusals['kube-system'][:100]}...; served when allowed"
