"""The Helm chart: it lints, its schema refuses bad values, it renders the hardened Deployment
and exactly the RBAC the operator needs in each mode (the kubeconfig and sign-in Secrets by
name), RemoteClusters that sign in to a vSphere Supervisor with the basic-auth Secret the
operator reads (or one named as is), refusing half-given credentials in words that never
quote them, the tenants' roles that the stock view, edit and admin roles aggregate, and an
admission policy that holds the operator's identity to the address policy of the same
values, as far as the cluster's Kubernetes release can check it; it renders the CRDs that the
cluster's release accepts (kept on uninstall, or none at all with crds.enabled=false), the
plain manifests are its up-to-date rendering, and it really installs into (and uninstalls
from) a cluster. What installing, upgrading and uninstalling do to the CRDs themselves is
pinned on a cluster of its own, in test_chart_crds.
"""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from deploykit import CHART, DEPLOY, REPO, Helm, find, kubectl, status_of, write_values
from harness.cluster import Cluster
from harness.helm import ensure_helm
from shared_services import api, crdgen, signin
from shared_services.settings import Settings

# What the chart grants, rule by rule; test_rbac proves each is needed and enough.
WORKLOAD_RULES = [
    # Imports are written only for the catalogs, as the admission policy holds it to.
    (
        ("sharedservices.io",),
        ("sharedserviceimports",),
        ("list", "watch", "create", "patch", "delete"),
    ),
    (("sharedservices.io",), ("sharedserviceimports/status",), ("patch",)),
    (("sharedservices.io",), ("sharedservicecatalogs",), ("list", "watch")),
    (("sharedservices.io",), ("sharedservicecatalogs/status",), ("patch",)),
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
    (("",), ("nodes", "pods"), ("list", "watch")),
    (("networking.k8s.io",), ("servicecidrs",), ("list", "watch")),
]
OWN_NAMESPACE_RULES = [(("",), ("secrets",), ("list", "watch"))]
# What the stock roles gain: view reads imports and catalogs; edit and admin change them
# too. Neither writes their status, nor reads RemoteClusters.
TENANT_VIEW_RULES = [
    (
        ("sharedservices.io",),
        ("sharedserviceimports", "sharedservicecatalogs"),
        ("get", "list", "watch"),
    )
]
TENANT_EDIT_RULES = [
    (
        ("sharedservices.io",),
        ("sharedserviceimports", "sharedservicecatalogs"),
        ("create", "update", "patch", "delete", "deletecollection"),
    )
]
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
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
    "SERVICE_CIDRS",
    "NAT64_PREFIXES",
    "ALLOW_METADATA_SERVICES",
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
        ["--set", "crds.enabled=false"],
        ["--set", "crds.keep=false"],
        ["--set", "imports.allowSystemNamespaces=true"],
        ["--set", "rbac.aggregateClusterRoles=false,rbac.kubeconfigSecrets={central}"],
        [
            "--set",
            "remoteClusters[0].name=supervisor,remoteClusters[0].existingSecret=central,"
            "remoteClusters[0].vsphereSignIn.existingSecret=central-sso",
        ],
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
        "crds.keep=maybe": "/crds/keep",
        "crds.install=true": "additional properties 'install'",
        "imports.allowSystemNamespaces=maybe": "/imports/allowSystemNamespaces",
        "rbac.kubeconfigSecrets={Bad_Name}": "/rbac/kubeconfigSecrets/0",
        "rbac.aggregateClusterRoles=yes": "/rbac/aggregateClusterRoles",
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
    # Imports in kube-system and the operator's namespace are refused unless allowed.
    assert env["ALLOW_SYSTEM_NAMESPACES"] == "false"
    # The default address policy: nowhere in the cluster itself, static sources for all.
    assert {k: env[k] for k in POLICY_ENV} == {
        "ALLOWED_CIDRS": "",
        "DENIED_CIDRS": "",
        "ALLOW_CLUSTER_NETWORKS": "false",
        "STATIC_SOURCES": "all",
        "STATIC_SOURCE_NAMESPACES": "",
        "SERVICE_CIDRS": "",
        "NAT64_PREFIXES": "",
        "ALLOW_METADATA_SERVICES": "false",
    }
    assert (env["REMOTE_GONE_GRACE_SECONDS"], env["MAX_REMOTE_NAMESPACES"]) == ("300", "50")
    # One replica without election: an upgrade must never run two at once.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    service = find(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert "ServiceMonitor" not in {o["kind"] for o in objects}
    assert "PodDisruptionBudget" not in {o["kind"] for o in objects}


