"""Shortcuts for the tests of what ships: the chart, the manifests, and both clusters' identities.

They drive the real tools a user drives (helm, kubectl, ``python -m
shared_services.kubeconfig_cli``) against the local clusters, and run the operator under the
identities that the chart and ``deploy/supervisor/`` create, never as an administrator.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from harness.binaries import ensure_binaries
from harness.cluster import Cluster
from harness.operator import OperatorProcess
from shared_services import api
from shared_services.kube import Kube, KubeError
from support import eventually

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "shared-services-operator"
SUPERVISOR_DIR = DEPLOY / "supervisor"
ACCESS_NAMESPACE = "shared-services-access"
ACCESS_ACCOUNT = "workload-clusters"

# An HTTP status in urllib3's debug lines, the operator's own errors, or kopf's.
_FORBIDDEN = re.compile(r'" 403 |\b403 Forbidden|[Ff]orbidden')


def kubectl_path() -> Path:
    """The kubectl built with the control plane."""
    return ensure_binaries() / "kubectl"


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run kubectl as a user would, against the cluster of ``kubeconfig``."""
    result = subprocess.run(
        [str(kubectl_path()), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        msg = f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        raise AssertionError(msg)
    return result


class Helm:
    """The helm binary, with its caches and configuration kept in a directory of the test's."""

    def __init__(self, binary: Path, *, home: Path, kubeconfig: Path | None = None) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        if kubeconfig is not None:
            self.env["KUBECONFIG"] = str(kubeconfig)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one helm command; fail with its output when it fails and ``check`` is set."""
        result = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            msg = f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            raise AssertionError(msg)
        return result

    def install_beside_crds(
        self, release: str, *, namespace: str, values: Path, chart: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Install the chart on a cluster whose CRDs are already there, bringing none.

        The test sessions install the CRDs from crds/, without Helm's ownership metadata,
        and Helm refuses to take over objects it did not create; a release that leaves them
        to someone else is what several releases sharing the CRDs do too.
        """
        return self.run(
            "install",
            release,
            str(chart or CHART),
            "-n",
            namespace,
            "--create-namespace",
            "-f",
            str(values),
            "--set",
            "crds.enabled=false",
        )

    def template(self, *args: str, namespace: str = "sso") -> list[dict[str, Any]]:
        """The chart rendered with ``args`` (``--set``, ``-f``), as objects."""
        out = self.run("template", "t", str(CHART), "--namespace", namespace, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one rendered object of ``kind`` (and ``name``)."""
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[o['kind'] for o in objects]}"
    return found[0]


def write_values(path: Path, values: dict[str, Any]) -> Path:
    """A values file (kept out of the command line, since it may hold a token)."""
    path.write_text(yaml.safe_dump(values))
    path.chmod(0o600)
    return path


# -- identities ----------------------------------------------------------------------------


def service_account_token(
    api: k8s.ApiClient, *, namespace: str, name: str, seconds: int = 3600
) -> str:
    """A token for a ServiceAccount from the API server (TokenRequest), as a pod would get."""
    request = k8s.CoreV1Api(api).create_namespaced_service_account_token(
        name,
        namespace,
        k8s.AuthenticationV1TokenRequest(
            spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        ),
    )
    assert request.status is not None
    return str(request.status.token)


def token_client(cluster: Cluster, token: str) -> k8s.ApiClient:
    """A client of ``cluster`` acting with ``token`` (and not as its administrator)."""
    return cluster.api_client(token=token)


def status_of(call: Any, *args: Any, **kwargs: Any) -> int:
    """The HTTP status of one API call: 200-ish when it succeeded, else the error's."""
    try:
        call(*args, **kwargs)
    except k8s.ApiException as error:
        return int(error.status)
    return 200


# What wait_allowed lists: (group/version, plural, namespace or None), and optionally the
# one object's name, which a field selector asks for, as the operator's watches of Secrets do.
Listing = tuple[str, str, str | None] | tuple[str, str, str | None, str]


def wait_allowed(cluster: Cluster, token: str, *calls: Listing) -> None:
    """Wait until RBAC lets ``token`` list what ``calls`` name.

    New bindings reach the API server's authorizer a moment after they are written; an
    operator started before that would log 403s that say nothing about the chart.
    """
    api = token_client(cluster, token)
    try:
        for call in calls:
            group_version, plural, namespace = call[:3]
            params: dict[str, str | int] = {"limit": 1}
            if len(call) == 4:
                params["fieldSelector"] = f"metadata.name={call[3]}"
            prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            path = (
                f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
            )

            def listed(path: str = path, params: dict[str, str | int] = params) -> bool:
                try:
                    Kube(api).request("GET", path, params=params)
                except KubeError:
                    return False
                return True

            eventually(listed, timeout=15)
    finally:
        api.close()


@dataclass(frozen=True)
class SupervisorAccess:
    """The central cluster's read-only identity of ``deploy/supervisor/``, as workloads get it."""

    kubeconfig_text: str
    token: str
    admin_kubeconfig: Path

    def secret_manifest(self, *, namespace: str, name: str) -> str:
        """What ``make supervisor-kubeconfig`` prints: the Secret a RemoteCluster names."""
        return kubeconfig_cli(
            self.admin_kubeconfig,
            "--format=secret",
            f"--secret-namespace={namespace}",
            f"--secret-name={name}",
        )


def kubeconfig_cli(admin_kubeconfig: Path, *args: str) -> str:
    """Run ``python -m shared_services.kubeconfig_cli`` as the platform team would."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared_services.kubeconfig_cli",
            f"--kubeconfig={admin_kubeconfig}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


_ACCESS: dict[str, SupervisorAccess] = {}


def supervisor_access(supervisor: Cluster, work_dir: Path) -> SupervisorAccess:
    """Apply ``deploy/supervisor/`` to the central cluster (once) and make its kubeconfig."""
    known = _ACCESS.get(supervisor.url)
    if known is not None:
        return known
    admin = supervisor.write_kubeconfig(work_dir / "supervisor-admin.kubeconfig")
    kubectl(admin, "apply", "-k", str(SUPERVISOR_DIR))
    text = kubeconfig_cli(admin, "--format=kubeconfig")
    token = yaml.safe_load(text)["users"][0]["user"]["token"]
    access = _ACCESS[supervisor.url] = SupervisorAccess(
        kubeconfig_text=text, token=token, admin_kubeconfig=admin
    )
    return access


def grant_reader(supervisor: Cluster, access: SupervisorAccess, namespace: str) -> None:
    """Let the identity read one shared namespace, with ``deploy/supervisor/reader.yaml``."""
    kubectl(
        access.admin_kubeconfig, "apply", "-n", namespace, "-f", str(SUPERVISOR_DIR / "reader.yaml")
    )
    api = token_client(supervisor, access.token)
    try:
        # RBAC reaches the authorizer's cache a moment after the RoleBinding is created.
        eventually(
            lambda: status_of(k8s.CoreV1Api(api).list_namespaced_service, namespace) == 200,
            timeout=10,
        )
    finally:
        api.close()


def remote_cluster(
    workload_api: k8s.ApiClient,
    *,
    name: str,
    kubeconfig_text: str,
    secret_namespace: str,
    **spec: Any,
) -> None:
    """A kubeconfig Secret and a RemoteCluster naming it, as the platform team creates them."""
    k8s.CoreV1Api(workload_api).create_namespaced_secret(
        secret_namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name=f"{name}-kubeconfig"),
            data={"kubeconfig": base64.b64encode(kubeconfig_text.encode()).decode()},
        ),
    )
    k8s.CustomObjectsApi(workload_api).create_cluster_custom_object(
        "sharedservices.io",
        "v1alpha1",
        "remoteclusters",
        {
            "apiVersion": "sharedservices.io/v1alpha1",
            "kind": "RemoteCluster",
            "metadata": {"name": name},
            "spec": {"kubeconfigSecretRef": {"name": f"{name}-kubeconfig"}, **spec},
        },
    )


def delete_remote_cluster(workload_api: k8s.ApiClient, *, name: str, secret_namespace: str) -> None:
    """Remove what :func:`remote_cluster` made, if it is still there."""
    for call, args in (
        (
            k8s.CustomObjectsApi(workload_api).delete_cluster_custom_object,
            ("sharedservices.io", "v1alpha1", "remoteclusters", name),
        ),
        (
            k8s.CoreV1Api(workload_api).delete_namespaced_secret,
            (f"{name}-kubeconfig", secret_namespace),
        ),
    ):
        status = status_of(call, *args)
        assert status in (200, 404), f"deleting {name}: {status}"


# -- the operator under the chart's identity -------------------------------------------------


def operator_as(
    workload: Cluster,
    *,
    token: str,
    operator_namespace: str,
    directory: Path,
    name: str,
    extra_args: Sequence[str] = (),
) -> OperatorProcess:
    """The operator as a process, authenticated with ``token`` only (started by the caller)."""
    kubeconfig = directory / f"{name}.kubeconfig"
    kubeconfig.write_text(workload.kubeconfig_yaml(token=token))
    kubeconfig.chmod(0o600)
    return OperatorProcess(
        kubeconfig=kubeconfig,
        log_path=directory / f"{name}.log",
        operator_namespace=operator_namespace,
        extra_args=["--verbose", *extra_args],
    )


def forbidden_requests(log: str) -> list[str]:
    """Lines of an operator log that report a 403: each would be a missing permission."""
    return [line for line in log.splitlines() if _FORBIDDEN.search(line)]


@dataclass(frozen=True)
class ExampleImport:
    """One import an example stands for: written out, or made by one of its catalogs."""

    namespace: str
    name: str
    cluster: str
    remote_namespace: str
    remote_name: str


def example_documents(path: Path) -> list[dict[str, Any]]:
    """Every object of an example's side (a directory of YAML files)."""
    return [d for f in sorted(path.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def example_imports(example: Path) -> list[ExampleImport]:
    """The imports an example's workload side stands for, its catalogs' included.

    A catalog stands for an import of each LoadBalancer Service of its remote namespace, in
    the example's supervisor side, that its selector picks and that is exported (the
    examples' RemoteCluster requires exports), named as the catalog names it: by the
    models, as in the operator.
    """
    remote = example_documents(example / "supervisor")
    found: list[ExampleImport] = []
    for doc in example_documents(example / "workload"):
        metadata = doc["metadata"]
        if doc["kind"] == "SharedServiceImport":
            source = doc["spec"]["source"]["remoteService"]
            found.append(
                ExampleImport(
                    metadata["namespace"],
                    metadata["name"],
                    source["cluster"],
                    source["namespace"],
                    source["name"],
                )
            )
        elif doc["kind"] == "SharedServiceCatalog":
            spec = api.parse_catalog_spec(doc["spec"])
            for service in remote:
                labels = service["metadata"].get("labels") or {}
                if (
                    service["kind"] == "Service"
                    and service["metadata"].get("namespace") == spec.namespace
                    and service["spec"].get("type") == "LoadBalancer"
                    and labels.get(api.EXPORT_LABEL) == "true"
                    and spec.selects(labels)
                ):
                    name = service["metadata"]["name"]
                    found.append(
                        ExampleImport(
                            metadata["namespace"],
                            spec.local_name(name),
                            spec.cluster,
                            spec.namespace,
                            name,
                        )
                    )
    return found
