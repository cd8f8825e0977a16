"""The generated CRDs, installed on a real kube-apiserver, admit exactly what the models admit.

Pins, case by case over the tables in ``tests/specs.py``:

- every good spec is created, and what the server stores parses to the same model as what was
  sent (nothing pruned, defaults agree);
- every bad spec is refused with 422 Unprocessable Entity, and the server's message names the
  field the table expects, as the operator's own message does; on a release whose CEL has
  no IP library (1.30), the rules that need it are not in the CRD, so the server accepts
  those specs, and the operator refuses them as ``InvalidSpec`` with the rule's message;
- the server's verdict equals pydantic's for every case, which is the proof that the models are
  the one source of truth; the only exceptions are the rules the CRD cannot express (an import
  whose name cannot be a Service name), which the server accepts and the operator refuses;
- ``kubectl get`` prints the documented columns, through the short names too;
- a status of the shape the operator writes goes through the status subresource and reads back
  unchanged, for both kinds, so no field of it is pruned.

Each case is one request. Unknown fields are refused (``fieldValidation=Strict``) rather than
pruned, so a field the schema lacks shows up as a failure instead of a silent loss.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from harness.cluster import Cluster
from harness.kubectl import kubectl_get
from harness.operator import OperatorProcess
from kit import CRD_DIR, server_minor
from shared_services import api, conditions, crdgen, status
from specs import (
    BAD_IMPORT_SPECS,
    BAD_REMOTE_CLUSTER_SPECS,
    GOOD_IMPORT_SPECS,
    GOOD_REMOTE_CLUSTER_SPECS,
    PYTHON_ONLY_IMPORTS,
)
from support import eventually

pytestmark = [pytest.mark.usefixtures("crds"), pytest.mark.releases]

Spec = dict[str, Any]


# --- talking to the server -------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the API server made of one create request."""

    status: int
    stored: Spec | None = None
    message: str = ""
    fields: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        """Whether the object was created."""
        return self.stored is not None


def _object(value: object) -> Spec:
    """A custom object as the client returns it: a JSON object, untyped."""
    assert isinstance(value, dict), value
    return value


def _submit(create: Callable[[], object]) -> Verdict:
    try:
        stored = _object(create())
    except k8s.ApiException as error:
        body = json.loads(error.body or "{}")
        causes = (body.get("details") or {}).get("causes") or []
        return Verdict(
            status=int(error.status or 0),
            message=str(body.get("message", "")),
            fields=tuple(str(cause.get("field", "")) for cause in causes),
        )
    return Verdict(status=201, stored=stored)


def _import_body(name: str, spec: Spec) -> Spec:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.IMPORT_KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


def _remote_cluster_body(name: str, spec: Spec) -> Spec:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.REMOTE_CLUSTER_KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


def _create_import(
    workload_api: k8s.ApiClient, *, namespace: str, name: str, spec: Spec
) -> Verdict:
    custom = k8s.CustomObjectsApi(workload_api)
    return _submit(
        lambda: custom.create_namespaced_custom_object(
            api.GROUP,
            api.VERSION,
            namespace,
            api.IMPORT_PLURAL,
            _import_body(name, spec),
            field_validation="Strict",
        )
    )


def _create_remote_cluster(workload_api: k8s.ApiClient, *, name: str, spec: Spec) -> Verdict:
    custom = k8s.CustomObjectsApi(workload_api)
    return _submit(
        lambda: custom.create_cluster_custom_object(
            api.GROUP,
            api.VERSION,
            api.REMOTE_CLUSTER_PLURAL,
            _remote_cluster_body(name, spec),
            field_validation="Strict",
        )
    )


def _delete_remote_cluster(workload_api: k8s.ApiClient, name: str) -> None:
    try:
        k8s.CustomObjectsApi(workload_api).delete_cluster_custom_object(
            api.GROUP, api.VERSION, api.REMOTE_CLUSTER_PLURAL, name
        )
    except k8s.ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def remote_cluster_name(workload_api: k8s.ApiClient) -> Iterator[str]:
    """A RemoteCluster name no other test uses, deleted after the test if it was created."""
    name = f"admission-{secrets.token_hex(4)}"
    yield name
    _delete_remote_cluster(workload_api, name)


