"""The chart's alerts and dashboard hold against the real tools and a running operator.

promtool (built from the pinned Prometheus module) accepts the PrometheusRule's rules, lint
included, and passes their unit tests (``monitoring/alerts_test.yaml``), which fire every
alert for one of two workload clusters and not the other, with the cluster's name among the
alert's labels; rendered with other values (``monitoring/overrides_test.yaml``), an alert
turned off is gone, an alert's severity is the one set, and the cluster label is the one
named. Every aggregation of every alert keeps the cluster label, every alert links its
runbook page, and every panel of the Grafana dashboard filters by its Cluster variable.
Every series that the rules, their tests' input and the dashboard's panels read is one that
the operator really exports, with labels it really sets, as seen in a scrape of the
session's operator driven into the states the alerts are about (Ready, Conflict, last known
addresses, a RemoteCluster whose credentials stopped working); only Prometheus's own ``up``,
the target labels a ServiceMonitor scrape adds and the cluster label come from elsewhere,
and the chart refuses every label the operator sets as the cluster label.
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
REPO = HERE.parents[1]
RUNBOOKS = REPO / "docs" / "runbooks"
DASHBOARD = CHART / "dashboards" / "shared-services-operator.json"
RELEASE, RELEASE_NAMESPACE = "shared-services-operator", "shared-services-system"
METRICS_VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]
# The label that names the workload cluster where many clusters' series meet.
CLUSTER_LABEL: str = METRICS_VALUES["clusterLabel"]
RUNBOOK_BASE: str = METRICS_VALUES["prometheusRule"]["runbookBaseURL"]


@dataclass(frozen=True)
class RuleTests:
    """A file of promtool rule tests, and the values its rules are rendered with."""

    path: Path
    settings: tuple[str, ...]
    cluster_label: str


RULE_TESTS = RuleTests(HERE / "monitoring" / "alerts_test.yaml", (), CLUSTER_LABEL)
OVERRIDES = RuleTests(
    HERE / "monitoring" / "overrides_test.yaml",
    (
        "metrics.clusterLabel=fleet_cluster",
        "metrics.prometheusRule.runbookBaseURL=https://runbooks.example.com/shared-services/",
        "metrics.prometheusRule.alerts.SharedServicesRemoteClusterDisconnected.severity=page",
        "metrics.prometheusRule.alerts.SharedServicesSyncErrors.enabled=false",
        "metrics.prometheusRule.alertLabels.team=platform",
        "metrics.prometheusRule.alertLabels.severity=info",
    ),
    "fleet_cluster",
)

# What a scrape through the chart's ServiceMonitor adds to every series (the Prometheus
# Operator's relabelling): none of the operator's own labels may be one of them.
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
)
# Series that Prometheus makes for every target by itself, with the target labels only.
PROMETHEUS_SERIES = frozenset({"up"})
# Labels whose values are names a user picks (RemoteClusters), not a fixed set.
NAME_LABELS = frozenset({"cluster", "target"})
# PromQL's aggregation operators: each one in an alert must keep the cluster label.
_AGGREGATION = re.compile(
    r"\b(?P<op>sum|min|max|avg|group|stddev|stdvar|count|count_values|bottomk|topk|quantile)"
    r"\s*(?P<clause>by|without)?\s*(?:\((?P<labels>[^()]*)\))?\s*\("
)
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
    "cluster": ".*",
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


def unexported(
    exported: Exported, reads: Mapping[str, Any], *, cluster_label: str = CLUSTER_LABEL
) -> list[str]:
    """Every selector, matcher and grouping in ``reads`` that the operator's scrape lacks.

    The target labels and ``cluster_label`` are added outside the operator: by the scrape,
    and where the series of many clusters meet.
    """
    added = TARGET_LABELS | {cluster_label}
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
                if label in added:
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
            known = set(added)
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


def _render_rules(helm: Helm, *settings: str) -> dict[str, Any]:
    """The PrometheusRule's spec, rendered for the release the rule tests expect."""
    out = helm.run(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--set",
        "metrics.prometheusRule.enabled=true",
        *(arg for setting in settings for arg in ("--set", setting)),
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


def _alerts(rules: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}


@pytest.mark.parametrize("suite", [RULE_TESTS, OVERRIDES], ids=lambda s: s.path.stem)
def test_promtool_checks_and_tests_the_rules(helm: Helm, suite: RuleTests, tmp_path: Path) -> None:
    rules = _render_rules(helm, *suite.settings)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(suite.path, tmp_path / suite.path.name)
    checked = _promtool(
        "check", "rules", "--lint=all", "--lint-fatal", str(tmp_path / "rules.yaml")
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", str(tmp_path / suite.path.name))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_firing_and_quiet(rules: dict[str, Any]) -> None:
    tests = yaml.safe_load(RULE_TESTS.path.read_text())
    assert tests["rule_files"] == ["rules.yaml"]
    fired: set[str] = set()
    quiet: set[str] = set()
    # Fired for one workload cluster, with its name among the labels, and not for the
    # other cluster whose series the same case holds.
    one_of_two: set[str] = set()
    named = re.compile(rf'\b{CLUSTER_LABEL}="([^"]*)"')
    for case in tests["tests"]:
        clusters = {c for item in case["input_series"] for c in named.findall(item["series"])}
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
            labelled = {alert["exp_labels"].get(CLUSTER_LABEL) for alert in check["exp_alerts"]}
            if len(clusters) >= 2 and len(labelled) == 1 and labelled <= clusters:
                one_of_two.add(check["alertname"])
    alerts = set(_alerts(rules))
    assert len(alerts) >= 7
    assert alerts - fired == set(), "alerts that no test makes fire"
    assert alerts - quiet == set(), "alerts that no test keeps quiet"
    assert alerts - one_of_two == set(), "alerts that no test fires for one cluster of two"


def test_every_aggregation_keeps_the_cluster_label(rules: dict[str, Any]) -> None:
    # Where the rules are evaluated over many clusters, an aggregation without the cluster
    # label would merge them: one cluster's trouble hidden by another's health (a max), or
    # one alert for all. absent() cannot keep it; the alert that uses it keeps the label in
    # its other branches (and the rule tests fire them).
    expressions = {name: rule["expr"] for name, rule in _alerts(rules).items()}
    problems = []
    for name, expr in expressions.items():
        aggregations = list(_AGGREGATION.finditer(expr))
        assert aggregations, f"{name} aggregates nothing: {expr}"
        for aggregation in aggregations:
            labels = {label.strip() for label in (aggregation["labels"] or "").split(",")}
            if aggregation["clause"] != "by" or CLUSTER_LABEL not in labels:
                problems.append(f"{name}: {aggregation[0]!r} drops {CLUSTER_LABEL}")
    for name, found in selectors(expressions).items():
        for grouping in found["groupings"]:
            if grouping["clause"] in ("by", "on") and CLUSTER_LABEL not in grouping["labels"]:
                problems.append(f"{name}: {grouping['clause']} {grouping['labels']}")
            if grouping["clause"] in ("without", "ignoring"):
                problems.append(f"{name}: {grouping['clause']} {grouping['labels']}")
    assert problems == []
    assert [name for name, expr in expressions.items() if "absent(" in expr] == [
        "SharedServicesOperatorAbsent"
    ]


def test_every_alert_links_its_runbook(rules: dict[str, Any]) -> None:
    alerts = _alerts(rules)
    links = {name: rule["annotations"]["runbook_url"] for name, rule in alerts.items()}
    assert links == {name: f"{RUNBOOK_BASE}/{name}.md" for name in alerts}
    # The default base is where the pages are in the repository, and a page is there for
    # every alert, and none for an alert that is not.
    assert RUNBOOK_BASE.endswith("/blob/main/docs/runbooks")
    pages = {page.stem for page in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == set(alerts)


def test_alerts_turn_off_and_change_severity(helm: Helm, rules: dict[str, Any]) -> None:
    defaults = _alerts(rules)
    # The defaults are the ones values.yaml lists, every alert there and on.
    listed = METRICS_VALUES["prometheusRule"]["alerts"]
    assert listed == {
        name: {"enabled": True, "severity": rule["labels"]["severity"]}
        for name, rule in defaults.items()
    }
    changed = _alerts(_render_rules(helm, *OVERRIDES.settings))
    assert set(defaults) - set(changed) == {"SharedServicesSyncErrors"}
    severities = {name: rule["labels"]["severity"] for name, rule in changed.items()}
    assert severities == {
        name: "page" if name == "SharedServicesRemoteClusterDisconnected" else default
        for name, default in ((n, r["labels"]["severity"]) for n, r in defaults.items())
        if name != "SharedServicesSyncErrors"
    }
    assert {rule["labels"]["team"] for rule in changed.values()} == {"platform"}
    for name, rule in changed.items():
        # The trailing slash of the base is not doubled; the cluster label is the one named.
        url = f"https://runbooks.example.com/shared-services/{name}.md"
        assert rule["annotations"]["runbook_url"] == url
        assert "fleet_cluster" in rule["expr"]
        assert CLUSTER_LABEL not in json.dumps(rule)
    # Every alert off: a rule group with no rules, which Prometheus accepts.
    off = [f"metrics.prometheusRule.alerts.{name}.enabled=false" for name in defaults]
    assert _render_rules(helm, *off)["groups"][0]["rules"] == []


def test_the_operators_labels_leave_the_target_labels_alone(exported: Exported) -> None:
    # A series of its own with, say, a namespace label would reach Prometheus as
    # exported_namespace, and every rule selecting the release's namespace would miss it;
    # one with the cluster label would lose the workload cluster's name where clusters meet.
    outside = TARGET_LABELS | {CLUSTER_LABEL}
    clashes = {
        metric: sorted(exported.label_names(metric) & outside)
        for metric in exported.series
        if metric.startswith("shared_services_") and exported.label_names(metric) & outside
    }
    assert clashes == {}


def test_no_label_of_the_scrape_is_taken_for_the_cluster_label(
    exported: Exported, helm: Helm
) -> None:
    own = {name for metric in exported.series for name in exported.label_names(metric)}
    assert "cluster" in own  # a RemoteCluster's name, the fleets' usual cluster label
    for label in sorted(own | TARGET_LABELS):
        for part in ("prometheusRule", "grafanaDashboard"):
            result = helm.run(
                "template",
                "t",
                str(CHART),
                "--set",
                f"metrics.{part}.enabled=true,metrics.clusterLabel={label}",
                check=False,
            )
            assert result.returncode != 0, (part, label)
            assert f'metrics.clusterLabel "{label}" is a label of the operator' in result.stderr


def test_rules_read_what_the_operator_exports(exported: Exported, rules: dict[str, Any]) -> None:
    expressions = {
        rule.get("alert", rule.get("record")): rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
    }
    assert len(expressions) >= 7
    assert unexported(exported, selectors(expressions)) == []


@pytest.mark.parametrize("suite", [RULE_TESTS, OVERRIDES], ids=lambda s: s.path.stem)
def test_rule_tests_feed_series_shaped_like_the_scrape(
    exported: Exported, suite: RuleTests
) -> None:
    cases = yaml.safe_load(suite.path.read_text())["tests"]
    inputs = {
        f"{case['name']} #{i}": item["series"]
        for case in cases
        for i, item in enumerate(case["input_series"])
    }
    reads = selectors(inputs)
    assert unexported(exported, reads, cluster_label=suite.cluster_label) == []
    problems = []
    for name, found in reads.items():
        (selector,) = found["selectors"]
        metric = selector["metric"]
        labels = {m["label"]: m["value"] for m in selector["matchers"]}
        # Every series as a ServiceMonitor scrape gives it: all the target labels, the
        # cluster's name where one is given ...
        if TARGET_LABELS - set(labels):
            problems.append(f"{name}: lacks target labels {sorted(TARGET_LABELS - set(labels))}")
        # ... and exactly the label names the operator puts on that metric.
        own = frozenset(set(labels) - TARGET_LABELS - {suite.cluster_label})
        expected = {frozenset()} if metric in PROMETHEUS_SERIES else exported.label_sets(metric)
        if own not in expected:
            problems.append(f"{name}: {metric} labels {sorted(own)}, exported {expected}")
    assert problems == []


# -- the dashboard --------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _as_prometheus_gets_it(expr: str, values: Mapping[str, str] = GRAFANA_VARIABLES) -> str:
    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        assert name in values, f"unknown Grafana variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))", value, expr)


def _queries(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Every PromQL query of the dashboard, by panel and target or by variable."""
    queries: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queries[f"{panel['title']} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        # label_values(<selector>, <label>): the selector is PromQL, the label one it carries.
        match = re.fullmatch(
            r"label_values\((?P<selector>.+), *(?P<label>\w+)\)", variable["definition"]
        )
        assert match, variable["definition"]
        queries[f"variable {variable['name']}"] = (
            f"count by ({match['label']}) ({match['selector']})"
        )
    return queries


def test_dashboard_panels_read_what_the_operator_exports(exported: Exported) -> None:
    dashboard = _dashboard()
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} queries nothing"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    queries = {name: _as_prometheus_gets_it(q) for name, q in _queries(dashboard).items()}
    reads = selectors(queries)
    assert unexported(exported, reads) == []
    shown = {s["metric"] for found in reads.values() for s in found["selectors"]}
    assert DASHBOARD_MUST_SHOW - shown == set()
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_every_panel_filters_by_the_cluster_variable() -> None:
    # One Grafana over many workload clusters: the Cluster variable offers the values of
    # the cluster label, All matches series without it too (a single cluster), and every
    # query of a panel or of another variable keeps to the clusters chosen.
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "cluster", "namespace", "job"]
    cluster = variables["cluster"]
    assert (
        cluster["definition"] == f"label_values(shared_services_sync_errors_total, {CLUSTER_LABEL})"
    )
    assert (cluster["multi"], cluster["includeAll"], cluster["allValue"]) == (True, True, ".*")
    marker = "chosen-clusters"
    queries = {
        name: _as_prometheus_gets_it(query, {**GRAFANA_VARIABLES, "cluster": marker})
        for name, query in _queries(dashboard).items()
        if name != "variable cluster"
    }
    problems = []
    for name, found in selectors(queries).items():
        for selector in found["selectors"]:
            matchers = {(m["label"], m["op"], m["value"]) for m in selector["matchers"]}
            if (CLUSTER_LABEL, "=~", marker) not in matchers:
                problems.append(f"{name}: {selector['metric']} is not filtered by $cluster")
        # A grouping that keeps releases (job) apart keeps clusters apart too: summing the
        # largest value of each release must not take one cluster's for another's.
        for grouping in [] if name.startswith("variable ") else found["groupings"]:
            if "job" in grouping["labels"] and CLUSTER_LABEL not in grouping["labels"]:
                problems.append(f"{name}: {grouping['clause']} {grouping['labels']}")
    assert problems == []


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
    # Another cluster label takes the default's place everywhere, and nothing else changes.
    relabelled = helm.template(
        "--set", "metrics.grafanaDashboard.enabled=true,metrics.clusterLabel=fleet_cluster"
    )
    text = find(relabelled, "ConfigMap")["data"]["shared-services-operator.json"]
    assert CLUSTER_LABEL not in text
    assert json.loads(text) == json.loads(
        DASHBOARD.read_text().replace(CLUSTER_LABEL, "fleet_cluster")
    )
    assert DASHBOARD.read_text().count(CLUSTER_LABEL) == text.count("fleet_cluster") > 20
    # Off by default, like the ServiceMonitor and the PrometheusRule.
    kinds = {o["kind"] for o in helm.template()}
    assert not kinds & {"ConfigMap", "PrometheusRule", "ServiceMonitor"}


def test_monitoring_values_are_checked(helm: Helm) -> None:
    refused = {
        "metrics.prometheusRule.notReadyFor=5 minutes": "/metrics/prometheusRule/notReadyFor",
        "metrics.prometheusRule.propagationP99Seconds=0": "propagationP99Seconds",
        "metrics.prometheusRule.severity=page": "additional properties 'severity' not allowed",
        "metrics.prometheusRule.alerts.SharedServicesAbsent.enabled=false": (
            "invalid propertyName 'SharedServicesAbsent'"
        ),
        "metrics.prometheusRule.alerts.SharedServicesSyncErrors.severity=": (
            "/metrics/prometheusRule/alerts/SharedServicesSyncErrors/severity"
        ),
        "metrics.prometheusRule.alerts.SharedServicesSyncErrors.enabled=no": (
            "/metrics/prometheusRule/alerts/SharedServicesSyncErrors/enabled"
        ),
        "metrics.prometheusRule.runbookBaseURL=runbooks/": "/metrics/prometheusRule/runbookBaseURL",
        "metrics.prometheusRule.absentLookback=an hour": "/metrics/prometheusRule/absentLookback",
        "metrics.clusterLabel=k8s-cluster": "/metrics/clusterLabel",
        "metrics.clusterLabel=__name__": "/metrics/clusterLabel",
        "metrics.prometheusRule.enabled=true,metrics.clusterLabel=cluster": (
            "the workload cluster's name would be lost on them"
        ),
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
        "--set",
        "metrics.clusterLabel=fleet_cluster",
        "--set",
        "metrics.prometheusRule.alerts.SharedServicesSyncErrors.severity=info",
    )
    assert "0 chart(s) failed" in lint.stdout
