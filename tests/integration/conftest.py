"""Fixtures for tests of the operator against the two local clusters.

One operator process runs for the whole session against the workload cluster, watching
every namespace, as it would when installed by the chart. Each test works in its own
namespace with its own RemoteCluster (named after the namespace), so tests stay
independent although RemoteClusters are cluster-scoped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from dnsserver import LoopbackDNSServer
from harness.cluster import Cluster
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import Kit, install_crds


@pytest.fixture(scope="session")
def crds(workload_api: k8s.ApiClient) -> None:
    """The CRDs, installed once on the workload cluster."""
    install_crds(workload_api)
    try:
        k8s.CoreV1Api(workload_api).create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
    except k8s.ApiException as error:
        if error.status != 409:
            raise


@pytest.fixture(scope="session")
def dns_server() -> Iterator[LoopbackDNSServer]:
    """A DNS server on loopback that the operator resolves hostnames with."""
    with LoopbackDNSServer(negative_ttl=2) as server:
        yield server


@pytest.fixture(scope="session")
def operator(
    crds: None,
    supervisor: Cluster,
    workload: Cluster,
    dns_server: LoopbackDNSServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator, running as its own process against the workload cluster."""
    directory = tmp_path_factory.mktemp("operator")
    process = OperatorProcess(
        kubeconfig=workload.write_kubeconfig(directory / "workload.kubeconfig"),
        log_path=directory / "operator.log",
        extra_args=[f"--dns-servers={dns_server.nameserver}", "--verbose"],
    )
    process.start()
    yield process
    process.stop()
    # Whatever happened in the session, no credential may have reached the log.
    log = process.log_path.read_text(errors="replace")
    for cluster in (supervisor, workload):
        for user in cluster.users.values():
            assert user.token not in log, f"the token of {user.name} appears in the operator log"


@pytest.fixture
def kit(
    namespace: str,
    supervisor: Cluster,
    supervisor_api: k8s.ApiClient,
    workload_api: k8s.ApiClient,
    operator: OperatorProcess,
) -> Iterator[Kit]:
    """Shortcuts for this test's namespace, with the operator running."""
    kit = Kit(
        namespace=namespace,
        supervisor=supervisor,
        supervisor_api=supervisor_api,
        workload_api=workload_api,
        operator=operator,
    )
    yield kit
    kit.cleanup()
