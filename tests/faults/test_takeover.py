"""The operator never takes over an object it did not write, even from a stale cache.

The operator is frozen (SIGSTOP) while its Service, EndpointSlice and Endpoints are deleted
and replaced by someone else's under the same names, and the VIP moves on the supervisor.
When it thaws, its caches still hold its own objects for a moment, and the VIP move asks
for a write. Every patch and delete names the uid it was computed for, so nothing lands on
the newcomers: they come out byte for byte as they were made (same resourceVersion), and the
import says ``Conflict``.

Which arrives first after the thaw, the VIP move or the watch events of the deletions, is
up to the scheduler; tests/integration/test_writer.py makes the stale cache certain.
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

from kubernetes import client as k8s

from faults.toolkit import load_balancer, wait_for, writes
from kit import Kit
from suite import Row

VIP, MOVED = "192.0.2.30", "198.51.100.30"


def _foreign(kit: Kit) -> dict[str, Any]:
    """Replace the operator's three objects by foreign ones; return their resourceVersions."""
    for delete, name in (
        (kit.core.delete_namespaced_endpoints, "db"),
        (kit.discovery.delete_namespaced_endpoint_slice, "db-ipv4"),
        (kit.core.delete_namespaced_service, "db"),
    ):
        with contextlib.suppress(k8s.ApiException):
            delete(name, kit.namespace)
    mine = {"owner": "somebody-else"}
    service = kit.core.create_namespaced_service(
        kit.namespace,
        {"metadata": {"name": "db", "labels": mine}, "spec": {"ports": [{"port": 5432}]}},
    )
    # The endpoints controller deletes the Endpoints of a deleted Service; once it has seen
    # the new, selectorless one under the name, it leaves that name's Endpoints alone.
    time.sleep(0.5)
    slice_ = kit.discovery.create_namespaced_endpoint_slice(
        kit.namespace,
        {
            "metadata": {"name": "db-ipv4", "labels": mine},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["203.0.113.99"]}],
            "ports": [{"port": 5432, "protocol": "TCP"}],
        },
    )
    endpoints = kit.core.create_namespaced_endpoints(
        kit.namespace,
        {
            "metadata": {
                "name": "db",
                "labels": {**mine, "endpointslice.kubernetes.io/skip-mirror": "true"},
            },
            "subsets": [{"addresses": [{"ip": "203.0.113.99"}], "ports": [{"port": 5432}]}],
        },
    )
    return {
        "Service": service.metadata.resource_version,
        "EndpointSlice": slice_.metadata.resource_version,
        "Endpoints": endpoints.metadata.resource_version,
    }


def _versions(kit: Kit) -> dict[str, Any]:
    return {
        "Service": kit.core.read_namespaced_service("db", kit.namespace).metadata.resource_version,
        "EndpointSlice": kit.discovery.read_namespaced_endpoint_slice(
            "db-ipv4", kit.namespace
        ).metadata.resource_version,
        "Endpoints": kit.core.read_namespaced_endpoints(
            "db", kit.namespace
        ).metadata.resource_version,
    }


def test_replaced_while_frozen(kit: Kit, row: Row) -> None:
    row.injected = (
        "operator frozen; its Service, EndpointSlice and Endpoints replaced by foreign ones "
        "of the same names; the VIP moved; operator thawed"
    )
    kit.remote_cluster()
    load_balancer(kit, "db", [VIP])
    kit.import_remote("db", "db")
    kit.wait_condition("db", "Ready", "True", "Synced")
    kit.wait_addresses("db", {"IPv4": [VIP]})
    process = kit.operator.process
    assert process is not None
    before = writes(kit.operator)
    process.send_signal(signal.SIGSTOP)
    try:
        foreign = _foreign(kit)
        kit.set_ingress("db", [{"ip": MOVED}])
        time.sleep(1.0)  # the events of all this wait in the frozen operator's sockets
    finally:
        process.send_signal(signal.SIGCONT)
    thawed = time.monotonic()
    took = wait_for(
        lambda: (kit.condition("db", "Ready") or {}).get("reason") == "Conflict",
        timeout=30,
        what="the import to report the conflict",
        log=kit.operator.log_tail(),
    )
    kit.settled(lambda: writes(kit.operator))
    assert _versions(kit) == foreign, "a foreign object was changed"
    ready = kit.condition("db", "Ready") or {}
    assert ready["status"] == "False"
    assert "not managed by shared-services-operator" in ready["message"]
    row.figure("Conflict reported after the thaw", took, "s")
    row.figure("foreign objects changed", 0)
    row.figure("writes after the thaw", writes(kit.operator) - before)
    row.happened = (
        f"the 3 foreign objects kept their resourceVersions; Ready=False Conflict "
        f"{time.monotonic() - thawed:.1f} s after the thaw"
    )
