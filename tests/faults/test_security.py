"""Least privilege, tenant isolation and secrecy.

- Under a least-privilege RBAC (Secrets readable in the operator's namespace only) the
  operator does its whole job, is refused nothing, and cannot read a Secret anywhere else;
  a RemoteCluster naming a Secret that exists only in a tenant's namespace is reported as
  not found rather than read from there.
- No field of an import lets a tenant reach into another namespace: fields that would name
  one are refused (strict) or dropped by the schema, and everything the operator writes for
  an import stays in the import's namespace.
- No token or kubeconfig that the suite created appears in any operator log of the session.

The RBAC here mirrors what the operator needs; the Helm chart's rendered RBAC should replace
it once the chart exists, so that the test proves the chart itself.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from deploykit import forbidden_requests
from faults.toolkit import FaultEnv, load_balancer, remote_condition
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import GROUP, VERSION, Kit, wait_no_namespace_terminating
from suite import Row
from support import eventually

ACCOUNT = "least-privilege-operator"
# What the operator needs, as narrow as the chart grants it: Secrets are listed and watched
# in the operator's namespace only, the rest is managed objects, imports, catalogs and
# RemoteClusters.
RW = ["get", "list", "watch", "create", "patch", "delete"]
CLUSTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [GROUP],
        "resources": ["sharedserviceimports", "remoteclusters", "sharedservicecatalogs"],
        "verbs": ["list", "watch"],
    },
    {
        "apiGroups": [GROUP],
        "resources": [
            "sharedserviceimports/status",
            "remoteclusters/status",
            "sharedservicecatalogs/status",
        ],
        "verbs": ["patch"],
    },
    # The imports a catalog holds, as the chart grants (its admission policy narrows them).
    {
        "apiGroups": [GROUP],
        "resources": ["sharedserviceimports"],
        "verbs": ["create", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["services", "endpoints"], "verbs": RW},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": RW},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    # The address policy's view of the local cluster: its Nodes, Pods and Service ranges.
    {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["servicecidrs"], "verbs": ["list", "watch"]},
]
NAMESPACE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["shared-services-operator"],
        "verbs": ["get", "update"],
    },
]


def _bind(rbac: k8s.RbacAuthorizationV1Api, *, namespace: str | None) -> None:
    subject = [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": OPERATOR_NAMESPACE}]
    if namespace is None:
        rbac.create_cluster_role({"metadata": {"name": ACCOUNT}, "rules": CLUSTER_RULES})
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": ACCOUNT},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": ACCOUNT,
                },
                "subjects": subject,
            }
        )
        return
    rbac.create_namespaced_role(
        namespace, {"metadata": {"name": ACCOUNT}, "rules": NAMESPACE_RULES}
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": ACCOUNT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ACCOUNT},
            "subjects": subject,
        },
    )


@pytest.fixture
def least_privilege(fault_env: FaultEnv) -> Iterator[str]:
    """A ServiceAccount bound to the least-privilege RBAC; yields its token."""
    api = fault_env.workload_api
    core = k8s.CoreV1Api(api)
    rbac = k8s.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(OPERATOR_NAMESPACE, {"metadata": {"name": ACCOUNT}})
    _bind(rbac, namespace=None)
    _bind(rbac, namespace=OPERATOR_NAMESPACE)
    token = core.create_namespaced_service_account_token(
        ACCOUNT, OPERATOR_NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    fault_env.credentials.add(token, "the least-privilege operator's token")
    yield str(token)
    for delete in (
        lambda: rbac.delete_cluster_role_binding(ACCOUNT),
        lambda: rbac.delete_cluster_role(ACCOUNT),
        lambda: rbac.delete_namespaced_role_binding(ACCOUNT, OPERATOR_NAMESPACE),
        lambda: rbac.delete_namespaced_role(ACCOUNT, OPERATOR_NAMESPACE),
        lambda: core.delete_namespaced_service_account(ACCOUNT, OPERATOR_NAMESPACE),
    ):
        delete()


def _can(api: k8s.ApiClient, *, verb: str, namespace: str) -> bool:
    review = k8s.AuthorizationV1Api(api).create_subject_access_review(
        {
            "spec": {
                "user": f"system:serviceaccount:{OPERATOR_NAMESPACE}:{ACCOUNT}",
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{OPERATOR_NAMESPACE}",
                ],
                "resourceAttributes": {"verb": verb, "resource": "secrets", "namespace": namespace},
            }
        }
    )
    return bool(review.status.allowed)


def test_least_privilege_operator(
    kit: Kit, row: Row, fault_env: FaultEnv, least_privilege: str
) -> None:
    row.injected = (
        "operator run under the chart's least-privilege rules (Secrets: list/watch in its "
        "namespace only); a RemoteCluster naming a Secret that exists only in a tenant namespace"
    )
    workload = fault_env.workload
    kubeconfig = fault_env.logs / "least-privilege.kubeconfig"
    kubeconfig.write_text(workload.kubeconfig_yaml(token=least_privilege))
    kubeconfig.chmod(0o600)
    operator = OperatorProcess(
        kubeconfig=kubeconfig,
        log_path=fault_env.logs / "least-privilege.log",
        extra_args=["--verbose", f"--dns-servers={fault_env.dns.nameserver}"],
    )
    kit.operator.stop()
    # What earlier scenarios left in namespaces still going away would be refused (403).
    wait_no_namespace_terminating(kit.core)
    try:
        operator.start()
        load_balancer(kit, "db", ["192.0.2.110"])
        cluster = kit.remote_cluster()
        kit.import_remote("db", "db")
        kit.create_import(
            "fixed", {"source": {"addresses": ["203.0.113.110"]}, "ports": [{"port": 80}]}
        )
        kit.wait_addresses("db", {"IPv4": ["192.0.2.110"]}, timeout=30)
        kit.wait_condition("db", "Ready", "True", "Synced")
        kit.wait_condition("fixed", "Ready", "True", "Synced")
        kit.set_ingress("db", [{"ip": "198.51.100.110"}])
        kit.wait_addresses("db", {"IPv4": ["198.51.100.110"]})

        # A Secret in the tenant's namespace, named by a RemoteCluster: never read from there.
        bait = f"{kit.namespace}-bait"
        kit.core.create_namespaced_secret(
            kit.namespace,
            {
                "metadata": {"name": f"{bait}-kubeconfig"},
                "data": {
                    "kubeconfig": base64.b64encode(
                        kit.supervisor.kubeconfig_yaml().encode()
                    ).decode()
                },
            },
        )
        created = kit.custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "remoteclusters",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "RemoteCluster",
                "metadata": {"name": bait},
                # The schema has no namespace here: the field is dropped, not obeyed.
                "spec": {
                    "kubeconfigSecretRef": {
                        "name": f"{bait}-kubeconfig",
                        "namespace": kit.namespace,
                    }
                },
            },
        )
        kit.created_clusters.append(bait)
        assert "namespace" not in created["spec"]["kubeconfigSecretRef"]
        said = eventually(lambda: remote_condition(kit, bait).get("reason") == "SecretNotFound")
        message = remote_condition(kit, bait)["message"]
        assert OPERATOR_NAMESPACE in message
        del said

        # What the account may do with Secrets, asked of the API server, and tried for real.
        api = fault_env.workload_api
        elsewhere = [kit.namespace, "kube-system", "default", ""]
        allowed = {
            (verb, namespace or "*"): _can(api, verb=verb, namespace=namespace)
            for verb in ("get", "list", "watch")
            for namespace in [OPERATOR_NAMESPACE, *elsewhere]
        }
        config = workload.kubeconfig(token=least_privilege)
        with (
            k8s_config.new_client_from_config_dict(config) as own,
            pytest.raises(k8s.ApiException) as refused,
        ):
            k8s.CoreV1Api(own).read_namespaced_secret(f"{bait}-kubeconfig", kit.namespace)
        assert refused.value.status == 403
        assert remote_condition(kit, cluster).get("status") == "True"
    finally:
        operator.stop()
        kit.operator.start()
    # A refusal shows as a 403 status in a request line, or in the operator's or kopf's own
    # words; a "403" elsewhere (the milliseconds of a timestamp) is none.
    forbidden = forbidden_requests(operator.log_path.read_text(errors="replace"))
    row.figure(
        "Secret reads allowed outside its namespace",
        sum(1 for (_, ns), ok in allowed.items() if ns != OPERATOR_NAMESPACE and ok),
    )
    row.figure("requests refused (403) in its log", len(forbidden))
    assert all(allowed[(verb, OPERATOR_NAMESPACE)] for verb in ("list", "watch"))
    assert not any(ok for (_, ns), ok in allowed.items() if ns != OPERATOR_NAMESPACE), allowed
    assert not forbidden, f"the operator was refused: {sorted(set(forbidden))[:10]}"
    row.happened = (
        "synced and followed a VIP move under least privilege; refused Secrets elsewhere "
        "(SubjectAccessReview and a real GET: 403); bait Secret reported SecretNotFound"
    )


def test_no_import_field_reaches_another_namespace(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = (
        "imports with fields naming other namespaces and Secrets (serviceName with a path, "
        "spec.namespace, secret references in the source)"
    )
    load_balancer(kit, "db", ["192.0.2.120"])
    cluster = kit.remote_cluster()
    hostile: dict[str, dict[str, Any]] = {
        "namespace-in-spec": {"namespace": "kube-system"},
        "secret-in-source": {
            "source": {
                "remoteService": {
                    "cluster": cluster,
                    "namespace": kit.namespace,
                    "name": "db",
                    "kubeconfigSecretRef": {"name": "x", "namespace": "kube-system"},
                }
            }
        },
        "owner-in-spec": {"ownerNamespace": "kube-system", "writeNamespace": "default"},
    }
    base = {
        "source": {"remoteService": {"cluster": cluster, "namespace": kit.namespace, "name": "db"}}
    }
    strict_refused = 0
    for name, extra in hostile.items():
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceImport",
            "metadata": {"name": name},
            "spec": {**base, **extra},
        }
        with pytest.raises(k8s.ApiException) as refused:
            kit.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                body,
                field_validation="Strict",
            )
        # Strict decoding refuses an unknown field with 400, before any schema rule runs.
        assert refused.value.status == 400, refused.value.body
        strict_refused += 1
        stored = kit.custom.create_namespaced_custom_object(
            GROUP, VERSION, kit.namespace, "sharedserviceimports", body
        )
        assert stored["spec"] == base, stored["spec"]
    path_like = {**base, "serviceName": "kube-system/db"}
    with pytest.raises(k8s.ApiException) as refused:
        kit.create_import("path-like", path_like)
    assert refused.value.status == 422
    # The body's namespace is not the request's: the API server refuses the mismatch.
    with pytest.raises(k8s.ApiException) as refused:
        kit.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            kit.namespace,
            "sharedserviceimports",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "SharedServiceImport",
                "metadata": {"name": "elsewhere", "namespace": "kube-system"},
                "spec": base,
            },
        )
    assert refused.value.status == 400
    for name in hostile:
        kit.wait_condition(name, "Ready", "True", "Synced")

    def where() -> set[str]:
        found = set()
        for items in (
            kit.core.list_service_for_all_namespaces(
                label_selector="app.kubernetes.io/managed-by=shared-services-operator"
            ).items,
            kit.core.list_endpoints_for_all_namespaces(
                label_selector="app.kubernetes.io/managed-by=shared-services-operator"
            ).items,
            kit.discovery.list_endpoint_slice_for_all_namespaces(
                label_selector="app.kubernetes.io/managed-by=shared-services-operator"
            ).items,
        ):
            found |= {
                item.metadata.namespace
                for item in items
                if (item.metadata.labels or {}).get("sharedservices.io/import") in hostile
            }
        return found

    assert where() == {kit.namespace}
    row.figure("refused with strict validation", strict_refused + 2)
    row.figure("stored with the fields dropped", len(hostile))
    row.figure("namespaces written", len(where()))
    row.happened = (
        "hostile fields refused (Strict: 400) or dropped by the schema; a path-like serviceName "
        "and a mismatched namespace refused; every object written in the import's namespace"
    )


def test_no_credential_in_any_operator_log(row: Row, fault_env: FaultEnv) -> None:
    """Runs last in the suite (the suite's conftest puts it there), over every operator's log."""
    logs = sorted(fault_env.logs.glob("*.log"))
    row.injected = (
        f"scan of {len(logs)} operator logs for {len(fault_env.credentials.values)} token and "
        "kubeconfig strings (plain and base64)"
    )
    size = sum(path.stat().st_size for path in logs)
    leaks = fault_env.credentials.leaks(logs)
    row.figure("bytes scanned", size)
    row.figure("found", len(leaks))
    assert logs, "no operator log to scan"
    assert not leaks, leaks
    row.happened = "no credential in any log"
