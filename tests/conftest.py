"""Fixtures shared by every test layer.

Tests under ``tests/integration``, ``tests/e2e`` and ``tests/faults`` get the ``cluster`` marker
(``tests/e2e`` brings its own clusters and data plane, see its conftest), and those of
``tests/integration`` two real control planes, ``supervisor`` (with the load-balancer
allocator) and ``workload``, started once per session. Each test gets a fresh namespace of
its own on both, so tests never see each other's objects and need no cleanup of their own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from harness.allocator import LoadBalancerAllocator
from harness.binaries import ensure_binaries, workload_release
from harness.cluster import Cluster, start_clusters
from harness.coredns import ensure_coredns
from harness.signin import SignInService, SsoUser

_CLUSTER_DIRS = ("integration", "e2e", "faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark cluster tests, and build what they run before any test's timeout starts."""
    needs_cluster = needs_dataplane = False
    for item in items:
        parts = Path(str(item.path)).parts
        if any(part in _CLUSTER_DIRS for part in parts):
            item.add_marker(pytest.mark.cluster)
            needs_cluster = True
        needs_dataplane = needs_dataplane or "e2e" in parts
    if needs_cluster and not config.option.collectonly:
        ensure_binaries()
        ensure_binaries(workload_release())
    if needs_dataplane and not config.option.collectonly:
        ensure_coredns()


@dataclass(frozen=True)
class Clusters:
    """The two clusters of a test session."""

    supervisor: Cluster
    workload: Cluster
    allocator: LoadBalancerAllocator


@pytest.fixture(scope="session")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    """Start a supervisor and a workload cluster for the whole session.

    The workload cluster, where the operator runs, is of the release ``SSO_K8S_RELEASE``
    names (the newest by default); the supervisor, the central cluster, is always the newest.
    """
    base = tmp_path_factory.mktemp("clusters")
    supervisor, workload = start_clusters(
        ["supervisor", "workload"],
        bin_dir=ensure_binaries(),
        base_dir=base,
        bin_dirs={"workload": ensure_binaries(workload_release())},
    )
    allocator = LoadBalancerAllocator(supervisor.api_client()).start()
    try:
        yield Clusters(supervisor=supervisor, workload=workload, allocator=allocator)
    finally:
        allocator.stop()
        keep = os.environ.get("SSO_KEEP_CLUSTERS") == "1"
        for cluster in (supervisor, workload):
            cluster.stop(remove=not keep)


@pytest.fixture(scope="session")
def supervisor(clusters: Clusters) -> Cluster:
    """The central cluster, where shared services are LoadBalancer Services."""
    return clusters.supervisor


@pytest.fixture(scope="session")
def workload(clusters: Clusters) -> Cluster:
    """The cluster where applications, imports and the operator live."""
    return clusters.workload


@pytest.fixture(scope="session")
def signin(supervisor: Cluster) -> SignInService:
    """The supervisor's sign-in service (its /wcp/login), whose tokens its API server trusts."""
    return supervisor.signin


@pytest.fixture
def sso_user(signin: SignInService) -> Iterator[SsoUser]:
    """A fresh SSO user of the session's sign-in service: a unique name, a random password.

    Removed afterwards, with any token lifetime the test gave it; tokens it was given stay
    valid until they expire, as a removed user's session does on vSphere.
    """
    user = signin.fresh_user()
    yield user
    signin.remove_user(user.name)


@pytest.fixture(scope="session")
def supervisor_api(supervisor: Cluster) -> Iterator[k8s.ApiClient]:
    """An admin client of the supervisor."""
    api = supervisor.api_client()
    yield api
    api.close()


@pytest.fixture(scope="session")
def workload_api(workload: Cluster) -> Iterator[k8s.ApiClient]:
    """An admin client of the workload cluster."""
    api = workload.api_client()
    yield api
    api.close()


def _fresh_namespace(api: k8s.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def namespace(supervisor_api: k8s.ApiClient, workload_api: k8s.ApiClient) -> Iterator[str]:
    """A namespace of this test's own, created under the same name on both clusters."""
    name = _fresh_namespace(workload_api, "t")
    k8s.CoreV1Api(supervisor_api).create_namespace({"metadata": {"name": name}})
    yield name
    for api in (workload_api, supervisor_api):
        try:
            k8s.CoreV1Api(api).delete_namespace(name)
        except k8s.ApiException as error:
            if error.status != 404:
                raise