def test_rbac_every_namespace(helm: Helm) -> None:
    objects = helm.template()
    cluster_role = find(objects, "ClusterRole", "t-shared-services-operator")
    assert rules(cluster_role) == CLUSTER_RULES + WORKLOAD_RULES
    own = find(objects, "Role")
    assert own["metadata"]["namespace"] == "sso"
    assert rules(own) == OWN_NAMESPACE_RULES
    binding = find(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "t-shared-services-operator", "namespace": "sso"}
    ]
    for name in ("managed-objects", "catalog-imports"):
        policy = find(objects, "ValidatingAdmissionPolicy", f"t-shared-services-operator-{name}")
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
    assert rules(find(objects, "ClusterRole", "t-shared-services-operator")) == CLUSTER_RULES
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


def test_kubeconfig_secrets_by_name(helm: Helm, tmp_path: Path) -> None:
    values = write_values(
        tmp_path / "values.yaml",
        {
            "remoteClusters": [
                {"name": "supervisor", "kubeconfig": "apiVersion: v1\n"},
                {"name": "dr", "existingSecret": "dr-credentials"},
            ],
            "rbac": {"kubeconfigSecrets": ["by-hand", "dr-credentials"]},
        },
    )
    (secrets_rule,) = find(helm.template("-f", str(values)), "Role")["rules"]
    # Each watch of the operator names one Secret (a field selector on its name), which
    # RBAC matches against resourceNames for list and watch alike.
    assert secrets_rule == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["supervisor-kubeconfig", "dr-credentials", "by-hand"],
        "verbs": ["list", "watch"],
    }
    # Knowing no name (RemoteClusters made outside the chart), it reads the namespace's.
    (every,) = find(helm.template(), "Role")["rules"]
    assert "resourceNames" not in every


def test_tenants_roles_aggregate_into_the_stock_roles(helm: Helm) -> None:
    objects = helm.template()
    view = find(objects, "ClusterRole", "t-shared-services-operator-view")
    edit = find(objects, "ClusterRole", "t-shared-services-operator-edit")
    assert rules(view) == TENANT_VIEW_RULES
    assert rules(edit) == TENANT_EDIT_RULES
    aggregated = {
        role["metadata"]["name"]: {
            key.removeprefix(AGGREGATE)
            for key, value in role["metadata"]["labels"].items()
            if key.startswith(AGGREGATE) and value == "true"
        }
        for role in (view, edit)
    }
    assert aggregated == {
        "t-shared-services-operator-view": {"view", "edit", "admin"},
        "t-shared-services-operator-edit": {"edit", "admin"},
    }
    # No binding of the chart's names them: the stock roles carry them to whoever has those.
    bound = {
        o["roleRef"]["name"] for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }
    assert not bound & {view["metadata"]["name"], edit["metadata"]["name"]}
    off = helm.template("--set", "rbac.aggregateClusterRoles=false")
    assert [o["metadata"]["name"] for o in off if o["kind"] == "ClusterRole"] == [
        "t-shared-services-operator"
    ]


MANAGED_OBJECTS = "t-shared-services-operator-managed-objects"


def _policy_variables(objects: list[dict[str, Any]]) -> dict[str, str]:
    policy = find(objects, "ValidatingAdmissionPolicy", MANAGED_OBJECTS)
    return {v["name"]: v["expression"] for v in policy["spec"].get("variables", [])}


