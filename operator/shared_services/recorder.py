"""The one writer of statuses and Events, for imports and RemoteClusters alike.

A status is written only when it differs from the one the cache holds (an idle operator
writes nothing), and the cache takes the written object at once, so the next sync compares
against it. The imports-by-state gauge follows each import's Ready condition here, one
import at a time, with no recount.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

from shared_services import api, conditions, metrics, status
from shared_services.decide import Event
from shared_services.informer import slim
from shared_services.kube import JSON, Kube, KubeError, NotFound, collection_path

log = logging.getLogger(__name__)

ImportKey = tuple[str, str]
_IMPORTS = f"{api.GROUP}/{api.VERSION}"
_COMPONENT = "shared-services-operator"


class Recorder:
    """Writes statuses and Events; keeps the caches of imports and clusters in step."""

    def __init__(
        self,
        kube: Kube,
        *,
        imports: MutableMapping[ImportKey, JSON],
        clusters: MutableMapping[str, JSON],
    ) -> None:
        self.kube = kube
        self._imports = imports
        self._clusters = clusters
        # Each import's Ready status and reason as last recorded.
        self.ready: dict[ImportKey, tuple[str, str]] = {}

    def ready_reason(self, key: ImportKey) -> str:
        """The reason of the import's Ready condition as last recorded; "" if none."""
        return self.ready.get(key, ("", ""))[1]

    async def import_status(self, key: ImportKey, body: JSON, new: dict[str, Any]) -> None:
        """Have the import's status say ``new``; no write if it says so already."""
        ready = new["conditions"][0]
        self._set_ready(key, (ready["status"], ready["reason"]))
        if status.same(body.get("status") or {}, new):
            return
        namespace, name = key
        path = collection_path(
            group=api.GROUP, version=api.VERSION, plural=api.IMPORT_PLURAL, namespace=namespace
        )
        try:
            updated = await asyncio.to_thread(
                self.kube.patch, f"{path}/{name}/status", {"status": new}
            )
        except KubeError as error:
            if error.status == 404:
                return  # deleted meanwhile
            raise
        metrics.STATUS_WRITES.labels(api.IMPORT_KIND).inc()
        if key in self._imports:
            self._imports[key] = slim(updated)

    async def cluster_status(self, name: str, report: status.ClusterReport) -> None:
        """Have the RemoteCluster's status say ``report``; raises KubeError to be retried."""
        body = self._clusters.get(name)
        if body is None:
            return
        old = body.get("status") or {}
        new = status.cluster_status(
            old, report, generation=body.get("metadata", {}).get("generation")
        )
        if status.same(old, new):
            return
        path = collection_path(
            group=api.GROUP, version=api.VERSION, plural=api.REMOTE_CLUSTER_PLURAL, namespace=None
        )
        try:
            updated = await asyncio.to_thread(
                self.kube.patch, f"{path}/{name}/status", {"status": new}
            )
        except NotFound:
            return  # deleted meanwhile
        metrics.STATUS_WRITES.labels(api.REMOTE_CLUSTER_KIND).inc()
        if name in self._clusters:
            self._clusters[name] = slim(updated)

    async def event(self, body: JSON, event: Event) -> None:
        """Record a Kubernetes Event on the import; failing to is not worth a retry."""
        metadata = body["metadata"]
        stamp = conditions.now()
        payload = {
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": _IMPORTS,
                "kind": api.IMPORT_KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": _COMPONENT},
            "reportingComponent": _COMPONENT,
            "reportingInstance": _COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        path = collection_path(
            group="", version="v1", plural="events", namespace=metadata["namespace"]
        )
        try:
            await asyncio.to_thread(self.kube.create, path, payload)
        except KubeError as error:
            log.warning(
                "could not record event %s on %s: %s", event.reason, metadata["name"], error
            )

    def forget(self, key: ImportKey) -> None:
        """The import is gone: it leaves the imports-by-state gauge."""
        self._set_ready(key, None)

    def _set_ready(self, key: ImportKey, state: tuple[str, str] | None) -> None:
        """Keep the imports-by-state gauge in step, one import at a time (no recount)."""
        old = self.ready.pop(key, None) if state is None else self.ready.get(key)
        if old == state:
            return
        if old is not None:
            metrics.IMPORTS.labels(*old).dec()
        if state is not None:
            self.ready[key] = state
            metrics.IMPORTS.labels(*state).inc()
