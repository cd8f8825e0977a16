"""The controller: build the parts, fill the caches, feed events in, start and stop syncing.

Events come in here and leave as keys on a queue. kopf delivers the SharedServiceImports
and RemoteClusters (through the manager, from ``handlers``). Own watches stay where kopf
cannot serve or would cost more:

- the remote Services (:mod:`shared_services.remote`): another API server's, opened and
  closed per remote namespace while the operator runs, with credentials from a Secret;
- the managed Services, EndpointSlices and Endpoints: the writer diffs against this cache,
  so it must take each write's echo at once; kopf delivers an event only after its batching
  window (0.1 s by default) and through a per-object worker, so a cache fed by kopf lags
  behind the writes and would make them again;
- the Nodes and ServiceCIDRs, kept reduced to what the address policy reads: each Node's
  heartbeat is an event, and through kopf each would cost a worker and its bookkeeping;
- the Secrets RemoteClusters name, one watch per Secret, so that no other Secret of the
  operator's namespace is ever read.

Every replica fills its caches at start-up; with leader election only the leader then
starts syncing, and a standby keeps its caches warm, so that taking over needs no list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from shared_services import api, builders, dns, memory, metrics, views
from shared_services.api import JSON, ImportKey
from shared_services.catalogs import CatalogReconciler
from shared_services.clusters import ClusterReconciler
from shared_services.destinations import Destinations
from shared_services.hostnames import Hostnames
from shared_services.imports import ImportStore
from shared_services.informer import Informer, InformerGroup
from shared_services.kube import AsyncKube, Kube
from shared_services.networks import LocalNetworks
from shared_services.reconciler import ImportReconciler
from shared_services.recorder import Recorder
from shared_services.records import Records
from shared_services.remote import RemoteEvent, RemoteRegistry, WatchChanged
from shared_services.settings import Settings
from shared_services.sources import Sources
from shared_services.writer import ENDPOINT_SLICE, MANAGED_KINDS, Kind

log = logging.getLogger(__name__)

# The one task of a started controller that ends by itself, once the first syncs are done.
_SETTLE = "settle"


class Controller:
    """Holds the caches and the parts; the manager starts it, the probes ask it."""

    def __init__(self, *, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube
        # Until started (a standby waiting for the lease), events only update the stores.
        self.active = False
        self.store = ImportStore(kube, namespaces=settings.namespaces, on_change=self._queue_one)
        self.imports = self.store.objects
        self.caches: dict[Kind, InformerGroup] = {}
        self.names: dict[Kind, InformerGroup] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()
        clusters: dict[str, JSON] = {}
        # The writes of syncs and of statuses and Events, sent from the loop.
        self.writes = AsyncKube(kube)
        self.recorder = Recorder(self.writes, imports=self.imports, clusters=clusters)
        self.remote = RemoteRegistry(
            loop=self._loop,
            kube=kube,
            secrets_namespace=settings.operator_namespace,
            on_service=self._remote_event,
            on_cluster=self._connection_changed,
            max_namespaces=settings.max_remote_namespaces,
            # Judged against the networks as they are when each connection is made.
            destinations=Destinations(
                policy=settings.address_policy, networks=lambda: self.networks.networks
            ),
        )
        self.clusters = ClusterReconciler(
            kube=kube,
            remote=self.remote,
            recorder=self.recorder,
            clusters=clusters,
            on_change=self._cluster_changed,
            instance=settings.instance,
            selector=settings.remote_cluster_selector,
        )
        self.catalogs = CatalogReconciler(
            kube=kube,
            remote=self.remote,
            recorder=self.recorder,
            imports=self.imports,
            clusters=clusters,
        )
        self.networks = LocalNetworks(
            on_change=self._queue_all, on_pod_addresses=self._queue_serving
        )
        resolver = dns.HostnameResolver(nameservers=settings.dns_servers or None)
        # One record per import: what the operator knows of it, and who reads what.
        self.records = Records()
        self.sources = Sources(
            remote=self.remote,
            hostnames=Hostnames(resolver, on_change=self._hostname_changed),
            records=self.records,
            clusters=clusters,
            address_policy=settings.address_policy,
        )
        self.reconciler = ImportReconciler(
            settings=settings,
            kube=self.writes,
            imports=self.imports,
            caches=self.caches,
            names=self.names,
            records=self.records,
            sources=self.sources,
            recorder=self.recorder,
            networks=self.networks,
        )
        self.queue = self.reconciler.queue
        metrics.TRACKED.source = self.tracked

    # -- start and stop ------------------------------------------------------------------

    async def fill(self) -> None:
        """Fill the local caches and learn every import and RemoteCluster; sync nothing.

        Every replica does this at start-up, a standby too. The imports are listed before
        any sync runs, so an object whose import exists is never mistaken for an orphan of
        a crash, and orphans really are cleaned up. A list that is refused (a missing
        permission) is retried until it succeeds; :meth:`unsynced` says meanwhile what is
        missing.
        """
        namespaces: tuple[str | None, ...] = self.settings.namespaces or (None,)
        for kind in MANAGED_KINDS:
            # One informer per kind suffices with a cluster-wide view; with listed namespaces
            # the operator has no cluster-wide permission, so it watches each one.
            self.caches[kind] = InformerGroup(
                {namespace: self._local_informer(kind, namespace) for namespace in namespaces}
            )
            self.names[kind] = InformerGroup(
                {namespace: self._names_informer(kind, namespace) for namespace in namespaces}
            )
        address_policy = self.settings.address_policy
        if not address_policy.allow_cluster_networks:
            # The Service range's dry run needs create on Services there: with listed
            # namespaces, the operator has it only in those.
            listed = self.settings.namespaces
            await self.networks.watch(
                self.kube,
                service_cidrs=address_policy.service_cidrs,
                probe_namespace=listed[0] if listed else self.settings.operator_namespace,
            )
        await asyncio.gather(self._synced(), self.clusters.fill(), self.store.fill())
        await asyncio.sleep(0)  # the informers' last callbacks, queued before synced was set
        # Every address is judged against the cluster's own networks, so they must be whole
        # before the first sync: a Node not yet seen would let an endpoint point at it.
        self.networks.rebuild()

    def _local_informer(self, kind: Kind, namespace: str | None) -> Informer:
        return Informer(
            self.kube,
            kind.collection(namespace),
            name=f"local {kind.plural} {namespace or '*'}",
            # Of what the selector sends, only what an import owns is kept, and of that only
            # the fields compared (see views); the names of all of it are kept.
            params={"labelSelector": builders.managed_selector()},
            on_event=lambda _t, obj: self._threadsafe(self._local_event, obj),
            index_label=builders.IMPORT_LABEL,
            transform=views.managed(kind.kind),
            keep_names=True,
        ).start()

    def _names_informer(self, kind: Kind, namespace: str | None) -> Informer:
        # The names of every other object of the kind, and nothing else of them: with the
        # cache's, the writer knows a new import's names are free without a request.
        return Informer(
            self.kube,
            kind.collection(namespace),
            name=f"names of other local {kind.plural} {namespace or '*'}",
            params={"labelSelector": builders.others_selector()},
            transform=lambda _obj: None,
            metadata_only=True,
            keep_names=True,
        ).start()

    def _threadsafe(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` on the event loop: the informers call from their own threads."""
        self._loop.call_soon_threadsafe(callback, *args)

    def _local_informers(self) -> list[Informer]:
        return [i for group in self.caches.values() for i in group.members.values()]

    def _names_informers(self) -> list[Informer]:
        return [i for group in list(self.names.values()) for i in list(group.members.values())]

    def _informers(self) -> list[Informer]:
        return [*self._local_informers(), *self._names_informers(), *self.networks.informers]

    async def _synced(self) -> None:
        # The informers' threads set these flags; looking at them from the loop, rather
        # than blocking a thread on each, because a list refused for good would hold that
        # thread forever.
        while not all(i.synced.is_set() for i in self._informers()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def unsynced(self) -> list[str]:
        """The local caches that are not filled, each with its last error: readiness waits.

        The remote clusters' watches are not among them: a central cluster that is down must
        not take the operator out of service, since its imports keep their last known
        addresses and say so.
        """
        if not self.caches:
            return ["local caches: not started"]
        # The Secrets' watches open once a leader applies the RemoteClusters that name
        # them; counted from then on, since a refused one leaves its cluster unconnected.
        waiting = [
            f"{i.name}: {i.error or 'listing'}"
            for i in (*self._informers(), *list(self.remote.secrets.informers.values()))
            if not i.synced.is_set()
        ]
        waiting += [w for w in (self.store.listing.waiting(), self.clusters.listing.waiting()) if w]
        return waiting

    async def start(self) -> None:
        """Start the workers and the resync: only the leader does, with its caches filled.

        Every import is queued once, and every object in the caches looked at, so that
        whatever changed while no one was leading is brought in line.
        """
        if not self.caches:
            await self.fill()
        self.networks.rebuild()  # what a standby saw of Nodes since it filled its caches
        memory.settle()  # the filled caches
        memory.hold_full_collections()  # until the start-up syncs are done
        self.active = self.networks.active = self.store.active = True
        self.clusters.start()
        self.catalogs.start()
        for informer in self._local_informers():
            for obj in list(informer.cache.values()):
                self._local_event(obj)
        self._queue_all()
        # As many workers again serve only moved VIPs: a move never waits for a worker
        # that is busy with another import's Endpoints, status or Event.
        self._tasks = [
            self._loop.create_task(self.reconciler.worker(), name=f"worker-{i}")
            for i in range(self.settings.workers)
        ] + [
            self._loop.create_task(self.reconciler.worker(moves_only=True), name=f"move-{i}")
            for i in range(self.settings.workers)
        ]
        self._tasks.append(self._loop.create_task(self._resync(), name="resync"))
        self._tasks.append(self._loop.create_task(self._settle_when_synced(), name=_SETTLE))

    async def stop(self) -> None:
        """Stop workers, timers and every watch; a standby's caches too."""
        self.active = self.networks.active = self.store.active = False
        for task in self._tasks:
            task.cancel()
        memory.resume_full_collections()  # a stop before start-up was synced
        self.clusters.stop()
        self.catalogs.stop()
        self.queue.close()
        self.networks.close()
        self.sources.hostnames.stop()
        self.remote.close()
        # Stopped before they were started (a stop during start-up): nothing to stop.
        running = [i for i in self._informers() if i.running]
        await asyncio.gather(*(asyncio.to_thread(i.stop) for i in running))
        await self.writes.close()

    async def _settle_when_synced(self) -> None:
        """Once the start-up syncs are done, take the heap out of full collections."""
        await self.queue.drained()
        memory.settle()

    async def _resync(self) -> None:
        """Sweep and queue every import, every period, for as long as the operator leads."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            try:
                await self.store.sweep()
            except Exception:  # the last resort: the resync must go on
                log.exception("the resync's sweep failed; every import is queued all the same")
            self._queue_all()

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks the operator cannot run without once started: liveness watches them.

        The sync workers, the resync and the RemoteClusters' status writers. None of them
        ends by itself; one that ended all the same leaves a process that does nothing.
        """
        return [
            *(t for t in self._tasks if t.get_name() != _SETTLE),
            *self.clusters.tasks(),
            *self.catalogs.tasks(),
        ]

    # -- events in -----------------------------------------------------------------------

    def import_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SharedServiceImport was listed, added, changed or deleted (from kopf)."""
        self.store.event(event_type, body)
        self.catalogs.import_changed(body)

    def catalog_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SharedServiceCatalog was listed, added, changed or deleted (from kopf)."""
        self.catalogs.event(event_type, body)

    def cluster_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A RemoteCluster was listed, added, changed or deleted."""
        self.clusters.event(event_type, body)

    def _local_event(self, obj: JSON) -> None:
        metadata = obj.get("metadata", {})
        # An object whose labels were stripped leaves the label-selected watch with a
        # DELETED event that lacks them; its owner reference still names the import.
        owner = (metadata.get("labels") or {}).get(builders.IMPORT_LABEL) or next(
            (
                r.get("name")
                for r in metadata.get("ownerReferences") or []
                if r.get("kind") == api.IMPORT_KIND and r.get("controller")
            ),
            None,
        )
        if owner:
            self.queue.add((str(metadata.get("namespace")), str(owner)))

    def _remote_event(self, event: RemoteEvent) -> None:
        for key in self.sources.readers(event):
            self.reconciler.queue_from_remote(key, event.received)
        self.catalogs.remote_event(event)
        if isinstance(event, WatchChanged):  # the watches gauge may differ
            self.sources.update_watch_metrics()

    def _cluster_changed(self, name: str) -> None:
        for key in self.records.readers_of_cluster(name):
            self.queue.add(key)
        self.catalogs.cluster_changed(name)
        self.sources.update_watch_metrics()

    def _hostname_changed(self, hostname: str) -> None:
        for key in self.records.readers_of_hostname(hostname):
            self.queue.add(key)

    def _connection_changed(self, name: str) -> None:
        self.clusters.connection_changed(name)

    def _queue_one(self, key: ImportKey) -> None:
        self.queue.add(key)

    def _queue_serving(self, addresses: frozenset[str]) -> None:
        """Queue the imports whose EndpointSlices hold one of ``addresses`` (a new Pod's)."""
        group = self.caches.get(ENDPOINT_SLICE)
        if group is None:
            return
        for informer in list(group.members.values()):
            for obj in list(informer.cache.values()):
                endpoints = obj.get("endpoints") or []
                if any(a in addresses for e in endpoints for a in e.get("addresses") or []):
                    self._local_event(obj)

    def _queue_all(self) -> None:
        for key in list(self.imports):
            self.queue.add(key)

    # -- what it holds -------------------------------------------------------------------

    def tracked(self) -> dict[str, int]:
        """How many entries each in-memory table holds (read from the metrics thread).

        ``list()`` of a dict's values is one step under the GIL, so the event loop changing
        a table meanwhile cannot break the count.
        """
        connections = list(self.remote.clusters.values())
        local = [i for group in list(self.caches.values()) for i in list(group.members.values())]
        return {
            "imports": len(self.imports),
            **self.clusters.tables(),
            **self.catalogs.tables(),
            **self.reconciler.tables(),
            "hostnames": len(self.sources.hostnames),
            "connections": len(connections),
            "remote_namespaces": sum(len(c.namespaces) + len(c.refused) for c in connections),
            "remote_watches": sum(len(c.informers) for c in connections),
            "remote_cached_services": sum(
                len(i.cache) for c in connections for i in list(c.informers.values())
            ),
            "secret_watches": len(self.remote.secrets.informers),
            "cached_secrets": sum(
                len(i.cache) for i in list(self.remote.secrets.informers.values())
            ),
            "local_cached_objects": sum(len(i.cache) for i in local),
            "local_names": sum(len(i.names or ()) for i in [*local, *self._names_informers()]),
        }
