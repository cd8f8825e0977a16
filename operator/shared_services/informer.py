"""List, then watch, one collection; keep its objects in memory; report every change.

The operator reads nothing on its hot path: the remote Services of a namespace, the local
objects it manages and its own Secrets all arrive through informers like this one, and a
sync compares against their caches. One informer is one watch connection, which is how
"one remote watch per (RemoteCluster, remote namespace)" is kept: imports share informers,
they never open their own.

Each informer runs in a thread of its own because the kubernetes client blocks; callbacks
are made from that thread and must hand work over to the event loop themselves.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from shared_services.api import JSON
from shared_services.kube import JSON_TYPE, METADATA, METADATA_LIST, Gone, Kube, KubeError

log = logging.getLogger(__name__)

EventCallback = Callable[[str, JSON], None]
StateCallback = Callable[[bool, str | None], None]

# Objects per page of a list, as kubectl pages them (its --chunk-size default).
PAGE = 500
BACKOFF_START = 0.5
# A watch that broke, or a server that is down, is tried again within this: imports follow
# moves soon after the server is back.
BACKOFF_MAX = 30.0
# A watch the server refuses (401, 403) stays refused until someone changes a permission,
# and every try is a request to that server: whoever may create imports names the remote
# namespaces, and one the credentials may not read must not cost a list every 30 s.
REFUSED_BACKOFF_MAX = 300.0


def next_backoff(backoff: float, error: KubeError) -> float:
    """How long to wait after ``error``, having waited ``backoff`` after the one before."""
    limit = REFUSED_BACKOFF_MAX if error.status in (401, 403) else BACKOFF_MAX
    return min(backoff * 2, limit)


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects)."""
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace")
    name = str(metadata.get("name", ""))
    return f"{namespace}/{name}" if namespace else name


def resource_version(obj: Mapping[str, Any]) -> str | None:
    """The object's ``metadata.resourceVersion``, as a string; None if it has none."""
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return None if version is None else str(version)


def slim(obj: JSON) -> JSON:
    """The object without ``metadata.managedFields``, which nothing here reads.

    They are often the largest part of an object; dropping them roughly halves the memory
    a cache of thousands of objects takes.
    """
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return obj


