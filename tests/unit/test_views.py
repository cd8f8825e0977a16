"""The cached views keep every answer the writer and the resolver read from an object."""

from __future__ import annotations

import copy
import json
from typing import Any

from shared_services import api, builders, views
from shared_services.api import JSON

OWNER = builders.Owner(namespace="tenant", name="db", uid="uid-db")
FILLER = {f"filler.example/k{i:04d}": "x" * 63 for i in range(2000)}


def _desired() -> builders.Desired:
    port = api.ResolvedPort(name="pg", port=5432, target_port=5432, protocol="TCP")
    return builders.build(
        owner=OWNER, service_name="db", ports=[port], addresses=["192.0.2.1", "2001:db8::1"]
    )


def _as_served(obj: JSON) -> JSON:
    """``obj`` as the API server returns it: defaults, fields of others, a tenant's labels."""
    served = copy.deepcopy(obj)
    metadata = served["metadata"]
    metadata.update(uid="uid-obj", resourceVersion="7", managedFields=[{"manager": "x"}])
    metadata["labels"].update(FILLER)
    metadata["annotations"] = {"note": "y" * 100_000}
    if served["kind"] == "Service":
        served["spec"].update(clusterIP="10.96.0.10", sessionAffinity="None")
        for port in served["spec"]["ports"]:
            port["nodePort"] = 30000
    if served["kind"] == "EndpointSlice":
        for endpoint in served["endpoints"]:
            endpoint.update(nodeName="n", hints={"forZones": [{"name": "z"}]})
    return served


def _view(obj: JSON) -> JSON | None:
    return views.managed(str(obj["kind"]))(obj)


def _size(value: Any) -> int:
    return len(repr(value))


def test_an_object_as_written_reads_as_no_change_through_its_view() -> None:
    for desired in _desired().objects():
        served = _as_served(desired)
        view = _view(served)
        assert view is not None
        assert builders.patch_for(desired=desired, actual=view) is None, desired["kind"]
        assert _size(view) < 1_000 < _size(served) // 100


def test_drift_reads_the_same_through_the_view() -> None:
    desired = _desired()
    service = _as_served(desired.service)
    service["spec"]["selector"] = {"app": "x", **FILLER}
    service["spec"]["ports"][0]["port"] = 5433
    service["metadata"]["labels"][builders.IMPORT_LABEL] = "db"
    (slice_v4, slice_v6) = (_as_served(s) for s in desired.endpoint_slices)
    slice_v4["endpoints"][0]["conditions"] = {"ready": True, "terminating": True}
    slice_v6["endpoints"] = [{"addresses": [f"2001:db8::{i:x}"]} for i in range(1, 3000)]
    endpoints = _as_served(desired.endpoints)
    endpoints["subsets"][0]["addresses"].append({"ip": "192.0.2.99"})
    for want, actual in (
        (desired.service, service),
        (desired.endpoint_slices[0], slice_v4),
        (desired.endpoint_slices[1], slice_v6),
        (desired.endpoints, endpoints),
    ):
        view = _view(actual)
        assert view is not None
        assert builders.patch_for(desired=want, actual=view) == builders.patch_for(
            desired=want, actual=actual
        ), want["kind"]
        assert builders.patch_for(desired=want, actual=view) is not None


def test_only_objects_an_import_owns_are_kept() -> None:
    service = _as_served(_desired().service)
    assert views.owns(service)
    unowned = copy.deepcopy(service)
    unowned["metadata"]["ownerReferences"] = []
    assert not views.owns(unowned)
    assert _view(unowned) is None
    other = copy.deepcopy(service)
    other["metadata"]["ownerReferences"][0]["name"] = "another"
    assert not views.owns(other)
    unlabelled = copy.deepcopy(service)
    del unlabelled["metadata"]["labels"][builders.MANAGED_BY_LABEL]
    assert not views.owns(unlabelled)
    not_controller = copy.deepcopy(service)
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    assert not views.owns(not_controller)


def test_others_references_are_kept_or_said_to_be_cut() -> None:
    service = _as_served(_desired().service)
    theirs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": f"c{i}", "uid": f"u{i}"} for i in range(3)
    ]
    service["metadata"]["ownerReferences"] += theirs
    view = _view(service)
    assert view is not None
    assert [r["name"] for r in view["metadata"]["ownerReferences"]] == ["c0", "c1", "c2", "db"]
    assert views.REFERENCES_CUT not in view["metadata"]
    service["metadata"]["ownerReferences"] += theirs * 10
    view = _view(service)
    assert view is not None
    assert view["metadata"][views.REFERENCES_CUT] is True
    assert [r["name"] for r in view["metadata"]["ownerReferences"]] == ["db"]


