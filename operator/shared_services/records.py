"""One record per import: everything the operator knows about an import between its syncs.

A record is made when an import is first synced and dropped when the import is gone, so
the operator's memory follows the imports that exist and a leak has one place to look.
It holds what the last sync read (the one account of who reads what: the indexes here
are derived from it, in this module alone), what the slices were last written to hold,
the clocks of the grace, the settle hold and the propagation metric, the backoff of
failures and conflicts, the Ready state last recorded and the Event budget.

The work queue holds keys only while they wait or sync: it is empty when the operator is
idle, so it is not per-import state, and its timers are the retries the records ask for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from shared_services.api import ImportKey
from shared_services.correlator import Budget
from shared_services.decide import Serving
from shared_services.resolve import Dependencies

RemoteRef = tuple[str, str, str]  # cluster, namespace, name
RemoteNamespace = tuple[str, str]  # cluster, namespace

NOTHING_READ = Dependencies()

_At = TypeVar("_At")


@dataclass(slots=True, eq=False)
class ImportRecord:
    """What the operator knows about one import, besides the object itself."""

    key: ImportKey
    # What its latest sync read: a change of any of it queues the import.
    reads: Dependencies = NOTHING_READ
    # What its slices were last written to hold: its last known addresses.
    written: Serving | None = None
    # When its RemoteCluster was first seen gone, for the grace period.
    gone_since: float | None = None
    # When its slice last moved, so that its Endpoints, status and Event wait a moment.
    moved_at: float | None = None
    # When the remote change that queued it arrived, for the propagation metric.
    pending_since: float | None = None
    # Syncs that failed, and syncs that met an object in the way, in a row: the backoff.
    failures: int = 0
    conflicts: int = 0
    # Its Ready condition's (status, reason) as last recorded, for the by-state gauge.
    ready: tuple[str, str] | None = None
    # Its Event budget: kept for as long as the import exists (see correlator).
    budget: Budget | None = None

    def reset(self) -> None:
        """Forget what follows from its source: it is invalid, refused, or reads nothing.

        The backoff of failures, the Ready state and the Event budget stay: the import
        still exists, and a budget forgotten would start full again.
        """
        self.reads = NOTHING_READ
        self.written = None
        self.gone_since = self.moved_at = self.pending_since = None
        self.conflicts = 0


@dataclass(frozen=True)
class Released:
    """Sources that lost their last reader with one record's change: their watches may go.

    Sources gained are not listed: whoever acts on a sync's answer asks for the watches
    and DNS tasks of what it read every time (asking is idempotent), so that a
    RemoteCluster created after its imports, or a namespace freed for a refused one, is
    watched on their next sync.
    """

    namespaces: frozenset[RemoteNamespace] = frozenset()
    hostnames: frozenset[str] = frozenset()


@dataclass
class Records:
    """The records of every import synced, and who reads what, derived from them."""

    _records: dict[ImportKey, ImportRecord] = field(default_factory=dict)
    _by_service: dict[RemoteRef, set[ImportKey]] = field(default_factory=dict)
    _by_namespace: dict[RemoteNamespace, set[ImportKey]] = field(default_factory=dict)
    _by_cluster: dict[str, set[ImportKey]] = field(default_factory=dict)
    _by_hostname: dict[str, set[ImportKey]] = field(default_factory=dict)

    def get(self, key: ImportKey) -> ImportRecord | None:
        """The import's record; None if it has none."""
        return self._records.get(key)

    def ensure(self, key: ImportKey) -> ImportRecord:
        """The import's record, made now if it has none."""
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = ImportRecord(key)
        return record

    def drop(self, key: ImportKey) -> tuple[ImportRecord | None, Released]:
        """The import is gone: its record goes, and what it read is released."""
        record = self._records.pop(key, None)
        if record is None:
            return None, Released()
        return record, self.set_reads(record, NOTHING_READ)

    def set_reads(self, record: ImportRecord, reads: Dependencies) -> Released:
        """Record what the import's latest sync read; say which sources nobody reads now."""
        old, record.reads = record.reads, reads
        if old == reads:
            return Released()
        released = self._unindex(record.key, old, reads)
        self._index(record.key, reads, old)
        return released

    def readers_of_service(self, cluster: str, namespace: str, name: str) -> set[ImportKey]:
        """The imports that read this remote Service."""
        return set(self._by_service.get((cluster, namespace, name), ()))

    def readers_of_namespace(self, cluster: str, namespace: str) -> set[ImportKey]:
        """The imports that read any Service of this remote namespace."""
        return set(self._by_namespace.get((cluster, namespace), ()))

    def readers_of_cluster(self, cluster: str) -> set[ImportKey]:
        """The imports whose source names this RemoteCluster."""
        return set(self._by_cluster.get(cluster, ()))

    def readers_of_hostname(self, hostname: str) -> set[ImportKey]:
        """The imports that read this hostname (their source, or an ingress's)."""
        return set(self._by_hostname.get(hostname, ()))

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[ImportRecord]:
        return iter(list(self._records.values()))

    def tables(self) -> dict[str, int]:
        """How many entries the records and their indexes hold, for the tracked-items metric."""
        records = list(self._records.values())
        return {
            "import_records": len(records),
            # Imports failing, or meeting an object in the way, in a row right now.
            "error_backoffs": sum(1 for r in records if r.failures),
            "conflict_backoffs": sum(1 for r in records if r.conflicts),
            "remote_service_readers": len(self._by_service),
            "remote_namespace_readers": len(self._by_namespace),
            "cluster_readers": len(self._by_cluster),
            "hostname_readers": len(self._by_hostname),
        }

    def _index(self, key: ImportKey, reads: Dependencies, old: Dependencies) -> None:
        if reads.remote is not None and reads.remote != old.remote:
            _add(self._by_service, reads.remote, key)
            where = _namespace(reads)
            if where is not None and where != _namespace(old):
                _add(self._by_namespace, where, key)
        if reads.cluster is not None and reads.cluster != old.cluster:
            _add(self._by_cluster, reads.cluster, key)
        for hostname in reads.hostnames - old.hostnames:
            _add(self._by_hostname, hostname, key)

    def _unindex(self, key: ImportKey, old: Dependencies, reads: Dependencies) -> Released:
        namespaces: set[RemoteNamespace] = set()
        hostnames: set[str] = set()
        if old.remote is not None and old.remote != reads.remote:
            _remove(self._by_service, old.remote, key)
            where, still = _namespace(old), _namespace(reads)
            if where is not None and where != still and _remove(self._by_namespace, where, key):
                namespaces.add(where)
        if old.cluster is not None and old.cluster != reads.cluster:
            _remove(self._by_cluster, old.cluster, key)
        for hostname in old.hostnames - reads.hostnames:
            if _remove(self._by_hostname, hostname, key):
                hostnames.add(hostname)
        return Released(frozenset(namespaces), frozenset(hostnames))


def _namespace(reads: Dependencies) -> RemoteNamespace | None:
    return None if reads.remote is None else (reads.remote[0], reads.remote[1])


def _add(index: dict[_At, set[ImportKey]], at: _At, key: ImportKey) -> None:
    index.setdefault(at, set()).add(key)


def _remove(index: dict[_At, set[ImportKey]], at: _At, key: ImportKey) -> bool:
    """Remove ``key`` from under ``at``; True when it was the last there."""
    keys = index.get(at)
    if keys is None:
        return False
    keys.discard(key)
    if keys:
        return False
    del index[at]
    return True
