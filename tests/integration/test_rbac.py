"""The chart's RBAC is enough and no more: the operator, run under the chart's ServiceAccount
token, carries an import through its whole life, and that identity is refused everything
else (other namespaces' Secrets, other kinds, unmanaged Services, the imports' spec).

The chart is really installed into the workload cluster. The session's operator (an
administrator) is stopped meanwhile, so that every write seen here is the chart identity's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from deploykit import (
    CHART,
    Helm,
    SupervisorAccess,
    forbidden_requests,
    grant_reader,
    operator_as,
    service_account_token,
    status_of,
    supervisor_access,
    token_client,
    wait_allowed,
    write_values,
)
from harness.cluster import Cluster
from harness.helm import ensure_helm
from harness.operator import OperatorProcess
from kit import GROUP, VERSION, Kit, wait_no_namespace_terminating
from support import eventually


@dataclass
class Installation:
    """One release of the chart, and the operator running under its ServiceAccount.

    Not frozen: a test that changes the release replaces the operator with one started for
    the new values, and the fixture stops whichever runs at the end.
    """

    helm: Helm
    release: str
    namespace: str
    service_account: str
    remote_cluster: str
    access: SupervisorAccess
    token: str
    directory: Path
    operator: OperatorProcess


@pytest.fixture(scope="module")
def installed(
    operator: OperatorProcess,
    crds: None,
    supervisor: Cluster,
    workload: Cluster,
    workload_api: k8s.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installation]:
    """The chart installed cluster-wide, its operator running as its ServiceAccount."""
    directory = tmp_path_factory.mktemp("rbac")
    suffix = secrets.token_hex(3)
    release, namespace, remote = f"rbac-{suffix}", f"sso-rbac-{suffix}", f"sup-rbac-{suffix}"
    access = supervisor_access(supervisor, directory)
    helm = Helm(
        ensure_helm(),
        home=directory / "helm",
        kubeconfig=workload.write_kubeconfig(directory / "workload-admin.kubeconfig"),
    )
    values = write_values(
        directory / "values.yaml",
        {"remoteClusters": [{"name": remote, "kubeconfig": access.kubeconfig_text}]},
    )
    helm.run(
        "install", release, str(CHART), "-n", namespace, "--create-namespace", "-f", str(values)
    )
    service_account = f"{release}-shared-services-operator"
    token = service_account_token(workload_api, namespace=namespace, name=service_account)
    wait_allowed(
        workload,
        token,
        ("v1", "services", None),
        ("v1", "secrets", namespace),
        (f"{GROUP}/{VERSION}", "remoteclusters", None),
    )
    installation = Installation(
        helm=helm,
        release=release,
        namespace=namespace,
        service_account=service_account,
        remote_cluster=remote,
        access=access,
        token=token,
        directory=directory,
        operator=operator_as(
            workload, token=token, operator_namespace=namespace, directory=directory, name="chart"
        ),
    )
    operator.stop()  # the session's operator, an administrator, must not do the work
    # What earlier tests left in namespaces still going away would be refused (403) there.
    wait_no_namespace_terminating(k8s.CoreV1Api(workload_api))
    try:
        installation.operator.start()
        yield installation
    finally:
        installation.operator.stop()
        helm.run("uninstall", release, "-n", namespace, check=False)
        k8s.CoreV1Api(workload_api).delete_namespace(namespace)
        operator.start()


@pytest.fixture
def chart_kit(
    installed: Installation,
    namespace: str,
    supervisor: Cluster,
    supervisor_api: k8s.ApiClient,
    workload_api: k8s.ApiClient,
) -> Kit:
    """Shortcuts for this test's namespace, with the chart identity's operator running."""
    grant_reader(supervisor, installed.access, namespace)
    kit = Kit(
        namespace=namespace,
        supervisor=supervisor,
        supervisor_api=supervisor_api,
        workload_api=workload_api,
        operator=installed.operator,
    )
    kit.cluster_name = installed.remote_cluster
    return kit


def _connected(kit: Kit, name: str) -> bool:
    status = (
        kit.custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", name).get("status")
        or {}
    )
    return any(
        c["type"] == "Connected" and c["status"] == "True" for c in status.get("conditions", [])
    )


def test_whole_lifecycle_under_the_chart_identity(installed: Installation, chart_kit: Kit) -> None:
    kit = chart_kit
    # The RemoteCluster and its Secret came from the chart's values.
    eventually(lambda: _connected(kit, installed.remote_cluster), timeout=20)

    vip = kit.load_balancer("db")
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [vip]})
    kit.wait_condition("db", "Ready", "True", "Synced")

    kit.set_ingress("db", [{"ip": "198.51.100.31"}])
    kit.wait_addresses("db", {"IPv4": ["198.51.100.31"]})
    eventually(lambda: [e for e in kit.events("db") if e.reason == "AddressesChanged"])
    # Back and forth again: the repeated move raises the count of its Event (patch).
    # The status (and the Event) follow the slice a moment after a move: wait for each,
    # or the next move would come before the status said the last one.
    for address in (vip, "198.51.100.31"):
        kit.set_ingress("db", [{"ip": address}])
        kit.wait_addresses("db", {"IPv4": [address]})
        eventually(lambda a=address: kit.get_import("db")["status"]["addresses"] == [a])
    eventually(
        lambda: (
            [
                e.count
                for e in kit.events("db")
                if e.reason == "AddressesChanged" and e.message == f"{vip} -> 198.51.100.31"
            ]
            == [2]
        )
    )

    # A hand edit is undone, through patch.
    kit.core.patch_namespaced_service("db", kit.namespace, {"spec": {"selector": {"app": "x"}}})
    eventually(lambda: kit.core.read_namespaced_service("db", kit.namespace).spec.selector is None)

    # A Service of somebody else's: reported, with an Event, and left alone (get, create).
    kit.core.create_namespaced_service(
        kit.namespace, {"metadata": {"name": "taken"}, "spec": {"ports": [{"port": 80}]}}
    )
    kit.create_import(
        "other",
        {
            "source": {"addresses": ["203.0.113.40"]},
            "ports": [{"port": 80}],
            "serviceName": "taken",
        },
    )
    kit.wait_condition("other", "Ready", "False", "Conflict")
    eventually(lambda: [e for e in kit.events("other") if e.reason == "Conflict"])
    assert kit.core.read_namespaced_service("taken", kit.namespace).metadata.labels is None

    # A renamed Service: the new one is written, the old one deleted.
    kit.patch_import("db", {"spec": {"serviceName": "db-v2"}})
    kit.wait_addresses("db-v2", {"IPv4": ["198.51.100.31"]})
    eventually(lambda: status_of(kit.core.read_namespaced_service, "db", kit.namespace) == 404)

    kit.delete_import("db")
    eventually(lambda: kit.slice_addresses("db-v2") == {})

    log = installed.operator.log_path.read_text()
    assert forbidden_requests(log) == [], "\n".join(forbidden_requests(log))
    assert installed.token not in log
    assert installed.access.token not in log


def test_the_chart_identity_is_refused_everything_else(
    installed: Installation, chart_kit: Kit, workload: Cluster
) -> None:
    kit = chart_kit
    kit.core.create_namespaced_secret(
        kit.namespace, {"metadata": {"name": "app-password"}, "stringData": {"password": "x"}}
    )
    kit.core.create_namespaced_service(
        kit.namespace, {"metadata": {"name": "payments"}, "spec": {"ports": [{"port": 443}]}}
    )
    kit.create_import("mine", {"source": {"addresses": ["203.0.113.41"]}, "ports": [{"port": 80}]})
    kit.wait_condition("mine", "Ready", "True")

    api = token_client(workload, installed.token)
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    rogue = {"metadata": {"name": "rogue"}, "spec": {"ports": [{"port": 80}]}}
    # The admission policy is enforced once the API server has loaded it.
    eventually(
        lambda: (
            status_of(core.create_namespaced_service, kit.namespace, rogue, dry_run="All") == 403
        )
    )
    try:
        # Secrets: its own namespace's only.
        assert status_of(core.list_namespaced_secret, installed.namespace) == 200
        assert status_of(core.list_namespaced_secret, kit.namespace) == 403
        assert status_of(core.read_namespaced_secret, "app-password", kit.namespace) == 403
        assert status_of(core.list_secret_for_all_namespaces) == 403
        # The address policy's reads of the cluster itself: list and watch, nothing else.
        networking = k8s.NetworkingV1Api(api)
        assert status_of(core.list_node) == 200
        assert status_of(networking.list_service_cidr) == 200
        assert status_of(networking.read_service_cidr, "kubernetes") == 403
        assert status_of(core.create_node, {"metadata": {"name": "rogue"}}) == 403
        assert status_of(networking.delete_service_cidr, "kubernetes") == 403
        # Nothing of other kinds.
        assert status_of(core.list_namespaced_pod, kit.namespace) == 403
        assert status_of(core.list_namespaced_config_map, kit.namespace) == 403
        assert status_of(core.list_namespace) == 403
        assert (
            status_of(core.create_namespaced_config_map, kit.namespace, {"metadata": {"name": "x"}})
            == 403
        )
        # Imports: read, and their status written; never their spec, never deleted.
        assert (
            status_of(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
            )
            == 200
        )
        assert (
            status_of(
                custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                "mine",
                {"spec": {"serviceName": "hijack"}},
            )
            == 403
        )
        assert (
            status_of(
                custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                "mine",
            )
            == 403
        )
        assert (
            status_of(
                custom.create_cluster_custom_object,
                GROUP,
                VERSION,
                "remoteclusters",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "RemoteCluster",
                    "metadata": {"name": "x"},
                    "spec": {"kubeconfigSecretRef": {"name": "x"}},
                },
            )
            == 403
        )
        # Services: no update at all; patch and delete only of those it manages.
        payments = core.read_namespaced_service("payments", kit.namespace)
        assert (
            status_of(core.replace_namespaced_service, "payments", kit.namespace, payments) == 403
        )
        assert (
            status_of(
                core.patch_namespaced_service,
                "payments",
                kit.namespace,
                {"spec": {"selector": {"a": "b"}}},
            )
            == 403
        )
        assert (
            status_of(
                core.patch_namespaced_service,
                "payments",
                kit.namespace,
                {
                    "metadata": {
                        "labels": {"app.kubernetes.io/managed-by": "shared-services-operator"}
                    }
                },
            )
            == 403
        )
        assert status_of(core.delete_namespaced_service, "payments", kit.namespace) == 403
        assert status_of(core.create_namespaced_service, kit.namespace, rogue) == 403
        assert (
            status_of(
                core.patch_namespaced_service,
                "mine",
                kit.namespace,
                {"metadata": {"labels": {"app.kubernetes.io/managed-by": "me"}}},
            )
            == 403
        )
        assert (
            status_of(
                core.patch_namespaced_service,
                "mine",
                kit.namespace,
                {"metadata": {"labels": {"x": "y"}}},
            )
            == 200
        )
    finally:
        api.close()
    # Nothing of somebody else's was changed.
    payments = kit.core.read_namespaced_service("payments", kit.namespace)
    assert payments.metadata.labels is None
    assert payments.spec.selector is None


def test_listed_namespaces_with_roles_and_leader_election(
    installed: Installation, chart_kit: Kit, workload: Cluster, workload_api: k8s.ApiClient
) -> None:
    kit = chart_kit
    other = f"t-{secrets.token_hex(3)}"
    k8s.CoreV1Api(workload_api).create_namespace({"metadata": {"name": other}})
    try:
        installed.helm.run(
            "upgrade",
            installed.release,
            str(CHART),
            "-n",
            installed.namespace,
            "--reuse-values",
            "--set",
            f"watchNamespaces={{{kit.namespace}}}",
            "--set",
            "leaderElection.enabled=true",
            "--set",
            "replicaCount=2",
        )
        wait_allowed(
            workload,
            installed.token,
            ("v1", "services", kit.namespace),
            (f"{GROUP}/{VERSION}", "sharedserviceimports", kit.namespace),
        )
        installed.operator.stop()
        scoped = operator_as(
            workload,
            token=installed.token,
            operator_namespace=installed.namespace,
            directory=installed.directory,
            name="scoped",
            extra_args=[
                f"--namespace={kit.namespace}",
                "--leader-elect",
                f"--lease-name={installed.release}-shared-services-operator",
            ],
        )
        installed.operator = scoped.start()
        kit.operator = scoped

        kit.create_import(
            "db", {"source": {"addresses": ["203.0.113.42"]}, "ports": [{"port": 5432}]}
        )
        kit.wait_condition("db", "Ready", "True", timeout=30)
        lease = k8s.CoordinationV1Api(workload_api).read_namespaced_lease(
            f"{installed.release}-shared-services-operator", installed.namespace
        )
        assert lease.spec.holder_identity

        # An import elsewhere is none of this release's business, nor may it be.
        kit.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            other,
            "sharedserviceimports",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "SharedServiceImport",
                "metadata": {"name": "db"},
                "spec": {"source": {"addresses": ["203.0.113.43"]}, "ports": [{"port": 80}]},
            },
        )
        api = token_client(workload, installed.token)
        try:
            assert status_of(k8s.CoreV1Api(api).list_namespaced_service, kit.namespace) == 200
            assert status_of(k8s.CoreV1Api(api).list_namespaced_service, other) == 403
            assert status_of(k8s.CoreV1Api(api).list_service_for_all_namespaces) == 403
        finally:
            api.close()
        kit.settled(lambda: kit.operator.metric("shared_services_syncs_total", result="ok"))
        assert status_of(kit.core.read_namespaced_service, "db", other) == 404
        found = kit.custom.get_namespaced_custom_object(
            GROUP, VERSION, other, "sharedserviceimports", "db"
        )
        assert "status" not in found

        log = scoped.log_path.read_text()
        assert forbidden_requests(log) == [], "\n".join(forbidden_requests(log))
        assert "Not enough permissions" not in log
    finally:
        k8s.CoreV1Api(workload_api).delete_namespace(other)
