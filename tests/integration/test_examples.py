"""The examples of deploy/examples/ work as a user would run them: the chart installed with the
examples' values, the central cluster's Secret made by the kubeconfig CLI, each example
applied with kubectl to both clusters, and every import pointing at its VIP.

The operator runs under the chart's ServiceAccount and reads the central cluster with the
identity of deploy/supervisor/; the session's operator is stopped meanwhile.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from deploykit import (
    DEPLOY,
    Helm,
    example_imports,
    forbidden_requests,
    kubectl,
    operator_as,
    service_account_token,
    supervisor_access,
    wait_allowed,
)
from harness.cluster import Cluster
from harness.helm import ensure_helm
from harness.operator import OperatorProcess
from kit import GROUP, VERSION, wait_no_namespace_terminating
from support import eventually

EXAMPLES = DEPLOY / "examples"


@dataclass(frozen=True)
class Shop:
    """Both clusters' kubeconfigs, and the operator the examples run with."""

    supervisor: Path
    workload: Path
    operator: OperatorProcess


@pytest.fixture(scope="module")
def shop(
    operator: OperatorProcess,
    crds: None,
    supervisor: Cluster,
    workload: Cluster,
    workload_api: k8s.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    """The chart installed with the examples' values, and its operator running."""
    directory = tmp_path_factory.mktemp("examples")
    release, namespace = "examples", f"sso-examples-{secrets.token_hex(3)}"
    access = supervisor_access(supervisor, directory)
    workload_kubeconfig = workload.write_kubeconfig(directory / "workload-admin.kubeconfig")
    helm = Helm(ensure_helm(), home=directory / "helm", kubeconfig=workload_kubeconfig)
    helm.install_beside_crds(release, namespace=namespace, values=EXAMPLES / "values.yaml")
    # The kubeconfig Secret that the values name, as the platform team makes it.
    secret = access.secret_manifest(namespace=namespace, name="supervisor-kubeconfig")
    kubectl(workload_kubeconfig, "apply", "-f", "-", stdin=secret)
    token = service_account_token(
        workload_api, namespace=namespace, name=f"{release}-shared-services-operator"
    )
    wait_allowed(
        workload,
        token,
        ("v1", "services", None),
        ("v1", "secrets", namespace, "supervisor-kubeconfig"),
    )
    process = operator_as(
        workload, token=token, operator_namespace=namespace, directory=directory, name="examples"
    )
    operator.stop()
    wait_no_namespace_terminating(k8s.CoreV1Api(workload_api))  # their 403s are not ours
    try:
        process.start()
        yield Shop(
            supervisor=access.admin_kubeconfig, workload=workload_kubeconfig, operator=process
        )
        log = process.log_path.read_text()
        assert forbidden_requests(log) == [], "\n".join(forbidden_requests(log))
    finally:
        process.stop()
        helm.run("uninstall", release, "-n", namespace, check=False)
        k8s.CoreV1Api(workload_api).delete_namespace(namespace)
        operator.start()


@contextlib.contextmanager
def _applied(shop: Shop, example: str) -> Iterator[None]:
    kubectl(shop.supervisor, "apply", "-f", str(EXAMPLES / example / "supervisor"))
    kubectl(shop.workload, "apply", "-f", str(EXAMPLES / example / "workload"))
    try:
        yield
    finally:
        for kubeconfig, side in ((shop.workload, "workload"), (shop.supervisor, "supervisor")):
            kubectl(
                kubeconfig,
                "delete",
                "--wait=false",
                "-f",
                str(EXAMPLES / example / side),
                check=False,
            )


def _vip(api: k8s.CoreV1Api, namespace: str, name: str) -> str | None:
    ingress = api.read_namespaced_service_status(name, namespace).status.load_balancer.ingress
    return ingress[0].ip if ingress else None


def _check(
    shop: Shop, example: str, supervisor_api: k8s.ApiClient, workload_api: k8s.ApiClient
) -> int:
    remote, local = k8s.CoreV1Api(supervisor_api), k8s.CoreV1Api(workload_api)
    discovery, custom = k8s.DiscoveryV1Api(workload_api), k8s.CustomObjectsApi(workload_api)
    imports = example_imports(EXAMPLES / example)
    for item in imports:
        vip = eventually(lambda i=item: _vip(remote, i.remote_namespace, i.remote_name))
        namespace, name = item.namespace, item.name

        def ready(namespace: str = namespace, name: str = name) -> bool:
            try:
                body = custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "sharedserviceimports", name
                )
            except k8s.ApiException as error:
                if error.status == 404:  # a catalog's, not made yet
                    return False
                raise
            status = body.get("status") or {}
            return any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            )

        try:
            eventually(ready, timeout=30)
        except AssertionError as error:
            raise AssertionError(shop.operator.log_tail()) from error
        (slice_,) = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={name}"
        ).items
        assert [a for e in slice_.endpoints for a in e.addresses] == [vip]
        # The Service keeps the remote one's ports, under the name the application calls.
        remote_ports = [
            (p.name, p.port)
            for p in remote.read_namespaced_service(
                item.remote_name, item.remote_namespace
            ).spec.ports
        ]
        local_ports = [
            (p.name, p.port) for p in local.read_namespaced_service(name, namespace).spec.ports
        ]
        assert local_ports == remote_ports
    return len(imports)


def test_a_single_shared_database(
    shop: Shop, supervisor_api: k8s.ApiClient, workload_api: k8s.ApiClient
) -> None:
    with _applied(shop, "single-db"):
        assert _check(shop, "single-db", supervisor_api, workload_api) == 1


def test_the_acme_fitness_shop(
    shop: Shop, supervisor_api: k8s.ApiClient, workload_api: k8s.ApiClient
) -> None:
    with _applied(shop, "acme-fitness"):
        assert _check(shop, "acme-fitness", supervisor_api, workload_api) == 5
