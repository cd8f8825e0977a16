"""An import's whole life: conflicts, renames, deletion, drift, credentials, access rules,
shared watches, no writes when idle, and convergence after the operator was down.
"""

from __future__ import annotations

import base64
import signal
import time

from kubernetes import client as k8s

from harness.operator import OPERATOR_NAMESPACE
from kit import GROUP, VERSION, Kit
from support import eventually


def _managed(kit: Kit, service: str) -> dict[str, str]:
    """resourceVersions of the objects written for ``service``."""
    versions = {}
    for obj in (
        kit.core.read_namespaced_service(service, kit.namespace),
        kit.core.read_namespaced_endpoints(service, kit.namespace),
        *kit.discovery.list_namespaced_endpoint_slice(
            kit.namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items,
    ):
        versions[f"{obj.kind}/{obj.metadata.name}"] = obj.metadata.resource_version
    return versions


def _fixed(kit: Kit, name: str, address: str = "203.0.113.10", **extra: object) -> None:
    kit.create_import(name, {"source": {"addresses": [address]}, "ports": [{"port": 80}], **extra})


def test_objects_carry_labels_and_owner(kit: Kit) -> None:
    _fixed(kit, "web")
    kit.wait_condition("web", "Ready", "True")
    uid = kit.get_import("web")["metadata"]["uid"]
    service = kit.core.read_namespaced_service("web", kit.namespace)
    (slice_,) = kit.discovery.list_namespaced_endpoint_slice(
        kit.namespace, label_selector="kubernetes.io/service-name=web"
    ).items
    endpoints = kit.core.read_namespaced_endpoints("web", kit.namespace)
    for obj in (service, slice_, endpoints):
        assert obj.metadata.labels["app.kubernetes.io/managed-by"] == "shared-services-operator"
        assert obj.metadata.labels["sharedservices.io/import"] == "web"
        assert [(r.kind, r.uid) for r in obj.metadata.owner_references] == [
            ("SharedServiceImport", uid)
        ]
    assert (
        slice_.metadata.labels["endpointslice.kubernetes.io/managed-by"]
        == "shared-services-operator.sharedservices.io"
    )
    # kopf keeps no state on the import: no finalizer, no annotations.
    metadata = kit.get_import("web")["metadata"]
    assert not metadata.get("finalizers")
    assert not any("kopf" in key for key in (metadata.get("annotations") or {}))


def test_conflict_with_a_service_it_did_not_create(kit: Kit) -> None:
    kit.core.create_namespaced_service(
        kit.namespace,
        {
            "metadata": {"name": "taken"},
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
        },
    )
    _fixed(kit, "importer", serviceName="taken")
    ready = kit.wait_condition("importer", "Ready", "False", "Conflict")
    assert "not managed by shared-services-operator" in ready["message"]
    eventually(lambda: [e for e in kit.events("importer") if e.reason == "Conflict"])
    service = kit.core.read_namespaced_service("taken", kit.namespace)
    assert service.spec.selector == {"app": "x"}
    assert service.metadata.labels is None
    assert kit.slice_addresses("taken") in ({}, {"IPv4": []})  # nothing of ours attached

    # A second import claiming the first one's Service is a conflict too.
    _fixed(kit, "first", serviceName="shared-name")
    kit.wait_condition("first", "Ready", "True")
    _fixed(kit, "second", address="203.0.113.11", serviceName="shared-name")
    ready = kit.wait_condition("second", "Ready", "False", "Conflict")
    assert "belongs to SharedServiceImport 'first'" in ready["message"]
    kit.wait_addresses("shared-name", {"IPv4": ["203.0.113.10"]})

    # Once the other Service is gone, the import takes the name, without anyone's help.
    kit.core.delete_namespaced_service("taken", kit.namespace)
    kit.wait_condition("importer", "Ready", "True", timeout=30)


def test_a_refused_write_is_reported_on_the_import(kit: Kit) -> None:
    # A quota of no Services: the API server refuses what the builders think is valid.
    # Admission enforces what the quota's status says; the harness runs no quota
    # controller, so the test writes the status the controller would.
    zero = {"services": "0"}
    kit.core.create_namespaced_resource_quota(
        kit.namespace, {"metadata": {"name": "no-services"}, "spec": {"hard": zero}}
    )
    kit.core.patch_namespaced_resource_quota_status(
        "no-services", kit.namespace, {"status": {"hard": zero, "used": zero}}
    )
    _fixed(kit, "quota")
    ready = kit.wait_condition("quota", "Ready", "False", "WriteRejected")
    assert "403 Forbidden" in ready["message"]
    assert "no-services" in ready["message"]  # the quota's name, as the API server said it
    assert kit.get_import("quota")["status"]["conditions"][1]["status"] == "True"  # source fine

    # Once the quota goes, the retry (with backoff, nothing else changed) succeeds.
    kit.core.delete_namespaced_resource_quota("no-services", kit.namespace)
    kit.wait_condition("quota", "Ready", "True", timeout=60)
    kit.wait_addresses("quota", {"IPv4": ["203.0.113.10"]})


def test_rename_service_and_delete(kit: Kit) -> None:
    _fixed(kit, "app")
    kit.wait_condition("app", "Ready", "True")
    kit.patch_import("app", {"spec": {"serviceName": "app-v2"}})
    kit.wait_addresses("app-v2", {"IPv4": ["203.0.113.10"]})
    eventually(lambda: kit.slice_addresses("app") == {})

    def old_gone() -> bool:
        try:
            kit.core.read_namespaced_service("app", kit.namespace)
        except k8s.ApiException as error:
            return error.status == 404
        return False

    eventually(old_gone)
    eventually(lambda: kit.get_import("app")["status"]["observedGeneration"] == 2)

    kit.delete_import("app")

    def all_gone() -> bool:
        services = kit.core.list_namespaced_service(
            kit.namespace, label_selector="sharedservices.io/import=app"
        ).items
        return not services and kit.slice_addresses("app-v2") == {}

    eventually(all_gone, timeout=10)


def test_drift_is_undone(kit: Kit) -> None:
    _fixed(kit, "db")
    kit.wait_condition("db", "Ready", "True")
    kit.core.patch_namespaced_service(
        "db",
        kit.namespace,
        {"spec": {"selector": {"app": "hijack"}}, "metadata": {"labels": {"team": "x"}}},
    )
    eventually(lambda: kit.core.read_namespaced_service("db", kit.namespace).spec.selector is None)
    # A label somebody else added is theirs: it stays.
    assert kit.core.read_namespaced_service("db", kit.namespace).metadata.labels["team"] == "x"

    kit.core.patch_namespaced_endpoints(
        "db",
        kit.namespace,
        {"subsets": [{"addresses": [{"ip": "192.0.2.66"}], "ports": [{"port": 80}]}]},
    )
    eventually(
        lambda: (
            [
                a.ip
                for a in kit.core.read_namespaced_endpoints("db", kit.namespace)
                .subsets[0]
                .addresses
            ]
            == ["203.0.113.10"]
        )
    )
    (slice_,) = kit.discovery.list_namespaced_endpoint_slice(
        kit.namespace, label_selector="kubernetes.io/service-name=db"
    ).items
    kit.discovery.delete_namespaced_endpoint_slice(slice_.metadata.name, kit.namespace)
    kit.wait_addresses("db", {"IPv4": ["203.0.113.10"]})
    old_uid = kit.core.read_namespaced_service("db", kit.namespace).metadata.uid
    kit.core.delete_namespaced_service("db", kit.namespace)

    def recreated() -> bool:
        try:
            service = kit.core.read_namespaced_service("db", kit.namespace)
        except k8s.ApiException as error:
            if error.status != 404:
                raise
            return False
        return bool(service.metadata.uid != old_uid)

    eventually(recreated)


def test_idle_operator_writes_nothing(kit: Kit) -> None:
    vip = kit.load_balancer("db")
    kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [vip]})
    kit.wait_condition("db", "Ready", "True", "Synced")
    before = _managed(kit, "db")
    status = kit.get_import("db")["status"]
    writes = kit.settled(kit.write_counts)
    # Metadata-only changes reach the operator, and change nothing it owns.
    kit.patch_import("db", {"metadata": {"labels": {"touched": "1"}}})
    kit.patch_import("db", {"metadata": {"labels": {"touched": "2"}}})
    time.sleep(2)  # it acts in milliseconds; this is time to do something wrong
    assert kit.write_counts() == writes

    # A restarted operator syncs every import it finds, and finds nothing to write,
    # in this test's namespace or in any other.
    kit.operator.stop()
    kit.operator.start()
    kit.wait_condition("db", "Ready", "True", "Synced")
    assert kit.settled(kit.write_counts) == 0, {
        k: v for k, v in kit.operator.metrics().items() if "writes_total{" in k
    }
    after = kit.get_import("db")
    assert after["status"] == status
    assert _managed(kit, "db") == before
    assert after["metadata"]["labels"] == {"touched": "2"}


