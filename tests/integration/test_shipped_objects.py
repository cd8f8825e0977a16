"""What deploy/ ships for Argo CD and the Prometheus Operator is accepted by their real CRDs.

The workload cluster gets the CustomResourceDefinitions of the Argo CD and Prometheus
Operator releases pinned in tests/tools/crds/go.mod, read from the Go module cache. Every
object of deploy/argocd/ (the Applications, the ApplicationSet, the argocd-cm patch), the
Application that the ApplicationSet's template makes for a cluster, and the chart's
ServiceMonitor, PrometheusRule and dashboard ConfigMap are created there with strict field
validation, and come back with every field they were sent: nothing unknown, misplaced,
refused or pruned. Objects with a misspelt field or a malformed duration are refused, so
the check has teeth.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from deploykit import DEPLOY, Helm, kubectl, write_values
from harness import appset
from harness.cluster import Cluster
from harness.gomodules import module_dir
from harness.helm import ensure_helm
from support import eventually

ARGO_CD = "github.com/argoproj/argo-cd/v3"
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator"
CRD_FILES = {
    ARGO_CD: [
        "manifests/crds/application-crd.yaml",
        "manifests/crds/applicationset-crd.yaml",
        "manifests/crds/appproject-crd.yaml",
    ],
    PROMETHEUS_OPERATOR: [
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ],
}


@pytest.fixture(scope="module")
def admin(workload: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workload.write_kubeconfig(tmp_path_factory.mktemp("shipped") / "workload.kubeconfig")


@pytest.fixture(scope="module")
def real_crds(admin: Path, workload_api: k8s.ApiClient) -> Iterator[list[str]]:
    """The pinned releases' CRDs, served by the workload cluster for this module's tests."""
    paths = [module_dir(module) / name for module, names in CRD_FILES.items() for name in names]
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in paths]
    # Server-side: the ApplicationSet CRD is too large for kubectl's last-applied annotation.
    files = [arg for path in paths for arg in ("-f", str(path))]
    kubectl(admin, "apply", "--server-side", "--force-conflicts", *files)
    extensions = k8s.ApiextensionsV1Api(workload_api)

    def established() -> bool:
        for name in names:
            conditions = extensions.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    eventually(established, timeout=60)
    yield names
    kubectl(admin, "delete", "--wait=false", *files)


@pytest.fixture
def scratch(workload_api: k8s.ApiClient) -> Iterator[str]:
    """A namespace to create the shipped objects in (Argo CD's own is not needed for that)."""
    name = f"shipped-{secrets.token_hex(3)}"
    k8s.CoreV1Api(workload_api).create_namespace({"metadata": {"name": name}})
    yield name
    k8s.CoreV1Api(workload_api).delete_namespace(name)


def _create(admin: Path, namespace: str, obj: dict[str, Any], *, check: bool = True) -> Any:
    """Create ``obj`` in ``namespace`` as kubectl does, refusing unknown fields."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"]["namespace"] = namespace
    result = kubectl(
        admin,
        "create",
        "--validate=strict",
        "-o",
        "json",
        "-f",
        "-",
        stdin=json.dumps(obj),
        check=check,
    )
    return json.loads(result.stdout) if result.returncode == 0 else result


def _missing(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of what was sent but did not come back (pruned, or changed)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path or "/"]
        return [
            gone
            for key, value in sent.items()
            for gone in (
                _missing(value, stored[key], f"{path}/{key}")
                if key in stored
                else [f"{path}/{key}"]
            )
        ]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(sent) != len(stored):
            return [path]
        return [
            gone
            for i, (a, b) in enumerate(zip(sent, stored, strict=True))
            for gone in _missing(a, b, f"{path}/{i}")
        ]
    return [] if sent == stored else [path]


def _accepted(admin: Path, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = _create(admin, namespace, obj)
    for field in ("spec", "data"):
        if field in obj:
            assert _missing(obj[field], stored[field]) == [], f"{obj['kind']} lost fields"
    return stored


def _argocd_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((DEPLOY / "argocd").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and "kind" in doc  # not argo-cd-values.yaml, values of another chart
    ]


# One cluster's parameters as Argo CD's cluster generator gives them with goTemplate: true
# (argo-cd v3.5, applicationset/generators/cluster.go): metadata holds labels and, only when
# the Secret has any, annotations.
CLUSTER: dict[str, Any] = {
    "name": "tkc-01",
    "nameNormalized": "tkc-01",
    "server": "https://tkc-01.example.internal:6443",
    "project": "",
    "metadata": {
        "labels": {"sharedservices.io/workload-cluster": "true"},
        "annotations": {
            "sharedservices.io/remote-cluster": "supervisor-west",
            "sharedservices.io/allowed-cidrs": "198.51.100.0/24, 2001:db8:100::/56",
        },
    },
}


def _instantiate(application_set: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    """The Application the ApplicationSet makes for ``cluster``, rendered as Argo CD does."""
    spec = application_set["spec"]
    (generator,) = spec["generators"]
    params = {**cluster, "values": generator["clusters"]["values"]}
    template = appset.render(spec["template"], params, spec.get("goTemplateOptions") or [])
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **template}


def test_argo_cd_objects_are_valid(
    real_crds: list[str], admin: Path, scratch: str, tmp_path: Path
) -> None:
    docs = _argocd_docs()
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["Application", "Application", "ApplicationSet", "ConfigMap"]
    for doc in docs:
        _accepted(admin, scratch, doc)

    # What the ApplicationSet makes for a registered cluster is a valid Application too,
    # with that cluster's values from its annotations, which the chart takes.
    (application_set,) = [doc for doc in docs if doc["kind"] == "ApplicationSet"]
    stored = _accepted(admin, scratch, _instantiate(application_set, CLUSTER))
    assert stored["metadata"]["name"] == "shared-services-tkc-01"
    assert stored["spec"]["destination"]["server"] == CLUSTER["server"]
    chart, imports = stored["spec"]["sources"]
    assert chart["path"] == "deploy/helm/shared-services-operator"
    assert (Path(DEPLOY.parent) / imports["path"]).is_dir()
    values = yaml.safe_load(chart["helm"]["values"])
    # The RemoteCluster's kubeconfig comes from a Secret made outside Git.
    assert values["remoteClusters"] == [
        {"name": "supervisor-west", "existingSecret": "supervisor-west-kubeconfig"}
    ]
    assert values["addressPolicy"] == {"allowedCIDRs": ["198.51.100.0/24", "2001:db8:100::/56"]}
    helm = Helm(ensure_helm(), home=tmp_path / "helm")
    rendered = helm.template("-f", str(write_values(tmp_path / "values.yaml", values)))
    remote = next(o for o in rendered if o["kind"] == "RemoteCluster")
    assert remote["metadata"]["name"] == "supervisor-west"
    assert remote["spec"]["kubeconfigSecretRef"]["name"] == "supervisor-west-kubeconfig"
    (container,) = next(o for o in rendered if o["kind"] == "Deployment")["spec"]["template"][
        "spec"
    ]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ALLOWED_CIDRS"] == "198.51.100.0/24,2001:db8:100::/56", env

    # A cluster registered with the label alone gets the defaults.
    bare = {
        **CLUSTER,
        "name": "tkc-02",
        "nameNormalized": "tkc-02",
        "metadata": {"labels": CLUSTER["metadata"]["labels"]},
    }
    chart = _accepted(admin, scratch, _instantiate(application_set, bare))["spec"]["sources"][0]
    values = yaml.safe_load(chart["helm"]["values"])
    assert values["remoteClusters"] == [
        {"name": "supervisor", "existingSecret": "supervisor-kubeconfig"}
    ]
    assert "addressPolicy" not in values


def test_a_template_error_fails_the_render() -> None:
    """The renderer refuses what Argo CD refuses, so the check above has teeth."""
    with pytest.raises(appset.RenderError, match="map has no entry for key"):
        appset.render("{{ .metadata.nothing }}", CLUSTER, ["missingkey=error"])


def test_a_misspelt_argo_cd_field_is_refused(
    real_crds: list[str], admin: Path, scratch: str
) -> None:
    (application, *_) = [doc for doc in _argocd_docs() if doc["kind"] == "Application"]
    application["spec"]["syncPolicy"]["automatic"] = application["spec"]["syncPolicy"].pop(
        "automated"
    )
    refused = _create(admin, scratch, application, check=False)
    assert refused.returncode != 0
    assert 'unknown field "spec.syncPolicy.automatic"' in refused.stderr


@pytest.fixture(scope="module")
def monitoring_objects(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    helm = Helm(ensure_helm(), home=tmp_path_factory.mktemp("helm"))
    objects = helm.template(
        "--set",
        "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.labels.release=kps",
        "--set",
        "metrics.prometheusRule.enabled=true,metrics.prometheusRule.alertLabels.team=platform",
        "--set",
        "metrics.grafanaDashboard.enabled=true",
    )
    return [o for o in objects if o["kind"] in ("ServiceMonitor", "PrometheusRule", "ConfigMap")]


def test_chart_monitoring_objects_are_valid(
    real_crds: list[str], admin: Path, scratch: str, monitoring_objects: list[dict[str, Any]]
) -> None:
    assert sorted(o["kind"] for o in monitoring_objects) == [
        "ConfigMap",
        "PrometheusRule",
        "ServiceMonitor",
    ]
    for obj in monitoring_objects:
        _accepted(admin, scratch, obj)


def test_a_malformed_rule_is_refused(
    real_crds: list[str], admin: Path, scratch: str, monitoring_objects: list[dict[str, Any]]
) -> None:
    (rule,) = [o for o in monitoring_objects if o["kind"] == "PrometheusRule"]
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    refused = _create(admin, scratch, rule, check=False)
    assert refused.returncode != 0
    assert "spec.groups[0].rules[0].for" in refused.stderr
