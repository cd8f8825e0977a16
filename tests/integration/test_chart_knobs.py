"""The values platform teams set on every chart: common labels, a registry, more flags, the
leader election's timings, and a values file for running highly available.

Each is rendered with the project's helm, and where the operator reads the result, the
operator's own flag parser reads it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from deploykit import CHART, Helm, find, kubectl
from harness.cluster import Cluster
from harness.helm import ensure_helm
from shared_services.settings import Settings

SELECTED = {"Deployment", "PodDisruptionBudget", "Service", "NetworkPolicy", "ServiceMonitor"}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(ensure_helm(), home=tmp_path_factory.mktemp("helm"))


def _everything(helm: Helm, *args: str) -> list[dict[str, Any]]:
    """Every object the chart can render, with the optional ones on."""
    return helm.template(
        "--set",
        "remoteClusters[0].name=supervisor",
        "--set",
        "remoteClusters[0].existingSecret=supervisor-kubeconfig",
        "--set-string",
        "remoteClusters[0].vsphereSignIn.username=reader@vsphere.example",
        "--set-string",
        "remoteClusters[0].vsphereSignIn.password=placeholder",
        "--set",
        "watchNamespaces={team-a,team-b}",
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "networkPolicy.egress.apiServer[0].cidr=192.0.2.1/32",
        "--set",
        "networkPolicy.egress.apiServer[0].ports={6443}",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.grafanaDashboard.enabled=true",
        *args,
    )


def _selectors(obj: dict[str, Any]) -> list[dict[str, str]]:
    spec = obj.get("spec") or {}
    found = [spec.get("selector") or {}, spec.get("podSelector") or {}]
    return [s.get("matchLabels", s) for s in found if s]


def test_common_labels_are_on_every_object_and_in_no_selector(helm: Helm) -> None:
    labels = {"team": "shop", "example.com/cost-centre": "cc-42"}
    objects = _everything(
        helm,
        *(
            a
            for k, v in labels.items()
            for a in ("--set", f"commonLabels.{k.replace('.', chr(92) + '.')}={v}")
        ),
    )
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "RemoteCluster",
        "CustomResourceDefinition",
        "ClusterRole",
        "Role",
        "Secret",
        "ValidatingAdmissionPolicy",
    } <= kinds
    for obj in objects:
        what = f"{obj['kind']} {obj['metadata']['name']}"
        assert labels.items() <= (obj["metadata"].get("labels") or {}).items(), what
        for selector in _selectors(obj):
            assert not labels.keys() & selector.keys(), what
    deployment = find(objects, "Deployment")
    assert labels.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert {o["kind"] for o in objects if _selectors(o)} >= SELECTED


@pytest.mark.parametrize(
    "label",
    ["app.kubernetes.io/name", "helm.sh/chart", "Bad Key", "team"],
)
def test_the_chart_s_own_labels_and_malformed_ones_are_refused(helm: Helm, label: str) -> None:
    value = "x" * 64 if label == "team" else "x"
    escaped = label.replace(".", "\\.")
    result = helm.run(
        "template", "t", str(CHART), "--set", f"commonLabels.{escaped}={value}", check=False
    )
    assert result.returncode != 0
    assert "commonLabels" in result.stderr or "propertyName" in result.stderr, result.stderr


def test_a_registry_comes_before_the_repository(helm: Helm) -> None:
    def image(*args: str) -> str:
        (container,) = find(helm.template(*args), "Deployment")["spec"]["template"]["spec"][
            "containers"
        ]
        return str(container["image"])

    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    default = image()
    assert default == f"shared-services-operator:{version}"
    assert image("--set", "image.registry=registry.example") == (
        f"registry.example/shared-services-operator:{version}"
    )
    assert image("--set", "image.registry=registry.example:5000/platform/") == (
        "registry.example:5000/platform/" + default
    )
    digest = "sha256:" + "a" * 64
    assert image("--set", "image.registry=registry.example", "--set", f"image.digest={digest}") == (
        f"registry.example/shared-services-operator@{digest}"
    )


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_extra_args_reach_the_operator(helm: Helm, monkeypatch: pytest.MonkeyPatch) -> None:
    container = _container(
        helm.template(
            "--set",
            "operator.verbose=true",
            "--set",
            "operator.extraArgs={--resync-seconds=300,--workers=4}",
        )
    )
    assert container["args"] == ["--verbose", "--resync-seconds=300", "--workers=4"]
    for item in container["env"]:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    settings = Settings.parse(container["args"])
    assert (settings.resync_seconds, settings.workers, settings.verbose) == (300.0, 4, True)
    assert "args" not in _container(helm.template())


def test_a_flag_and_its_value_may_be_two_items(helm: Helm, monkeypatch: pytest.MonkeyPatch) -> None:
    """["--workers", "16"], as a container's args are often written, and not a value alone."""
    container = _container(helm.template("--set-string", "operator.extraArgs={--workers,16}"))
    assert container["args"] == ["--workers", "16"]
    for item in container["env"]:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    assert Settings.parse(container["args"]).workers == 16
    refused = helm.run(
        "template", "t", str(CHART), "--set-string", "operator.extraArgs={8}", check=False
    )
    assert refused.returncode != 0
    assert "/operator/extraArgs/0" in refused.stderr, refused.stderr