def test_allowed_namespaces_are_enforced(kit: Kit) -> None:
    kit.load_balancer("db")
    kit.remote_cluster(name=f"only-other-{kit.namespace}", allowedNamespaces=["somewhere-else"])
    kit.remote_cluster(name=f"only-x-{kit.namespace}", allowedRemoteNamespaces=["x"])
    source = {"namespace": kit.namespace, "name": "db"}
    kit.create_import(
        "denied",
        {"source": {"remoteService": {"cluster": f"only-other-{kit.namespace}", **source}}},
    )
    kit.create_import(
        "denied-remote",
        {"source": {"remoteService": {"cluster": f"only-x-{kit.namespace}", **source}}},
    )
    denied = kit.wait_condition("denied", "SourceResolved", "False", "NamespaceDenied")
    assert "allowedNamespaces" in denied["message"]
    kit.wait_condition("denied", "Ready", "False")
    remote = kit.wait_condition("denied-remote", "SourceResolved", "False", "RemoteNamespaceDenied")
    assert "allowedRemoteNamespaces" in remote["message"]
    assert kit.slice_addresses("denied") == {}


def test_missing_and_unsuitable_remote_services(kit: Kit) -> None:
    kit.remote_cluster()
    kit.import_remote("ghost", "does-not-exist", ports=[{"port": 5432}])
    kit.wait_condition("ghost", "SourceResolved", "False", "RemoteServiceNotFound")
    kit.remote.create_namespaced_service(
        kit.namespace, {"metadata": {"name": "internal"}, "spec": {"ports": [{"port": 80}]}}
    )
    kit.import_remote("internal", "internal")
    kit.wait_condition("internal", "SourceResolved", "False", "NotLoadBalancer")
    kit.create_import(
        "nocluster",
        {
            "source": {"remoteService": {"cluster": "nope", "namespace": "a", "name": "b"}},
            "ports": [{"port": 1}],
        },
    )
    kit.wait_condition("nocluster", "SourceResolved", "False", "RemoteClusterNotFound")
    # None of these loops: once settled, they stay quiet.
    syncs = kit.settled(lambda: kit.operator.metric("shared_services_syncs_total", result="ok"))
    time.sleep(2)
    assert kit.operator.metric("shared_services_syncs_total", result="ok") == syncs


