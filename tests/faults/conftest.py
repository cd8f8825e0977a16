"""Fixtures of the fault-injection suite: clusters of its own, and operators whose logs are kept.

The scenarios stop, freeze and restart API servers and kill operators, so they run on a
``supervisor`` and a ``workload`` cluster of their own, started once per session, never on
the pair the integration tests share. One operator process runs for the session against
the workload cluster, watching every namespace as the chart installs it; a scenario that
needs other operators (two replicas, a least-privilege one) stops it meanwhile. Every
operator of the suite logs into one directory, which is scanned for credentials at the end.

Each scenario adds a row (what was injected, what happened, the figures) to a summary that
is printed after the session and written to ``.local/faults-summary.md``. The long versions
of the scenarios are marked ``slow`` and run only when selected: ``pytest tests/faults -m
slow``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from dnsserver import LoopbackDNSServer
from faults.toolkit import SUMMARY_PATH, Credentials, FaultEnv, Row, SpareApiServer, Summary
from harness.binaries import ensure_binaries
from harness.cluster import start_clusters
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import Kit, install_crds

_SUMMARY = pytest.StashKey[Summary]()
_LAST = "test_no_credential_in_any_operator_log"
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scan the logs for credentials last; leave the long versions out unless selected.

    The scan reads every operator log the scenarios wrote, so it must come after all of
    them, whatever their files are called.
    """
    last = [i for i in items if i.name == _LAST]
    items[:] = [i for i in items if i.name != _LAST] + last
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="long version: run with -m slow")
    here = Path(__file__).parent
    for item in items:
        if item.get_closest_marker("slow") and here in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report, so a scenario's row can say whether it passed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the scenarios' table and write it to .local/faults-summary.md."""
    summary = terminalreporter.config.stash.get(_SUMMARY, None)
    if summary is None or not summary.rows:
        return
    text = summary.render()
    terminalreporter.section("fault-injection summary")
    terminalreporter.write(text)
    SUMMARY_PATH.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY_PATH.write_text("# Fault-injection summary\n\n" + text)
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
        line.outcome = "skipped"
    else:
        line.outcome = "passed" if call.passed else "FAILED"
    summary.rows.append(line)


@pytest.fixture(scope="session")
def fault_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultEnv]:
    """Start a supervisor and a workload cluster for the fault scenarios alone."""
    base = tmp_path_factory.mktemp("fault-clusters")
    supervisor, workload = start_clusters(
        ["supervisor", "workload"], bin_dir=ensure_binaries(), base_dir=base
    )
    credentials = Credentials()
    for cluster in (supervisor, workload):
        credentials.add_cluster(cluster)
    supervisor_api = supervisor.api_client()
    workload_api = workload.api_client()
    logs = tmp_path_factory.mktemp("fault-logs")
    dns = LoopbackDNSServer(negative_ttl=2).start()
    try:
        install_crds(workload_api)
        k8s.CoreV1Api(workload_api).create_namespace(_namespace(OPERATOR_NAMESPACE))
        yield FaultEnv(
            supervisor=supervisor,
            workload=workload,
            supervisor_api=supervisor_api,
            workload_api=workload_api,
            workload_kubeconfig=workload.write_kubeconfig(logs / "workload.kubeconfig"),
            dns=dns,
            logs=logs,
            credentials=credentials,
        )
    finally:
        dns.stop()
        supervisor_api.close()
        workload_api.close()
        keep = os.environ.get("SSO_KEEP_CLUSTERS") == "1"
        for cluster in (supervisor, workload):
            cluster.stop(remove=not keep)


@pytest.fixture(scope="session")
def fault_operator(fault_env: FaultEnv) -> Iterator[OperatorProcess]:
    """The operator of the session, cluster-wide, logging at debug level."""
    process = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "operator.log",
        extra_args=[f"--dns-servers={fault_env.dns.nameserver}", "--verbose"],
    )
    process.start()
    yield process
    process.stop()
    # Whatever a scenario did, no credential may have reached any operator's log.
    leaks = fault_env.credentials.leaks(sorted(fault_env.logs.glob("*.log")))
    assert not leaks, f"credentials in the operator logs: {leaks}"


@pytest.fixture(scope="session")
def spare_supervisor(fault_env: FaultEnv) -> Iterator[SpareApiServer]:
    """A second API server of the supervisor, to change it while the first is down."""
    supervisor = fault_env.supervisor
    spare = SpareApiServer(
        supervisor, log_path=supervisor.directory / "kube-apiserver-spare.log"
    ).start()
    yield spare
    spare.stop()


def _namespace(name: str) -> k8s.V1Namespace:
    return k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))


def _delete_namespace(api: k8s.ApiClient, name: str) -> None:
    try:
        k8s.CoreV1Api(api).delete_namespace(name)
    except k8s.ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def kit(fault_env: FaultEnv, fault_operator: OperatorProcess) -> Iterator[Kit]:
    """A namespace of this scenario's own on both clusters, with the operator running."""
    if fault_operator.process is None or fault_operator.process.poll() is not None:
        fault_operator.start()  # an earlier scenario failed before it could restart it
    name = f"f-{secrets.token_hex(3)}"
    for api in (fault_env.workload_api, fault_env.supervisor_api):
        k8s.CoreV1Api(api).create_namespace(_namespace(name))
    kit = Kit(
        namespace=name,
        supervisor=fault_env.supervisor,
        supervisor_api=fault_env.supervisor_api,
        workload_api=fault_env.workload_api,
        operator=fault_operator,
    )
    yield kit
    kit.cleanup()
    for api in (fault_env.workload_api, fault_env.supervisor_api):
        _delete_namespace(api, name)
