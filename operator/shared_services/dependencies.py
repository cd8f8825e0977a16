"""Which imports read what: the index that turns "this changed" into "sync these imports".

Every sync records what it read (a RemoteCluster, a remote Service, hostnames). A change
of any of it then queues exactly its readers, without scanning every import: at 10,000
imports and 2,000 remote Services, a scan per remote event would be most of the work.
"""

from __future__ import annotations

from collections.abc import Iterator

from shared_services.api import ImportKey
from shared_services.resolve import Dependencies

RemoteRef = tuple[str, str, str]  # cluster, namespace, name


class DependencyIndex:
    """What each import read, and the reverse: the readers of each remote Service."""

    def __init__(self) -> None:
        self._read: dict[ImportKey, Dependencies] = {}
        self._by_remote: dict[RemoteRef, set[ImportKey]] = {}

    def record(self, key: ImportKey, read: Dependencies) -> Dependencies | None:
        """Record what ``key`` read in its latest sync; return what it read before."""
        old = self._read.get(key)
        self._read[key] = read
        if old is not None and old.remote and old.remote != read.remote:
            self._unindex(key, old.remote)
        if read.remote:
            self._by_remote.setdefault(read.remote, set()).add(key)
        return old

    def forget(self, key: ImportKey) -> Dependencies | None:
        """Drop ``key``, which is gone or reads nothing; return what it read."""
        old = self._read.pop(key, None)
        if old is not None and old.remote:
            self._unindex(key, old.remote)
        return old

    def readers_of_service(self, cluster: str, namespace: str, name: str) -> set[ImportKey]:
        """The imports that read this remote Service."""
        return set(self._by_remote.get((cluster, namespace, name), ()))

    def readers_of_namespace(self, cluster: str, namespace: str) -> set[ImportKey]:
        """The imports that read any Service of this remote namespace."""
        return {
            key
            for (c, ns, _), users in self._by_remote.items()
            if (c, ns) == (cluster, namespace)
            for key in users
        }

    def readers_of_cluster(self, cluster: str) -> Iterator[ImportKey]:
        """The imports whose source names this RemoteCluster."""
        return (key for key, read in self._read.items() if read.cluster == cluster)

    def tables(self) -> dict[str, int]:
        """How many entries each table holds, for the tracked-items metric."""
        return {"dependencies": len(self._read), "remote_service_index": len(self._by_remote)}

    def _unindex(self, key: ImportKey, remote: RemoteRef) -> None:
        users = self._by_remote.get(remote)
        if users is not None:
            users.discard(key)
            if not users:
                del self._by_remote[remote]
