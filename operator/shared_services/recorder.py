"""The one writer of statuses and Events, for imports and RemoteClusters alike.

A status is written only when it differs from the one the cache holds (an idle operator
writes nothing), and the cache takes the written object at once, so the next sync compares
against it. The imports-by-state gauge follows each import's Ready condition here, one
import at a time, with no recount.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

from shared_services import api, conditions, metrics, status
from shared_services.api import JSON, ImportKey
from shared_services.correlator import Budget, Correlator, Record
from shared_services.decide import Event
from shared_services.informer import slim
from shared_services.kube import AsyncKube, KubeError, NotFound, collection_path
from shared_services.records import ImportRecord

log = logging.getLogger(__name__)

_IMPORTS = f"{api.GROUP}/{api.VERSION}"
_COMPONENT = "shared-services-operator"


class Recorder:
    """Writes statuses and Events; keeps the caches of imports and clusters in step."""

    def __init__(
        self,
        kube: AsyncKube,
        *,
        imports: MutableMapping[ImportKey, JSON],
        clusters: MutableMapping[str, JSON],
    ) -> None:
        self.kube = kube
        self._imports = imports
        self._clusters = clusters
        self.correlator = Correlator()

    async def import_status(
        self, record: ImportRecord, body: JSON, new: dict[str, Any], *, detail: str = ""
    ) -> None:
        """Have the import's status say ``new``; no write if it says so already.

        ``detail`` is what the operator's log is told beside the status and no tenant is
        (which Node holds a refused address): logged when the Ready condition starts to
        say something else, a restart included, and never by an idle operator.
        """
        key = record.key
        ready = new["conditions"][0]
        state = (ready["status"], ready["reason"])
        news = record.ready != state
        self._set_ready(record, state)
        same = status.same(body.get("status") or {}, new)
        if detail and (news or not same):
            log.warning("%s/%s: %s", *key, detail)
        if same:
            return
        updated = await self._write_status(api.IMPORT_KIND, api.IMPORT_PLURAL, *key, new)
        if updated is not None and key in self._imports:
            self._imports[key] = updated

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
        kind, plural = api.REMOTE_CLUSTER_KIND, api.REMOTE_CLUSTER_PLURAL
        updated = await self._write_status(kind, plural, None, name, new)
        if updated is not None and name in self._clusters:
            self._clusters[name] = updated

    async def catalog_status(
        self, key: tuple[str, str], body: JSON, new: dict[str, Any]
    ) -> JSON | None:
        """Have a catalog's status say ``new``; the object as written, or None if unchanged."""
        if status.same(body.get("status") or {}, new):
            return None
        return await self._write_status(api.CATALOG_KIND, api.CATALOG_PLURAL, *key, new)

    async def _write_status(
        self, kind: str, plural: str, namespace: str | None, name: str, new: dict[str, Any]
    ) -> JSON | None:
        """Patch an object's status; the object as written, or None if it is gone."""
        path = collection_path(
            group=api.GROUP, version=api.VERSION, plural=plural, namespace=namespace
        )
        try:
            updated = await self.kube.patch(f"{path}/{name}/status", {"status": new})
        except NotFound:
            return None  # deleted meanwhile
        metrics.STATUS_WRITES.labels(kind).inc()
        return slim(updated)

    async def event(self, record: ImportRecord, body: JSON, event: Event) -> None:
        """Record a Kubernetes Event on the import; failing to is not worth a retry.

        The correlator decides whether it is a new Event, a count on one recorded before,
        or over the import's budget and dropped, as client-go's recorder would.
        """
        key = record.key
        message = event.message[:1024]
        now = time.monotonic()
        if record.budget is None:
            record.budget = Budget.full(now)
        written = self.correlator.observe(
            key, record.budget, event.type, event.reason, message, now=now
        )
        if written is None:
            log.debug("event %s on %s/%s over its budget, dropped", event.reason, *key)
            return
        stamp = conditions.now()
        try:
            name = await self._write_event(body, event, written, stamp)
        except KubeError as error:
            log.warning("could not record event %s on %s/%s: %s", event.reason, *key, error)
        else:
            self.correlator.recorded(key, written, name)

    async def _write_event(self, body: JSON, event: Event, record: Record, stamp: str) -> str:
        """Count on the Event ``record`` names, or create one; return the Event's name."""
        namespace = body["metadata"]["namespace"]
        path = collection_path(group="", version="v1", plural="events", namespace=namespace)
        if record.name is not None:
            patch = {"count": record.count, "lastTimestamp": stamp, "message": record.message}
            try:
                await self.kube.patch(f"{path}/{record.name}", patch)
            except NotFound:
                pass  # expired (the API server keeps Events an hour): a new one follows
            else:
                return record.name
        created = await self.kube.create(path, self._new_event(body, event, record.message, stamp))
        return str(created["metadata"]["name"])

    @staticmethod
    def _new_event(body: JSON, event: Event, message: str, stamp: str) -> JSON:
        metadata = body["metadata"]
        return {
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
            "message": message,
            "source": {"component": _COMPONENT},
            "reportingComponent": _COMPONENT,
            "reportingInstance": _COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }

    def forget(self, record: ImportRecord) -> None:
        """The import is gone: it leaves the imports-by-state gauge and the correlator."""
        self._set_ready(record, None)
        self.correlator.forget(record.key)

    @staticmethod
    def _set_ready(record: ImportRecord, state: tuple[str, str] | None) -> None:
        """Keep the imports-by-state gauge in step, one import at a time (no recount)."""
        old, record.ready = record.ready, state
        if old == state:
            return
        if old is not None:
            metrics.IMPORTS.labels(*old).dec()
        if state is not None:
            metrics.IMPORTS.labels(*state).inc()