def test_imports_of_one_remote_namespace_share_one_watch(kit: Kit) -> None:
    kit.load_balancer("db")
    kit.load_balancer("cache", ports=[{"name": "redis", "port": 6379}])
    cluster = kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.import_remote("cache", "cache")
    kit.wait_condition("db", "Ready", "True")
    kit.wait_condition("cache", "Ready", "True")
    watches = lambda: kit.operator.metric(  # noqa: E731
        "shared_services_remote_watches", cluster=cluster, state="up"
    )
    assert watches() == 1
    kit.delete_import("db")
    time.sleep(0.5)
    assert watches() == 1
    kit.delete_import("cache")
    eventually(lambda: watches() == 0)


def test_rotated_and_broken_credentials(kit: Kit) -> None:
    vip = kit.load_balancer("db")
    cluster = kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [vip]})

    # Rotate to a least-privilege ServiceAccount token: the operator carries on.
    token = kit.reader_token()

    def put_secret(text: str) -> None:
        kit.core.patch_namespaced_secret(
            f"{cluster}-kubeconfig",
            OPERATOR_NAMESPACE,
            {"data": {"kubeconfig": base64.b64encode(text.encode()).decode()}},
        )

    def connected() -> dict[str, object]:
        rc = kit.custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", cluster)
        return next(c for c in rc["status"]["conditions"] if c["type"] == "Connected")

    put_secret(kit.supervisor.kubeconfig_yaml(token=token))
    kit.set_ingress("db", [{"ip": "198.51.100.61"}])
    kit.wait_addresses("db", {"IPv4": ["198.51.100.61"]})
    assert eventually(connected)["status"] == "True"

    # A broken token: said in the conditions, endpoints kept.
    put_secret(kit.supervisor.kubeconfig_yaml(token="not-a-valid-token"))
    eventually(lambda: connected()["reason"] == "Unauthorized")
    ready = kit.wait_condition("db", "Ready", "True", "LastKnownAddresses")
    assert "RemoteCluster" in ready["message"]
    kit.set_ingress("db", [{"ip": "198.51.100.62"}])
    time.sleep(1)
    assert kit.slice_addresses("db") == {"IPv4": ["198.51.100.61"]}

    # Fixed: connected again, and the change made meanwhile arrives.
    put_secret(kit.supervisor.kubeconfig_yaml(token=token))
    kit.wait_addresses("db", {"IPv4": ["198.51.100.62"]})
    kit.wait_condition("db", "Ready", "True", "Synced")
    assert connected()["status"] == "True"