def _policy_text(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(find(objects, "ValidatingAdmissionPolicy", MANAGED_OBJECTS)["spec"])


@pytest.mark.parametrize("kube_version", ["1.31.0", "1.37.2"])
def test_the_admission_policy_holds_the_address_policy(
    helm: Helm, tmp_path: Path, kube_version: str
) -> None:
    values = write_values(
        tmp_path / "values.yaml",
        {
            "addressPolicy": {
                "allowedCIDRs": ["198.51.100.0/24", "::ffff:192.0.2.0/120"],
                "deniedCIDRs": ["198.51.100.128/25"],
                "serviceCIDRs": ["10.96.0.0/12", "fd00:10:96::/112"],
            }
        },
    )
    found = _policy_variables(helm.template("--kube-version", kube_version, "-f", str(values)))
    # An IPv4-mapped range is the IPv4 range it stands for, as the operator reads it (CEL's
    # cidr() refuses the mapped form); the Service ranges are denied with the cluster's.
    assert yaml.safe_load(found["allowedCIDRs"]) == ["198.51.100.0/24", "192.0.2.0/24"]
    assert yaml.safe_load(found["deniedCIDRs"]) == [
        "198.51.100.128/25",
        "10.96.0.0/12",
        "fd00:10:96::/112",
    ]
    assert "isGlobalUnicast()" in _policy_text(
        helm.template("--kube-version", kube_version, "-f", str(values))
    )
    allowing = helm.template(
        "--kube-version",
        kube_version,
        "-f",
        str(values),
        "--set",
        "addressPolicy.allowClusterNetworks=true",
    )
    assert yaml.safe_load(_policy_variables(allowing)["deniedCIDRs"]) == ["198.51.100.128/25"]
    defaults = _policy_variables(helm.template("--kube-version", kube_version))
    assert yaml.safe_load(defaults["allowedCIDRs"]) == []
    assert yaml.safe_load(defaults["deniedCIDRs"]) == []


def test_the_admission_policy_on_1_30_calls_no_ip_library(helm: Helm) -> None:
    objects = helm.template(
        "--kube-version", "1.30.0", "--set", "addressPolicy.allowedCIDRs={198.51.100.0/24}"
    )
    text = _policy_text(objects)
    assert re.search(r"\b(isIP|ip|isCIDR|cidr)\(", text) is None, text
    assert "allowedCIDRs" not in _policy_variables(objects)
    # Multicast is refused by the form of the address instead.
    assert "matches(" in text


@pytest.mark.parametrize("kube_version", ["1.30.0", "1.37.2"])
def test_the_admission_policy_keeps_out_of_system_namespaces(helm: Helm, kube_version: str) -> None:
    refused = _policy_variables(helm.template("--kube-version", kube_version))
    assert yaml.safe_load(refused["refusedNamespaces"]) == ["kube-system", "sso"]
    allowed = _policy_variables(
        helm.template("--kube-version", kube_version, "--set", "imports.allowSystemNamespaces=true")
    )
    assert yaml.safe_load(allowed["refusedNamespaces"]) == []
    env = {
        e["name"]: e.get("value")
        for e in find(helm.template("--set", "imports.allowSystemNamespaces=true"), "Deployment")[
            "spec"
        ]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["ALLOW_SYSTEM_NAMESPACES"] == "true"


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
                "serviceCIDRs": ["10.96.0.0/12", "fd00:10:96::/112"],
                "nat64Prefixes": ["64:ff9b:1:ab::/96"],
                "allowMetadataServices": True,
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
        "SERVICE_CIDRS": "10.96.0.0/12,fd00:10:96::/112",
        "NAT64_PREFIXES": "64:ff9b:1:ab::/96",
        "ALLOW_METADATA_SERVICES": "true",
    }
    # What the chart renders is what the operator reads, flag for flag.
    with pytest.MonkeyPatch.context() as patch:
        for name in POLICY_ENV:
            patch.setenv(name, env[name])
        policy = Settings.parse([]).address_policy
    assert [str(n) for n in policy.allowed] == ["198.51.100.0/24", "2001:db8:100::/48"]
    assert [str(n) for n in policy.denied] == ["198.51.100.128/25"]
    assert [str(n) for n in policy.service_cidrs] == ["10.96.0.0/12", "fd00:10:96::/112"]
    assert [str(n) for n in policy.nat64_prefixes] == ["64:ff9b:1:ab::/96"]
    assert policy.allow_metadata_services is True
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


SSO_USER = "tkc-01@vsphere.local"
# What YAML, a shell and Go templates each read specially, and a letter outside ASCII: the
# Secret must hold it byte for byte. Not a real password.
SSO_PASSWORD = "pä$s w0rd: #{{ .x }}'\"%s"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_sign_in_from_values(helm: Helm, tmp_path: Path) -> None:
    values = write_values(
        tmp_path / "values.yaml",
        {
            "remoteClusters": [
                {
                    "name": "supervisor",
                    "kubeconfig": "apiVersion: v1\n",
                    "vsphereSignIn": {"username": SSO_USER, "password": SSO_PASSWORD},
                },
                {
                    "name": "dr",
                    "existingSecret": "dr-kubeconfig",
                    "vsphereSignIn": {
                        "existingSecret": "dr-credentials",
                        "url": "https://192.0.2.20/wcp/login",
                    },
                },
                # null is no sign-in, as null is "not set" everywhere in Helm's values.
                {"name": "lab", "existingSecret": "lab-kubeconfig", "vsphereSignIn": None},
            ]
        },
    )
    objects = helm.template("-f", str(values))
    made = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    # dr's credentials are somebody else's Secret, named as is; lab does not sign in.
    assert set(made) == {"supervisor-kubeconfig", "supervisor-sso"}
    sso = made["supervisor-sso"]
    assert sso["type"] == "kubernetes.io/basic-auth"
    assert sso["metadata"] == {
        "name": "supervisor-sso",
        "namespace": "sso",
        "labels": sso["metadata"]["labels"],
    }
    assert sso["data"] == {"username": _b64(SSO_USER), "password": _b64(SSO_PASSWORD)}
    # Read as the operator reads it.
    decoded = {key: base64.b64decode(value).decode() for key, value in sso["data"].items()}
    assert signin.credentials(decoded, secret="supervisor-sso") == signin.Credentials(
        username=SSO_USER, password=SSO_PASSWORD
    )
    specs = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "RemoteCluster"}
    assert specs == {
        "supervisor": {
            "kubeconfigSecretRef": {"name": "supervisor-kubeconfig", "key": "kubeconfig"},
            "vsphereSignIn": {"credentialsSecretRef": {"name": "supervisor-sso"}},
        },
        "dr": {
            "kubeconfigSecretRef": {"name": "dr-kubeconfig", "key": "kubeconfig"},
            "vsphereSignIn": {
                "credentialsSecretRef": {"name": "dr-credentials"},
                "url": "https://192.0.2.20/wcp/login",
            },
        },
        "lab": {"kubeconfigSecretRef": {"name": "lab-kubeconfig", "key": "kubeconfig"}},
    }
    # The operator's own model reads each spec as the chart means it.
    dr = api.RemoteClusterSpec.model_validate(specs["dr"]).vsphere_sign_in
    assert dr is not None
    assert (dr.credentials_secret_ref.name, dr.url) == (
        "dr-credentials",
        "https://192.0.2.20/wcp/login",
    )
    assert api.RemoteClusterSpec.model_validate(specs["lab"]).vsphere_sign_in is None
    # The operator may read each RemoteCluster's Secrets, and those only.
    (secrets_rule,) = find(objects, "Role")["rules"]
    assert secrets_rule["resourceNames"] == [
        "supervisor-kubeconfig",
        "supervisor-sso",
        "dr-kubeconfig",
        "dr-credentials",
        "lab-kubeconfig",
    ]


