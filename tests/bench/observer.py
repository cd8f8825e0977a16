"""An independent watcher of the workload cluster: when did a slice show an address?

It runs in the benchmark's process, not in the operator's, and stamps each event with the
monotonic clock when it arrives, so a latency is "change made" to "change visible to a
client of the local cluster", like an application's kube-proxy would see it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from shared_services.api import JSON
from shared_services.informer import Informer
from shared_services.kube import Kube, collection_path

Key = tuple[str, str]


def _slice_addresses(obj: JSON) -> frozenset[str]:
    return frozenset(a for e in obj.get("endpoints") or [] for a in e.get("addresses") or [])


def _endpoints_addresses(obj: JSON) -> frozenset[str]:
    return frozenset(
        a.get("ip", "") for s in obj.get("subsets") or [] for a in s.get("addresses") or []
    )


class Observer:
    """Watches EndpointSlices, Endpoints and imports; answers "since when does X hold Y"."""

    def __init__(self, kube: Kube, *, endpoints: bool = True) -> None:
        self._changed = threading.Condition()
        self.slices: dict[Key, tuple[frozenset[str], float]] = {}
        self.endpoints: dict[Key, tuple[frozenset[str], float]] = {}
        self.ready: dict[Key, bool] = {}
        self.ready_count = 0  # kept beside ``ready`` so that waiting costs O(1) per event
        self._watch_endpoints = endpoints
        self._informers = [
            Informer(
                kube,
                collection_path(
                    group="discovery.k8s.io", version="v1", plural="endpointslices", namespace=None
                ),
                name="bench slices",
                on_event=self._record(self.slices, _slice_addresses, by_service=True),
            ),
            Informer(
                kube,
                collection_path(group="", version="v1", plural="endpoints", namespace=None),
                name="bench endpoints",
                on_event=self._record(self.endpoints, _endpoints_addresses, by_service=False),
            ),
            Informer(
                kube,
                collection_path(
                    group="sharedservices.io",
                    version="v1alpha1",
                    plural="sharedserviceimports",
                    namespace=None,
                ),
                name="bench imports",
                on_event=self._import_event,
            ),
        ]

    def start(self) -> Observer:
        """Start watching; returns once every list is done."""
        if not self._watch_endpoints:
            # Readiness alone: watching every slice of 10,000 imports would load the API
            # server that the operator is being measured against.
            self._informers = self._informers[2:]
        for informer in self._informers:
            informer.start()
        for informer in self._informers:
            informer.synced.wait(60)
        return self

    def stop(self) -> None:
        """Stop watching."""
        for informer in self._informers:
            informer.stop()

    def _record(
        self,
        store: dict[Key, tuple[frozenset[str], float]],
        addresses: Callable[[JSON], frozenset[str]],
        *,
        by_service: bool,
    ) -> Callable[[str, JSON], None]:
        def on_event(kind: str, obj: JSON) -> None:
            now = time.monotonic()
            metadata = obj.get("metadata", {})
            name = metadata.get("name", "")
            if by_service:
                name = (metadata.get("labels") or {}).get("kubernetes.io/service-name", name)
            key = (metadata.get("namespace", ""), name)
            value = frozenset() if kind == "DELETED" else addresses(obj)
            with self._changed:
                if store.get(key, (None, 0.0))[0] != value:
                    store[key] = (value, now)
                    self._changed.notify_all()

        return on_event

    def _import_event(self, kind: str, obj: JSON) -> None:
        metadata = obj.get("metadata", {})
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        conditions: list[dict[str, Any]] = (obj.get("status") or {}).get("conditions") or []
        ready = kind != "DELETED" and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        )
        with self._changed:
            self.ready_count += ready - self.ready.get(key, False)
            self.ready[key] = ready
            self._changed.notify_all()

    def wait(self, check: Callable[[], float | None], timeout: float) -> float:
        """Block until ``check()`` returns a time (under the lock); return it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = check()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = "timed out waiting for the workload cluster"
                    raise TimeoutError(msg)
                self._changed.wait(remaining)

    def slice_has(self, key: Key, address: str, *, timeout: float = 30.0) -> float:
        """When the service's slice came to hold exactly ``address``."""

        def check() -> float | None:
            value, since = self.slices.get(key, (frozenset(), 0.0))
            return since if value == {address} else None

        return self.wait(check, timeout)

    def endpoints_have(self, key: Key, address: str, *, timeout: float = 30.0) -> float:
        """When the Endpoints came to hold exactly ``address``."""

        def check() -> float | None:
            value, since = self.endpoints.get(key, (frozenset(), 0.0))
            return since if value == {address} else None

        return self.wait(check, timeout)

    def all_ready(self, count: int, *, timeout: float) -> float:
        """When ``count`` imports were Ready."""

        def check() -> float | None:
            return time.monotonic() if self.ready_count >= count else None

        return self.wait(check, timeout)
