"""The live side of resolving: the watches and DNS tasks that answer :mod:`resolve`'s lookups.

:meth:`Sources.resolve` runs the pure :func:`~shared_services.resolve.resolve` with lookups
that, as they read, open the remote namespace's shared watch or start the hostname's task
for that import; afterwards it records what was read in the dependency index and releases
what the import no longer reads. So a change of any source queues exactly its readers.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared_services import api, metrics, policy
from shared_services.api import JSON, ImportKey
from shared_services.dependencies import DependencyIndex
from shared_services.dns import Resolution
from shared_services.hostnames import Hostnames
from shared_services.remote import RemoteEvent, RemoteRegistry, ServiceChanged
from shared_services.resolve import Dependencies, RemoteLookup, SourceState, resolve


class Sources:
    """Resolves imports' sources and knows which imports read which source."""

    def __init__(
        self,
        *,
        remote: RemoteRegistry,
        hostnames: Hostnames,
        clusters: Mapping[str, JSON],
        address_policy: policy.AddressPolicy,
    ) -> None:
        self.remote = remote
        self.hostnames = hostnames
        self.index = DependencyIndex()
        self._clusters = clusters
        self._policy = address_policy
        self._watched_clusters: set[str] = set()

    def resolve(self, key: ImportKey, spec: api.ImportSpec) -> SourceState:
        """What the import's source says now; what it read is recorded for its events."""
        resolved = resolve(spec, key[0], address_policy=self._policy, lookups=_Lookups(self, key))
        self._record(key, resolved.dependencies)
        return resolved.source

    def forget(self, key: ImportKey) -> None:
        """The import is gone or reads nothing: release every source it read."""
        old = self.index.forget(key)
        if old is not None:
            self.hostnames.release(key, old.hostnames)
        self.remote.release(key)
        self.update_watch_metrics()

    def readers(self, event: RemoteEvent) -> set[ImportKey]:
        """The imports a remote event concerns."""
        if isinstance(event, ServiceChanged):
            return self.index.readers_of_service(event.cluster, event.namespace, event.name)
        return self.index.readers_of_namespace(event.cluster, event.namespace)

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

    def _record(self, key: ImportKey, read: Dependencies) -> None:
        old = self.index.record(key, read)
        if old is None:
            return
        self.hostnames.release(key, old.hostnames - read.hostnames)
        # A move to another remote namespace is handled by RemoteRegistry.use().
        if old.remote and read.remote is None:
            self.remote.release(key)
            self.update_watch_metrics()


class _Lookups:
    """The lookups of one import's resolve: each read says that the import uses it."""

    def __init__(self, sources: Sources, key: ImportKey) -> None:
        self._sources = sources
        self._key = key

    def cluster_exists(self, name: str) -> bool:
        return name in self._sources._clusters

    def cluster_spec(self, name: str) -> api.RemoteClusterSpec | None:
        connection = self._sources.remote.clusters.get(name)
        return None if connection is None else connection.spec

    def remote_service(self, cluster: str, namespace: str, name: str) -> RemoteLookup:
        self._sources.remote.use(self._key, cluster, namespace)
        self._sources.update_watch_metrics()
        return self._sources.remote.lookup(cluster, namespace, name)

    def hostname(self, hostname: str) -> Resolution | None:
        return self._sources.hostnames.lookup(self._key, hostname)