def test_lease_timings_are_passed_with_leader_election_alone(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    def env(*args: str) -> dict[str, str]:
        return {e["name"]: e.get("value") for e in _container(helm.template(*args))["env"]}

    assert "LEASE_DURATION" not in env()
    given = env(
        "--set",
        "leaderElection.enabled=true",
        "--set",
        "leaderElection.leaseDuration=30",
        "--set",
        "leaderElection.renewDeadline=20",
        "--set",
        "leaderElection.retryPeriod=4",
    )
    assert (given["LEASE_DURATION"], given["RENEW_DEADLINE"], given["RETRY_PERIOD"]) == (
        "30",
        "20",
        "4",
    )
    for name in ("LEASE_DURATION", "RENEW_DEADLINE", "RETRY_PERIOD"):
        monkeypatch.setenv(name, given[name])
    settings = Settings.parse([])
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (
        30.0,
        20.0,
        4.0,
    )
    refused = helm.run(
        "template",
        "t",
        str(CHART),
        "--set",
        "leaderElection.enabled=true",
        "--set",
        "leaderElection.renewDeadline=15",
        check=False,
    )
    assert refused.returncode != 0
    assert "leaseDuration must be longer than renewDeadline" in refused.stderr


def test_the_high_availability_values(helm: Helm) -> None:
    values = CHART / "values-ha.yaml"
    lint = helm.run("lint", str(CHART), "-f", str(values))
    assert "0 chart(s) failed" in lint.stdout
    objects = helm.template("-f", str(values))
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    container = _container(objects)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LEADER_ELECT"] == "true"
    budget = find(objects, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    pod = deployment["spec"]["template"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    spread = pod["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for constraint in spread:
        selector = constraint["labelSelector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items(), selector
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]
    documented = yaml.safe_load(values.read_text())
    assert documented["leaderElection"] == {"enabled": True}


def test_the_high_availability_values_are_what_an_api_server_accepts(
    helm: Helm, workload: Cluster, tmp_path: Path
) -> None:
    """The spread constraints (matchLabelKeys among them) and the budget, checked server-side."""
    objects = helm.template("-f", str(CHART / "values-ha.yaml"), namespace="default")
    chosen = [o for o in objects if o["kind"] in {"Deployment", "PodDisruptionBudget"}]
    assert len(chosen) == 2
    kubeconfig = workload.write_kubeconfig(tmp_path / "kubeconfig")
    stdin = "\n---\n".join(yaml.safe_dump(o) for o in chosen)
    result = kubectl(
        kubeconfig, "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=stdin
    )
    assert "deployment.apps/t-shared-services-operator created (server dry run)" in result.stdout
