"""Fixtures of the end-to-end tests: clusters, a data plane and an operator of their own.

The scenarios freeze the supervisor, and every Service of the workload cluster becomes
kube-proxy rules and DNS names, so they run on a ``supervisor`` and a dual-stack
``workload`` cluster of their own rather than on the pair the integration tests fill with
hostile specs; both, the data plane and one operator (cluster-wide, as the chart installs
it) are started once per session. A machine that cannot run the data plane fails these
tests with what is missing; they are never skipped.

Each scenario adds a row (what it did, what a client saw, the figures) to a summary printed
after the session and written to ``.local/e2e-summary.md``: the figures are recorded, not
asserted against a clock.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from dnsserver import LoopbackDNSServer
from faults.toolkit import Row, Summary
from harness import dataplane
from harness.allocator import LoadBalancerAllocator
from harness.binaries import ensure_binaries
from harness.cluster import DUAL_STACK_SERVICE_CIDR, Cluster, start_clusters
from harness.coredns import ensure_coredns
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from harness.servers import PostgresServer
from kit import Kit, install_crds

SUMMARY_PATH = Path(__file__).resolve().parents[2] / ".local" / "e2e-summary.md"
_SUMMARY = pytest.StashKey[Summary]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report, so a scenario's row can say whether it passed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the scenarios' table and write it to .local/e2e-summary.md."""
    summary = terminalreporter.config.stash.get(_SUMMARY, None)
    if summary is None or not summary.rows:
        return
    text = summary.render()
    terminalreporter.section("end-to-end summary: what a client on the workload cluster saw")
    terminalreporter.write(text)
    SUMMARY_PATH.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY_PATH.write_text("# End-to-end summary\n\n" + text)
    terminalreporter.write_line(f"written to {SUMMARY_PATH}")


@pytest.fixture(scope="session")
def summary(pytestconfig: pytest.Config) -> Summary:
    """The session's summary table."""
    return pytestconfig.stash.setdefault(_SUMMARY, Summary())


@pytest.fixture
def row(request: pytest.FixtureRequest, summary: Summary) -> Iterator[Row]:
    """This scenario's row of the summary; its result is filled in after the test."""
    line = Row(scenario=request.node.name.removeprefix("test_"))
    yield line
    reports = request.node.stash.get(_REPORTS, {})
    call = reports.get("call")
    if call is None or call.skipped:
        line.outcome = "xfailed" if call is not None and hasattr(call, "wasxfail") else "skipped"
    else:
        line.outcome = "passed" if call.passed else "FAILED"
    summary.rows.append(line)


@dataclass(frozen=True)
class EndToEnd:
    """The suite's clusters, data plane, DNS server and operator."""

    supervisor: Cluster
    workload: Cluster
    supervisor_api: k8s.ApiClient
    workload_api: k8s.ApiClient
    plane: dataplane.DataPlane
    dns: LoopbackDNSServer
    operator: OperatorProcess
    kubeconfigs: dict[str, Path]


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndToEnd]:
    """Clusters, the data plane and the operator, for the whole session."""
    try:
        dataplane.check_requirements()
    except dataplane.DataPlaneUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    base = tmp_path_factory.mktemp("e2e")
    bin_dir = ensure_binaries()
    supervisor, workload = start_clusters(
        ["supervisor", "workload"],
        bin_dir=bin_dir,
        base_dir=base,
        service_cidrs={"workload": DUAL_STACK_SERVICE_CIDR},
    )
    allocator = LoadBalancerAllocator(supervisor.api_client()).start()
    plane = dataplane.DataPlane(
        workload=workload,
        supervisor=supervisor,
        directory=base / "dataplane",
        kube_proxy=bin_dir / "kube-proxy",
        coredns=ensure_coredns(),
    )
    supervisor_api, workload_api = supervisor.api_client(), workload.api_client()
    dns = LoopbackDNSServer(negative_ttl=2).start()
    operator: OperatorProcess | None = None
    try:
        plane.start()
        install_crds(workload_api)
        k8s.CoreV1Api(workload_api).create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
        kubeconfigs = {
            cluster.name: cluster.write_kubeconfig(base / f"{cluster.name}.kubeconfig")
            for cluster in (supervisor, workload)
        }
        operator = OperatorProcess(
            kubeconfig=kubeconfigs["workload"],
            log_path=base / "operator.log",
            extra_args=[f"--dns-servers={dns.nameserver}", "--verbose"],
        ).start()
        yield EndToEnd(
            supervisor=supervisor,
            workload=workload,
            supervisor_api=supervisor_api,
            workload_api=workload_api,
            plane=plane,
            dns=dns,
            operator=operator,
            kubeconfigs=kubeconfigs,
        )
    finally:
        if operator is not None:
            operator.stop()
        dns.stop()
        plane.stop()
        PostgresServer.remove_template()
        allocator.stop()
        supervisor_api.close()
        workload_api.close()
        keep = os.environ.get("SSO_KEEP_CLUSTERS") == "1"
        for cluster in (supervisor, workload):
            cluster.stop(remove=not keep)
    # Whatever the scenarios did, the data plane left nothing on the machine.
    assert plane.leftovers() == []


@pytest.fixture
def plane(e2e: EndToEnd) -> dataplane.DataPlane:
    """The session's data plane."""
    return e2e.plane


@pytest.fixture
def kit(e2e: EndToEnd) -> Iterator[Kit]:
    """A namespace of this scenario's own on both clusters, with the operator running."""
    if e2e.operator.process is None or e2e.operator.process.poll() is not None:
        e2e.operator.start()
    name = f"e-{secrets.token_hex(3)}"
    for api in (e2e.workload_api, e2e.supervisor_api):
        k8s.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    kit = Kit(
        namespace=name,
        supervisor=e2e.supervisor,
        supervisor_api=e2e.supervisor_api,
        workload_api=e2e.workload_api,
        operator=e2e.operator,
    )
    yield kit
    kit.cleanup()
    for api in (e2e.workload_api, e2e.supervisor_api):
        try:
            k8s.CoreV1Api(api).delete_namespace(name)
        except k8s.ApiException as error:
            if error.status != 404:
                raise