@pytest.fixture(scope="module")
def admission_namespace(workload_api: k8s.ApiClient) -> Iterator[str]:
    """One namespace for the table cases, so that each case costs a single request.

    The case ids are unique across the tables and valid object names, so the cases can share
    it. The first request waits until the freshly installed CRD is served.
    """
    name = f"admission-{secrets.token_hex(3)}"
    core = k8s.CoreV1Api(workload_api)
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    custom = k8s.CustomObjectsApi(workload_api)

    def served() -> bool:
        try:
            custom.list_namespaced_custom_object(api.GROUP, api.VERSION, name, api.IMPORT_PLURAL)
        except k8s.ApiException as error:
            raise AssertionError(f"{api.IMPORT_PLURAL} not served yet: {error.status}") from error
        return True

    eventually(served, timeout=30)
    yield name
    core.delete_namespace(name)


def _python_refusal(parse: Callable[[], object]) -> str | None:
    """The operator's message for a spec it refuses, or None when it accepts the spec."""
    try:
        parse()
    except api.InvalidSpecError as error:
        return error.message
    return None


def _ids(table: list[Any]) -> list[str]:
    return [case[0] for case in table]


_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _ip_rule_messages() -> frozenset[str]:
    """Every message that the CRD's IP-library rules may give, from the full CRD."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations") or []:
                if crdgen.uses_ip_library(rule["rule"]):
                    found.add(rule["message"])
                    found.update(
                        m.replace("''", "'")
                        for m in _QUOTED.findall(rule.get("messageExpression", ""))
                    )
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in CRD_DIR.glob("*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    return frozenset(found)


_IP_RULE_MESSAGES = _ip_rule_messages()


@pytest.fixture(scope="module")
def minor(workload_api: k8s.ApiClient) -> int:
    """The workload cluster's Kubernetes minor release."""
    return server_minor(workload_api)


def _wait_invalid_spec(workload_api: k8s.ApiClient, namespace: str, name: str) -> Spec:
    """The Ready condition of an import once the operator has refused its spec."""
    custom = k8s.CustomObjectsApi(workload_api)

    def refused() -> Spec | None:
        found = _object(
            custom.get_namespaced_custom_object(
                api.GROUP, api.VERSION, namespace, api.IMPORT_PLURAL, name
            )
        )
        for condition in (found.get("status") or {}).get("conditions") or []:
            if condition["type"] == "Ready" and condition["reason"] == "InvalidSpec":
                return dict(condition)
        return None

    return eventually(refused, timeout=30)


# --- SharedServiceImport specs ----------------------------------------------------------------


@pytest.mark.parametrize(("case", "spec"), GOOD_IMPORT_SPECS, ids=_ids(GOOD_IMPORT_SPECS))
def test_good_import_spec_is_accepted_by_both(
    case: str, spec: Spec, workload_api: k8s.ApiClient, admission_namespace: str
) -> None:
    verdict = _create_import(workload_api, namespace=admission_namespace, name=case, spec=spec)
    refusal = _python_refusal(lambda: api.parse_import_spec(spec, import_name=case))
    assert (verdict.accepted, refusal) == (True, None), verdict
    assert verdict.stored is not None
    # What a reader of the stored object sees is what the author meant.
    assert api.ImportSpec.model_validate(verdict.stored["spec"]) == api.ImportSpec.model_validate(
        spec
    )


@pytest.mark.parametrize(("case", "spec", "field"), BAD_IMPORT_SPECS, ids=_ids(BAD_IMPORT_SPECS))
def test_bad_import_spec_is_refused_by_both_naming_the_field(
    case: str,
    spec: Spec,
    field: str,
    workload_api: k8s.ApiClient,
    admission_namespace: str,
    minor: int,
) -> None:
    verdict = _create_import(workload_api, namespace=admission_namespace, name=case, spec=spec)
    refusal = _python_refusal(lambda: api.parse_import_spec(spec, import_name=case))
    if verdict.accepted and minor < crdgen.IP_LIBRARY_MINOR:
        # Only a rule of the IP library, which this release's CEL lacks, may let it through;
        # the operator says what the server would have said (the last test sees it do so).
        assert refusal is not None, verdict
        assert field in refusal
        assert any(message in refusal for message in _IP_RULE_MESSAGES), refusal
        return
    assert (verdict.accepted, refusal is None) == (False, False), (verdict, refusal)
    assert verdict.status == 422, verdict
    assert field in verdict.message, verdict
    # The refusal is pinned on that field, not just mentioned in passing.
    assert any(cause.startswith(field) for cause in verdict.fields), verdict
    assert refusal is not None
    assert field in refusal


