"""The central cluster's side: the identity of deploy/supervisor/, turned into a kubeconfig by
``python -m shared_services.kubeconfig_cli``, is all the operator needs there, lasts, and can
read nothing but the Services of the namespaces it was granted.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import yaml
from kubernetes import client as k8s

from deploykit import (
    ACCESS_ACCOUNT,
    ACCESS_NAMESPACE,
    grant_reader,
    status_of,
    supervisor_access,
    token_client,
)
from harness.cluster import Cluster
from harness.operator import OPERATOR_NAMESPACE
from kit import Kit
from shared_services.remote import build_client


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_the_identity_reads_services_of_granted_namespaces_only(
    supervisor: Cluster, supervisor_api: k8s.ApiClient, namespace: str, tmp_path: Path
) -> None:
    access = supervisor_access(supervisor, tmp_path)
    grant_reader(supervisor, access, namespace)
    elsewhere = f"t-{secrets.token_hex(3)}"
    admin = k8s.CoreV1Api(supervisor_api)
    admin.create_namespace({"metadata": {"name": elsewhere}})
    admin.create_namespaced_secret(
        namespace, {"metadata": {"name": "db-password"}, "stringData": {"p": "x"}}
    )

    # What the CLI made is a kubeconfig the operator accepts: CA and token inline, no files.
    config = yaml.safe_load(access.kubeconfig_text)
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert set(config["users"][0]["user"]) == {"token"}
    build_client(access.kubeconfig_text, context=None).api_client.close()
    # A ServiceAccount token from a Secret: it never expires, unlike an SSO session's.
    claims = _claims(access.token)
    assert "exp" not in claims
    assert claims["sub"] == f"system:serviceaccount:{ACCESS_NAMESPACE}:{ACCESS_ACCOUNT}"

    api = token_client(supervisor, access.token)
    core = k8s.CoreV1Api(api)
    try:
        assert status_of(core.list_namespaced_service, namespace) == 200
        assert (
            status_of(
                core.list_namespaced_service,
                namespace,
                watch=True,
                timeout_seconds=1,
                _preload_content=False,
            )
            == 200
        )
        assert status_of(k8s.VersionApi(api).get_code) == 200
        # Nothing else there, nothing elsewhere, and no writes at all.
        assert status_of(core.list_namespaced_secret, namespace) == 403
        assert status_of(core.read_namespaced_secret, "db-password", namespace) == 403
        assert status_of(core.list_namespaced_pod, namespace) == 403
        assert status_of(core.list_namespaced_config_map, namespace) == 403
        assert status_of(core.list_namespaced_endpoints, namespace) == 403
        assert status_of(core.list_namespaced_service, elsewhere) == 403
        assert status_of(core.list_service_for_all_namespaces) == 403
        assert status_of(core.list_namespace) == 403
        assert status_of(core.list_namespaced_secret, ACCESS_NAMESPACE) == 403
        assert (
            status_of(
                core.create_namespaced_service,
                namespace,
                {"metadata": {"name": "x"}, "spec": {"ports": [{"port": 1}]}},
            )
            == 403
        )
    finally:
        api.close()
        admin.delete_namespace(elsewhere)


def test_the_operator_needs_nothing_more(
    kit: Kit, supervisor: Cluster, workload_api: k8s.ApiClient, tmp_path: Path
) -> None:
    access = supervisor_access(supervisor, tmp_path)
    grant_reader(supervisor, access, kit.namespace)
    # The Secret exactly as `make supervisor-kubeconfig` prints it, applied as printed.
    secret_name = f"{kit.cluster_name}-kubeconfig"
    manifest = access.secret_manifest(namespace=OPERATOR_NAMESPACE, name=secret_name)
    assert yaml.safe_load(manifest)["metadata"] == {
        "name": secret_name,
        "namespace": OPERATOR_NAMESPACE,
        "labels": {"app.kubernetes.io/part-of": "shared-services-operator"},
    }
    k8s.CoreV1Api(workload_api).create_namespaced_secret(
        OPERATOR_NAMESPACE, yaml.safe_load(manifest)
    )
    kit.custom.create_cluster_custom_object(
        "sharedservices.io",
        "v1alpha1",
        "remoteclusters",
        {
            "apiVersion": "sharedservices.io/v1alpha1",
            "kind": "RemoteCluster",
            "metadata": {"name": kit.cluster_name},
            "spec": {"kubeconfigSecretRef": {"name": secret_name}},
        },
    )
    kit.created_clusters.append(kit.cluster_name)

    vip = kit.load_balancer("db")
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [vip]})
    kit.set_ingress("db", [{"ip": "198.51.100.61"}])
    kit.wait_addresses("db", {"IPv4": ["198.51.100.61"]})

    # A namespace it was not granted: the import says why, and the cluster stays connected.
    hidden = f"t-{secrets.token_hex(3)}"
    k8s.CoreV1Api(kit.remote.api_client).create_namespace({"metadata": {"name": hidden}})
    try:
        kit.load_balancer("cache", namespace=hidden)
        kit.create_import(
            "cache",
            {
                "source": {
                    "remoteService": {
                        "cluster": kit.cluster_name,
                        "namespace": hidden,
                        "name": "cache",
                    }
                }
            },
        )
        ready = kit.wait_condition("cache", "Ready", "False", "RemoteUnavailable")
        assert "forbidden" in ready["message"]
        assert kit.condition("db", "Ready")["status"] == "True"
        status = kit.custom.get_cluster_custom_object(
            "sharedservices.io", "v1alpha1", "remoteclusters", kit.cluster_name
        )["status"]
        assert status["conditions"][0]["reason"] == "Connected"
    finally:
        k8s.CoreV1Api(kit.remote.api_client).delete_namespace(hidden)
