"""The Helm chart: it lints, its schema refuses bad values, it renders the hardened Deployment
and exactly the RBAC the operator needs in each mode, the plain manifests are its up-to-date
rendering, and it really installs into (and uninstalls from) a cluster.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from deploykit import CHART, DEPLOY, Helm, find, kubectl, status_of, write_values
from harness.cluster import Cluster
from harness.helm import ensure_helm
from shared_services.settings import Settings

# What the chart grants, rule by rule; test_rbac proves each is needed and enough.
WORKLOAD_RULES = [
    (("sharedservices.io",), ("sharedserviceimports",), ("list", "watch")),
    (("sharedservices.io",), ("sharedserviceimports/status",), ("patch",)),
    (("",), ("services", "endpoints"), ("get", "list", "watch", "create", "patch", "delete")),
    (
        ("discovery.k8s.io",),
        ("endpointslices",),
        ("get", "list", "watch", "create", "patch", "delete"),
    ),
    (("",), ("events",), ("create", "patch")),
]
CLUSTER_RULES = [
    (("sharedservices.io",), ("remoteclusters",), ("list", "watch")),
    (("sharedservices.io",), ("remoteclusters/status",), ("patch",)),
    # The address policy's view of the cluster itself, in either mode.
    (("",), ("nodes",), ("list", "watch")),
    (("networking.k8s.io",), ("servicecidrs",), ("list", "watch")),
]
OWN_NAMESPACE_RULES = [(("",), ("secrets",), ("list", "watch"))]
LEASE_RULES = [
    (("coordination.k8s.io",), ("leases",), ("create",)),
    (("coordination.k8s.io",), ("leases",), ("get", "update")),
]


POLICY_ENV = (
    "ALLOWED_CIDRS",
    "DENIED_CIDRS",
    "ALLOW_CLUSTER_NETWORKS",
    "STATIC_SOURCES",
    "STATIC_SOURCE_NAMESPACES",
)


def rules(role: dict[str, Any]) -> list[tuple[tuple[str, ...], ...]]:
    return [
        (tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]
    ]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(ensure_helm(), home=tmp_path_factory.mktemp("helm"))


def test_lint_and_schema(helm: Helm) -> None:
    for args in (
        [],
        ["--set", "watchNamespaces={a,b}"],
        ["--set", "leaderElection.enabled=true,replicaCount=3"],
        ["--set", "addressPolicy.allowedCIDRs={198.51.100.0/24,2001:db8:100::/48}"],
        ["--set", "addressPolicy.staticSources=listed,addressPolicy.staticSourceNamespaces={a}"],
    ):
        result = helm.run("lint", "--strict", str(CHART), *args)
        assert "0 chart(s) failed" in result.stdout
    refused = {
        "replicaCount=2": "/leaderElection/enabled",
        "operator.logFormat=xml": "/operator/logFormat",
        "watchNamespaces={Bad_Name}": "/watchNamespaces/0",
        "imageTag=1": "additional properties 'imageTag' not allowed",
        "remoteClusters[0].name=supervisor,remoteClusters[0].kubeconfigs=x": "kubeconfigs",
        "addressPolicy.allowedCIDRs={198.51.100.0/33}": "/addressPolicy/allowedCIDRs/0",
        "addressPolicy.deniedCIDRs={192.0.2.0/24,banana}": "/addressPolicy/deniedCIDRs/1",
        "addressPolicy.allowedCIDRs={2001:db8::/129}": "/addressPolicy/allowedCIDRs/0",
        "addressPolicy.staticSources=some": "/addressPolicy/staticSources",
        "addressPolicy.staticSources=listed": "/addressPolicy/staticSourceNamespaces",
        "addressPolicy.staticSourceNamespaces={Bad_Name}": "staticSourceNamespaces/0",
        "addressPolicy.allowClusterNetwork=true": "additional properties 'allowClusterNetwork'",
    }
    for setting, complaint in refused.items():
        result = helm.run("template", "t", str(CHART), "--set", setting, check=False)
        assert result.returncode != 0, setting
        assert complaint in result.stderr, result.stderr
    # Without the schema, the template itself still refuses "listed" with no namespace.
    result = helm.run(
        "template",
        "t",
        str(CHART),
        "--skip-schema-validation",
        "--set",
        "addressPolicy.staticSources=listed",
        check=False,
    )
    assert result.returncode != 0
    assert "addressPolicy.staticSources=listed needs" in result.stderr


def test_the_deployment_is_hardened(helm: Helm) -> None:
    objects = helm.template()
    deployment = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # Ready once the caches are filled (a standby too); live while it waits for them.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["resources"]["limits"]["memory"]
    # The client writes CAs to temporary files: /tmp is writable, the rest is not.
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    assert container["image"] == "shared-services-operator:0.1.0"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["OPERATOR_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["WATCH_NAMESPACES"] == ""
    assert env["LEADER_ELECT"] == "false"
    # The default address policy: nowhere in the cluster itself, static sources for all.
    assert {k: env[k] for k in POLICY_ENV} == {
        "ALLOWED_CIDRS": "",
        "DENIED_CIDRS": "",
        "ALLOW_CLUSTER_NETWORKS": "false",
        "STATIC_SOURCES": "all",
        "STATIC_SOURCE_NAMESPACES": "",
    }
    # One replica without election: an upgrade must never run two at once.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    service = find(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert "ServiceMonitor" not in {o["kind"] for o in objects}
    assert "PodDisruptionBudget" not in {o["kind"] for o in objects}


def test_rbac_every_namespace(helm: Helm) -> None:
    objects = helm.template()
    cluster_role = find(objects, "ClusterRole")
    assert rules(cluster_role) == CLUSTER_RULES + WORKLOAD_RULES
    own = find(objects, "Role")
    assert own["metadata"]["namespace"] == "sso"
    assert rules(own) == OWN_NAMESPACE_RULES
    binding = find(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "t-shared-services-operator", "namespace": "sso"}
    ]
    policy = find(objects, "ValidatingAdmissionPolicy")
    assert "system:serviceaccount:sso:t-shared-services-operator" in str(policy["spec"])
    for role in [o for o in objects if o["kind"] in ("Role", "ClusterRole")]:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_rbac_listed_namespaces_and_leader_election(helm: Helm) -> None:
    objects = helm.template(
        "--set",
        "watchNamespaces={shop,web}",
        "--set",
        "leaderElection.enabled=true,replicaCount=2",
        "--set",
        "podDisruptionBudget.enabled=true,metrics.serviceMonitor.enabled=true",
    )
    assert rules(find(objects, "ClusterRole")) == CLUSTER_RULES
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    assert set(roles) == {"shop", "web", "sso"}
    assert rules(roles["shop"]) == WORKLOAD_RULES
    assert rules(roles["web"]) == WORKLOAD_RULES
    assert rules(roles["sso"]) == OWN_NAMESPACE_RULES + LEASE_RULES
    # Each release elects on a Lease of its own, the one its RBAC names.
    assert roles["sso"]["rules"][-1]["resourceNames"] == ["t-shared-services-operator"]
    bindings = {o["metadata"]["namespace"] for o in objects if o["kind"] == "RoleBinding"}
    assert bindings == {"shop", "web", "sso"}
    deployment = find(objects, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["WATCH_NAMESPACES"] == "shop,web"
    assert env["LEADER_ELECT"] == "true"
    assert env["LEASE_NAME"] == "t-shared-services-operator"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert find(objects, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"


def test_the_address_policy_from_values(helm: Helm, tmp_path: Path) -> None:
    values = write_values(
        tmp_path / "values.yaml",
        {
            "addressPolicy": {
                "allowedCIDRs": ["198.51.100.0/24", "2001:db8:100::/48"],
                "deniedCIDRs": ["198.51.100.128/25"],
                "allowClusterNetworks": True,
                "staticSources": "listed",
                "staticSourceNamespaces": ["ops", "platform"],
            },
            "watchNamespaces": ["ops"],
        },
    )
    objects = helm.template("-f", str(values))
    (container,) = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {k: env[k] for k in POLICY_ENV} == {
        "ALLOWED_CIDRS": "198.51.100.0/24,2001:db8:100::/48",
        "DENIED_CIDRS": "198.51.100.128/25",
        "ALLOW_CLUSTER_NETWORKS": "true",
        "STATIC_SOURCES": "listed",
        "STATIC_SOURCE_NAMESPACES": "ops,platform",
    }
    # What the chart renders is what the operator reads, flag for flag.
    with pytest.MonkeyPatch.context() as patch:
        for name in POLICY_ENV:
            patch.setenv(name, env[name])
        policy = Settings.parse([]).address_policy
    assert [str(n) for n in policy.allowed] == ["198.51.100.0/24", "2001:db8:100::/48"]
    assert [str(n) for n in policy.denied] == ["198.51.100.128/25"]
    assert policy.allow_cluster_networks is True
    assert policy.static_sources == "listed"
    assert policy.static_source_namespaces == frozenset({"ops", "platform"})


def test_remote_clusters_from_values(helm: Helm, tmp_path: Path) -> None:
    values = write_values(
        tmp_path / "values.yaml",
        {
            "remoteClusters": [
                {
                    "name": "supervisor",
                    "kubeconfig": "apiVersion: v1\n",
                    "allowedNamespaces": ["web"],
                },
                {"name": "dr", "existingSecret": "dr-credentials", "secretKey": "config"},
            ]
        },
    )
    objects = helm.template("-f", str(values))
    secret = find(objects, "Secret")
    assert secret["metadata"] == {
        "name": "supervisor-kubeconfig",
        "namespace": "sso",
        "labels": secret["metadata"]["labels"],
    }
    assert set(secret["data"]) == {"kubeconfig"}
    supervisor = find(objects, "RemoteCluster", "supervisor")
    assert supervisor["spec"] == {
        "kubeconfigSecretRef": {"name": "supervisor-kubeconfig", "key": "kubeconfig"},
        "allowedNamespaces": ["web"],
    }
    dr = find(objects, "RemoteCluster", "dr")
    assert dr["spec"] == {"kubeconfigSecretRef": {"name": "dr-credentials", "key": "config"}}
    both = write_values(
        tmp_path / "both.yaml",
        {"remoteClusters": [{"name": "x", "kubeconfig": "a", "existingSecret": "b"}]},
    )
    result = helm.run("template", "t", str(CHART), "-f", str(both), check=False)
    assert "not both" in result.stderr


def test_the_plain_manifests_are_the_rendered_chart(helm: Helm, tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(DEPLOY / "render-manifests.sh"), str(helm.binary), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in ("crds.yaml", "operator.yaml"):
        assert (tmp_path / name).read_text() == (DEPLOY / "manifests" / name).read_text(), (
            f"deploy/manifests/{name} is stale: run `make manifests`"
        )


def test_install_and_uninstall(
    helm: Helm, workload: Cluster, crds: None, workload_api: k8s.ApiClient, tmp_path: Path
) -> None:
    helm = Helm(
        helm.binary, home=tmp_path / "helm", kubeconfig=workload.write_kubeconfig(tmp_path / "kc")
    )
    suffix = secrets.token_hex(3)
    name, namespace = f"chart-{suffix}", f"sso-chart-{suffix}"
    values = write_values(
        tmp_path / "values.yaml",
        {"remoteClusters": [{"name": f"{name}-central", "existingSecret": "central"}]},
    )
    result = helm.run(
        "install", name, str(CHART), "-n", namespace, "--create-namespace", "-f", str(values)
    )
    # NOTES.txt tells how to create a first import.
    assert "kind: SharedServiceImport" in result.stdout
    assert "kubectl get ssi" in result.stdout
    apps, core = k8s.AppsV1Api(workload_api), k8s.CoreV1Api(workload_api)
    rbac = k8s.RbacAuthorizationV1Api(workload_api)
    custom = k8s.CustomObjectsApi(workload_api)
    fullname = f"{name}-shared-services-operator"
    try:
        deployment = apps.read_namespaced_deployment(fullname, namespace)
        context = deployment.spec.template.spec.containers[0].security_context
        assert context.read_only_root_filesystem is True
        assert core.read_namespaced_service_account(fullname, namespace)
        assert rbac.read_cluster_role(fullname).rules
        assert rbac.read_namespaced_role(f"{fullname}-self", namespace).rules
        remote = custom.get_cluster_custom_object(
            "sharedservices.io", "v1alpha1", "remoteclusters", f"{name}-central"
        )
        assert remote["spec"]["kubeconfigSecretRef"]["name"] == "central"
        # The plain manifests are valid for this API server, too.
        kubectl(
            helm.kubeconfig or Path(), "apply", "--dry-run=server", "-k", str(DEPLOY / "manifests")
        )
    finally:
        helm.run("uninstall", name, "-n", namespace)
        core.delete_namespace(namespace)
    assert status_of(rbac.read_cluster_role, fullname) == 404
    assert (
        status_of(
            custom.get_cluster_custom_object,
            "sharedservices.io",
            "v1alpha1",
            "remoteclusters",
            f"{name}-central",
        )
        == 404
    )
    # CRDs stay: deleting them would delete every import in the cluster.
    extensions = k8s.ApiextensionsV1Api(workload_api)
    assert extensions.read_custom_resource_definition("sharedserviceimports.sharedservices.io")
