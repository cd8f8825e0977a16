"""The chart's alerts and dashboard hold against the real tools and a running operator.

promtool (built from the pinned Prometheus module) accepts the PrometheusRule's rules, lint
included, and passes their unit tests (``monitoring/alerts_test.yaml``), which fire every
alert. Every series that the rules, their tests' input and the Grafana dashboard's panels
read is one that the operator really exports, with labels it really sets, as seen in a
scrape of the session's operator driven into the states the alerts are about (Ready,
Conflict, last known addresses, a RemoteCluster whose credentials stopped working); only
Prometheus's own ``up`` and the target labels a ServiceMonitor scrape adds come from
elsewhere.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from deploykit import CHART, Helm, find
from harness.cluster import Cluster
from harness.helm import ensure_helm
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from harness.promtool import ensure_promtool, ensure_selectors
from kit import Kit
from support import eventually

HERE = Path(__file__).resolve().parent
RULE_TESTS = HERE / "monitoring" / "alerts_test.yaml"
DASHBOARD = CHART / "dashboards" / "shared-services-operator.json"
RELEASE, RELEASE_NAMESPACE = "shared-services-operator", "shared-services-system"

# What a scrape through the chart's ServiceMonitor adds to every series (the Prometheus
# Operator's relabelling): none of the operator's own labels may be one of them.
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
)
# Series that Prometheus makes for every target by itself, with the target labels only.
PROMETHEUS_SERIES = frozenset({"up"})
# Labels whose values are names a user picks (RemoteClusters), not a fixed set.
NAME_LABELS = frozenset({"cluster", "target"})
# What a platform team reads first: imports by state, propagation latency, remote
# connection state, writes, API requests. The dashboard must show them all.
DASHBOARD_MUST_SHOW = frozenset(
    {
        "shared_services_imports",
        "shared_services_propagation_seconds_bucket",
        "shared_services_remote_cluster_connected",
        "shared_services_remote_watches",
        "shared_services_writes_total",
        "shared_services_status_writes_total",
        "shared_services_api_requests_total",
    }
)
# Grafana's variables, as a query reaches Prometheus (any value does for parsing).
GRAFANA_VARIABLES = {
    "__rate_interval": "2m",
    "__interval": "1m",
    "__range": "6h",
    "namespace": ".*",
    "job": ".*",
}

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Exported:
    """What one scrape of the operator held: each metric's label sets."""

    series: Mapping[str, list[dict[str, str]]]

    def label_sets(self, metric: str) -> set[frozenset[str]]:
        return {frozenset(labels) for labels in self.series.get(metric, [])}

    def label_names(self, metric: str) -> set[str]:
        return {name for labels in self.series.get(metric, []) for name in labels}

    def values(self, metric: str, label: str) -> set[str]:
        return {labels[label] for labels in self.series.get(metric, []) if label in labels}


def parse_samples(samples: Mapping[str, float]) -> Exported:
    """Split ``OperatorProcess.metrics()``'s ``name{label="value",...}`` keys."""
    series: dict[str, list[dict[str, str]]] = {}
    for key in samples:
        match = _SAMPLE.match(key)
        assert match, key
        labels = dict(_LABEL.findall(match["labels"] or ""))
        series.setdefault(match["name"], []).append(labels)
    return Exported(series=series)


