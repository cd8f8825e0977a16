"""SharedServiceCatalogs: one object imports every selected Service of a central namespace.

kopf delivers the catalogs' events. Each catalog reads its remote namespace through the
registry's shared watch (the same one its imports read), and :mod:`shared_services.catalog`
decides which SharedServiceImports it should hold; this module makes, changes and removes
them, each owned by the catalog (so deleting the catalog deletes them, through the API
server's garbage collector) and labelled with its name, and writes the catalog's status.
The imports then sync as any other import does.

A catalog is synced again when its spec changes, when its namespace's watch sees a change,
when its RemoteCluster changes, and when one of its imports changes (its Ready condition
is what the catalog counts). Before it makes an import, it asks the API server whether a
Service of that name exists: a name something else holds is reported on the catalog, and
nothing is made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from shared_services import api, builders, catalog, metrics
from shared_services.advice import Reason
from shared_services.api import JSON, ImportKey
from shared_services.catalog import ImportView, Unknown
from shared_services.kube import Conflict, Kube, KubeError, collection_path
from shared_services.recorder import Recorder
from shared_services.remote import RemoteEvent, RemoteRegistry
from shared_services.resolve import RemoteLookup
from shared_services.workqueue import RateLimiter, WorkQueue

log = logging.getLogger(__name__)

CatalogKey = tuple[str, str]  # namespace, name
_WORKERS = 2
_BY = "catalogs"  # who reads a namespace, to the registry


class CatalogReconciler:
    """The catalogs as the operator knows them, and the maker of their imports."""

    def __init__(
        self,
        *,
        kube: Kube,
        remote: RemoteRegistry,
        recorder: Recorder,
        imports: Mapping[ImportKey, JSON],
        clusters: Mapping[str, JSON],
    ) -> None:
        self.kube = kube
        self.remote = remote
        self.recorder = recorder
        self._imports = imports
        self._clusters = clusters
        self.catalogs: dict[CatalogKey, JSON] = {}
        # The remote namespace each catalog reads, so its changes queue the catalog.
        self._reading: dict[CatalogKey, tuple[str, str]] = {}
        self.active = False
        self.queue: WorkQueue[CatalogKey] = WorkQueue()
        self._limiter: RateLimiter[CatalogKey] = RateLimiter(start=2.0, limit=300.0)
        self._conflicts: RateLimiter[CatalogKey] = RateLimiter(start=5.0, limit=300.0)
        self._workers: list[asyncio.Task[None]] = []

    # -- events in -----------------------------------------------------------------------

    def event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A catalog was listed, added, changed or deleted (from kopf)."""
        metadata = body.get("metadata") or {}
        key: CatalogKey = (str(metadata.get("namespace")), str(metadata.get("name")))
        if event_type == "DELETED":
            self.catalogs.pop(key, None)
        else:
            self.catalogs[key] = dict(body)
        self._queue(key)

    def import_changed(self, body: Mapping[str, Any]) -> None:
        """An import changed: the catalog that made it counts it again."""
        metadata = body.get("metadata") or {}
        owner = _catalog_owner(metadata)
        if owner is not None:
            self._queue((str(metadata.get("namespace")), owner[0]))

    def remote_event(self, event: RemoteEvent) -> None:
        """A remote namespace's Services changed: the catalogs that read it look again."""
        where = (event.cluster, event.namespace)
        for key, reading in list(self._reading.items()):
            if reading == where:
                self._queue(key)

    def cluster_changed(self, name: str) -> None:
        """A RemoteCluster changed: the catalogs that name it look again."""
        for key, body in list(self.catalogs.items()):
            if (body.get("spec") or {}).get("cluster") == name:
                self._queue(key)

    def _queue(self, key: CatalogKey) -> None:
        if self.active:
            self.queue.add(key)

    # -- start and stop ------------------------------------------------------------------

    def start(self) -> None:
        """Sync every known catalog and keep syncing: the leader only."""
        self.active = True
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._worker(), name=f"catalog-{i}") for i in range(_WORKERS)
        ]
        for key in list(self.catalogs):
            self.queue.add(key)

    def stop(self) -> None:
        """Stop syncing."""
        self.active = False
        for worker in self._workers:
            worker.cancel()
        self.queue.close()

    def tasks(self) -> list[asyncio.Task[None]]:
        """The workers, which never end by themselves: liveness watches them."""
        return list(self._workers)

    def tables(self) -> dict[str, int]:
        """How many entries each table holds, for the tracked-items metric."""
        return {
            "catalogs": len(self.catalogs),
            "catalog_readers": len(self._reading),
            "catalog_backoffs": len(self._limiter) + len(self._conflicts),
        }

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.sync(key)
            except Exception as error:  # one catalog's failure must not stop the others
                delay = self._limiter.when(key)
                if isinstance(error, KubeError):
                    log.warning("catalog %s/%s: %s; again in %.0f s", *key, error, delay)
                else:
                    log.exception("catalog %s/%s failed; again in %.0f s", *key, delay)
                self.queue.add_after(key, delay)
            else:
                self._limiter.forget(key)
            finally:
                self.queue.done(key)

    # -- one catalog ---------------------------------------------------------------------

    async def sync(self, key: CatalogKey) -> None:
        """Bring the catalog's imports and status in line with its remote namespace."""
        body = self.catalogs.get(key)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            self._read(key, None)  # its imports go with it, through their owner reference
            self._limiter.forget(key)
            self._conflicts.forget(key)
            return
        namespace = key[0]
        try:
            spec = api.parse_catalog_spec(body.get("spec") or {})
        except api.InvalidSpecError as error:
            self._read(key, None)
            unknown = Unknown(Reason.INVALID_SPEC, str(error))
            await self._status(key, body, catalog.plan(body, _BLANK, unknown, {}))
            return
        services = self._services(key, spec)
        views = self._views(namespace, str(body["metadata"].get("uid")), spec)
        plan = catalog.plan(body, spec, services, views)
        if plan.create:
            taken = await asyncio.to_thread(self._taken, namespace, [n for n, _ in plan.create])
            if taken:
                plan = catalog.plan(body, spec, services, views, taken)
        if plan.writes:  # most syncs (a VIP move in its namespace) change no import
            await asyncio.to_thread(self._write, body, spec, plan)
        await self._status(key, body, plan)
        if plan.status["conflicts"]:
            # What holds a name may go without an event the operator sees (a Service it does
            # not watch): soon at first, then more and more rarely, as for an import.
            self.queue.add_after(key, self._conflicts.when(key))
        else:
            self._conflicts.forget(key)

    def _services(self, key: CatalogKey, spec: api.CatalogSpec) -> list[JSON] | Unknown:
        """The remote namespace's Services; or why they cannot be read."""
        if spec.cluster not in self._clusters:
            self._read(key, None)
            message = f"RemoteCluster {spec.cluster!r} does not exist"
            return Unknown(Reason.REMOTE_CLUSTER_NOT_FOUND, message)
        connection = self.remote.clusters.get(spec.cluster)
        if connection is None:
            self._read(key, None)
            message = f"RemoteCluster {spec.cluster!r} is invalid"
            return Unknown(Reason.INVALID_REMOTE_CLUSTER, message)
        if not connection.spec.allows_namespace(key[0]):
            self._read(key, None)
            message = (
                f"RemoteCluster {spec.cluster!r} does not allow imports from namespace "
                f"{key[0]!r} (spec.allowedNamespaces)"
            )
            return Unknown(Reason.NAMESPACE_DENIED, message, empty=True)
        if not connection.spec.allows_remote_namespace(spec.namespace):
            self._read(key, None)
            message = (
                f"RemoteCluster {spec.cluster!r} does not allow importing from remote "
                f"namespace {spec.namespace!r} (spec.allowedRemoteNamespaces)"
            )
            return Unknown(Reason.REMOTE_NAMESPACE_DENIED, message, empty=True)
        self._read(key, (spec.cluster, spec.namespace))
        found = self.remote.services(spec.cluster, spec.namespace)
        if isinstance(found, RemoteLookup):
            return Unknown(found.reason, found.message)
        return found

    def _read(self, key: CatalogKey, where: tuple[str, str] | None) -> None:
        """Record the namespace the catalog reads now, and keep it watched."""
        old = self._reading.pop(key, None)
        if where is not None:
            self._reading[key] = where
            self.remote.want(*where, by=_BY)
        if old is not None and old != where and old not in self._reading.values():
            self.remote.unwant(*old, by=_BY)

    def _views(self, namespace: str, uid: str, spec: api.CatalogSpec) -> dict[str, ImportView]:
        """The imports of the catalog's namespace, as the catalog sees them."""
        views: dict[str, ImportView] = {}
        for (ns, name), body in list(self._imports.items()):
            if ns != namespace:
                continue
            metadata = body.get("metadata") or {}
            owner = _catalog_owner(metadata)
            remote = ((body.get("spec") or {}).get("source") or {}).get("remoteService") or {}
            same = (remote.get("cluster"), remote.get("namespace")) == (
                spec.cluster,
                spec.namespace,
            )
            views[name] = ImportView(
                name=name,
                ours=owner is not None and owner[1] == uid,
                remote=remote.get("name") if same else None,
                ready=_ready(body),
            )
        return views

    def _taken(self, namespace: str, names: list[str]) -> frozenset[str]:
        """Of these names, those a Service already holds: the catalog did not make it."""
        path = collection_path(group="", version="v1", plural="services", namespace=namespace)
        return frozenset(name for name in names if self.kube.get(f"{path}/{name}") is not None)

    def _write(self, body: JSON, spec: api.CatalogSpec, plan: catalog.CatalogPlan) -> None:
        metadata = body["metadata"]
        namespace = metadata["namespace"]
        path = collection_path(
            group=api.GROUP, version=api.VERSION, plural=api.IMPORT_PLURAL, namespace=namespace
        )
        for name, remote in plan.create:
            try:
                self.kube.create(path, _import(body, spec, name, remote))
            except Conflict:
                continue  # made meanwhile by someone: the next sync says whose it is
            metrics.WRITES.labels(api.IMPORT_KIND, "create").inc()
        for name, remote in plan.update:
            self.kube.patch(f"{path}/{name}", {"spec": _import(body, spec, name, remote)["spec"]})
            metrics.WRITES.labels(api.IMPORT_KIND, "patch").inc()
        for name in plan.delete:
            if self.kube.delete(f"{path}/{name}"):
                metrics.WRITES.labels(api.IMPORT_KIND, "delete").inc()

    async def _status(self, key: CatalogKey, body: JSON, plan: catalog.CatalogPlan) -> None:
        updated = await self.recorder.catalog_status(key, body, plan.status)
        if updated is not None and key in self.catalogs:
            self.catalogs[key] = updated


