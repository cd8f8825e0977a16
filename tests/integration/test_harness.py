"""The local control planes are real Kubernetes: these pin the behaviours the operator relies on.

If one of these fails, the harness (not the operator) is broken: a CRD with a custom resource,
watches, optimistic concurrency, garbage collection, EndpointSlice mirroring and its opt-out,
the load-balancer allocator, endpoint address validation, RBAC for ServiceAccount tokens, and
kubeconfigs that work with nothing but their own text.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from harness.binaries import ensure_binaries
from harness.cluster import Cluster
from support import eventually

GIZMO_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gizmos.harness.example.com"},
    "spec": {
        "group": "harness.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def _load_balancer(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "pg", "port": 5432}]},
    }


def test_version_is_the_pinned_release(supervisor_api: k8s.ApiClient) -> None:
    version = k8s.VersionApi(supervisor_api).get_code()
    assert version.git_version == "v1.37.2"
    assert (version.major, version.minor) == ("1", "37")


def test_clusters_are_independent(
    namespace: str, supervisor_api: k8s.ApiClient, workload_api: k8s.ApiClient
) -> None:
    k8s.CoreV1Api(workload_api).create_namespaced_config_map(
        namespace, {"metadata": {"name": "only-here"}}
    )
    with pytest.raises(k8s.ApiException) as caught:
        k8s.CoreV1Api(supervisor_api).read_namespaced_config_map("only-here", namespace)
    assert caught.value.status == 404


def test_crd_and_custom_resource(namespace: str, workload_api: k8s.ApiClient) -> None:
    extensions = k8s.ApiextensionsV1Api(workload_api)
    try:
        extensions.create_custom_resource_definition(GIZMO_CRD)
    except k8s.ApiException as error:
        if error.status != 409:
            raise
    custom = k8s.CustomObjectsApi(workload_api)

    def established() -> bool:
        crd = extensions.read_custom_resource_definition("gizmos.harness.example.com")
        conditions = crd.status.conditions or []  # none at all right after creation
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    eventually(established)
    body = {"apiVersion": "harness.example.com/v1", "kind": "Gizmo", "metadata": {"name": "g"}}
    created = eventually(
        lambda: custom.create_namespaced_custom_object(
            "harness.example.com", "v1", namespace, "gizmos", body | {"spec": {"size": 2}}
        ),
        retry_on=(k8s.ApiException,),
    )
    assert created["spec"]["size"] == 2
    # The schema is enforced: the server rejects what the CRD forbids.
    with pytest.raises(k8s.ApiException) as caught:
        custom.create_namespaced_custom_object(
            "harness.example.com",
            "v1",
            namespace,
            "gizmos",
            body | {"metadata": {"name": "bad"}, "spec": {"size": 0}},
        )
    assert caught.value.status == 422


def test_watch_receives_events(namespace: str, workload_api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(workload_api)
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    seen: list[tuple[str, str]] = []
    watcher = k8s_watch.Watch()

    def watch() -> None:
        for event in watcher.stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=start,
            timeout_seconds=20,
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                watcher.stop()

    thread = threading.Thread(target=watch)
    thread.start()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "w"}})
    core.patch_namespaced_config_map("w", namespace, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("w", namespace)
    thread.join(timeout=25)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_stale_resource_version_is_a_conflict(namespace: str, workload_api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(workload_api)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cas"}})
    core.patch_namespaced_config_map("cas", namespace, {"data": {"a": "1"}})
    stale = {
        "metadata": {"name": "cas", "resourceVersion": first.metadata.resource_version},
        "data": {"a": "2"},
    }
    with pytest.raises(k8s.ApiException) as caught:
        core.replace_namespaced_config_map("cas", namespace, stale)
    assert caught.value.status == 409


def test_garbage_collector_removes_dependents(namespace: str, workload_api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(workload_api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}}
    )
    core.delete_namespaced_config_map("owner", namespace)

    def collected() -> bool:
        names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
        return "dependent" not in names

    eventually(collected, timeout=30)


def _selectorless_service(
    api: k8s.ApiClient, namespace: str, name: str, *, skip_mirror: bool
) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespaced_service(
        namespace, {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
    )
    labels = {"endpointslice.kubernetes.io/skip-mirror": "true"} if skip_mirror else {}
    core.create_namespaced_endpoints(
        namespace,
        {
            "metadata": {"name": name, "labels": labels},
            "subsets": [{"addresses": [{"ip": "192.0.2.77"}], "ports": [{"port": 80}]}],
        },
    )


def _slices_for(api: k8s.ApiClient, namespace: str, service: str) -> list[Any]:
    return list(
        k8s.DiscoveryV1Api(api)
        .list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}"
        )
        .items
    )


def test_endpoints_are_mirrored_unless_told_not_to(
    namespace: str, workload_api: k8s.ApiClient
) -> None:
    # The opted-out one goes first: the controller works through its queue in order, so
    # once the second is mirrored, the first has had its turn.
    _selectorless_service(workload_api, namespace, "unmirrored", skip_mirror=True)
    _selectorless_service(workload_api, namespace, "mirrored", skip_mirror=False)

    def mirrored() -> list[Any]:
        return _slices_for(workload_api, namespace, "mirrored")

    slices = eventually(mirrored)
    assert slices[0].endpoints[0].addresses == ["192.0.2.77"]
    assert (
        slices[0].metadata.labels["endpointslice.kubernetes.io/managed-by"]
        == "endpointslicemirroring-controller.k8s.io"
    )
    assert _slices_for(workload_api, namespace, "unmirrored") == []


def test_allocator_assigns_and_leaves_set_ingress_alone(
    namespace: str, supervisor_api: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(supervisor_api)
    core.create_namespaced_service(namespace, _load_balancer("db"))

    def ingress() -> list[Any] | None:
        status = core.read_namespaced_service_status("db", namespace).status
        return status.load_balancer.ingress

    assigned = eventually(ingress)
    assert assigned[0].ip.startswith("192.0.2.")

    # A test (or a re-provisioned load balancer) moves the VIP: the allocator keeps out.
    moved = [{"ip": "198.51.100.7"}, {"ip": "2001:db8::7"}, {"hostname": "db.lb.example"}]
    core.patch_namespaced_service_status(
        "db", namespace, {"status": {"loadBalancer": {"ingress": moved}}}
    )
    core.patch_namespaced_service("db", namespace, {"metadata": {"labels": {"touch": "1"}}})
    # A second Service is allocated after the touch was seen, so waiting for it proves the
    # allocator had its chance at the first one.
    core.create_namespaced_service(namespace, _load_balancer("cache"))
    eventually(
        lambda: core.read_namespaced_service_status("cache", namespace).status.load_balancer.ingress
    )
    final = core.read_namespaced_service_status("db", namespace).status.load_balancer.ingress
    assert [(i.ip, i.hostname) for i in final] == [
        ("198.51.100.7", None),
        ("2001:db8::7", None),
        (None, "db.lb.example"),
    ]


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.1.1", "::1", "fe80::1"])
def test_endpoints_reject_unusable_addresses(
    namespace: str, workload_api: k8s.ApiClient, address: str
) -> None:
    with pytest.raises(k8s.ApiException) as caught:
        k8s.CoreV1Api(workload_api).create_namespaced_endpoints(
            namespace,
            {
                "metadata": {"name": "bad"},
                "subsets": [{"addresses": [{"ip": address}], "ports": [{"port": 80}]}],
            },
        )
    assert caught.value.status == 422
    assert address in caught.value.body


def _token_for(api: k8s.ApiClient, namespace: str, account: str) -> str:
    core = k8s.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    request = core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 600}}
    )
    token: str = request.status.token
    return token


def test_service_account_needs_a_role_binding(
    namespace: str, workload: Cluster, workload_api: k8s.ApiClient
) -> None:
    token = _token_for(workload_api, namespace, "reader")
    as_reader = k8s.CoreV1Api(workload.api_client(token=token))
    with pytest.raises(k8s.ApiException) as caught:
        as_reader.list_namespaced_service(namespace)
    assert caught.value.status == 403

    rbac = k8s.RbacAuthorizationV1Api(workload_api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-services"},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-services",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    eventually(
        lambda: as_reader.list_namespaced_service(namespace).items is not None,
        retry_on=(k8s.ApiException,),
    )
    # Only what was granted: other namespaces stay closed.
    with pytest.raises(k8s.ApiException) as caught:
        as_reader.list_namespaced_service("default")
    assert caught.value.status == 403


def test_static_users_are_authenticated_but_not_authorised(
    workload: Cluster,
) -> None:
    as_alice = k8s.CoreV1Api(workload.api_client(workload.users["alice"]))
    with pytest.raises(k8s.ApiException) as caught:
        as_alice.list_namespace()
    assert caught.value.status == 403
    assert "alice" in caught.value.body


def test_kubeconfig_is_self_contained(supervisor: Cluster) -> None:
    text = supervisor.kubeconfig_yaml()
    parsed = yaml.safe_load(text)
    flat = yaml.safe_dump(parsed)
    assert "certificate-authority-data" in flat
    assert "certificate-authority:" not in flat
    assert str(supervisor.directory) not in flat
    # Used exactly as a Secret's content would be: from the text alone, TLS verified.
    api = k8s_config.new_client_from_config_dict(parsed)
    assert api.configuration.verify_ssl
    assert k8s.CoreV1Api(api).read_namespace("default").metadata.name == "default"
    api.close()


def test_a_slow_api_server_does_not_stop_the_controller_manager(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The controller manager exits on its first "connection refused" at start. An API server
    # that is slow to listen (a loaded machine, a cold etcd) is made certain here by freezing
    # it at once: the cluster must still come up whole once it thaws.
    cluster = Cluster(
        name="slowstart",
        directory=tmp_path_factory.mktemp("slowstart") / "c",
        bin_dir=ensure_binaries(),
    )
    try:
        cluster.start()
        cluster.signal_apiserver(signal.SIGSTOP)
        time.sleep(3)
        cluster.signal_apiserver(signal.SIGCONT)
        cluster.wait_ready(timeout=90)
        assert set(cluster.pids()) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    finally:
        cluster.stop()