def test_converges_after_a_crash(kit: Kit) -> None:
    vip = kit.load_balancer("db")
    kit.remote_cluster()
    kit.import_remote("db", "db")
    _fixed(kit, "fixed")
    _fixed(kit, "doomed", address="203.0.113.99")
    kit.wait_addresses("db", {"IPv4": [vip]})
    kit.wait_condition("fixed", "Ready", "True")
    kit.wait_condition("doomed", "Ready", "True")

    kit.operator.stop(signal.SIGKILL)
    try:
        # While it is down: the VIP moves, a slice is deleted by hand, an import is deleted
        # (no finalizer holds it), and a leftover of an import that no longer exists appears.
        kit.set_ingress("db", [{"ip": "198.51.100.70"}])
        (slice_,) = kit.discovery.list_namespaced_endpoint_slice(
            kit.namespace, label_selector="kubernetes.io/service-name=fixed"
        ).items
        kit.discovery.delete_namespaced_endpoint_slice(slice_.metadata.name, kit.namespace)
        kit.delete_import("doomed")

        def doomed_gone() -> bool:
            try:
                kit.get_import("doomed")
            except k8s.ApiException as error:
                return error.status == 404
            return False

        eventually(doomed_gone, timeout=10)
        kit.core.create_namespaced_service(
            kit.namespace,
            {
                "metadata": {
                    "name": "leftover",
                    "labels": {
                        "app.kubernetes.io/managed-by": "shared-services-operator",
                        "sharedservices.io/import": "gone-import",
                    },
                    # As the operator writes every object: owned by its import. One with
                    # the labels alone is somebody else's, and left alone.
                    "ownerReferences": [
                        {
                            "apiVersion": "sharedservices.io/v1alpha1",
                            "kind": "SharedServiceImport",
                            "name": "gone-import",
                            "uid": "00000000-0000-4000-8000-000000000000",
                            "controller": True,
                        }
                    ],
                },
                "spec": {"ports": [{"port": 80}]},
            },
        )
    finally:
        kit.operator.start()

    kit.wait_addresses("db", {"IPv4": ["198.51.100.70"]})
    kit.wait_addresses("fixed", {"IPv4": ["203.0.113.10"]})

    def leftovers() -> list[str]:
        return sorted(
            s.metadata.name
            for s in kit.core.list_namespaced_service(
                kit.namespace,
                label_selector="app.kubernetes.io/managed-by=shared-services-operator",
            ).items
        )

    eventually(lambda: leftovers() == ["db", "fixed"])


def test_namespace_deletion_needs_no_operator(kit: Kit) -> None:
    extra = f"{kit.namespace}-x"
    kit.core.create_namespace({"metadata": {"name": extra}})
    kit.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        extra,
        "sharedserviceimports",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceImport",
            "metadata": {"name": "db"},
            "spec": {"source": {"addresses": ["203.0.113.1"]}, "ports": [{"port": 80}]},
        },
    )
    eventually(lambda: kit.core.list_namespaced_service(extra).items)
    kit.operator.stop()
    try:
        kit.core.delete_namespace(extra)

        def gone() -> bool:
            try:
                kit.core.read_namespace(extra)
            except k8s.ApiException as error:
                return error.status == 404
            return False

        eventually(gone, timeout=60)
    finally:
        kit.operator.start()
