"""The reconcile loop: events in, "import X needs a sync" out, one sync at a time per import.

Three parts, one direction. Watchers (kopf for the custom resources, informers for local
objects, remote Services and Secrets, a timer per hostname) only put keys on the queue. A
sync reads the caches, asks :mod:`shared_services.builders` for the desired objects, lets the
:class:`~shared_services.writer.Writer` apply the difference, and writes the status when, and
only when, it changed. A key that is queued again while it syncs is synced once more
afterwards, never twice at once, so no two writers race over one import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared_services import api, builders, conditions, dns, metrics, policy
from shared_services.informer import Informer, InformerGroup, slim
from shared_services.kube import JSON, Conflict, Kube, KubeError, NotFound, collection_path
from shared_services.remote import ClusterSpec, RemoteRegistry
from shared_services.settings import Settings
from shared_services.writer import (
    ENDPOINT_SLICE,
    ENDPOINTS,
    MANAGED_KINDS,
    SERVICE,
    Kind,
    Outcome,
    Writer,
)

log = logging.getLogger(__name__)

ImportKey = tuple[str, str]
# A condition's status, reason and message.
Triple = tuple[conditions.Status, str, str]
# A conflicting object is not ours to watch, so its removal is noticed by retrying: soon
# at first, then more and more rarely.
_CONFLICT_RETRY_START = 5.0
_CONFLICT_RETRY_MAX = 300.0
_ERROR_RETRY_MAX = 300.0
_PENDING = frozenset({"Connecting", "Resolving"})
# Enough of the API server's reason for a refused write (a quota's or a policy's message).
_MAX_REFUSAL = 400
_NODES = collection_path(group="", version="v1", plural="nodes", namespace=None)
_SERVICE_CIDRS = collection_path(
    group="networking.k8s.io", version="v1", plural="servicecidrs", namespace=None
)
_NETWORKS_SETTLE = 0.5
# What kube-proxy reads, and so what moves an application's traffic: written first on a move.
DATA_PATH: Final = (SERVICE, ENDPOINT_SLICE)
# How long a moved import's Endpoints, status and Event wait, so that kube-proxy programs the
# new VIP without those writes and their watch events competing for the cores.
_SETTLE = 0.2
# A refused list of RemoteClusters at start-up (a missing permission) is tried again.
_LIST_RETRY_START = 0.5
_LIST_RETRY_MAX = 30.0


class WorkQueue:
    """Keys to sync, each at most once in the queue and at most once in flight."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[ImportKey] = asyncio.Queue()
        self._queued: set[ImportKey] = set()
        self._active: set[ImportKey] = set()
        self._dirty: set[ImportKey] = set()
        self._timers: dict[ImportKey, asyncio.TimerHandle] = {}

    def add(self, key: ImportKey) -> None:
        """Ask for a sync of ``key``; repeated asks before it runs collapse into one."""
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: ImportKey, delay: float) -> None:
        """Ask for a sync of ``key`` in ``delay`` seconds.

        One timer per key, the earliest asked for: retries asked for by several syncs of the
        same import do not pile up into parallel chains.
        """
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= loop.time() + delay:
                return
            timer.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: ImportKey) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> ImportKey:
        """The next key; the caller must call :meth:`done` with it."""
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: ImportKey) -> None:
        """The sync of ``key`` finished; run it again if it was asked for meanwhile."""
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)


@dataclass(frozen=True)
class Source:
    """What an import's source resolved to.

    ``addresses`` and ``ports`` are None when the truth is not known right now (cluster
    unreachable, DNS not answering): the last known addresses are then kept.
    """

    ok: bool
    reason: str
    message: str
    addresses: tuple[str, ...] | None = None
    ports: tuple[builders.ResolvedPort, ...] | None = None


@dataclass
class Dependencies:
    """What an import's sync read, so that a change of any of it queues the import."""

    cluster: str | None = None
    remote: tuple[str, str, str] | None = None  # cluster, namespace, name
    hostnames: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClusterReport:
    """What a RemoteCluster's status should say."""

    connected: bool
    reason: str
    message: str
    version: str | None = None
    connected_at: str | None = None


@dataclass
class _Hostname:
    resolution: dns.Resolution | None = None
    task: asyncio.Task[None] | None = None
    users: set[ImportKey] = field(default_factory=set)