EITHER = "set username and password, or existingSecret"
NAMED = "(the name of a kubernetes.io/basic-auth Secret in the release's namespace)"
CONTROL = "holds a line break or another control character"
# What the chart refuses in a vsphereSignIn, and what it says, after
# "remoteClusters[supervisor].vsphereSignIn".
SIGN_IN_REFUSALS: dict[str, tuple[dict[str, str], str]] = {
    "both": (
        {"username": SSO_USER, "password": SSO_PASSWORD, "existingSecret": "sso"},
        f": {EITHER}, not both",
    ),
    "neither": ({}, f": {EITHER} {NAMED}"),
    "only-url": ({"url": "https://192.0.2.10/wcp/login"}, f": {EITHER} {NAMED}"),
    "no-password": ({"username": SSO_USER}, f": username is set but password is not; {EITHER}"),
    "no-username": (
        {"password": SSO_PASSWORD},
        f": password is set but username is not; {EITHER}",
    ),
    "colon": (
        {"username": "vsphere.local:tkc-01", "password": SSO_PASSWORD},
        ".username holds a ':', which HTTP Basic authentication cannot carry",
    ),
    "newline": ({"username": SSO_USER, "password": SSO_PASSWORD + "\n"}, f".password {CONTROL}"),
    "tab": ({"username": SSO_USER + "\t", "password": SSO_PASSWORD}, f".username {CONTROL}"),
}
# What the schema refuses, and where it says so, after "at '/remoteClusters/0/vsphereSignIn".
SIGN_IN_SCHEMA_REFUSALS: dict[str, tuple[object, str]] = {
    "unknown-key": ({"user": SSO_USER}, "': additional properties 'user' not allowed"),
    "number": ({"username": SSO_USER, "password": 123456}, "/password': got number, want string"),
    "long-password": ({"username": SSO_USER, "password": "w0rd" * 257}, "/password': maxLength"),
    "long-username": ({"username": "u" * 513, "password": SSO_PASSWORD}, "/username': maxLength"),
    "secret-name": ({"existingSecret": "Bad_Name"}, "/existingSecret'"),
    "http": ({"existingSecret": "sso", "url": "http://192.0.2.10/wcp/login"}, "/url'"),
    "userinfo": ({"existingSecret": "sso", "url": "https://u@192.0.2.10/wcp/login"}, "/url'"),
    "not-a-map": ("yes", "': got string, want null or object"),
}


