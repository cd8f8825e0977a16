"""RemoteClusters: their specs into the registry, their connections into their status.

kopf delivers the RemoteClusters' events; this module keeps the store of them, hands each
valid spec to the :class:`~shared_services.remote.RemoteRegistry` (which connects), and
reports each connection's state in the cluster's status. Reports go through a queue of
their own with one worker per cluster at a time: a report that comes while a write is
under way replaces any report still waiting, so an older state never lands after a newer
one, and a failed write is retried with backoff, never dropped; no error ends a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from shared_services import api, metrics
from shared_services.advice import Reason
from shared_services.api import JSON
from shared_services.informer import slim
from shared_services.kube import Kube, KubeError, collection_path
from shared_services.listing import Listing
from shared_services.recorder import Recorder
from shared_services.remote import RemoteRegistry
from shared_services.status import ClusterReport
from shared_services.workqueue import RateLimiter, WorkQueue

log = logging.getLogger(__name__)

_WORKERS = 2
_RETRY_START = 1.0
_RETRY_MAX = 300.0
_PATH = collection_path(
    group=api.GROUP, version=api.VERSION, plural=api.REMOTE_CLUSTER_PLURAL, namespace=None
)


class ClusterReconciler:
    """The RemoteClusters as the operator knows them, and the writer of their status."""

    def __init__(
        self,
        *,
        kube: Kube,
        remote: RemoteRegistry,
        recorder: Recorder,
        clusters: dict[str, JSON],
        on_change: Callable[[str], None],
        instance: str = "",
        selector: Mapping[str, str] | None = None,
    ) -> None:
        self.kube = kube
        # This installation's name: a RemoteCluster whose status-writer annotation names
        # another is used, never reported on, so two releases do not both write its status.
        self.instance = instance
        # The labels of the RemoteClusters this installation uses; the others are another's.
        self.selector = dict(selector or {})
        self.remote = remote
        self.recorder = recorder
        self.clusters = clusters
        self._on_change = on_change
        self.active = False
        self.listing = Listing(kube, [_PATH], what="remoteclusters")
        self.queue: WorkQueue[str] = WorkQueue()
        self._limiter: RateLimiter[str] = RateLimiter(start=_RETRY_START, limit=_RETRY_MAX)
        self._reports: dict[str, ClusterReport] = {}
        self._workers: list[asyncio.Task[None]] = []

    async def fill(self) -> None:
        """Learn every RemoteCluster before the first sync; retried until allowed."""
        for item in await self.listing.until_allowed():
            if self.selects(item):
                self.clusters[item["metadata"]["name"]] = item

    def start(self) -> None:
        """Apply every known cluster and start writing reports: the leader only."""
        self.active = True
        for name, body in list(self.clusters.items()):
            self._apply(name, body)
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._worker(), name=f"cluster-status-{i}") for i in range(_WORKERS)
        ]

    def stop(self) -> None:
        """Stop writing reports."""
        self.active = False
        for task in self._workers:
            task.cancel()
        self.queue.close()

    def event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A RemoteCluster was listed, added, changed or deleted."""
        name = str(body.get("metadata", {}).get("name"))
        if event_type == "DELETED" or not self.selects(body):
            # One whose labels no longer match is, to this installation, as good as deleted.
            self.clusters.pop(name, None)
            if self.active:
                self.remote.remove(name)
            return
        self.clusters[name] = slim(dict(body.items()))
        if self.active:
            self._apply(name, body)

    def selects(self, body: Mapping[str, Any]) -> bool:
        """Whether this installation uses the RemoteCluster: its labels match the selector."""
        labels = (body.get("metadata") or {}).get("labels") or {}
        return all(labels.get(key) == value for key, value in self.selector.items())

    def connection_changed(self, name: str) -> None:
        """The registry's connection to ``name`` changed state, or the cluster went."""
        connection = self.remote.clusters.get(name)
        if connection is not None and connection.state != "Pending":
            metrics.REMOTE_CONNECTED.labels(name).set(1 if connection.state == "Connected" else 0)
            self._report(
                name,
                ClusterReport(
                    connected=connection.state == "Connected",
                    reason=connection.reason,
                    message=connection.message,
                    version=connection.server_version,
                    connected_at=connection.connected_at,
                ),
            )
        if name not in self.clusters:
            # Deleted: its series end, rather than stay at their last value forever.
            self._reports.pop(name, None)
            metrics.forget_cluster(name)
        self._on_change(name)

    def tables(self) -> dict[str, int]:
        """How many entries each table holds, for the tracked-items metric."""
        return {
            "remote_clusters": len(self.clusters),
            "cluster_reports": len(self._reports) + len(self.queue),
        }

    def _apply(self, name: str, body: Mapping[str, Any]) -> None:
        try:
            spec = api.parse_remote_cluster_spec(body.get("spec") or {})
        except api.InvalidSpecError as error:
            self.remote.remove(name)
            self._report(name, ClusterReport(False, Reason.INVALID_SPEC, str(error)))
            return
        self.remote.upsert(name, spec)
        self.connection_changed(name)

    def _report(self, name: str, report: ClusterReport) -> None:
        """Have the cluster's status say ``report``, replacing any report not yet written."""
        if not self.writes_status(name):
            self._reports.pop(name, None)
            return
        self._reports[name] = report
        self.queue.add(name)

    def writes_status(self, name: str) -> bool:
        """Whether this installation writes the status of RemoteCluster ``name``.

        Releases that shard one cluster by namespace use the same central clusters; each
        connects on its own, but only the one the annotation names says how its connection
        is, or their reports (a reconnect seen by one and not the other) would overwrite
        each other. Without the annotation every installation writes, as one alone does.
        """
        metadata = (self.clusters.get(name) or {}).get("metadata") or {}
        writer = (metadata.get("annotations") or {}).get(api.STATUS_WRITER_ANNOTATION)
        return not writer or writer == self.instance

    async def _worker(self) -> None:
        """Write reports until stopped; no error ends it, or no status would be written again.

        A write the API server refused is retried with backoff; so is anything else (a
        report the status model refuses is a bug, logged with its traceback).
        """
        while True:
            name = await self.queue.get()
            report = self._reports.pop(name, None)
            try:
                if report is not None:
                    await self.recorder.cluster_status(name, report)
            except Exception as error:  # the last resort too: see the docstring
                assert report is not None
                self._reports.setdefault(name, report)
                delay = self._limiter.when(name)
                if isinstance(error, KubeError):
                    log.warning(
                        "status of RemoteCluster %s not written, retrying in %.0f s: %s",
                        name,
                        delay,
                        error,
                    )
                else:
                    log.exception(
                        "status of RemoteCluster %s not written, retrying in %.0f s", name, delay
                    )
                self.queue.add_after(name, delay)
            else:
                self._limiter.forget(name)
            finally:
                self.queue.done(name)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The status writers: the operator cannot run without them while it leads."""
        return list(self._workers)