class Controller:
    """Holds the caches and runs the workers; kopf's handlers feed it events."""

    def __init__(self, *, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube
        self.queue = WorkQueue()
        # Until started (a standby waiting for the lease), events only update the stores.
        self.active = False
        self.imports: dict[ImportKey, JSON] = {}
        self.clusters: dict[str, JSON] = {}
        self.ready: dict[ImportKey, tuple[str, str]] = {}
        self._deps: dict[ImportKey, Dependencies] = {}
        self._by_remote: dict[tuple[str, str, str], set[ImportKey]] = {}
        self._hostnames: dict[str, _Hostname] = {}
        self._pending_since: dict[ImportKey, float] = {}
        # Imports whose slices just moved: until when their Endpoints, status and Event wait.
        self._settling: dict[ImportKey, float] = {}
        self._errors: dict[ImportKey, int] = {}
        self._conflicts: dict[ImportKey, int] = {}
        self._watched_clusters: set[str] = set()
        self._cluster_reports: dict[str, ClusterReport] = {}
        self._cluster_writers: dict[str, asyncio.Task[None]] = {}
        self._clusters_listed = False
        self._clusters_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()
        self.resolver = dns.HostnameResolver(nameservers=settings.dns_servers or None)
        self.caches: dict[Kind, InformerGroup] = {}
        self._import_informers: list[Informer] = []
        self._network_informers: list[Informer] = []
        # The local cluster's own ranges and addresses, one entry per Node and ServiceCIDR,
        # so that a Node's heartbeat is compared in microseconds and changes nothing.
        self._node_networks: dict[str, policy.NodeNetworks] = {}
        self._service_cidrs: dict[str, policy.ServiceCIDRNetworks] = {}
        self.networks = policy.ClusterNetworks()
        self.service_families: frozenset[str] | None = None
        self._networks_timer: asyncio.TimerHandle | None = None
        self.remote = RemoteRegistry(
            loop=self._loop,
            kube=kube,
            secrets_namespace=settings.operator_namespace,
            on_service=self._remote_event,
            on_cluster=self._cluster_changed,
        )
        self.writer = Writer(kube, self.caches)
        metrics.TRACKED.source = self.tracked

    def tracked(self) -> dict[str, int]:
        """How many entries each in-memory table holds (read from the metrics thread).

        ``list()`` of a dict's values is one step under the GIL, so the event loop changing
        a table meanwhile cannot break the count.
        """
        connections = list(self.remote.clusters.values())
        local = [i for group in list(self.caches.values()) for i in group.members.values()]
        return {
            "imports": len(self.imports),
            "remote_clusters": len(self.clusters),
            "ready_states": len(self.ready),
            "dependencies": len(self._deps),
            "remote_service_index": len(self._by_remote),
            "hostnames": len(self._hostnames),
            "pending_propagations": len(self._pending_since),
            "settling": len(self._settling),
            "error_backoffs": len(self._errors),
            "conflict_backoffs": len(self._conflicts),
            "queue": len(self.queue),
            "cluster_reports": len(self._cluster_reports) + len(self._cluster_writers),
            "connections": len(connections),
            "remote_users": sum(len(u) for c in connections for u in list(c.users.values())),
            "remote_watches": sum(len(c.informers) for c in connections),
            "remote_cached_services": sum(
                len(i.cache) for c in connections for i in list(c.informers.values())
            ),
            "secret_watches": len(self.remote.secrets.informers),
            "cached_secrets": sum(
                len(i.cache) for i in list(self.remote.secrets.informers.values())
            ),
            "local_cached_objects": sum(len(i.cache) for i in local),
        }

    # -- start and stop ------------------------------------------------------------------

    async def fill(self) -> None:
        """Fill the local caches and learn every import and RemoteCluster; sync nothing.

        Every replica does this at start-up, a standby too, so that taking over needs no
        list. The imports are listed before any sync runs, so an object whose import exists
        is never mistaken for an orphan of a crash, and orphans really are cleaned up. A
        list that is refused (a missing permission) is retried until it succeeds;
        :meth:`unsynced` says meanwhile what is missing.
        """
        namespaces: tuple[str | None, ...] = self.settings.namespaces or (None,)
        for kind in MANAGED_KINDS:
            # One informer per kind suffices with a cluster-wide view; with listed namespaces
            # the operator has no cluster-wide permission, so it watches each one.
            self.caches[kind] = InformerGroup(
                {
                    namespace: Informer(
                        self.kube,
                        kind.collection(namespace),
                        name=f"local {kind.plural} {namespace or '*'}",
                        params={"labelSelector": builders.managed_selector()},
                        on_event=lambda _t, obj: self._threadsafe(self._local_event, obj),
                        index_label=builders.IMPORT_LABEL,
                    ).start()
                    for namespace in namespaces
                }
            )
        # Imports come through an informer too, not through kopf: kopf gives every object
        # a worker and processes every event, including the echo of each status write,
        # which at 10,000 imports was a quarter of the operator's CPU for nothing.
        for namespace in namespaces:
            self._import_informers.append(
                Informer(
                    self.kube,
                    collection_path(
                        group=api.GROUP,
                        version=api.VERSION,
                        plural=api.IMPORT_PLURAL,
                        namespace=namespace,
                    ),
                    name=f"imports {namespace or '*'}",
                    on_event=lambda t, obj: self._threadsafe(self.import_event, t, obj),
                ).start()
            )
        if not self.settings.address_policy.allow_cluster_networks:
            self._network_informers = [
                self._network_informer("nodes", _NODES),
                self._network_informer("servicecidrs", _SERVICE_CIDRS),
            ]
        await asyncio.gather(self._synced(), self._list_clusters())
        await asyncio.sleep(0)  # the informers' last callbacks, queued before synced was set
        # Every address is judged against the cluster's own networks, so they must be whole
        # before the first sync: a Node not yet seen would let an endpoint point at it.
        self._rebuild_networks()

    async def _synced(self) -> None:
        # The informers' threads set these flags; looking at them from the loop, rather
        # than blocking a thread on each, because a list refused for good would hold that
        # thread forever.
        informers = [*self._local_informers(), *self._import_informers, *self._network_informers]
        while not all(i.synced.is_set() for i in informers):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _list_clusters(self) -> None:
        path = collection_path(
            group=api.GROUP, version=api.VERSION, plural=api.REMOTE_CLUSTER_PLURAL, namespace=None
        )
        backoff = _LIST_RETRY_START
        while True:
            try:
                items = await asyncio.to_thread(_list_all, self.kube, path)
            except KubeError as error:
                if str(error) != self._clusters_error:
                    log.warning("listing RemoteClusters: %s", error)
                self._clusters_error = str(error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _LIST_RETRY_MAX)
                continue
            break
        for item in items:
            self.clusters[item["metadata"]["name"]] = item
        self._clusters_error = None
        self._clusters_listed = True

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
            for i in (
                *self._local_informers(),
                *self._import_informers,
                *self._network_informers,
                *list(self.remote.secrets.informers.values()),
            )
            if not i.synced.is_set()
        ]
        if not self._clusters_listed:
            waiting.append(f"remoteclusters: {self._clusters_error or 'listing'}")
        return waiting

    async def start(self) -> None:
        """Start the workers and the resync: only the leader does, with its caches filled.

        Every import is queued once, and every object in the caches looked at, so that
        whatever changed while no one was leading is brought in line.
        """
        if not self.caches:
            await self.fill()
        self._rebuild_networks()  # what a standby saw of Nodes since it filled its caches
        self.active = True
        for name, body in list(self.clusters.items()):
            self._apply_cluster(name, body)
        for informer in self._local_informers():
            for obj in list(informer.cache.values()):
                self._local_event(obj)
        for key in self.imports:
            self.queue.add(key)
        self._tasks = [
            self._loop.create_task(self._worker(), name=f"worker-{i}")
            for i in range(self.settings.workers)
        ]
        self._tasks.append(self._loop.create_task(self._resync(), name="resync"))

    def _network_informer(self, what: str, path: str) -> Informer:
        def on_event(event_type: str, obj: JSON) -> None:
            self._threadsafe(self._network_event, what, event_type, obj)

        return Informer(
            self.kube, path, name=f"local {what}", on_event=on_event, transform=_network_fields
        ).start()

    def _local_informers(self) -> list[Informer]:
        return [i for group in self.caches.values() for i in group.members.values()]

    async def stop(self) -> None:
        """Stop workers, timers and every watch; a standby's caches too."""
        self.active = False
        for task in self._tasks:
            task.cancel()
        for entry in self._hostnames.values():
            if entry.task:
                entry.task.cancel()
        self.remote.close()
        informers = [*self._local_informers(), *self._import_informers, *self._network_informers]
        # Stopped before they were started (a stop during start-up): nothing to stop.
        running = [i for i in informers if i.running]
        await asyncio.gather(*(asyncio.to_thread(i.stop) for i in running))

    # -- events in -----------------------------------------------------------------------

    def import_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SharedServiceImport was listed, added, changed or deleted."""
        metadata = body.get("metadata", {})
        key = (str(metadata.get("namespace")), str(metadata.get("name")))
        if self.settings.namespaces and key[0] not in self.settings.namespaces:
            return
        if event_type == "DELETED":
            self.imports.pop(key, None)
            if self.active:
                self.queue.add(key)
            return
        old = self.imports.get(key)
        new = self.imports[key] = body if isinstance(body, dict) else _plain(body)
        # The echo of a status write (ours, or anyone's) changes nothing the sync reads:
        # only a new generation (a spec change), a new object under the same name or a
        # deletion is worth a sync.
        if self.active and (old is None or _generation(old) != _generation(new)):
            self.queue.add(key)

    def cluster_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A RemoteCluster was listed, added, changed or deleted."""
        name = str(body.get("metadata", {}).get("name"))
        if event_type == "DELETED":
            self.clusters.pop(name, None)
            if self.active:
                self.remote.remove(name)
            return
        self.clusters[name] = _plain(body)
        if self.active:
            self._apply_cluster(name, body)

    def _apply_cluster(self, name: str, body: Mapping[str, Any]) -> None:
        try:
            spec = api.parse_remote_cluster_spec(body.get("spec") or {})
        except api.InvalidSpecError as error:
            self.remote.remove(name)
            self._report_cluster(name, ClusterReport(False, "InvalidSpec", str(error)))
            return
        self.remote.upsert(
            name,
            ClusterSpec(
                secret_name=spec.kubeconfig_secret_ref.name,
                secret_key=spec.kubeconfig_secret_ref.key,
                context=spec.context or None,
                allowed_namespaces=frozenset(spec.allowed_namespaces or ()),
                allowed_remote_namespaces=frozenset(spec.allowed_remote_namespaces or ()),
            ),
        )
        self._cluster_changed(name)

    def _threadsafe(self, callback: Any, *args: Any) -> None:
        self._loop.call_soon_threadsafe(callback, *args)

    def _network_event(self, what: str, event_type: str, obj: JSON) -> None:
        """A Node or ServiceCIDR changed: rebuild the cluster's networks if what counts did."""
        name = str(obj.get("metadata", {}).get("name"))
        table: dict[str, Any] = self._node_networks if what == "nodes" else self._service_cidrs
        entry = None
        if event_type != "DELETED":
            entry = (
                policy.node_networks(obj) if what == "nodes" else policy.service_cidr_networks(obj)
            )
        if table.get(name) == entry:
            return  # a heartbeat, a label: nothing the policy reads
        if entry is None:
            table.pop(name, None)
        else:
            table[name] = entry
        if self.active and self._networks_timer is None:
            # Nodes come in bursts (a scale-up); one rebuild and one requeue for the burst.
            self._networks_timer = self._loop.call_later(_NETWORKS_SETTLE, self._rebuild_networks)

    def _rebuild_networks(self) -> None:
        self._networks_timer = None
        networks = policy.ClusterNetworks.of(
            service_cidrs=self._service_cidrs.values(), nodes=self._node_networks.values()
        )
        if networks == self.networks:
            return
        self.networks = networks
        # The families the cluster gives Services, from its ServiceCIDRs; None when it has
        # none to read (older clusters, or the cluster rule turned off), and then a
        # Service takes the families of its addresses, as the API server allows.
        families = {
            builders.IPV4 if n.version == 4 else builders.IPV6
            for s in networks.service_cidrs
            for n in s.cidrs
        }
        self.service_families = frozenset(families) or None
        if self.active:
            # An address allowed until now may be a new Node's, and the other way round.
            for key in self.imports:
                self.queue.add(key)

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

    def _remote_event(self, cluster: str, namespace: str, name: str, received: float) -> None:
        if name:
            keys = self._by_remote.get((cluster, namespace, name), set())
        else:  # the watch of the whole namespace changed state
            keys = {
                key
                for (c, ns, _), users in self._by_remote.items()
                if (c, ns) == (cluster, namespace)
                for key in users
            }
        for key in keys:
            self._pending_since.setdefault(key, received)
            self.queue.add(key)
        if not name:
            self._update_watch_metrics()

    def _cluster_changed(self, name: str) -> None:
        connection = self.remote.clusters.get(name)
        if connection is not None and connection.state != "Pending":
            metrics.REMOTE_CONNECTED.labels(name).set(1 if connection.state == "Connected" else 0)
            self._report_cluster(
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
            self._cluster_reports.pop(name, None)
            metrics.forget_cluster(name)
        for key, deps in self._deps.items():
            if deps.cluster == name:
                self.queue.add(key)
        self._update_watch_metrics()

    def _update_watch_metrics(self) -> None:
        counts = self.remote.watch_counts()
        for gone in self._watched_clusters - counts.keys():
            # A deleted RemoteCluster's series end, rather than freeze at their last value.
            metrics.REMOTE_WATCHES.remove(gone, "up")
            metrics.REMOTE_WATCHES.remove(gone, "down")
        self._watched_clusters = set(counts)
        for cluster, (up, down) in counts.items():
            metrics.REMOTE_WATCHES.labels(cluster, "up").set(up)
            metrics.REMOTE_WATCHES.labels(cluster, "down").set(down)

    # -- workers -------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.sync(key)
            except KubeError as error:
                if _namespace_terminating(error):
                    # Its imports are about to be deleted, and their objects with them.
                    log.debug("%s/%s: namespace is being deleted", *key)
                else:
                    self._retry(key, error)
            except Exception as error:  # one import's failure must not stop the others
                self._retry(key, error)
            else:
                self._errors.pop(key, None)
            finally:
                self.queue.done(key)

    def _retry(self, key: ImportKey, error: Exception) -> None:
        failures = self._errors.get(key, 0) + 1
        self._errors[key] = failures
        delay = min(2.0**failures, _ERROR_RETRY_MAX)
        metrics.SYNCS.labels("error").inc()
        metrics.SYNC_ERRORS.inc()
        if isinstance(error, KubeError):
            log.warning("sync of %s/%s failed, retrying in %.0f s: %s", *key, delay, error)
        else:
            log.exception("sync of %s/%s failed, retrying in %.0f s", *key, delay)
        self.queue.add_after(key, delay)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for key in list(self.imports):
                self.queue.add(key)

    # -- the sync ------------------------------------------------------------------------

    async def sync(self, key: ImportKey) -> None:
        """Bring one import's local objects and status in line with its source."""
        namespace, name = key
        body = self.imports.get(key)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            self._forget(key)
            outcome = await asyncio.to_thread(
                self.writer.remove, owner=builders.Owner(namespace, name, "")
            )
            _count_writes(outcome)
            return
        metadata = body["metadata"]
        owner = builders.Owner(namespace, name, str(metadata.get("uid")))
        generation = metadata.get("generation")
        old_status: dict[str, Any] = body.get("status") or {}
        try:
            spec = api.parse_import_spec(body.get("spec") or {}, import_name=name)
        except api.InvalidSpecError as error:
            # Nothing is removed: a spec that an older CRD let through must not take away
            # endpoints that applications use. The condition says what to fix.
            self._forget(key)
            message = str(error)
            status = self._import_status(
                old_status,
                generation=generation,
                ready=("False", "InvalidSpec", message),
                source=("False", "InvalidSpec", message),
                addresses=old_status.get("addresses") or [],
                ports=old_status.get("ports") or [],
            )
            await self._write_import_status(key, body, status)
            return

        source = await self._resolve(key, namespace, spec)
        if source.reason in _PENDING and (body.get("status") or {}).get("conditions"):
            # A watch still listing or a first DNS answer still coming: the import is queued
            # again when it arrives. Writing "pending" meanwhile would be churn on every
            # restart; a new import (no status yet) does show that it is pending.
            return
        service_name = spec.effective_service_name(name)
        addresses = (
            source.addresses
            if source.addresses is not None
            else self._last_known(owner, service_name, old_status)
        )
        # Whatever the source, and the last known addresses too: a refused address is
        # never written, and the allowed rest of an answer still is.
        verdict = policy.judge(
            addresses, policy=self.settings.address_policy, networks=self.networks
        )
        addresses = verdict.allowed
        ports = (
            _spec_ports(spec)
            or source.ports
            or _status_ports(old_status)
            or self._serving_ports(owner, service_name)
        )
        if not ports:
            status = self._import_status(
                old_status,
                generation=generation,
                ready=("False", source.reason if not source.ok else "NoPorts", source.message),
                source=_source_condition(source),
                addresses=[],
                ports=[],
            )
            await self._write_import_status(key, body, status)
            return
        try:
            desired = builders.build(
                owner=owner,
                service_name=service_name,
                ports=ports,
                addresses=addresses,
                families=self.service_families,
            )
        except ValueError as error:
            reason = getattr(error, "reason", "InvalidSpec")
            await self._unwritten(key, body, source=source, ready=("False", reason, str(error)))
            return
        applied = await self._write_objects(
            key, body, owner=owner, service_name=service_name, desired=desired, source=source
        )
        if applied is None:
            return  # the slice moved: the rest follows once kube-proxy has had its turn
        written = _desired_addresses(desired)
        if applied.conflicts:
            ready = await self._conflicted(key, body, applied)
            written = [str(a) for a in old_status.get("addresses") or []]
        else:
            self._conflicts.pop(key, None)
            metrics.SYNCS.labels("ok").inc()
            if verdict.refused:
                ready = await self._refused(key, body, verdict, written)
            else:
                ready = _ready(source, written, service_name)
        await self._write_outcome(
            key,
            body,
            ready=ready,
            source=source,
            written=written,
            ports=ports,
            conflicted=bool(applied.conflicts),
        )

    async def _write_outcome(
        self,
        key: ImportKey,
        body: JSON,
        *,
        ready: Triple,
        source: Source,
        written: list[str],
        ports: tuple[builders.ResolvedPort, ...],
        conflicted: bool,
    ) -> None:
        """Write the status of a sync that applied its objects; an Event if addresses moved."""
        old_status: dict[str, Any] = body.get("status") or {}
        status = self._import_status(
            old_status,
            generation=body["metadata"].get("generation"),
            ready=ready,
            source=_source_condition(source),
            addresses=written,
            ports=[_port_status(p) for p in ports],
        )
        old_addresses = list(old_status.get("addresses") or [])
        if written != old_addresses and not conflicted:
            metrics.ADDRESS_CHANGES.inc()
        if written != old_addresses and old_addresses and not conflicted:
            # First addresses are the import's creation, not a change worth an Event each
            # (10,000 imports would start with 10,000 Events); every later change has one.
            await self._event(
                body,
                "Normal",
                "AddressesChanged",
                f"{', '.join(old_addresses) or '(none)'} -> {', '.join(written) or '(none)'}",
            )
        await self._write_import_status(key, body, status)

    def _last_known(
        self, owner: builders.Owner, service_name: str, status: Mapping[str, Any]
    ) -> tuple[str, ...]:
        """The addresses to keep while the source cannot be known.

        What is serving comes first: the import's EndpointSlices as the cache holds them.
        The status says what was last reported, which lags behind the slices when a status
        write failed (and then the operator restarted): trusting it then would empty slices
        that applications are using. Only with no slice at all (deleted by hand while the
        source is unknown) is the status used, to put them back.
        """
        serving = [
            address
            for obj in self.caches[ENDPOINT_SLICE].indexed(owner.namespace, owner.name)
            if (obj["metadata"].get("labels") or {}).get(builders.SERVICE_NAME_LABEL)
            == service_name
            for endpoint in obj.get("endpoints") or []
            for address in endpoint.get("addresses") or []
        ]
        if serving:
            return tuple(str(a) for a in serving)
        return tuple(str(a) for a in status.get("addresses") or ())

    def _serving_ports(
        self, owner: builders.Owner, service_name: str
    ) -> tuple[builders.ResolvedPort, ...]:
        """The ports of the import's Service as it is serving, when nothing else says."""
        service = self.caches[SERVICE].get(f"{owner.namespace}/{service_name}")
        if service is None or not builders.owned_by(service, (owner.namespace, owner.name)):
            return ()
        return _status_ports({"ports": (service.get("spec") or {}).get("ports") or []})

    async def _unwritten(
        self, key: ImportKey, body: JSON, *, source: Source, ready: Triple
    ) -> None:
        """Say on the import why its objects were not written; what is in place stays.

        Used for objects the API server would refuse (a change of the source queues the
        import again) and for writes it did refuse (retried with backoff), as for an
        invalid spec: endpoints that applications use are never taken away for this.
        """
        old_status: dict[str, Any] = body.get("status") or {}
        status = self._import_status(
            old_status,
            generation=body["metadata"].get("generation"),
            ready=ready,
            source=_source_condition(source),
            addresses=list(old_status.get("addresses") or []),
            ports=list(old_status.get("ports") or []),
        )
        await self._write_import_status(key, body, status)

    async def _write_objects(
        self,
        key: ImportKey,
        body: JSON,
        *,
        owner: builders.Owner,
        service_name: str,
        desired: builders.Desired,
        source: Source,
    ) -> Outcome | None:
        """Write the import's objects; None when the rest waits behind a moved slice.

        A move of a serving slice is what applications wait for, and kube-proxy programs it
        on the same two cores that the Endpoints, status and Event writes (and their watch
        events) would take at that moment. So on a move the Service and slices go alone, and
        a sync ``_SETTLE`` later writes the rest; syncs meanwhile keep the slices current.
        """
        settling = self._settling_until(key)
        moving = settling is None and self._moves(owner, service_name, desired)
        kinds = DATA_PATH if settling is not None or moving else MANAGED_KINDS
        outcome = await self._apply(
            key, body, owner=owner, desired=desired, source=source, kinds=kinds
        )
        received = self._pending_since.pop(key, None)
        if received is not None and outcome.endpoints_written:
            metrics.PROPAGATION.observe(self._loop.time() - received)
        if kinds is MANAGED_KINDS or outcome.conflicts:
            return outcome
        if moving and outcome.endpoints_written:
            self._settling[key] = self._loop.time() + _SETTLE
            self.queue.add_after(key, _SETTLE)
            return None
        if settling is not None:
            return None
        rest = await self._apply(
            key, body, owner=owner, desired=desired, source=source, kinds=(ENDPOINTS,)
        )
        outcome.writes.extend(rest.writes)
        return outcome

    def _settling_until(self, key: ImportKey) -> float | None:
        """When the held writes of an import whose slice moved are due; None if none are.

        A sync before then (its own slice's event, a further move) finds the hold still on,
        and asks again for a sync when it ends, in case the timer fired a hair early.
        """
        until = self._settling.get(key)
        if until is None:
            return None
        left = until - self._loop.time()
        if left <= 0:
            del self._settling[key]
            return None
        self.queue.add_after(key, left)
        return until

    def _moves(self, owner: builders.Owner, service_name: str, desired: builders.Desired) -> bool:
        """Whether this sync moves a slice that is serving to other addresses."""
        serving = set(self._last_known(owner, service_name, {}))
        return bool(serving) and serving != set(_desired_addresses(desired))

    async def _apply(
        self,
        key: ImportKey,
        body: JSON,
        *,
        owner: builders.Owner,
        desired: builders.Desired,
        source: Source,
        kinds: tuple[Kind, ...] = MANAGED_KINDS,
    ) -> Outcome:
        """Write the desired objects; a refusal the builders did not foresee is reported."""
        try:
            outcome = await asyncio.to_thread(
                self.writer.apply, owner=owner, desired=desired, kinds=kinds
            )
        except KubeError as error:
            refused = not error.temporary and not isinstance(error, Conflict | NotFound)
            if refused and not _namespace_terminating(error):
                await self._rejected(key, body, source=source, error=error)
            raise  # retried with backoff either way: a quota or a policy may change
        _count_writes(outcome)
        return outcome

    async def _rejected(
        self, key: ImportKey, body: JSON, *, source: Source, error: KubeError
    ) -> None:
        """Say why the API server refused a write the builders allowed.

        A ResourceQuota, an admission policy or a webhook can refuse what is otherwise a
        valid object; without this the import would only say so in the operator's log.
        """
        said = error.message if error.message.isprintable() else repr(error.message)
        if len(said) > _MAX_REFUSAL:
            said = f"{said[:_MAX_REFUSAL]}..."
        message = f"the API server refused a write ({error.status} {error.reason}): {said}"
        await self._unwritten(key, body, source=source, ready=("False", "WriteRejected", message))

    async def _conflicted(self, key: ImportKey, body: JSON, outcome: Outcome) -> Triple:
        """Report a conflict once (an Event on the transition) and retry with backoff."""
        message = "; ".join(outcome.conflicts)
        if self.ready.get(key, ("", ""))[1] != "Conflict":
            await self._event(body, "Warning", "Conflict", message)
        conflicts = self._conflicts.get(key, 0) + 1
        self._conflicts[key] = conflicts
        self.queue.add_after(
            key, min(_CONFLICT_RETRY_START * 2 ** (conflicts - 1), _CONFLICT_RETRY_MAX)
        )
        metrics.SYNCS.labels("conflict").inc()
        return ("False", "Conflict", message)

    async def _refused(
        self, key: ImportKey, body: JSON, verdict: policy.Verdict, written: list[str]
    ) -> Triple:
        """Say which addresses the policy refused; a Warning Event when it starts."""
        serving = f"serving {', '.join(written)}" if written else "nothing is served"
        message = f"{verdict.message()}; {serving}"
        if self.ready.get(key, ("", ""))[1] != policy.ADDRESS_NOT_ALLOWED:
            await self._event(body, "Warning", policy.ADDRESS_NOT_ALLOWED, message)
        return ("False", policy.ADDRESS_NOT_ALLOWED, message)

    async def _resolve(self, key: ImportKey, namespace: str, spec: api.ImportSpec) -> Source:
        deps = Dependencies()
        try:
            source = spec.source
            refusal = policy.static_source_refusal(
                source.kind, namespace, policy=self.settings.address_policy
            )
            if refusal is not None:
                # Known for certain, so the endpoints are emptied: they pointed where the
                # tenant said, which the platform team has now ruled out.
                return Source(False, policy.SOURCE_NOT_ALLOWED, refusal, addresses=())
            if source.addresses is not None:
                addresses = tuple(builders.canonical_address(a) for a in source.addresses)
                return Source(True, "Resolved", "fixed addresses", addresses=addresses)
            if source.hostname is not None:
                deps.hostnames = frozenset({source.hostname})
                return self._from_hostname(key, source.hostname)
            remote = source.remote_service
            assert remote is not None
            deps.cluster = remote.cluster
            return self._from_remote(key, namespace, remote, deps)
        finally:
            self._set_deps(key, deps)

    def _from_remote(
        self, key: ImportKey, namespace: str, remote: api.RemoteServiceRef, deps: Dependencies
    ) -> Source:
        cluster = self.clusters.get(remote.cluster)
        if cluster is None:
            return Source(
                False,
                "RemoteClusterNotFound",
                f"RemoteCluster {remote.cluster!r} does not exist",
            )
        connection = self.remote.clusters.get(remote.cluster)
        if connection is None:
            return Source(
                False, "InvalidRemoteCluster", f"RemoteCluster {remote.cluster!r} is invalid"
            )
        allowed = connection.spec.allowed_namespaces
        if allowed and namespace not in allowed:
            return Source(
                False,
                "NamespaceDenied",
                f"RemoteCluster {remote.cluster!r} does not allow imports from namespace "
                f"{namespace!r} (spec.allowedNamespaces)",
                addresses=(),
            )
        allowed_remote = connection.spec.allowed_remote_namespaces
        if allowed_remote and remote.namespace not in allowed_remote:
            return Source(
                False,
                "RemoteNamespaceDenied",
                f"RemoteCluster {remote.cluster!r} does not allow importing from remote "
                f"namespace {remote.namespace!r} (spec.allowedRemoteNamespaces)",
                addresses=(),
            )
        deps.remote = (remote.cluster, remote.namespace, remote.name)
        self.remote.use(key, remote.cluster, remote.namespace)
        self._update_watch_metrics()
        lookup = self.remote.lookup(remote.cluster, remote.namespace, remote.name)
        if not lookup.known:
            return Source(False, lookup.reason, lookup.message)
        where = f"Service {remote.namespace}/{remote.name} on {remote.cluster}"
        if lookup.service is None:
            return Source(False, lookup.reason, lookup.message, addresses=())
        service = lookup.service
        ports = builders.ports_from_service(service)
        if (service.get("spec") or {}).get("type") != "LoadBalancer":
            return Source(
                False,
                "NotLoadBalancer",
                f"{where} is of type {(service.get('spec') or {}).get('type')!r}, "
                "not LoadBalancer: it has no address reachable from here",
                addresses=(),
                ports=ports,
            )
        return self._from_ingress(key, service, where=where, ports=ports, deps=deps)

    def _from_ingress(
        self,
        key: ImportKey,
        service: JSON,
        *,
        where: str,
        ports: tuple[builders.ResolvedPort, ...],
        deps: Dependencies,
    ) -> Source:
        """Addresses from a LoadBalancer's ingress: its IPs, and its hostnames resolved."""
        ingress = builders.ingress_addresses(service)
        addresses = list(ingress.ips)
        problems = [f"ignored ingress {r}" for r in ingress.rejected]
        unknown = False
        for hostname in ingress.hostnames:
            deps.hostnames = deps.hostnames | {hostname}
            resolved = self._from_hostname(key, hostname)
            if resolved.addresses is None:
                unknown = True
            else:
                addresses.extend(resolved.addresses)
            if not resolved.ok:
                problems.append(resolved.message)
        if not addresses:
            if unknown:
                return Source(False, "HostnameUnresolved", "; ".join(problems), ports=ports)
            reason = "IngressInvalid" if ingress.rejected else "NoIngress"
            message = "; ".join(problems) or f"{where} has no load-balancer ingress address yet"
            return Source(False, reason, message, addresses=(), ports=ports)
        message = f"{where}: {', '.join(addresses)}"
        if problems:
            message += f" ({'; '.join(problems)})"
        return Source(True, "Resolved", message, addresses=tuple(addresses), ports=ports)

    def _from_hostname(self, key: ImportKey, hostname: str) -> Source:
        entry = self._hostnames.get(hostname)
        if entry is None:
            entry = self._hostnames[hostname] = _Hostname()
            entry.task = self._loop.create_task(self._keep_resolving(hostname, entry))
        entry.users.add(key)
        resolution = entry.resolution
        if resolution is None:
            return Source(False, "Resolving", f"resolving {hostname}")
        if resolution.error is not None:
            return Source(False, "HostnameUnresolved", resolution.error)
        return Source(
            True,
            "Resolved",
            f"{hostname}: {', '.join(resolution.addresses)}",
            addresses=resolution.addresses,
        )

    async def _keep_resolving(self, hostname: str, entry: _Hostname) -> None:
        """Resolve again when the answer's TTL runs out; queue the users when it changes."""
        while entry.users or entry.resolution is None:
            resolution = await self.resolver.resolve(hostname)
            changed = entry.resolution is None or (
                (entry.resolution.addresses, entry.resolution.error)
                != (resolution.addresses, resolution.error)
            )
            entry.resolution = resolution
            if changed:
                for key in entry.users:
                    self.queue.add(key)
            await asyncio.sleep(resolution.ttl)
        self._hostnames.pop(hostname, None)

    def _set_deps(self, key: ImportKey, deps: Dependencies) -> None:
        old = self._deps.get(key)
        self._deps[key] = deps
        # An index from remote Service to imports: a remote event queues its readers without
        # scanning every import (10,000 imports times 2,000 Services at start-up).
        if old is not None and old.remote and old.remote != deps.remote:
            users = self._by_remote.get(old.remote)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._by_remote[old.remote]
        if deps.remote:
            self._by_remote.setdefault(deps.remote, set()).add(key)
        if old is None:
            return
        for hostname in old.hostnames - deps.hostnames:
            entry = self._hostnames.get(hostname)
            if entry is not None:
                entry.users.discard(key)
        # A move to another remote namespace is handled by RemoteRegistry.use().
        if old.remote and deps.remote is None:
            self.remote.release(key)
            self._update_watch_metrics()

    def _forget(self, key: ImportKey) -> None:
        """Drop what the operator tracks for an import that is gone or reads nothing.

        Every table keyed by import is emptied here, so that memory follows the number of
        imports that exist, not the number that ever existed.
        """
        self._set_deps(key, Dependencies())
        del self._deps[key]
        self.remote.release(key)
        self._update_watch_metrics()
        self._pending_since.pop(key, None)
        self._settling.pop(key, None)
        self._conflicts.pop(key, None)
        if key not in self.imports:
            self._errors.pop(key, None)
            self._set_ready(key, None)

    # -- status and events ---------------------------------------------------------------

    def _import_status(
        self,
        old: Mapping[str, Any],
        *,
        generation: int | None,
        ready: Triple,
        source: Triple,
        addresses: list[str],
        ports: list[dict[str, Any]],
    ) -> dict[str, Any]:
        previous = list(old.get("conditions") or [])
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "addresses": addresses,
            "ports": ports,
            "conditions": [
                conditions.condition(
                    type_=type_,
                    status=status_,
                    reason=reason,
                    message=message,
                    previous=previous,
                    generation=generation,
                )
                for type_, (status_, reason, message) in (
                    ("Ready", ready),
                    ("SourceResolved", source),
                )
            ],
        }
        changed = list(old.get("addresses") or []) != addresses
        status["lastChangeTime"] = (
            conditions.now() if changed or not old.get("lastChangeTime") else old["lastChangeTime"]
        )
        return status

    async def _write_import_status(
        self, key: ImportKey, body: JSON, status: dict[str, Any]
    ) -> None:
        ready = status["conditions"][0]
        self._set_ready(key, (ready["status"], ready["reason"]))
        if _same_status(body.get("status") or {}, status):
            return
        namespace, name = key
        path = collection_path(
            group=api.GROUP, version=api.VERSION, plural=api.IMPORT_PLURAL, namespace=namespace
        )
        try:
            updated = await asyncio.to_thread(
                self.kube.patch, f"{path}/{name}/status", {"status": status}
            )
        except KubeError as error:
            if error.status == 404:
                return  # deleted meanwhile
            raise
        metrics.STATUS_WRITES.labels("SharedServiceImport").inc()
        if key in self.imports:
            self.imports[key] = slim(updated)

    def _report_cluster(self, name: str, report: ClusterReport) -> None:
        """Have a RemoteCluster's status say ``report``, replacing any report not yet written."""
        self._cluster_reports[name] = report
        if name not in self._cluster_writers:
            self._cluster_writers[name] = self._loop.create_task(
                self._write_cluster_reports(name), name=f"status {name}"
            )

    async def _write_cluster_reports(self, name: str) -> None:
        """Write a RemoteCluster's status until the latest report is written.

        One task per cluster, one write at a time: a report that comes while a write is
        under way replaces any report still waiting, so an older state never lands after a
        newer one, and a failed write is logged and retried with backoff, never dropped.
        """
        delay = 1.0
        try:
            while name in self._cluster_reports:
                report = self._cluster_reports.pop(name)
                try:
                    await self._write_cluster_status(name, report)
                except KubeError as error:
                    self._cluster_reports.setdefault(name, report)
                    log.warning(
                        "status of RemoteCluster %s not written, retrying in %.0f s: %s",
                        name,
                        delay,
                        error,
                    )
                    await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311
                    delay = min(delay * 2, _ERROR_RETRY_MAX)
                else:
                    delay = 1.0
        finally:
            self._cluster_writers.pop(name, None)

    async def _write_cluster_status(self, name: str, report: ClusterReport) -> None:
        body = self.clusters.get(name)
        if body is None:
            return
        old = body.get("status") or {}
        status: dict[str, Any] = {
            "conditions": [
                conditions.condition(
                    type_="Connected",
                    status="True" if report.connected else "False",
                    reason=report.reason,
                    message=report.message,
                    previous=old.get("conditions") or [],
                    generation=body.get("metadata", {}).get("generation"),
                )
            ]
        }
        if report.version:
            status["serverVersion"] = report.version
        still_connected = (
            report.connected
            and (conditions.find(old.get("conditions") or [], "Connected") or {}).get("status")
            == "True"
        )
        if report.connected_at and not (still_connected and old.get("lastContactTime")):
            status["lastContactTime"] = report.connected_at
        elif old.get("lastContactTime"):
            # Connected before and after (a restart, a rotated Secret): the contact never
            # broke, and rewriting the time would be a write on every restart.
            status["lastContactTime"] = old["lastContactTime"]
        if _same_status(old, status):
            return
        path = collection_path(
            group=api.GROUP, version=api.VERSION, plural=api.REMOTE_CLUSTER_PLURAL, namespace=None
        )
        try:
            updated = await asyncio.to_thread(
                self.kube.patch, f"{path}/{name}/status", {"status": status}
            )
        except NotFound:
            return  # deleted meanwhile
        metrics.STATUS_WRITES.labels("RemoteCluster").inc()
        if name in self.clusters:
            self.clusters[name] = slim(updated)

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

    async def _event(self, body: JSON, kind: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event on the import; failing to is not worth a retry."""
        metadata = body["metadata"]
        stamp = conditions.now()
        event = {
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": f"{api.GROUP}/{api.VERSION}",
                "kind": "SharedServiceImport",
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "shared-services-operator"},
            "reportingComponent": "shared-services-operator",
            "reportingInstance": "shared-services-operator",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        path = collection_path(
            group="", version="v1", plural="events", namespace=metadata["namespace"]
        )
        try:
            await asyncio.to_thread(self.kube.create, path, event)
        except KubeError as error:
            log.warning("could not record event %s on %s: %s", reason, metadata["name"], error)


# -- helpers -------------------------------------------------------------------------------


def _list_all(kube: Kube, path: str) -> list[JSON]:
    """Every object of a collection, slimmed, fetched in pages."""
    items: list[JSON] = []
    cursor = ""
    while True:
        params = {"limit": "500"} | ({"continue": cursor} if cursor else {})
        listing = kube.request("GET", path, params=params)
        items.extend(slim(item) for item in listing.get("items", []))
        cursor = listing.get("metadata", {}).get("continue") or ""
        if not cursor:
            return items


def _network_fields(obj: JSON) -> JSON:
    """What the address policy reads of a Node or ServiceCIDR, and the watch's bookkeeping.

    A Node's status also lists every image on it and its conditions, often tens of kB; a
    cache of 1,000 of them would be most of the operator's memory for nothing.
    """
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return {
        "metadata": {k: metadata[k] for k in ("name", "uid", "resourceVersion") if k in metadata},
        "spec": {k: spec[k] for k in ("podCIDR", "podCIDRs", "cidrs") if k in spec},
        "status": {"addresses": (obj.get("status") or {}).get("addresses") or []},
    }


def _plain(body: Mapping[str, Any]) -> JSON:
    """A plain dict of kopf's body view (nested values are already plain), slimmed."""
    return slim(dict(body.items()))


def _generation(body: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """What of an import's metadata says its spec (or its very identity) may have changed.

    The uid is there because an import deleted and created again under its name while a
    watch was broken comes back, in the list that mends the watch, with the same generation
    (1, like any new object) and a spec that may differ in anything.
    """
    metadata = body.get("metadata", {})
    return metadata.get("uid"), metadata.get("generation"), metadata.get("deletionTimestamp")


def _spec_ports(spec: api.ImportSpec) -> tuple[builders.ResolvedPort, ...]:
    return tuple(
        builders.ResolvedPort(
            name=p.name, port=p.port, target_port=p.effective_target_port, protocol=p.protocol
        )
        for p in spec.ports or ()
    )


def _status_ports(status: Mapping[str, Any]) -> tuple[builders.ResolvedPort, ...]:
    ports = []
    for p in status.get("ports") or []:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            ports.append(
                builders.ResolvedPort(
                    name=p.get("name"),
                    port=int(p["port"]),
                    target_port=int(p.get("targetPort") or p["port"]),
                    protocol=str(p.get("protocol") or "TCP"),
                )
            )
    return tuple(ports)


def _port_status(port: builders.ResolvedPort) -> dict[str, Any]:
    result: dict[str, Any] = {
        "port": port.port,
        "targetPort": port.target_port,
        "protocol": port.protocol,
    }
    if port.name:
        result["name"] = port.name
    return result


def _desired_addresses(desired: builders.Desired) -> list[str]:
    return [a for s in desired.endpoint_slices for e in s["endpoints"] for a in e["addresses"]]


def _ready(source: Source, written: list[str], service_name: str) -> Triple:
    """The Ready condition after a write without conflicts."""
    if not written:
        reason = source.reason if not source.ok else "NoAddresses"
        return ("False", reason, source.message or "the source has no addresses")
    if not source.ok and source.addresses is None:
        return ("True", "LastKnownAddresses", f"serving the last known addresses; {source.message}")
    return ("True", "Synced", f"Service {service_name} points at {', '.join(written)}")


def _source_condition(source: Source) -> Triple:
    if source.ok:
        return ("True", source.reason, source.message)
    if source.reason in ("Resolving", "Connecting"):
        return ("Unknown", source.reason, source.message)
    return ("False", source.reason, source.message)


def _same_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return bool(clean(old) == clean(new))


def _namespace_terminating(error: KubeError) -> bool:
    return error.status == 403 and "being terminated" in error.message


def _count_writes(outcome: Outcome) -> None:
    for kind, verb in outcome.writes:
        metrics.WRITES.labels(kind, verb).inc()