def _render_sign_in(helm: Helm, tmp_path: Path, sign_in: object) -> str:
    """helm template's complaint about a RemoteCluster with ``sign_in``; it must fail."""
    values = write_values(
        tmp_path / "values.yaml",
        {
            "remoteClusters": [
                {"name": "supervisor", "existingSecret": "k", "vsphereSignIn": sign_in}
            ]
        },
    )
    result = helm.run("template", "t", str(CHART), "-f", str(values), check=False)
    assert result.returncode != 0, result.stdout
    # No message quotes the password, whatever refused it.
    assert "w0rd" not in result.stdout + result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("sign_in", "complaint"), list(SIGN_IN_REFUSALS.values()), ids=list(SIGN_IN_REFUSALS)
)
def test_sign_in_refusals(
    helm: Helm, tmp_path: Path, sign_in: dict[str, str], complaint: str
) -> None:
    said = _render_sign_in(helm, tmp_path, sign_in)
    assert f"remoteClusters[supervisor].vsphereSignIn{complaint}" in said, said


@pytest.mark.parametrize(
    ("sign_in", "complaint"),
    list(SIGN_IN_SCHEMA_REFUSALS.values()),
    ids=list(SIGN_IN_SCHEMA_REFUSALS),
)
def test_the_schema_checks_sign_in_without_quoting_a_password(
    helm: Helm, tmp_path: Path, sign_in: object, complaint: str
) -> None:
    # A pattern's message would quote the value it refuses: the password is held to none.
    said = _render_sign_in(helm, tmp_path, sign_in)
    assert f"at '/remoteClusters/0/vsphereSignIn{complaint}" in said, said


CRD_NAMES = {
    "sharedserviceimports.sharedservices.io",
    "remoteclusters.sharedservices.io",
    "sharedservicecatalogs.sharedservices.io",
}
KEEP = {
    "helm.sh/resource-policy": "keep",
    "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
}


def _generated_crds(minor: int) -> dict[str, dict[str, Any]]:
    """The CRDs in the repository's crds/ that Kubernetes 1.<minor> accepts, by name."""
    directory = crdgen.variant_dir(minor, root=REPO / "crds")
    crds = [yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))]
    return {crd["metadata"]["name"]: crd for crd in crds}


@pytest.mark.parametrize(
    ("kube_version", "minor"), [("1.30.0", 30), ("1.31.0", 31), ("1.37.2", 37)]
)
def test_the_crds_are_those_the_release_accepts(helm: Helm, kube_version: str, minor: int) -> None:
    objects = helm.template("--kube-version", kube_version)
    rendered = {
        o["metadata"]["name"]: o for o in objects if o["kind"] == "CustomResourceDefinition"
    }
    assert set(rendered) == CRD_NAMES
    expected = _generated_crds(minor)
    for name, crd in rendered.items():
        metadata = crd["metadata"]
        assert metadata["annotations"] == KEEP
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert metadata["labels"]["app.kubernetes.io/instance"] == "t"
        # Apart from the release's labels and annotations, the file as generated.
        assert {**crd, "metadata": {"name": name}} == expected[name]
    imports = str(rendered["sharedserviceimports.sharedservices.io"]["spec"])
    assert ("isIP(self)" in imports) == (minor >= crdgen.IP_LIBRARY_MINOR)


def test_crds_can_be_left_out_or_left_to_go(helm: Helm) -> None:
    kinds = {o["kind"] for o in helm.template("--set", "crds.enabled=false")}
    assert "CustomResourceDefinition" not in kinds
    assert "Deployment" in kinds
    unkept = helm.template("--set", "crds.keep=false")
    crds = [o for o in unkept if o["kind"] == "CustomResourceDefinition"]
    assert {crd["metadata"]["name"] for crd in crds} == CRD_NAMES
    assert all("annotations" not in crd["metadata"] for crd in crds)