# A spec that reads nothing: the plan of an invalid catalog has no Services to read.
_BLANK = api.CatalogSpec(cluster="invalid", namespace="invalid")


def _catalog_owner(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the catalog that made an import; None if no catalog did."""
    for reference in metadata.get("ownerReferences") or []:
        if reference.get("kind") == api.CATALOG_KIND and reference.get("controller"):
            return str(reference.get("name")), str(reference.get("uid"))
    return None


def _ready(body: Mapping[str, Any]) -> bool:
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _import(body: JSON, spec: api.CatalogSpec, name: str, remote: str) -> JSON:
    """The import a catalog makes for one remote Service: owned by it, labelled with it."""
    metadata = body["metadata"]
    return {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.IMPORT_KIND,
        "metadata": {
            "name": name,
            "namespace": metadata["namespace"],
            "labels": {
                api.CATALOG_LABEL: metadata["name"],
                builders.MANAGED_BY_LABEL: builders.MANAGED_BY_VALUE,
            },
            "ownerReferences": [
                {
                    "apiVersion": f"{api.GROUP}/{api.VERSION}",
                    "kind": api.CATALOG_KIND,
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "source": {
                "remoteService": {
                    "cluster": spec.cluster,
                    "namespace": spec.namespace,
                    "name": remote,
                }
            }
        },
    }