@pytest.mark.parametrize(
    ("case", "name", "spec", "fragment"), PYTHON_ONLY_IMPORTS, ids=_ids(PYTHON_ONLY_IMPORTS)
)
def test_python_only_rule_is_accepted_by_the_server_and_reported_by_the_operator(
    case: str,
    name: str,
    spec: Spec,
    fragment: str,
    workload_api: k8s.ApiClient,
    admission_namespace: str,
) -> None:
    verdict = _create_import(workload_api, namespace=admission_namespace, name=name, spec=spec)
    assert verdict.accepted, verdict
    refusal = _python_refusal(lambda: api.parse_import_spec(spec, import_name=name))
    assert refusal is not None
    assert refusal.startswith(fragment)
    # The message says how to fix it, and the fix is accepted.
    assert "spec.serviceName" in refusal
    assert (
        _python_refusal(
            lambda: api.parse_import_spec({**spec, "serviceName": "db"}, import_name=name)
        )
        is None
    )


# --- RemoteCluster specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "spec"), GOOD_REMOTE_CLUSTER_SPECS, ids=_ids(GOOD_REMOTE_CLUSTER_SPECS)
)
def test_good_remote_cluster_spec_is_accepted_by_both(
    case: str, spec: Spec, workload_api: k8s.ApiClient, remote_cluster_name: str
) -> None:
    verdict = _create_remote_cluster(workload_api, name=remote_cluster_name, spec=spec)
    refusal = _python_refusal(lambda: api.parse_remote_cluster_spec(spec))
    assert (verdict.accepted, refusal) == (True, None), verdict
    assert verdict.stored is not None
    assert api.RemoteClusterSpec.model_validate(
        verdict.stored["spec"]
    ) == api.RemoteClusterSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("case", "spec", "field"), BAD_REMOTE_CLUSTER_SPECS, ids=_ids(BAD_REMOTE_CLUSTER_SPECS)
)
def test_bad_remote_cluster_spec_is_refused_by_both_naming_the_field(
    case: str, spec: Spec, field: str, workload_api: k8s.ApiClient, remote_cluster_name: str
) -> None:
    verdict = _create_remote_cluster(workload_api, name=remote_cluster_name, spec=spec)
    refusal = _python_refusal(lambda: api.parse_remote_cluster_spec(spec))
    assert (verdict.accepted, refusal is None) == (False, False), (verdict, refusal)
    assert verdict.status == 422, verdict
    assert field in verdict.message, verdict
    # The refusal is pinned on that field, not just mentioned in passing.
    assert any(cause.startswith(field) for cause in verdict.fields), verdict
    assert refusal is not None
    assert field in refusal


# --- status subresource ----------------------------------------------------------------------


def _import_status(generation: int) -> Spec:
    at = "2024-05-01T12:00:00Z"
    return {
        "observedGeneration": generation,
        "addresses": ["192.0.2.10", "2001:db8::10"],
        "ports": [
            {"name": "postgres", "port": 5432, "targetPort": 5432, "protocol": "TCP"},
            {"name": "metrics", "port": 9187, "targetPort": 9100, "protocol": "TCP"},
        ],
        "lastChangeTime": at,
        "conditions": [
            conditions.condition(
                type_="Ready",
                status="True",
                reason="Synced",
                message="Service db points at 192.0.2.10, 2001:db8::10",
                previous=[],
                generation=generation,
                at=at,
            ),
            conditions.condition(
                type_="SourceResolved",
                status="True",
                reason="Resolved",
                message="db.lb.example.internal resolved to 2 addresses",
                previous=[],
                generation=generation,
                at=at,
            ),
        ],
    }


