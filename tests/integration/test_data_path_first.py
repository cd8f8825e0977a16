"""On a VIP move the EndpointSlice goes first; the Endpoints and the status follow.

kube-proxy reads only the slice, and programs the new VIP on the same cores that the other
writes of a move (Endpoints, the import's status, an Event) and their watch events would
take at that moment. So on a move the operator writes the slice alone, and the rest a
moment later. Watches opened before the move see what a client of each object sees: the
slice with the new VIP while the Endpoints and the status still show the old one, then all
three agree. While other VIPs keep moving (a burst), the rest waits until the moves pause,
so that no other import's slice waits behind it.
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
# How long another VIP keeps moving, one move every KEEP_MOVING_EVERY; the operator holds
# the rest until the moves pause for 0.2 s (at most 5 s), so for longer than HELD_IN_BURST.
KEEP_MOVING = 1.5
KEEP_MOVING_EVERY = 0.05
HELD_IN_BURST = 1.0


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


def _slice_and_endpoints_holding(kit: Kit, address: str) -> tuple[_FirstSeen, _FirstSeen]:
    """Watchers of the test namespace's slices and Endpoints, for the first with ``address``."""
    slice_ = _FirstSeen(
        kit.discovery.list_namespaced_endpoint_slice,
        kit.namespace,
        lambda obj: any(address in (e.addresses or []) for e in obj.endpoints or []),
    )
    endpoints = _FirstSeen(
        kit.core.list_namespaced_endpoints,
        kit.namespace,
        lambda obj: any(a.ip == address for s in obj.subsets or [] for a in s.addresses or []),
    )
    return slice_, endpoints


def test_a_moved_vip_reaches_the_slice_before_the_endpoints_and_the_status(kit: Kit) -> None:
    old = kit.load_balancer("db")
    kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [old]})
    kit.wait_condition("db", "Ready", "True", "Synced")
    new = "198.51.100.140"

    slice_, endpoints = _slice_and_endpoints_holding(kit, new)
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


def test_while_other_vips_keep_moving_the_endpoints_wait_for_the_moves_to_pause(
    kit: Kit,
) -> None:
    kit.load_balancer("db")
    kit.load_balancer("cache")
    kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.import_remote("cache", "cache")
    for name in ("db", "cache"):
        kit.wait_condition(name, "Ready", "True", "Synced")
    new = "198.51.100.141"
    slice_, endpoints = _slice_and_endpoints_holding(kit, new)
    for watcher in (slice_, endpoints):
        watcher.start()
    kit.set_ingress("db", [{"ip": new}])
    moved = time.monotonic()
    for i in range(round(KEEP_MOVING / KEEP_MOVING_EVERY)):  # bounded: 30 moves
        kit.set_ingress("cache", [{"ip": f"198.51.100.{150 + i}"}])
        time.sleep(KEEP_MOVING_EVERY)
    for watcher in (slice_, endpoints):
        watcher.join(35)
    assert slice_.at is not None, "the slice never held the new VIP"
    assert endpoints.at is not None, "the Endpoints never followed the slice"
    assert slice_.at < endpoints.at
    assert endpoints.at - moved >= HELD_IN_BURST, endpoints.at - moved