def selectors(expressions: Mapping[str, str]) -> dict[str, Any]:
    """What each expression reads, by Prometheus's own parser (``build.sh selectors``)."""
    result = subprocess.run(
        [str(ensure_selectors())],
        input=json.dumps(dict(expressions)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    errors = {name: found["error"] for name, found in parsed.items() if found.get("error")}
    assert not errors, errors
    return parsed


def _seen(value: str, values: set[str], *, label: str) -> bool:
    # A bucket's bound: Prometheus 3 stores the exposition's "1.0" as "1".
    if label == "le":
        return float(value) in {float(v) for v in values}
    return value in values


def unexported(exported: Exported, reads: Mapping[str, Any]) -> list[str]:
    """Every selector, matcher and grouping in ``reads`` that the operator's scrape lacks."""
    problems: list[str] = []
    for name, found in reads.items():
        for selector in found["selectors"]:
            metric = selector["metric"]
            if metric in PROMETHEUS_SERIES:
                own: set[str] = set()
            elif metric in exported.series:
                own = exported.label_names(metric)
            else:
                problems.append(f"{name}: {metric or 'a selector without a name'} is not exported")
                continue
            for matcher in selector["matchers"]:
                label = matcher["label"]
                if label in TARGET_LABELS:
                    continue
                if label not in own:
                    problems.append(f"{name}: {metric} has no label {label}")
                elif (
                    matcher["op"] in ("=", "!=")
                    and label not in NAME_LABELS
                    and not _seen(matcher["value"], exported.values(metric, label), label=label)
                ):
                    problems.append(
                        f"{name}: {metric}{{{label}={matcher['value']!r}}} never seen; "
                        f"seen: {sorted(exported.values(metric, label))}"
                    )
        for grouping in found["groupings"]:
            known = set(TARGET_LABELS)
            for metric in grouping["metrics"]:
                known |= exported.label_names(metric)
            missing = set(grouping["labels"]) - known
            if missing:
                problems.append(
                    f"{name}: {grouping['clause']} ({', '.join(sorted(missing))}) is on none "
                    f"of {grouping['metrics']}"
                )
    return problems


# -- the operator in the states the alerts are about -------------------------------------


@pytest.fixture(scope="module")
def exported(
    operator: OperatorProcess,
    supervisor: Cluster,
    supervisor_api: k8s.ApiClient,
    workload_api: k8s.ApiClient,
) -> Iterator[Exported]:
    """One scrape of the session's operator after it went through Ready, Conflict, a missing
    RemoteCluster and losing a RemoteCluster's credentials (last known addresses,
    disconnected), with a VIP move."""
    namespace = f"mon-{secrets.token_hex(3)}"
    for api in (workload_api, supervisor_api):
        k8s.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    kit = Kit(
        namespace=namespace,
        supervisor=supervisor,
        supervisor_api=supervisor_api,
        workload_api=workload_api,
        operator=operator,
    )
    try:
        vip = kit.load_balancer("db")
        cluster = kit.remote_cluster()
        kit.import_remote("db", "db")
        kit.wait_addresses("db", {"IPv4": [vip]})
        kit.set_ingress("db", [{"ip": "198.51.100.71"}])
        kit.wait_addresses("db", {"IPv4": ["198.51.100.71"]})

        kit.core.create_namespaced_service(
            namespace, {"metadata": {"name": "taken"}, "spec": {"ports": [{"port": 80}]}}
        )
        kit.create_import(
            "taken", {"source": {"addresses": ["203.0.113.50"]}, "ports": [{"port": 80}]}
        )
        kit.wait_condition("taken", "Ready", "False", "Conflict")
        # As when Git brings an import before the RemoteCluster it reads from.
        kit.create_import(
            "early",
            {
                "source": {
                    "remoteService": {
                        "cluster": f"later-{namespace}",
                        "namespace": namespace,
                        "name": "db",
                    }
                }
            },
        )
        kit.wait_condition("early", "Ready", "False", "RemoteClusterNotFound")

        broken = kit.supervisor.kubeconfig_yaml(token="not-a-valid-token")
        kit.core.patch_namespaced_secret(
            f"{cluster}-kubeconfig",
            OPERATOR_NAMESPACE,
            {"data": {"kubeconfig": base64.b64encode(broken.encode()).decode()}},
        )
        kit.wait_condition("db", "Ready", "True", "LastKnownAddresses")

        def scraped() -> Exported | None:
            samples = operator.metrics()
            connected = f'shared_services_remote_cluster_connected{{cluster="{cluster}"}}'
            last_known = 'shared_services_imports{ready="True",reason="LastKnownAddresses"}'
            if samples.get(connected) == 0 and samples.get(last_known, 0) >= 1:
                return parse_samples(samples)
            return None

        yield eventually(scraped)
    finally:
        kit.cleanup()
        for api in (workload_api, supervisor_api):
            k8s.CoreV1Api(api).delete_namespace(namespace)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(ensure_helm(), home=tmp_path_factory.mktemp("helm"))


def _render_rules(helm: Helm) -> dict[str, Any]:
    """The PrometheusRule's spec, rendered for the release the rule tests expect."""
    out = helm.run(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--show-only",
        "templates/prometheusrule.yaml",
    ).stdout
    (rule,) = [doc for doc in yaml.safe_load_all(out) if doc]
    spec: dict[str, Any] = rule["spec"]
    return spec


@pytest.fixture(scope="module")
def rules(helm: Helm) -> dict[str, Any]:
    return _render_rules(helm)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ensure_promtool()), *args], capture_output=True, text=True, timeout=120, check=False
    )


# -- the rules ------------------------------------------------------------------------------


