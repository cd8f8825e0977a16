"""Every name an import needs is checked before anything is created.

A Service, its EndpointSlices and its Endpoints share the import's name. If the operator
created the Service and only then found the Endpoints name taken, the EndpointSlice
mirroring controller would copy that foreign Endpoints into slices of the new Service,
sending its traffic to addresses the address policy never judged. So an import whose
Endpoints name, or one of whose EndpointSlice names, is held by an object it did not
create says ``Conflict`` and creates nothing at all, not even its Service; once the name
is free, the import is served.
"""

from __future__ import annotations

from typing import Any

from kit import Kit
from suite import Row

PORTS = [{"port": 80}]


def _services(kit: Kit, name: str) -> list[Any]:
    found = kit.core.list_namespaced_service(kit.namespace, field_selector=f"metadata.name={name}")
    return list(found.items)


def test_taken_names_stop_every_create(kit: Kit, row: Row) -> None:
    row.injected = (
        "two Endpoints (one labelled as the operator's) and an EndpointSlice not made by the "
        "operator, holding the names that three new imports need"
    )
    kit.core.create_namespaced_endpoints(
        kit.namespace,
        {
            "metadata": {"name": "db"},
            "subsets": [{"addresses": [{"ip": "203.0.113.13"}], "ports": [{"port": 80}]}],
        },
    )
    kit.discovery.create_namespaced_endpoint_slice(
        kit.namespace,
        {
            "metadata": {"name": "cache-ipv4", "labels": {"kubernetes.io/service-name": "other"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["203.0.113.14"]}],
            "ports": [{"port": 80}],
        },
    )
    # Labelled as the operator's, with no import that owns it: the operator's caches drop
    # it, and the watch of others' names is not sent it, yet its name is taken.
    kit.core.create_namespaced_endpoints(
        kit.namespace,
        {
            "metadata": {
                "name": "queue",
                "labels": {"app.kubernetes.io/managed-by": "shared-services-operator"},
            },
            "subsets": [{"addresses": [{"ip": "203.0.113.15"}], "ports": [{"port": 80}]}],
        },
    )
    kit.create_import("db", {"source": {"addresses": ["192.0.2.13"]}, "ports": PORTS})
    kit.create_import("cache", {"source": {"addresses": ["192.0.2.14"]}, "ports": PORTS})
    kit.create_import("queue", {"source": {"addresses": ["192.0.2.15"]}, "ports": PORTS})

    for name, kind in (("db", "Endpoints"), ("cache", "EndpointSlice"), ("queue", "Endpoints")):
        ready = kit.wait_condition(name, "Ready", "False", "Conflict", timeout=30)
        assert f"{kind} {kit.namespace}/" in ready["message"], ready["message"]
        # The conflict is reported after the writes: had any create been made, it is there.
        assert _services(kit, name) == [], f"{name}: a Service was created beside a taken name"
        assert kit.slice_addresses(name) == {}, f"{name}: endpoints were written"
    kept = kit.discovery.read_namespaced_endpoint_slice("cache-ipv4", kit.namespace)
    assert [a for e in kept.endpoints for a in e.addresses] == ["203.0.113.14"]

    kit.core.delete_namespaced_endpoints("db", kit.namespace)
    kit.core.delete_namespaced_endpoints("queue", kit.namespace)
    kit.discovery.delete_namespaced_endpoint_slice("cache-ipv4", kit.namespace)
    for name, address in (("db", "192.0.2.13"), ("cache", "192.0.2.14"), ("queue", "192.0.2.15")):
        kit.wait_condition(name, "Ready", "True", "Synced", timeout=60)
        kit.wait_addresses(name, {"IPv4": [address]})
    row.figure("objects created while a name was taken", "0")
    row.happened = "each import said Conflict and created nothing; served once the names were free"