def _remote_cluster_status(generation: int) -> Spec:
    at = "2024-05-01T12:00:00Z"
    return {
        "conditions": [
            conditions.condition(
                type_="Connected",
                status="True",
                reason="Connected",
                message="the central cluster answers",
                previous=[],
                generation=generation,
                at=at,
            )
        ],
        "serverVersion": "v1.37.2",
        "lastContactTime": at,
    }


def test_import_status_round_trips_through_the_status_subresource(
    namespace: str, workload_api: k8s.ApiClient
) -> None:
    custom = k8s.CustomObjectsApi(workload_api)
    spec = {"source": {"hostname": "db.lb.example.internal"}, "ports": [{"port": 5432}]}
    created = _object(
        custom.create_namespaced_custom_object(
            api.GROUP, api.VERSION, namespace, api.IMPORT_PLURAL, _import_body("db", spec)
        )
    )
    status = _import_status(created["metadata"]["generation"])
    custom.patch_namespaced_custom_object_status(
        api.GROUP,
        api.VERSION,
        namespace,
        api.IMPORT_PLURAL,
        "db",
        {"status": status},
        field_validation="Strict",
    )
    stored = _object(
        custom.get_namespaced_custom_object(
            api.GROUP, api.VERSION, namespace, api.IMPORT_PLURAL, "db"
        )
    )
    assert stored["status"] == status
    assert api.ImportStatus.model_validate(stored["status"]).addresses == tuple(status["addresses"])
    # The status subresource leaves the spec alone, and the spec does not move the status.
    assert stored["spec"] == created["spec"]
    assert stored["metadata"]["generation"] == created["metadata"]["generation"]


def test_remote_cluster_status_round_trips_through_the_status_subresource(
    workload_api: k8s.ApiClient, remote_cluster_name: str
) -> None:
    custom = k8s.CustomObjectsApi(workload_api)
    created = _object(
        custom.create_cluster_custom_object(
            api.GROUP,
            api.VERSION,
            api.REMOTE_CLUSTER_PLURAL,
            _remote_cluster_body(remote_cluster_name, {"kubeconfigSecretRef": {"name": "s"}}),
        )
    )
    status = _remote_cluster_status(created["metadata"]["generation"])
    custom.patch_cluster_custom_object_status(
        api.GROUP,
        api.VERSION,
        api.REMOTE_CLUSTER_PLURAL,
        remote_cluster_name,
        {"status": status},
        field_validation="Strict",
    )
    stored = _object(
        custom.get_cluster_custom_object(
            api.GROUP, api.VERSION, api.REMOTE_CLUSTER_PLURAL, remote_cluster_name
        )
    )
    assert stored["status"] == status
    assert api.RemoteClusterStatus.model_validate(stored["status"]).server_version == "v1.37.2"


# --- printer columns -------------------------------------------------------------------------