def test_promtool_checks_and_tests_the_rules(rules: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    checked = _promtool(
        "check", "rules", "--lint=all", "--lint-fatal", str(tmp_path / "rules.yaml")
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", str(tmp_path / RULE_TESTS.name))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_firing_and_quiet(rules: dict[str, Any]) -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["rules.yaml"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert len(alerts) >= 7
    assert alerts - fired == set(), "alerts that no test makes fire"
    assert alerts - quiet == set(), "alerts that no test keeps quiet"


def test_the_operators_labels_leave_the_target_labels_alone(exported: Exported) -> None:
    # A series of its own with, say, a namespace label would reach Prometheus as
    # exported_namespace, and every rule selecting the release's namespace would miss it.
    clashes = {
        metric: sorted(exported.label_names(metric) & TARGET_LABELS)
        for metric in exported.series
        if metric.startswith("shared_services_") and exported.label_names(metric) & TARGET_LABELS
    }
    assert clashes == {}


def test_rules_read_what_the_operator_exports(exported: Exported, rules: dict[str, Any]) -> None:
    expressions = {
        rule.get("alert", rule.get("record")): rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
    }
    assert len(expressions) >= 7
    assert unexported(exported, selectors(expressions)) == []


def test_rule_tests_feed_series_shaped_like_the_scrape(exported: Exported) -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    inputs = {
        f"{case['name']} #{i}": item["series"]
        for case in cases
        for i, item in enumerate(case["input_series"])
    }
    reads = selectors(inputs)
    assert unexported(exported, reads) == []
    problems = []
    for name, found in reads.items():
        (selector,) = found["selectors"]
        metric = selector["metric"]
        labels = {m["label"]: m["value"] for m in selector["matchers"]}
        # Every series as a ServiceMonitor scrape gives it: all the target labels ...
        if TARGET_LABELS - set(labels):
            problems.append(f"{name}: lacks target labels {sorted(TARGET_LABELS - set(labels))}")
        # ... and exactly the label names the operator puts on that metric.
        own = frozenset(set(labels) - TARGET_LABELS)
        expected = {frozenset()} if metric in PROMETHEUS_SERIES else exported.label_sets(metric)
        if own not in expected:
            problems.append(f"{name}: {metric} labels {sorted(own)}, exported {expected}")
    assert problems == []


# -- the dashboard --------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _as_prometheus_gets_it(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        assert name in GRAFANA_VARIABLES, f"unknown Grafana variable ${name} in {expr}"
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))", value, expr)


def test_dashboard_panels_read_what_the_operator_exports(exported: Exported) -> None:
    dashboard = _dashboard()
    queries: dict[str, str] = {}
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} queries nothing"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            queries[f"{panel['title']} {target['refId']}"] = _as_prometheus_gets_it(target["expr"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        # label_values(<selector>, <label>): the selector is PromQL, the label one it carries.
        match = re.fullmatch(
            r"label_values\((?P<selector>.+), *(?P<label>\w+)\)", variable["definition"]
        )
        assert match, variable["definition"]
        queries[f"variable {variable['name']}"] = _as_prometheus_gets_it(
            f"count by ({match['label']}) ({match['selector']})"
        )
    reads = selectors(queries)
    assert unexported(exported, reads) == []
    shown = {s["metric"] for found in reads.values() for s in found["selectors"]}
    assert DASHBOARD_MUST_SHOW - shown == set()
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_ships_in_the_sidecars_config_map(helm: Helm) -> None:
    objects = helm.template(
        "--set",
        "metrics.grafanaDashboard.enabled=true",
        "--set",
        "metrics.grafanaDashboard.annotations.grafana_folder=Platform",
    )
    config_map = find(objects, "ConfigMap", "t-shared-services-operator-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    assert config_map["metadata"]["namespace"] == "sso"
    assert json.loads(config_map["data"]["shared-services-operator.json"]) == _dashboard()
    elsewhere = helm.template(
        "--set", "metrics.grafanaDashboard.enabled=true,metrics.grafanaDashboard.namespace=grafana"
    )
    assert find(elsewhere, "ConfigMap")["metadata"]["namespace"] == "grafana"
    # Off by default, like the ServiceMonitor and the PrometheusRule.
    kinds = {o["kind"] for o in helm.template()}
    assert not kinds & {"ConfigMap", "PrometheusRule", "ServiceMonitor"}


def test_monitoring_values_are_checked(helm: Helm) -> None:
    refused = {
        "metrics.prometheusRule.notReadyFor=5 minutes": "/metrics/prometheusRule/notReadyFor",
        "metrics.prometheusRule.propagationP99Seconds=0": "propagationP99Seconds",
        "metrics.prometheusRule.severity=page": "additional properties 'severity' not allowed",
        "metrics.grafanaDashboard.namespace=Grafana_NS": "/metrics/grafanaDashboard/namespace",
        "metrics.prometheusRule.enabled=true,metrics.service.enabled=false": (
            "metrics.prometheusRule.enabled needs metrics.service.enabled"
        ),
    }
    for setting, complaint in refused.items():
        result = helm.run("template", "t", str(CHART), "--set", setting, check=False)
        assert result.returncode != 0, setting
        assert complaint in result.stderr, result.stderr
    lint = helm.run(
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.grafanaDashboard.enabled=true,metrics.prometheusRule.alertLabels.team=platform",
    )
    assert "0 chart(s) failed" in lint.stdout