def test_remote_clusters_wait_for_the_crds_they_need(helm: Helm, tmp_path: Path) -> None:
    values = write_values(
        tmp_path / "values.yaml",
        {"remoteClusters": [{"name": "supervisor", "existingSecret": "supervisor-kubeconfig"}]},
    )
    known = "--api-versions=sharedservices.io/v1alpha1"
    hook = {
        "helm.sh/hook": "post-install,post-upgrade",
        "meta.helm.sh/release-name": "t",
        "meta.helm.sh/release-namespace": "sso",
    }

    def annotations(*args: str) -> dict[str, str]:
        remote = find(helm.template("-f", str(values), *args), "RemoteCluster")
        found: dict[str, str] = dict(remote["metadata"].get("annotations") or {})
        # Whichever way it is created, the release writes its status (test_chart_shared).
        assert found.pop("sharedservices.io/status-writer") == "t-shared-services-operator"
        return found

    # The release creates the CRDs, which the API server does not serve yet: a hook, as the
    # release's own, created after the CRDs.
    assert annotations() == hook
    # The CRDs are there (a later upgrade), or are somebody else's: an object like any other.
    assert annotations(known) == {}
    assert annotations("--set", "crds.enabled=false") == {}


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
    # The CRDs for 1.30, which every release in the supported range accepts; and only in
    # crds.yaml.
    crds = [d for d in yaml.safe_load_all((tmp_path / "crds.yaml").read_text()) if d]
    assert {crd["metadata"]["name"] for crd in crds} == CRD_NAMES
    for crd in crds:
        name = crd["metadata"]["name"]
        assert {**crd, "metadata": {"name": name}} == _generated_crds(30)[name]
    operator = yaml.safe_load_all((tmp_path / "operator.yaml").read_text())
    assert "CustomResourceDefinition" not in {d["kind"] for d in operator if d}


@pytest.mark.releases
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
        {
            "remoteClusters": [
                {"name": f"{name}-central", "existingSecret": "central"},
                {
                    "name": f"{name}-signs-in",
                    "existingSecret": "central",
                    "vsphereSignIn": {"username": SSO_USER, "password": SSO_PASSWORD},
                },
            ]
        },
    )
    extensions = k8s.ApiextensionsV1Api(workload_api)
    crd_uids = {n: extensions.read_custom_resource_definition(n).metadata.uid for n in CRD_NAMES}
    result = helm.install_beside_crds(name, namespace=namespace, values=values)
    manifest = helm.run("get", "manifest", name, "-n", namespace).stdout
    assert "kind: CustomResourceDefinition" not in manifest
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
        # The API server takes the sign-in as the chart renders it: the CRD's schema keeps
        # vsphereSignIn, and the basic-auth Secret has the keys its type requires.
        signs_in = custom.get_cluster_custom_object(
            "sharedservices.io", "v1alpha1", "remoteclusters", f"{name}-signs-in"
        )
        assert signs_in["spec"]["vsphereSignIn"] == {
            "credentialsSecretRef": {"name": f"{name}-signs-in-sso"}
        }
        sso = core.read_namespaced_secret(f"{name}-signs-in-sso", namespace)
        assert sso.type == "kubernetes.io/basic-auth"
        assert base64.b64decode(sso.data["password"]).decode() == SSO_PASSWORD
        # The plain manifests are valid for this API server, too.
        kubectl(
            helm.kubeconfig or Path(), "apply", "--dry-run=server", "-k", str(DEPLOY / "manifests")
        )
    finally:
        helm.run("uninstall", name, "-n", namespace)
        core.delete_namespace(namespace)
    assert status_of(rbac.read_cluster_role, fullname) == 404
    for remote_name in (f"{name}-central", f"{name}-signs-in"):
        assert (
            status_of(
                custom.get_cluster_custom_object,
                "sharedservices.io",
                "v1alpha1",
                "remoteclusters",
                remote_name,
            )
            == 404
        )
    # CRDs installed another way stay as they were, the very same objects: deleting them
    # would delete every import in the cluster. What a release that installs the CRDs
    # leaves on uninstall is pinned in test_chart_crds.
    assert {
        n: extensions.read_custom_resource_definition(n).metadata.uid for n in CRD_NAMES
    } == crd_uids
