"""What the cluster suites of their own share: a session's clusters, a namespace per scenario,
and the summary table each scenario adds a row to.

The fault and end-to-end suites run on a ``supervisor`` and a ``workload`` cluster of
their own, started once per session with a DNS server on loopback, the CRDs and the
operator's namespace; each scenario gets a fresh namespace on both clusters and a
:class:`~kit.Kit` for it. Each scenario also fills one row (what was injected, what
happened, the figures), printed after the session and written under ``.local/``. A suite's
conftest binds the hooks below to pytest's names and says what is its own: its path, its
title, its data plane or its spare API servers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client as k8s

from dnsserver import LoopbackDNSServer
from harness.binaries import ensure_binaries
from harness.cluster import Cluster, start_clusters
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import Kit, install_crds

LOCAL = Path(__file__).resolve().parents[1] / ".local"
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


# --- the summary table -------------------------------------------------------------------------


@dataclass
class Row:
    """One scenario's line of the summary, filled in while the scenario runs.

    Mutable on purpose: a scenario records figures as it measures them, and a row of a
    scenario that failed half-way still shows how far it got.
    """

    scenario: str
    injected: str = ""
    happened: str = ""
    figures: dict[str, str] = field(default_factory=dict)
    outcome: str = "not run"

    def figure(self, name: str, value: float | str, unit: str = "") -> None:
        """Record one measured figure (floats rounded for reading)."""
        if isinstance(value, float):
            value = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        self.figures[name] = f"{value}{(' ' + unit) if unit else ''}"


@dataclass
class Summary:
    """Every scenario's row, and detail tables that do not fit in one row."""

    rows: list[Row] = field(default_factory=list)
    details: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def detail(self, title: str, header: tuple[str, ...], lines: Iterable[tuple[str, ...]]) -> None:
        """Add a detail table (e.g. every bad-input case with the operator's verdict)."""
        self.headers[title] = header
        self.details[title] = list(lines)

    def render(self) -> str:
        """The summary as Markdown."""
        out = [
            "| scenario | injected | what happened | figures | result |",
            "|---|---|---|---|---|",
        ]
        for row in self.rows:
            figures = ", ".join(f"{k} {v}" for k, v in row.figures.items())
            cells = (row.scenario, row.injected, row.happened, figures, row.outcome)
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        for title, lines in self.details.items():
            header = self.headers[title]
            out += ["", f"### {title}", ""]
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(_cell(c) for c in line) + " |" for line in lines]
        return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@pytest.hookimpl(wrapper=True)
def keep_reports(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A ``pytest_runtest_makereport``: keep each phase's report, for the scenario's row."""
    del call
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@dataclass(frozen=True)
class Table:
    """A suite's summary table: its own in the session, printed and written to ``path``."""

    title: str  # of the section printed after the session
    heading: str  # of the file written
    path: Path
    key: pytest.StashKey[Summary] = field(default_factory=pytest.StashKey)

    def summary(self, config: pytest.Config) -> Summary:
        """The session's table."""
        return config.stash.setdefault(self.key, Summary())

    def print(self, terminalreporter: pytest.TerminalReporter) -> None:
        """A ``pytest_terminal_summary``: print the table, and write it to ``path``."""
        summary = terminalreporter.config.stash.get(self.key, None)
        if summary is None or not summary.rows:
            return
        text = summary.render()
        terminalreporter.section(self.title)
        terminalreporter.write(text)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"# {self.heading}\n\n" + text)
        terminalreporter.write_line(f"written to {self.path}")


def scenario_row(request: pytest.FixtureRequest, summary: Summary) -> Iterator[Row]:
    """This scenario's row of the summary; its result is filled in after the test."""
    line = Row(scenario=request.node.name.removeprefix("test_"))
    yield line
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is None:
        line.outcome = "skipped"
    elif call.skipped:
        line.outcome = "xfailed" if hasattr(call, "wasxfail") else "skipped"
    else:
        line.outcome = "passed" if call.passed else "FAILED"
    summary.rows.append(line)


# --- the session's clusters and each scenario's namespace --------------------------------------


@dataclass(frozen=True)
class Clusters:
    """A suite's own supervisor and workload cluster, their clients and a DNS server."""

    supervisor: Cluster
    workload: Cluster
    supervisor_api: k8s.ApiClient
    workload_api: k8s.ApiClient
    dns: LoopbackDNSServer


@contextlib.contextmanager
def own_clusters(
    base: Path, *, service_cidrs: Mapping[str, str] | None = None
) -> Iterator[Clusters]:
    """Start a supervisor and a workload cluster with the CRDs and the operator's namespace.

    They are stopped (and removed, unless ``SSO_KEEP_CLUSTERS=1``) when the session ends.
    """
    supervisor, workload = start_clusters(
        ["supervisor", "workload"],
        bin_dir=ensure_binaries(),
        base_dir=base,
        service_cidrs=dict(service_cidrs or {}),
    )
    supervisor_api, workload_api = supervisor.api_client(), workload.api_client()
    dns = LoopbackDNSServer(negative_ttl=2).start()
    try:
        install_crds(workload_api)
        k8s.CoreV1Api(workload_api).create_namespace(_namespace(OPERATOR_NAMESPACE))
        yield Clusters(supervisor, workload, supervisor_api, workload_api, dns)
    finally:
        dns.stop()
        supervisor_api.close()
        workload_api.close()
        keep = os.environ.get("SSO_KEEP_CLUSTERS") == "1"
        for cluster in (supervisor, workload):
            cluster.stop(remove=not keep)


def scenario_kit(prefix: str, clusters: Clusters, operator: OperatorProcess) -> Iterator[Kit]:
    """A namespace of the scenario's own on both clusters, with the operator running."""
    if operator.process is None or operator.process.poll() is not None:
        operator.start()  # an earlier scenario stopped it, and failed before restarting it
    name = f"{prefix}-{secrets.token_hex(3)}"
    apis = (clusters.workload_api, clusters.supervisor_api)
    for api in apis:
        k8s.CoreV1Api(api).create_namespace(_namespace(name))
    kit = Kit(
        namespace=name,
        supervisor=clusters.supervisor,
        supervisor_api=clusters.supervisor_api,
        workload_api=clusters.workload_api,
        operator=operator,
    )
    yield kit
    kit.cleanup()
    for api in apis:
        try:
            k8s.CoreV1Api(api).delete_namespace(name)
        except k8s.ApiException as error:
            if error.status != 404:
                raise


def _namespace(name: str) -> k8s.V1Namespace:
    return k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))
