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

from collections.abc import Iterator
from pathlib import Path

import pytest

import suite
from faults.toolkit import Credentials, FaultEnv, SpareApiServer
from harness.operator import OperatorProcess
from kit import Kit
from suite import Row, Summary

_LAST = "test_no_credential_in_any_operator_log"

TABLE = suite.Table(
    "fault-injection summary", "Fault-injection summary", suite.LOCAL / "faults-summary.md"
)
pytest_runtest_makereport = suite.keep_reports
pytest_terminal_summary = TABLE.print


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


@pytest.fixture(scope="session")
def summary(pytestconfig: pytest.Config) -> Summary:
    """The session's summary table."""
    return TABLE.summary(pytestconfig)


@pytest.fixture
def row(request: pytest.FixtureRequest, summary: Summary) -> Iterator[Row]:
    """This scenario's row of the summary; its result is filled in after the test."""
    yield from suite.scenario_row(request, summary)


@pytest.fixture(scope="session")
def fault_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultEnv]:
    """Start a supervisor and a workload cluster for the fault scenarios alone."""
    with suite.own_clusters(tmp_path_factory.mktemp("fault-clusters")) as clusters:
        credentials = Credentials()
        for cluster in (clusters.supervisor, clusters.workload):
            credentials.add_cluster(cluster)
        logs = tmp_path_factory.mktemp("fault-logs")
        yield FaultEnv(
            supervisor=clusters.supervisor,
            workload=clusters.workload,
            supervisor_api=clusters.supervisor_api,
            workload_api=clusters.workload_api,
            workload_kubeconfig=clusters.workload.write_kubeconfig(logs / "workload.kubeconfig"),
            dns=clusters.dns,
            logs=logs,
            credentials=credentials,
            clusters=clusters,
        )


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


@pytest.fixture
def kit(fault_env: FaultEnv, fault_operator: OperatorProcess) -> Iterator[Kit]:
    """A namespace of this scenario's own on both clusters, with the operator running."""
    yield from suite.scenario_kit("f", fault_env.clusters, fault_operator)
