"""On a VIP move the EndpointSlice goes first; the Endpoints and the status follow.

kube-proxy reads only the slice, and programs the new VIP on the same cores that the other
writes of a move (Endpoints, the import's status, an Event) and their watch events would
take at that moment. So on a move the operator writes the slice alone, and the rest a
moment later. Watches opened before the move see what a client of each object sees: the
slice with the new VIP while the Endpoints and the status still show the old one, then all
three agree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch

from kit import GROUP, VERSION, Kit

# The operator holds the rest for 0.2 s; half of it is the margin for watch delivery.
HELD_AT_LEAST = 0.1


class _FirstSeen(threading.Thread):
    """Watches one collection from its current state; stamps the first object that matches."""

    def __init__(
        self, list_fn: Callable[..., Any], namespace: str, matches: Callable[[Any], bool]
    ) -> None:
        super().__init__(daemon=True)
        self.list_fn = list_fn
        self.namespace = namespace
        self.matches = matches
        self.at: float | None = None
        listed = list_fn(namespace)
        metadata = listed["metadata"] if isinstance(listed, dict) else listed.metadata
        self.resource_version = (
            metadata["resourceVersion"] if isinstance(metadata, dict) else metadata.resource_version
        )

    def run(self) -> None:
        for event in watch.Watch().stream(
            self.list_fn,
            self.namespace,
            resource_version=self.resource_version,
            timeout_seconds=30,
        ):
            if self.matches(event["object"]):
                self.at = time.monotonic()
                return


def test_a_moved_vip_reaches_the_slice_before_the_endpoints_and_the_status(kit: Kit) -> None:
    old = kit.load_balancer("db")
    kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [old]})
    kit.wait_condition("db", "Ready", "True", "Synced")
    new = "198.51.100.140"

    slice_ = _FirstSeen(
        kit.discovery.list_namespaced_endpoint_slice,
        kit.namespace,
        lambda obj: any(new in (e.addresses or []) for e in obj.endpoints or []),
    )
    endpoints = _FirstSeen(
        kit.core.list_namespaced_endpoints,
        kit.namespace,
        lambda obj: any(a.ip == new for s in obj.subsets or [] for a in s.addresses or []),
    )
    status = _FirstSeen(
        lambda namespace, **kw: kit.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "sharedserviceimports", **kw
        ),
        kit.namespace,
        lambda obj: new in ((obj.get("status") or {}).get("addresses") or []),
    )
    watchers = (slice_, endpoints, status)
    for watcher in watchers:
        watcher.start()
    kit.set_ingress("db", [{"ip": new}])
    for watcher in watchers:
        watcher.join(35)
    assert slice_.at is not None, "the slice never held the new VIP"
    assert endpoints.at is not None, "the Endpoints never followed the slice"
    assert status.at is not None, "the status never followed the slice"
    assert endpoints.at - slice_.at >= HELD_AT_LEAST, endpoints.at - slice_.at
    assert status.at - slice_.at >= HELD_AT_LEAST, status.at - slice_.at
