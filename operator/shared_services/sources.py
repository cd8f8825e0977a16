"""The live side of resolving: the watches and DNS tasks that answer :mod:`resolve`'s lookups.

:meth:`Sources.resolve` runs the pure :func:`~shared_services.resolve.resolve` with lookups
that only read (the remote Services' caches, the hostnames' latest answers). Then it acts
on the answer: what the import read is recorded in its record, which keeps the one account
of who reads what; the watch of the remote namespace and the hostnames' tasks it read are
asked for, and those no import reads any more let go. When asking started or refused
something, it reads once more, so the answer says so at once. A change of any source then
queues exactly its readers.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared_services import api, metrics, policy
from shared_services.api import JSON, ImportKey
from shared_services.dns import Resolution
from shared_services.hostnames import Hostnames
from shared_services.records import NOTHING_READ, ImportRecord, Records, Released
from shared_services.remote import RemoteEvent, RemoteRegistry, ServiceChanged
from shared_services.resolve import Dependencies, RemoteLookup, Resolved, SourceState, resolve


class Sources:
    """Resolves imports' sources and keeps watched what some import reads."""

    def __init__(
        self,
        *,
        remote: RemoteRegistry,
        hostnames: Hostnames,
        records: Records,
        clusters: Mapping[str, JSON],
        address_policy: policy.AddressPolicy,
    ) -> None:
        self.remote = remote
        self.hostnames = hostnames
        self.records = records
        self._lookups = _Lookups(remote, hostnames, clusters)
        self._policy = address_policy
        self._watched_clusters: set[str] = set()

    def resolve(self, record: ImportRecord, spec: api.ImportSpec) -> SourceState:
        """What the import's source says now; what it read is watched for its changes."""
        resolved = self._read(record.key, spec)
        if self._follow(record, resolved.dependencies):
            resolved = self._read(record.key, spec)
            self._follow(record, resolved.dependencies)
        return resolved.source

    def release(self, record: ImportRecord) -> None:
        """The import reads nothing now (its spec is invalid, or it is refused)."""
        self._let_go(self.records.set_reads(record, NOTHING_READ))

    def drop(self, key: ImportKey) -> ImportRecord | None:
        """The import is gone: its record goes, and every source it read is released."""
        record, released = self.records.drop(key)
        self._let_go(released)
        return record

    def readers(self, event: RemoteEvent) -> set[ImportKey]:
        """The imports a remote event concerns."""
        if isinstance(event, ServiceChanged):
            return self.records.readers_of_service(event.cluster, event.namespace, event.name)
        return self.records.readers_of_namespace(event.cluster, event.namespace)

    def update_watch_metrics(self) -> None:
        """Set the remote-watches gauge from the registry's watches."""
        counts = self.remote.watch_counts()
        for gone in self._watched_clusters - counts.keys():
            # A deleted RemoteCluster's series end, rather than freeze at their last value.
            metrics.REMOTE_WATCHES.remove(gone, "up")
            metrics.REMOTE_WATCHES.remove(gone, "down")
        self._watched_clusters = set(counts)
        for cluster, (up, down) in counts.items():
            metrics.REMOTE_WATCHES.labels(cluster, "up").set(up)
            metrics.REMOTE_WATCHES.labels(cluster, "down").set(down)

    def _read(self, key: ImportKey, spec: api.ImportSpec) -> Resolved:
        return resolve(spec, key[0], address_policy=self._policy, lookups=self._lookups)

    def _follow(self, record: ImportRecord, reads: Dependencies) -> bool:
        """Record what was read, and keep it watched; True if asking changed anything."""
        self._let_go(self.records.set_reads(record, reads))  # first: it may free a namespace
        changed = False
        if reads.remote is not None:
            cluster, namespace, _ = reads.remote
            if self.remote.want(cluster, namespace):
                changed = True
                self.update_watch_metrics()
        return self.hostnames.want(reads.hostnames) or changed

    def _let_go(self, released: Released) -> None:
        for cluster, namespace in released.namespaces:
            self.remote.unwant(cluster, namespace)
        self.hostnames.unwant(released.hostnames)
        if released.namespaces:
            self.update_watch_metrics()


class _Lookups:
    """Where resolving reads: the caches and the latest answers, and nothing else."""

    def __init__(
        self, remote: RemoteRegistry, hostnames: Hostnames, clusters: Mapping[str, JSON]
    ) -> None:
        self._remote = remote
        self._hostnames = hostnames
        self._clusters = clusters

    def cluster_exists(self, name: str) -> bool:
        return name in self._clusters

    def cluster_spec(self, name: str) -> api.RemoteClusterSpec | None:
        connection = self._remote.clusters.get(name)
        return None if connection is None else connection.spec

    def remote_service(self, cluster: str, namespace: str, name: str) -> RemoteLookup:
        return self._remote.lookup(cluster, namespace, name)

    def hostname(self, hostname: str) -> Resolution | None:
        return self._hostnames.lookup(hostname)
