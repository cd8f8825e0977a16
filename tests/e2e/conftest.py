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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

import suite
from dnsserver import LoopbackDNSServer
from harness import dataplane
from harness.allocator import LoadBalancerAllocator
from harness.binaries import ensure_binaries
from harness.cluster import DUAL_STACK_SERVICE_CIDR, Cluster
from harness.coredns import ensure_coredns
from harness.operator import OperatorProcess
from harness.servers import PostgresServer
from kit import Kit
from suite import Row, Summary

TABLE = suite.Table(
    "end-to-end summary: what a client on the workload cluster saw",
    "End-to-end summary",
    suite.LOCAL / "e2e-summary.md",
)
pytest_runtest_makereport = suite.keep_reports
pytest_terminal_summary = TABLE.print


@pytest.fixture(scope="session")
def summary(pytestconfig: pytest.Config) -> Summary:
    """The session's summary table."""
    return TABLE.summary(pytestconfig)


@pytest.fixture
def row(request: pytest.FixtureRequest, summary: Summary) -> Iterator[Row]:
    """This scenario's row of the summary; its result is filled in after the test."""
    yield from suite.scenario_row(request, summary)


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
    clusters: suite.Clusters


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndToEnd]:
    """Clusters, the data plane and the operator, for the whole session."""
    try:
        dataplane.check_requirements()
    except dataplane.DataPlaneUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    base = tmp_path_factory.mktemp("e2e")
    with suite.own_clusters(base, service_cidrs={"workload": DUAL_STACK_SERVICE_CIDR}) as clusters:
        supervisor, workload = clusters.supervisor, clusters.workload
        allocator = LoadBalancerAllocator(supervisor.api_client()).start()
        plane = dataplane.DataPlane(
            workload=workload,
            supervisor=supervisor,
            directory=base / "dataplane",
            kube_proxy=ensure_binaries() / "kube-proxy",
            coredns=ensure_coredns(),
        )
        operator: OperatorProcess | None = None
        try:
            plane.start()
            kubeconfigs = {
                cluster.name: cluster.write_kubeconfig(base / f"{cluster.name}.kubeconfig")
                for cluster in (supervisor, workload)
            }
            operator = OperatorProcess(
                kubeconfig=kubeconfigs["workload"],
                log_path=base / "operator.log",
                extra_args=[f"--dns-servers={clusters.dns.nameserver}", "--verbose"],
            ).start()
            yield EndToEnd(
                supervisor=supervisor,
                workload=workload,
                supervisor_api=clusters.supervisor_api,
                workload_api=clusters.workload_api,
                plane=plane,
                dns=clusters.dns,
                operator=operator,
                kubeconfigs=kubeconfigs,
                clusters=clusters,
            )
        finally:
            if operator is not None:
                operator.stop()
            plane.stop()
            PostgresServer.remove_template()
            allocator.stop()
    # Whatever the scenarios did, the data plane left nothing on the machine.
    assert plane.leftovers() == []


@pytest.fixture
def plane(e2e: EndToEnd) -> dataplane.DataPlane:
    """The session's data plane."""
    return e2e.plane


@pytest.fixture
def kit(e2e: EndToEnd) -> Iterator[Kit]:
    """A namespace of this scenario's own on both clusters, with the operator running."""
    yield from suite.scenario_kit("e", e2e.clusters, e2e.operator)