@pytest.fixture
def no_operator(operator: OperatorProcess) -> Iterator[None]:
    """The session's operator stopped: it would rewrite the statuses these tests write."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()


def test_kubectl_get_ssi_prints_source_addresses_and_readiness(
    namespace: str,
    workload: Cluster,
    workload_api: k8s.ApiClient,
    tmp_path: Path,
    no_operator: None,
) -> None:
    custom = k8s.CustomObjectsApi(workload_api)
    remote = {"cluster": "sup", "namespace": "shared-db", "name": "pg"}
    sources: dict[str, Spec] = {
        "by-remote": {"source": {"remoteService": remote}},
        "by-hostname": {"source": {"hostname": "db.lb.example.internal"}, "ports": [{"port": 1}]},
        "by-address": {
            "source": {"addresses": ["198.51.100.7"]},
            "ports": [{"port": 1}],
            "serviceName": "legacy-db",
        },
    }
    for name, spec in sources.items():
        custom.create_namespaced_custom_object(
            api.GROUP, api.VERSION, namespace, api.IMPORT_PLURAL, _import_body(name, spec)
        )
        # The status the operator writes: the source in one line and the local Service.
        shown = status.Shown.of(api.parse_import_spec(spec, import_name=name), name)
        custom.patch_namespaced_custom_object_status(
            api.GROUP,
            api.VERSION,
            namespace,
            api.IMPORT_PLURAL,
            name,
            {
                "status": {
                    **_import_status(1),
                    "source": shown.source,
                    "serviceName": shown.service_name,
                }
            },
        )
    custom.create_namespaced_custom_object(
        api.GROUP,
        api.VERSION,
        namespace,
        api.IMPORT_PLURAL,
        _import_body("unseen", {"source": {"remoteService": remote}}),
    )
    kubeconfig = workload.write_kubeconfig(tmp_path / "k")

    table = kubectl_get(kubeconfig, "ssi", "-n", namespace)
    assert table.headers == ["NAME", "SOURCE", "ADDRESSES", "READY", "AGE"]
    assert sorted(table.rows) == sorted([*sources, "unseen"])
    # Each kind of source shows up in the one Source column, in one line, not as JSON.
    assert table.rows["by-remote"]["SOURCE"] == "sup/shared-db/pg"
    assert table.rows["by-hostname"]["SOURCE"] == "dns:db.lb.example.internal"
    assert table.rows["by-address"]["SOURCE"] == "198.51.100.7"
    assert json.loads(table.rows["by-hostname"]["ADDRESSES"]) == ["192.0.2.10", "2001:db8::10"]
    assert table.rows["by-hostname"]["READY"] == "True"
    # Before the operator writes a status, the cells are blank rather than wrong.
    unseen = table.rows["unseen"]
    assert (unseen["SOURCE"], unseen["ADDRESSES"], unseen["READY"]) == ("", "", "")
    assert all(row["AGE"] for row in table.rows.values())

    wide = kubectl_get(kubeconfig, "sharedserviceimports", "-n", namespace, "-o", "wide")
    assert wide.headers == ["NAME", "SOURCE", "ADDRESSES", "READY", "REASON", "SERVICE", "AGE"]
    assert wide.rows["by-hostname"]["REASON"] == "Synced"
    assert wide.rows["by-remote"]["SERVICE"] == "by-remote"
    assert wide.rows["by-address"]["SERVICE"] == "legacy-db"


def test_kubectl_get_remoteclusters_prints_connection_and_version(
    workload: Cluster,
    workload_api: k8s.ApiClient,
    remote_cluster_name: str,
    tmp_path: Path,
    no_operator: None,
) -> None:
    custom = k8s.CustomObjectsApi(workload_api)
    custom.create_cluster_custom_object(
        api.GROUP,
        api.VERSION,
        api.REMOTE_CLUSTER_PLURAL,
        _remote_cluster_body(remote_cluster_name, {"kubeconfigSecretRef": {"name": "s"}}),
    )
    custom.patch_cluster_custom_object_status(
        api.GROUP,
        api.VERSION,
        api.REMOTE_CLUSTER_PLURAL,
        remote_cluster_name,
        {"status": _remote_cluster_status(1)},
    )
    kubeconfig = workload.write_kubeconfig(tmp_path / "k")

    for resource in ("remoteclusters", "rcl"):
        table = kubectl_get(kubeconfig, resource)
        assert table.headers == ["NAME", "CONNECTED", "VERSION", "AGE"]
        ours = table.rows[remote_cluster_name]
        assert (ours["CONNECTED"], ours["VERSION"]) == ("True", "v1.37.2")
        assert ours["AGE"]


# --- what only the operator refuses on an older release --------------------------------------


def test_bad_specs_the_server_let_through_are_refused_by_the_operator(
    workload_api: k8s.ApiClient, admission_namespace: str, operator: OperatorProcess
) -> None:
    """Last in this module: the operator, once started, would rewrite the statuses above."""
    custom = k8s.CustomObjectsApi(workload_api)
    listed = _object(
        custom.list_namespaced_custom_object(
            api.GROUP, api.VERSION, admission_namespace, api.IMPORT_PLURAL
        )
    )
    stored = {item["metadata"]["name"] for item in listed["items"]}
    let_through = [(case, spec) for case, spec, _ in BAD_IMPORT_SPECS if case in stored]
    if not let_through:
        pytest.skip("this release refused every bad spec at admission")
    for case, spec in let_through:
        refusal = _python_refusal(
            lambda spec=spec, case=case: api.parse_import_spec(spec, import_name=case)
        )
        assert refusal is not None
        ready = _wait_invalid_spec(workload_api, admission_namespace, case)
        assert ready["status"] == "False"
        assert refusal in ready["message"], (ready, operator.log_tail())
