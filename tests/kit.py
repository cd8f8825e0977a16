"""Shortcuts for tests that drive the operator through the two local clusters.

Used by the integration tests, the end-to-end scenarios and the benchmark, so every layer
talks to the clusters the same way.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from harness.cluster import Cluster
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from harness.signin import SignInService, SsoUser
from shared_services import crdgen
from support import eventually

CRD_DIR = Path(__file__).resolve().parents[1] / "crds"
GROUP, VERSION = "sharedservices.io", "v1alpha1"


# The first Kubernetes release that serves networking.k8s.io/v1 ServiceCIDRs.
SERVICE_CIDRS_SERVED_FROM = 33


def server_minor(api: k8s.ApiClient) -> int:
    """The Kubernetes minor release of the API server ``api`` talks to."""
    return int(str(k8s.VersionApi(api).get_code().minor).rstrip("+"))


def install_crds(api: k8s.ApiClient) -> None:
    """Create or replace the project's CRDs for the server's release; wait until served."""
    # Any: the typed client's models are not what these shortcuts pass (plain dicts).
    extensions: Any = k8s.ApiextensionsV1Api(api)
    names = []
    for path in sorted(crdgen.variant_dir(server_minor(api), root=CRD_DIR).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names.append(crd["metadata"]["name"])
        try:
            extensions.create_custom_resource_definition(crd)
        except k8s.ApiException as error:
            if error.status != 409:
                raise
            current = extensions.read_custom_resource_definition(crd["metadata"]["name"])
            crd["metadata"]["resourceVersion"] = current.metadata.resource_version
            extensions.replace_custom_resource_definition(crd["metadata"]["name"], crd)

    def established() -> bool:
        for name in names:
            conditions = extensions.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    eventually(established, timeout=30)


def wait_no_namespace_terminating(core: Any, *, timeout: float = 120.0) -> None:
    """Wait until no namespace of the cluster is being deleted.

    An operator that watches every namespace acts on what an earlier test left in one that
    is going away: its writes there are refused with 403 ("being terminated"), which a test
    that counts refusals would take for a missing permission, and they count against a test
    that counts writes. The namespace controller works through a namespace in bursts seconds
    apart, so no quiet spell proves it is over; only the namespace being gone does.
    """
    eventually(
        lambda: all(ns.status.phase != "Terminating" for ns in core.list_namespace().items),
        timeout=timeout,
        interval=0.5,
    )


class Kit:
    """Shortcuts for one test's namespace on both clusters."""

    def __init__(
        self,
        *,
        namespace: str,
        supervisor: Cluster,
        supervisor_api: k8s.ApiClient,
        workload_api: k8s.ApiClient,
        operator: OperatorProcess,
    ) -> None:
        self.namespace = namespace
        self.supervisor = supervisor
        self.operator = operator
        # Any: bodies here are plain dicts and results read loosely, which the typed
        # client's models do not describe.
        self.remote: Any = k8s.CoreV1Api(supervisor_api)
        self.core: Any = k8s.CoreV1Api(workload_api)
        self.discovery: Any = k8s.DiscoveryV1Api(workload_api)
        self.custom: Any = k8s.CustomObjectsApi(workload_api)
        self.cluster_name = f"sup-{namespace}"
        self.created_clusters: list[str] = []

    # -- supervisor side ----------------------------------------------------------------

    def load_balancer(
        self, name: str, *, ports: list[dict[str, Any]] | None = None, namespace: str | None = None
    ) -> str:
        """Create a LoadBalancer Service on the supervisor and return its allocated VIP."""
        ns = namespace or self.namespace
        self.remote.create_namespaced_service(
            ns,
            {
                "metadata": {"name": name},
                "spec": {
                    "type": "LoadBalancer",
                    "ports": ports or [{"name": "postgres", "port": 5432}],
                },
            },
        )
        return str(eventually(lambda: self.vip(name, namespace=ns)))

    def vip(self, name: str, *, namespace: str | None = None) -> str | None:
        """The first ingress IP of a supervisor Service."""
        status = self.remote.read_namespaced_service_status(name, namespace or self.namespace)
        ingress = status.status.load_balancer.ingress or []
        return ingress[0].ip if ingress else None

    def set_ingress(self, name: str, ingress: list[dict[str, str]]) -> None:
        """Move the VIP, as a re-provisioned load balancer would."""
        self.remote.patch_namespaced_service_status(
            name, self.namespace, {"status": {"loadBalancer": {"ingress": ingress}}}
        )

    # -- workload side ------------------------------------------------------------------

    def remote_cluster(
        self,
        *,
        name: str | None = None,
        kubeconfig: str | None = None,
        annotations: dict[str, str] | None = None,
        **spec: Any,
    ) -> str:
        """A kubeconfig Secret and a RemoteCluster for the supervisor; returns its name.

        ``kubeconfig`` replaces the supervisor's admin kubeconfig (another server, say).
        """
        name = name or self.cluster_name
        secret = f"{name}-kubeconfig"
        if kubeconfig is None:
            kubeconfig = self.supervisor.kubeconfig_yaml()
        self.core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            {
                "metadata": {"name": secret},
                "data": {"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
            },
        )
        self.custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "remoteclusters",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "RemoteCluster",
                "metadata": {"name": name, "annotations": annotations or {}},
                "spec": {"kubeconfigSecretRef": {"name": secret}, **spec},
            },
        )
        self.created_clusters.append(name)
        return name

    def sso_remote_cluster(
        self, signin: SignInService, user: SsoUser, *, name: str | None = None, **spec: Any
    ) -> str:
        """A RemoteCluster that signs in to the supervisor as ``user``; returns its name.

        Its kubeconfig holds the server and its CA only, as on a vSphere Supervisor, and the
        user's name and password are a basic-auth Secret ``<name>-sso`` beside it.
        """
        name = name or f"{self.namespace}-sso"
        self.core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            {
                "metadata": {"name": f"{name}-sso"},
                "type": "kubernetes.io/basic-auth",
                "data": {
                    "username": base64.b64encode(user.name.encode()).decode(),
                    "password": base64.b64encode(user.password.encode()).decode(),
                },
            },
        )
        config = self.supervisor.kubeconfig()
        config.pop("users", None)
        for context in config["contexts"]:
            context["context"].pop("user", None)
        return self.remote_cluster(
            name=name,
            kubeconfig=yaml.safe_dump(config, sort_keys=False),
            vsphereSignIn={
                "credentialsSecretRef": {"name": f"{name}-sso"},
                "url": signin.login_url,
            },
            **spec,
        )

    def delete_remote_cluster(self, name: str) -> None:
        """Delete a RemoteCluster made by :meth:`remote_cluster`, and its Secret."""
        self.custom.delete_cluster_custom_object(GROUP, VERSION, "remoteclusters", name)
        self.core.delete_namespaced_secret(f"{name}-kubeconfig", OPERATOR_NAMESPACE)
        self.created_clusters.remove(name)

    def reader_token(self) -> str:
        """A token of a supervisor ServiceAccount that may only read Services here.

        The least a RemoteCluster's credentials need, for tests that rotate to them.
        """
        self.remote.create_namespaced_service_account(
            self.namespace, {"metadata": {"name": "reader"}}
        )
        rbac: Any = k8s.RbacAuthorizationV1Api(self.remote.api_client)
        rbac.create_namespaced_role(
            self.namespace,
            {
                "metadata": {"name": "read-services"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["services"],
                        "verbs": ["get", "list", "watch"],
                    }
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            self.namespace,
            {
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "read-services",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "reader", "namespace": self.namespace}
                ],
            },
        )
        request = self.remote.create_namespaced_service_account_token(
            "reader", self.namespace, {"spec": {"expirationSeconds": 3600}}
        )
        return str(request.status.token)

    def cleanup(self) -> None:
        """Delete the cluster-scoped RemoteClusters and their Secrets made by this kit."""
        for name in self.created_clusters:
            for delete, args in (
                (
                    self.custom.delete_cluster_custom_object,
                    (GROUP, VERSION, "remoteclusters", name),
                ),
                (self.core.delete_namespaced_secret, (f"{name}-kubeconfig", OPERATOR_NAMESPACE)),
            ):
                try:
                    delete(*args)
                except k8s.ApiException as error:
                    if error.status != 404:
                        raise

    def write_counts(self) -> float:
        """All writes the operator has made so far, objects and statuses."""
        return sum(
            value
            for key, value in self.operator.metrics().items()
            if key.startswith(
                ("shared_services_writes_total", "shared_services_status_writes_total")
            )
        )

    def settled(self, count: Any, *, quiet: float = 1.0, timeout: float = 60.0) -> float:
        """Wait until ``count()`` stays the same for ``quiet`` seconds; return its value.

        The session's operator also serves other tests, whose namespaces may still be going
        away; a test that counts the operator's actions starts counting once none is.
        """

        wait_no_namespace_terminating(self.core, timeout=timeout)
        seen: list[float] = [count()]

        def still() -> bool:
            time.sleep(quiet)
            seen.append(count())
            return seen[-1] == seen[-2]

        eventually(still, timeout=timeout)
        return seen[-1]

    def create_import(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create a SharedServiceImport in the test's namespace."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceImport",
            "metadata": {"name": name},
            "spec": spec,
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "sharedserviceimports", body
        )
        return created

    def import_remote(self, name: str, service: str, **extra: Any) -> dict[str, Any]:
        """Import ``service`` from the test's namespace on the supervisor."""
        source = {
            "remoteService": {
                "cluster": self.cluster_name,
                "namespace": self.namespace,
                "name": service,
            }
        }
        return self.create_import(name, {"source": source, **extra})

    def get_import(self, name: str) -> dict[str, Any]:
        """The import as the API server has it."""
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "sharedserviceimports", name
        )
        return found

    def patch_import(self, name: str, patch: dict[str, Any]) -> None:
        """Change an import."""
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "sharedserviceimports", name, patch
        )

    def delete_import(self, name: str) -> None:
        """Delete an import."""
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "sharedserviceimports", name
        )

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        """One condition of an import's status."""
        status = self.get_import(name).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == type_), None)

    def wait_condition(
        self, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 20
    ) -> dict[str, Any]:
        """Wait until a condition has the given status (and reason)."""

        def check() -> dict[str, Any] | None:
            found = self.condition(name, type_)
            if (
                found
                and found["status"] == status
                and (reason is None or found["reason"] == reason)
            ):
                return found
            return None

        try:
            found = eventually(check, timeout=timeout)
        except AssertionError as error:
            raise AssertionError(
                f"{type_} of {name} is {self.condition(name, type_)}\n{self.operator.log_tail()}"
            ) from error
        assert found is not None  # eventually returns only a truthy value
        return found

    def slice_addresses(self, service: str) -> dict[str, list[str]]:
        """Addresses in the service's EndpointSlices, by address type."""
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        return {
            s.address_type: sorted(a for e in s.endpoints or [] for a in e.addresses)
            for s in slices
        }

    def wait_addresses(
        self, service: str, expected: dict[str, list[str]], timeout: float = 20
    ) -> None:
        """Wait until the EndpointSlices hold exactly ``expected``."""
        try:
            eventually(lambda: self.slice_addresses(service) == expected, timeout=timeout)
        except AssertionError as error:
            raise AssertionError(
                f"slices of {service}: {self.slice_addresses(service)} != {expected}\n"
                f"{self.operator.log_tail()}"
            ) from error

    def events(self, name: str) -> list[Any]:
        """Events recorded on an import."""
        return list(
            self.core.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={name}"
            ).items
        )