def test_a_remote_service_keeps_what_the_resolver_reads() -> None:
    service: JSON = {
        "metadata": {"name": "pg", "namespace": "db", "labels": FILLER, "resourceVersion": "3"},
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"name": "pg", "port": 5432, "nodePort": 31000}],
            "externalIPs": ["192.0.2.200"] * 1000,
        },
        "status": {
            "loadBalancer": {
                "ingress": [{"ip": "192.0.2.10", "ipMode": "VIP"}, {"hostname": "db.example"}]
            }
        },
    }
    view = views.remote_service(service)
    assert builders.ports_from_service(view) == builders.ports_from_service(service)
    assert builders.ingress_addresses(view) == builders.ingress_addresses(service)
    assert view["spec"]["type"] == "LoadBalancer"
    assert view["metadata"]["resourceVersion"] == "3"
    # Labels stay for catalogs' selectors, but no more than a selector could ask about.
    assert len(view["metadata"]["labels"]) == views.MAX_REMOTE_LABELS
    assert _size(view) < 4_000


def test_a_remote_service_keeps_its_labels_for_selectors() -> None:
    labels = {"app.kubernetes.io/part-of": "acme", "sharedservices.io/export": "true"}
    view = views.remote_service({"metadata": {"name": "pg", "labels": {**labels, "n": 1}}})
    assert view["metadata"]["labels"] == labels  # a value that is no text is none


def test_a_malformed_remote_answer_stays_malformed_and_small() -> None:
    for ingress in ("x" * 100_000, [["x" * 100_000]], [{"ip": "x" * 100_000}]):
        service: JSON = {
            "metadata": {"name": "pg"},
            "status": {"loadBalancer": {"ingress": ingress}},
        }
        view = views.remote_service(service)
        assert _size(view) < 2_000
        assert builders.ingress_addresses(view).rejected
        assert not builders.ingress_addresses(view).ips


def test_a_slice_that_names_a_service_is_kept_whoever_made_it() -> None:
    """kube-proxy routes to it: the writer must see it, to remove it from the import's Service."""
    (slice_v4, _) = _desired().endpoint_slices
    by_hand = _as_served(slice_v4)
    by_hand["metadata"]["name"] = "db-extra"
    by_hand["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Service", "name": "db", "uid": "u", "controller": True}
    ]
    assert not views.owns(by_hand)
    assert views.service_slice(by_hand)
    view = _view(by_hand)
    assert view is not None
    assert view["metadata"]["labels"][builders.SERVICE_NAME_LABEL] == "db"
    # Any other kind with the labels alone is somebody else's.
    service = _as_served(_desired().service)
    service["metadata"]["ownerReferences"] = []
    assert _view(service) is None


def _import_as_served(namespace: str = "tenant") -> JSON:
    """An import as kopf and the status writer get it: JSON parsed afresh each time."""
    return json.loads(
        json.dumps(
            {
                "apiVersion": "sharedservices.io/v1alpha1",
                "kind": "SharedServiceImport",
                "metadata": {
                    "name": "db",
                    "namespace": namespace,
                    "uid": "uid-db",
                    "generation": 3,
                    "resourceVersion": "42",
                    "labels": {"team": "a"},
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x" * 5000},
                    "managedFields": [{"manager": "kubectl"}],
                    "finalizers": ["x"],
                },
                "spec": {"source": {"addresses": ["192.0.2.1"]}, "ports": [{"port": 80}]},
                "status": {
                    "observedGeneration": 3,
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Synced"}],
                },
            }
        )
    )


def test_an_import_keeps_what_syncs_read() -> None:
    served = _import_as_served()
    view = views.shared_service_import(served)
    assert view == {
        "metadata": {
            "name": "db",
            "namespace": "tenant",
            "uid": "uid-db",
            "generation": 3,
            "resourceVersion": "42",
        },
        "spec": served["spec"],
        "status": served["status"],
    }
    served["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    deleted = views.shared_service_import(served)
    assert deleted["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"


def test_an_import_a_catalog_made_keeps_that_catalog_as_its_owner() -> None:
    served = _import_as_served()
    catalog = {"apiVersion": "sharedservices.io/v1alpha1", "kind": "SharedServiceCatalog"}
    served["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "u1"},
        {**catalog, "name": "shop", "uid": "u2", "controller": True, "blockOwnerDeletion": False},
    ]
    view = views.shared_service_import(served)
    assert view["metadata"]["ownerReferences"] == [
        {"kind": "SharedServiceCatalog", "name": "shop", "uid": "u2", "controller": True}
    ]


def test_views_of_separately_parsed_objects_share_their_short_texts() -> None:
    first = views.shared_service_import(_import_as_served("tenant-" + "a"))
    second = views.shared_service_import(_import_as_served("tenant-" + "a"))
    assert first["metadata"]["namespace"] is second["metadata"]["namespace"]
    first_reason = first["status"]["conditions"][0]["reason"]
    assert first_reason is second["status"]["conditions"][0]["reason"]
    one = _view(json.loads(json.dumps(_as_served(_desired().endpoint_slices[0]))))
    two = _view(json.loads(json.dumps(_as_served(_desired().endpoint_slices[0]))))
    assert one is not None
    assert two is not None
    assert one["metadata"]["labels"] == two["metadata"]["labels"]
    assert all(
        one["metadata"]["labels"][k] is two["metadata"]["labels"][k]
        for k in one["metadata"]["labels"]
    )