class Informer:
    """A cache of one collection, kept current by a watch, with callbacks on change.

    ``on_event(type, obj)`` gets ADDED, MODIFIED and DELETED, also for differences found when
    a list replaces the cache after a broken watch, so nothing that changed during an
    outage is missed. ``on_state(synced, error)`` says when the cache became trustworthy and
    when it stopped being so; the cache keeps its last contents meanwhile (last known good).
    """

    def __init__(
        self,
        kube: Kube,
        path: str,
        *,
        name: str,
        params: Mapping[str, str] | None = None,
        on_event: EventCallback | None = None,
        on_state: StateCallback | None = None,
        timeout_seconds: int = 300,
        index_label: str | None = None,
        transform: Callable[[JSON], JSON | None] = slim,
        metadata_only: bool = False,
        keep_names: bool = False,
    ) -> None:
        self.kube = kube
        self.path = path
        self.name = name
        self.params = dict(params or {})
        self.cache: dict[str, JSON] = {}
        # (namespace, value of index_label) -> keys: finds an import's objects without a scan.
        # Nearly every import has one object of a kind, so a lone key is held as itself: an
        # empty set alone is 216 bytes, more than the key it would hold.
        self.index: dict[tuple[str, str], str | set[str]] = {}
        self._index_label = index_label
        # What of each object is kept: by default all but managedFields; a reader of a few
        # fields of a large kind (a Node's status lists every image on it) keeps just those,
        # and metadata.resourceVersion, which the echo check needs. None keeps nothing:
        # the object is not one this cache is for, and is as good as absent.
        self._transform = transform
        # With keep_names, the key of every object the watch sends, whatever the transform
        # keeps of it: which names are taken (see Writer._taken).
        self.names: set[str] | None = set() if keep_names else None
        # A reader of names alone asks for no more than each object's metadata.
        self._accept = (METADATA_LIST, METADATA) if metadata_only else (JSON_TYPE, JSON_TYPE)
        self._cache_lock = threading.Lock()
        # Keys being written by the operator -> the events that came for them meanwhile,
        # and the resourceVersion the write produced (see writing()).
        self._held: dict[str, list[tuple[str, JSON]]] = {}
        self._written: dict[str, str | None] = {}
        self.synced = threading.Event()
        self.error: str | None = None
        self._on_event = on_event or (lambda _type, _obj: None)
        self._on_state = on_state or (lambda _synced, _error: None)
        self._timeout_seconds = timeout_seconds
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._response: list[Any] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"informer {name}", daemon=True)

    def start(self) -> Informer:
        """Start listing and watching in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop now: the open watch connection is shut, not left to time out.

        Returns at once, without waiting for the thread: it is called on the event loop,
        and a thread stuck in a list against a frozen server would otherwise stall every
        sync and the health endpoints until its read timed out. The thread ends by itself
        at its next step; its callbacks after this are about a cache nobody reads.
        """
        self._stopped.set()
        self._wake.set()
        with self._lock:
            for response in self._response:
                response.shutdown()

    def join(self, timeout: float = 10.0) -> None:
        """Wait for the thread to end after :meth:`stop`; blocks, so never on the loop."""
        self._thread.join(timeout=timeout)

    def retry_now(self) -> None:
        """Cut a backoff wait short: the server is known to answer again."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread.is_alive()

    def get(self, key: str) -> JSON | None:
        """The cached object under ``namespace/name``, if any."""
        return self.cache.get(key)

    def put(self, obj: JSON) -> None:
        """Cache the answer to a write, whose watch event may not have arrived yet.

        When the event then brings the same resourceVersion, it is known news and no
        callback is made: a write's own echo does not trigger another sync.
        """
        key = object_key(obj)
        view = self._transform(obj)
        with self._cache_lock:  # the writer put()s from the loop, the watch from its thread
            if key in self._held:
                self._written[key] = resource_version(obj)
            if view is None:
                self._drop(key)
            else:
                self._store(key, view)

    def _store(self, key: str, obj: JSON) -> None:
        """Cache ``obj`` under ``key``; the caller holds the cache lock."""
        self._drop(key)
        self.cache[key] = obj
        if self._index_label:
            metadata = obj.get("metadata", {})
            value = (metadata.get("labels") or {}).get(self._index_label)
            if value:
                index_key = (metadata.get("namespace", ""), value)
                keys = self.index.get(index_key)
                if keys is None:
                    self.index[index_key] = key
                elif isinstance(keys, set):
                    keys.add(key)
                elif keys != key:
                    self.index[index_key] = {keys, key}

    def drop(self, key: str) -> None:
        """Forget an object."""
        with self._cache_lock:
            self._drop(key)

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[None]:
        """Hold the callbacks for ``key`` while the operator writes it, and drop its echo.

        The watch can deliver a write's event before the writer has put the answer in the
        cache; the resourceVersion check then finds nothing to match, and the echo would
        cost a sync that finds nothing to do (for 1,000 new imports, about 1,200 such
        syncs, many still queued when the last import was Ready). So events for ``key``
        that come while the write is in flight are cached as usual but held; afterwards
        only those with another resourceVersion than the write's answer, somebody else's
        change, are reported.
        """
        with self._cache_lock:
            self._held.setdefault(key, [])
        try:
            yield
        finally:
            with self._cache_lock:
                held = self._held.pop(key, [])
                written = self._written.pop(key, None)
            for kind, obj in held:
                if resource_version(obj) != written:
                    self._on_event(kind, obj)

    def _drop(self, key: str) -> None:
        old = self.cache.pop(key, None)
        if old is None or not self._index_label:
            return
        metadata = old.get("metadata", {})
        value = (metadata.get("labels") or {}).get(self._index_label)
        if value:
            index_key = (metadata.get("namespace", ""), value)
            keys = self.index.get(index_key)
            if keys == key:
                del self.index[index_key]
            elif isinstance(keys, set):
                keys.discard(key)
                if len(keys) == 1:
                    self.index[index_key] = keys.pop()

    def indexed(self, namespace: str, value: str) -> list[JSON]:
        """Cached objects in ``namespace`` whose index label has ``value``."""
        keys = self.index.get((namespace, value), ())
        found = (keys,) if isinstance(keys, str) else tuple(keys)
        return [self.cache[k] for k in found if k in self.cache]

    def _run(self) -> None:
        backoff = BACKOFF_START
        while not self._stopped.is_set():
            try:
                version = self._list()
                backoff = BACKOFF_START
                self._watch(version)
            except Gone:
                continue  # the watch fell too far behind: list again, at once
            except KubeError as error:
                if self._stopped.is_set():
                    return
                self._lost(str(error))
                if self._wake.wait(backoff * random.uniform(0.8, 1.2)):  # noqa: S311
                    self._wake.clear()
                backoff = next_backoff(backoff, error)
            except Exception:  # a bug must not kill the watch for good
                log.exception("informer %s failed", self.name)
                self._lost("internal error")
                self._stopped.wait(BACKOFF_MAX)

    def _list(self) -> str:
        fresh, seen, version = self._fetch()
        previous = dict(self.cache)
        with self._cache_lock:
            for key in previous.keys() - fresh.keys():
                self._drop(key)
            for key, obj in fresh.items():
                self._store(key, obj)
            if self.names is not None:
                self.names = seen
        for key, obj in fresh.items():
            old = previous.get(key)
            if old is None:
                self._on_event("ADDED", obj)
            elif resource_version(old) != resource_version(obj):
                self._on_event("MODIFIED", obj)
        for key, obj in previous.items():
            if key not in fresh:
                self._on_event("DELETED", obj)
        if not self.synced.is_set() or self.error is not None:
            self.error = None
            self.synced.set()
            self._on_state(True, None)
        return version

    def _fetch(self) -> tuple[dict[str, JSON], set[str], str]:
        """List the collection: the views to cache, every key listed, and the version."""
        fresh: dict[str, JSON] = {}
        seen: set[str] = set()
        cursor = ""
        while True:
            # Pages keep the peak small: a single list of 10,000 objects, parsed at once,
            # would briefly cost more memory than the whole cache does afterwards.
            params = {**self.params, "limit": str(PAGE)} | ({"continue": cursor} if cursor else {})
            listing = self.kube.request("GET", self.path, params=params, accept=self._accept[0])
            for item in listing.get("items") or []:  # null in an empty metadata list
                key = object_key(item)
                seen.add(key)
                view = self._transform(item)
                if view is not None:
                    fresh[key] = view
            cursor = listing.get("metadata", {}).get("continue") or ""
            if not cursor:
                break
        version: str = listing.get("metadata", {}).get("resourceVersion", "")
        return fresh, seen, version

    def _watch(self, version: str) -> None:
        while not self._stopped.is_set():
            stream = self.kube.watch(
                self.path,
                resource_version=version,
                params=self.params,
                timeout_seconds=self._timeout_seconds + random.randint(0, 60),  # noqa: S311
                opened=self._opened,
                accept=self._accept[1],
            )
            try:
                for event in stream:
                    obj = event.get("object", {})
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    kind = event.get("type")
                    # The object as sent may be a megabyte, of which the cache keeps a
                    # view: nothing holds the rest while the next event is awaited.
                    del event
                    news = None if kind == "BOOKMARK" else self._apply(str(kind), obj)
                    del obj
                    if news is not None:
                        self._on_event(*news)
            finally:
                with self._lock:
                    self._response.clear()

    def _apply(self, kind: str, obj: JSON) -> tuple[str, JSON] | None:
        """Bring a watch event into the cache; the event to report now, if any.

        Caching and the check for a write in flight (see :meth:`writing`) are one step
        under the lock, or a writer could finish between them and its echo slip through.
        The echo of the operator's own write, whose answer :meth:`put` cached, is known by
        its resourceVersion before its view is made: most events at start-up and in a
        burst are such echoes, and a view made only to be dropped is CPU for nothing.
        """
        key = object_key(obj)
        with self._cache_lock:
            if self.names is not None:
                if kind == "DELETED":
                    self.names.discard(key)
                else:
                    self.names.add(key)
            known = self.cache.get(key)
            if (
                kind != "DELETED"
                and known is not None
                and resource_version(known) == resource_version(obj)
            ):
                return None  # already cached by put(): the echo of our own write
            view = self._transform(obj)
            if view is None:
                # Not (or no longer) an object of this cache: gone, as far as it is
                # concerned, and reported as such only if it was held.
                old = self.cache.get(key)
                if old is None:
                    return None
                kind, obj = "DELETED", old
                self._drop(key)
            elif kind == "DELETED":
                obj = view
                self._drop(key)
            else:
                obj = view
                self._store(key, obj)
            held = self._held.get(key)
            if held is None:
                return kind, obj
            held.append((kind, obj))
            return None

    def _opened(self, response: Any) -> None:
        with self._lock:
            self._response[:] = [response]
        if self._stopped.is_set():
            response.shutdown()

    def _lost(self, error: str) -> None:
        if self.error != error:
            log.warning("watch %s lost: %s", self.name, error)
        self.error = error
        self.synced.clear()
        self._on_state(False, error)


class InformerGroup:
    """One kind's informers: a single cluster-wide one, or one per watched namespace.

    The writer looks objects up through it without caring which: a lookup goes to the
    informer of the object's namespace (or to the cluster-wide one).
    """

    def __init__(self, informers: Mapping[str | None, Informer]) -> None:
        self.members: dict[str | None, Informer] = dict(informers)

    def _of(self, namespace: str) -> Informer | None:
        return self.members.get(namespace) or self.members.get(None)

    def get(self, key: str) -> JSON | None:
        """The cached object under ``namespace/name``, if any."""
        informer = self._of(key.split("/", 1)[0])
        return informer.get(key) if informer else None

    def named(self, key: str) -> bool | None:
        """Whether an object this group's watch sends holds ``key``; None when it cannot tell.

        It cannot when it keeps no names, or while its watch is not current (not yet listed,
        or broken): the names it holds are then not all there are.
        """
        informer = self._of(key.split("/", 1)[0])
        if informer is None or informer.names is None:
            return None
        if not informer.synced.is_set() or informer.error is not None:
            return None
        return key in informer.names

    def put(self, obj: JSON) -> None:
        """Cache the answer to a write in the informer of its namespace."""
        informer = self._of(str(obj.get("metadata", {}).get("namespace", "")))
        if informer is not None:
            informer.put(obj)

    def drop(self, key: str) -> None:
        """Forget an object."""
        informer = self._of(key.split("/", 1)[0])
        if informer is not None:
            informer.drop(key)

    def writing(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Hold the echo of a write of ``key`` (see :meth:`Informer.writing`)."""
        informer = self._of(key.split("/", 1)[0])
        return informer.writing(key) if informer else contextlib.nullcontext()

    def indexed(self, namespace: str, value: str) -> list[JSON]:
        """Cached objects in ``namespace`` whose index label has ``value``."""
        informer = self._of(namespace)
        return informer.indexed(namespace, value) if informer else []
