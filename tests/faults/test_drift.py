"""Hand edits and deletions of the objects the operator manages are undone, promptly and
with one repair each: the Service, the EndpointSlice and the Endpoints, edited and deleted,
a hand-made duplicate slice, and the operator's labels stripped.

Each repair's time (from the hand change to the restored state, seen by a client of the
workload cluster) and the writes it cost are reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s

from faults.toolkit import alone, load_balancer, wait_for, writes
from kit import Kit
from suite import Row

VIP = "192.0.2.40"
LABELS = {
    "app.kubernetes.io/managed-by": "shared-services-operator",
    "sharedservices.io/import": "db",
}


def _state(kit: Kit) -> dict[str, Any]:
    """What a consumer of the Service depends on, and what marks the objects as managed."""
    core, ns = kit.core, kit.namespace
    try:
        service = core.read_namespaced_service("db", ns)
        endpoints = core.read_namespaced_endpoints("db", ns)
    except k8s.ApiException as error:
        if error.status != 404:
            raise
        return {"missing": error.reason}
    slices = kit.discovery.list_namespaced_endpoint_slice(
        ns, label_selector="kubernetes.io/service-name=db"
    ).items
    managed = [service, endpoints, *slices]
    return {
        "selector": service.spec.selector,
        "ports": [(p.name, p.port, p.target_port, p.protocol) for p in service.spec.ports],
        "slices": sorted(
            (
                s.metadata.name,
                s.address_type,
                sorted(a for e in s.endpoints or [] for a in e.addresses),
            )
            for s in slices
        ),
        "endpoints": [a.ip for s in endpoints.subsets or [] for a in s.addresses or []],
        "labelled": all(
            {k: (o.metadata.labels or {}).get(k) for k in LABELS} == LABELS for o in managed
        ),
    }


def _slice_name(kit: Kit) -> str:
    (item,) = kit.discovery.list_namespaced_endpoint_slice(
        kit.namespace, label_selector="kubernetes.io/service-name=db"
    ).items
    return str(item.metadata.name)


def test_hand_edits_and_deletions_are_undone(kit: Kit, row: Row) -> None:
    load_balancer(kit, "db", [VIP])
    kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [VIP]})
    kit.wait_condition("db", "Ready", "True", "Synced")
    desired = _state(kit)
    core, discovery, ns = kit.core, kit.discovery, kit.namespace
    bad_subsets = {"subsets": [{"addresses": [{"ip": "203.0.113.66"}], "ports": [{"port": 1}]}]}
    slice_name = _slice_name(kit)
    duplicate = {
        "metadata": {
            "name": "db-extra",
            "labels": {**LABELS, "kubernetes.io/service-name": "db"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["203.0.113.67"]}],
        "ports": [{"port": 5432}],
    }
    no_labels = {"metadata": {"labels": dict.fromkeys(LABELS)}}
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "Service: selector added, targetPort changed",
            lambda: core.patch_namespaced_service(
                "db",
                ns,
                {
                    "spec": {
                        "selector": {"app": "hijack"},
                        "ports": [{"port": 5432, "targetPort": 1}],
                    }
                },
            ),
        ),
        ("Service: deleted", lambda: core.delete_namespaced_service("db", ns)),
        (
            "EndpointSlice: addresses replaced",
            lambda: discovery.patch_namespaced_endpoint_slice(
                slice_name, ns, {"endpoints": [{"addresses": ["203.0.113.66"]}]}
            ),
        ),
        (
            "EndpointSlice: deleted",
            lambda: discovery.delete_namespaced_endpoint_slice(slice_name, ns),
        ),
        (
            "EndpointSlice: duplicate added by hand",
            lambda: discovery.create_namespaced_endpoint_slice(ns, duplicate),
        ),
        (
            "Endpoints: addresses replaced",
            lambda: core.patch_namespaced_endpoints("db", ns, bad_subsets),
        ),
        ("Endpoints: deleted", lambda: core.delete_namespaced_endpoints("db", ns)),
        (
            "Service: operator labels removed",
            lambda: core.patch_namespaced_service("db", ns, no_labels),
        ),
        (
            "EndpointSlice: operator labels removed",
            lambda: discovery.patch_namespaced_endpoint_slice(slice_name, ns, no_labels),
        ),
    ]
    alone(kit)
    row.injected = f"{len(cases)} hand changes to the managed Service, EndpointSlice, Endpoints"
    for what, drift in cases:
        before = kit.settled(lambda: writes(kit.operator), quiet=0.5)
        drift()
        repaired = wait_for(
            lambda: _state(kit) == desired,
            timeout=20,
            what=f"repair of {what}",
            log=f"{_state(kit)} != {desired}\n{kit.operator.log_tail()}",
        )
        cost = kit.settled(lambda: writes(kit.operator), quiet=0.5) - before
        row.figure(what, f"{repaired * 1000:.0f} ms/{cost:.0f} writes")
        # One repair is a handful of writes (the object, and the status or an Event), never a loop.
        assert cost <= 4, f"{what}: {cost} writes"
    kit.wait_condition("db", "Ready", "True", "Synced")
    row.happened = "every change undone; Ready=True/Synced at the end"
