"""Two releases of the chart shard one cluster by namespace and share its RemoteCluster.

A platform that splits a cluster's namespaces between releases (each with its own Lease,
ServiceAccount and watchNamespaces) imports from the same central cluster in each. The
first release creates the RemoteCluster; the second lists it with ``create: false``. Both
install into one namespace of a real API server with Helm: Helm finds no object that two
releases claim, the RemoteCluster names the first release as the writer of its status, and
the second may read the kubeconfig Secret by name and runs as an instance of its own. Once
the second release is gone, the RemoteCluster is still there.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from kubernetes import client as k8s

from deploykit import Helm, write_values
from harness.cluster import Cluster
from harness.helm import ensure_helm

WRITER = "sharedservices.io/status-writer"


def test_two_releases_share_a_remote_cluster(
    workload: Cluster, crds: None, workload_api: k8s.ApiClient, tmp_path: Path
) -> None:
    helm = Helm(
        ensure_helm(),
        home=tmp_path / "helm",
        kubeconfig=workload.write_kubeconfig(tmp_path / "kc"),
    )
    suffix = secrets.token_hex(3)
    namespace, central = f"sso-shard-{suffix}", f"central-{suffix}"
    first, second = f"team-a-{suffix}", f"team-b-{suffix}"
    values = {
        first: {
            "watchNamespaces": [f"team-a-{suffix}"],
            "remoteClusters": [{"name": central, "existingSecret": "central-kubeconfig"}],
        },
        second: {
            "watchNamespaces": [f"team-b-{suffix}"],
            "remoteClusters": [
                {"name": central, "existingSecret": "central-kubeconfig", "create": False}
            ],
        },
    }
    custom, apps = k8s.CustomObjectsApi(workload_api), k8s.AppsV1Api(workload_api)
    rbac, core = k8s.RbacAuthorizationV1Api(workload_api), k8s.CoreV1Api(workload_api)
    watched = [f"team-a-{suffix}", f"team-b-{suffix}"]
    for name in watched:
        core.create_namespace({"metadata": {"name": name}})
    installed: list[str] = []
    try:
        for release, given in values.items():
            path = write_values(tmp_path / f"{release}.yaml", given)
            helm.install_beside_crds(release, namespace=namespace, values=path)
            installed.append(release)
        remote = custom.get_cluster_custom_object(
            "sharedservices.io", "v1alpha1", "remoteclusters", central
        )
        assert remote["metadata"]["annotations"][WRITER] == f"{first}-shared-services-operator"
        assert remote["metadata"]["annotations"]["meta.helm.sh/release-name"] == first
        manifest = helm.run("get", "manifest", second, "-n", namespace).stdout
        assert "kind: RemoteCluster" not in manifest
        for release in values:
            fullname = f"{release}-shared-services-operator"
            (container,) = apps.read_namespaced_deployment(
                fullname, namespace
            ).spec.template.spec.containers
            env = {e.name: e.value for e in container.env}
            assert env["INSTANCE"] == fullname
            assert env["LEASE_NAME"] == fullname
            secrets_rule = [
                r
                for r in rbac.read_namespaced_role(f"{fullname}-self", namespace).rules
                if "secrets" in (r.resources or [])
            ] + [
                r
                for r in rbac.read_cluster_role(fullname).rules
                if "secrets" in (r.resources or [])
            ]
            named = {n for r in secrets_rule for n in r.resource_names or []}
            assert "central-kubeconfig" in named, (release, secrets_rule)
        helm.run("uninstall", second, "-n", namespace)
        installed.remove(second)
        assert custom.get_cluster_custom_object(
            "sharedservices.io", "v1alpha1", "remoteclusters", central
        )
    finally:
        for release in installed:
            helm.run("uninstall", release, "-n", namespace)
        for name in (namespace, *watched):
            core.delete_namespace(name)
