"""The SharedServiceImports as last seen: kopf's events, checked by a list of its own.

kopf watches the imports and delivers every event here (``handlers.import_event``). Two
things kopf cannot tell, this store finds out with plain paged lists:

- when every import is known. The first sync must wait for that, or an object whose import
  was not yet delivered would be taken for the orphan of a crash and deleted; kopf's
  handlers never learn that its listing ended. So the store lists the imports once at
  start-up, and readiness waits for that list.
- that an import was deleted while kopf's watch was down for longer than the API server
  keeps history. kopf then lists again and delivers the imports that exist, but no
  DELETED for those that went, which would keep serving. So every resync lists again,
  and an import missing from that list and from a list of its name is taken as deleted.

Both lists only read; neither delays an event.

Of each import the store keeps what the syncs read (:func:`views.shared_service_import`),
whoever puts it there: kopf's events, the lists, and the status writer, which stores the
answer to its write so that the next sync compares with the status just written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from shared_services import api, views
from shared_services.api import JSON, ImportKey
from shared_services.informer import resource_version
from shared_services.kube import Kube, KubeError, collection_path
from shared_services.listing import Listing, list_all

log = logging.getLogger(__name__)


class Imports(dict[ImportKey, JSON]):
    """Imports by key, each kept as its view, however it is put in.

    The status writer puts the answer to its writes in by assignment; this keeps that
    answer's view too, not the whole object.
    """

    def __setitem__(self, key: ImportKey, body: JSON) -> None:
        super().__setitem__(key, views.shared_service_import(body))

    def setdefault(self, key: ImportKey, default: JSON | None = None) -> JSON:
        """As dict's, with the view of ``default`` kept."""
        if key not in self:
            self[key] = default if default is not None else {}
        return self[key]


class ImportStore:
    """Every import, keyed by namespace and name; a change worth a sync calls ``on_change``."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespaces: tuple[str, ...],
        on_change: Callable[[ImportKey], None],
    ) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.objects: dict[ImportKey, JSON] = Imports()
        self._paths = [_collection(namespace) for namespace in namespaces or (None,)]
        self.listing = Listing(kube, self._paths, what="sharedserviceimports")
        # Until started (a standby waiting for the lease), events only update the store.
        self.active = False
        self._on_change = on_change
        # Deleted by an event while the start-up list was under way: not taken from it.
        self._deleted: set[tuple[ImportKey, str]] = set()

    def event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SharedServiceImport was listed, added, changed or deleted."""
        metadata = body.get("metadata", {})
        key = (str(metadata.get("namespace")), str(metadata.get("name")))
        if self.namespaces and key[0] not in self.namespaces:
            return
        if event_type == "DELETED":
            self.objects.pop(key, None)
            if not self.listing.done:
                self._deleted.add((key, str(metadata.get("uid"))))
            self._changed(key)
            return
        old = self.objects.get(key)
        version = resource_version(body)
        if old is not None and version is not None and resource_version(old) == version:
            return  # the echo of a status write, whose answer the store holds already
        self.objects[key] = body if isinstance(body, dict) else dict(body.items())
        new = self.objects[key]
        # The echo of a status write (ours, or anyone's) changes nothing the sync reads:
        # only a new generation (a spec change), a new object under the same name or a
        # deletion is worth a sync.
        if old is None or _generation(old) != _generation(new):
            self._changed(key)

    async def fill(self) -> None:
        """Learn every import before the first sync; a refused list is retried until allowed."""
        for item in await self.listing.until_allowed():
            metadata = item["metadata"]
            key = (str(metadata["namespace"]), str(metadata["name"]))
            if (key, str(metadata.get("uid"))) not in self._deleted:
                # An event delivered meanwhile is as new as the list, or newer.
                self.objects.setdefault(key, item)
        self._deleted.clear()

    async def sweep(self) -> None:
        """Drop the imports that are gone although no event said so (see the module's doc)."""
        try:
            items = await asyncio.to_thread(list_all, self.kube, self._paths)
        except KubeError as error:
            log.warning("listing SharedServiceImports for the resync: %s", error)
            return
        present = {(str(i["metadata"]["namespace"]), str(i["metadata"]["name"])) for i in items}
        for key in [k for k in self.objects if k not in present]:
            # Created after the list was taken, or really gone: a list of that name tells
            # (a list, since reading one import is a permission the operator has no use for).
            try:
                found = await asyncio.to_thread(self._exists, key)
            except KubeError as error:
                log.warning("listing SharedServiceImport %s/%s: %s", *key, error)
                continue
            if not found and key in self.objects:
                log.info("%s/%s was deleted while no event said so", *key)
                self.event("DELETED", self.objects[key])

    def _exists(self, key: ImportKey) -> bool:
        namespace, name = key
        listing = self.kube.request(
            "GET", _collection(namespace), params={"fieldSelector": f"metadata.name={name}"}
        )
        return bool(listing.get("items"))

    def _changed(self, key: ImportKey) -> None:
        if self.active:
            self._on_change(key)

    def __len__(self) -> int:
        return len(self.objects)


def _collection(namespace: str | None) -> str:
    return collection_path(
        group=api.GROUP, version=api.VERSION, plural=api.IMPORT_PLURAL, namespace=namespace
    )


def _generation(body: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """What of an import's metadata says its spec (or its very identity) may have changed.

    The uid is there because an import deleted and created again under its name while a
    watch was broken comes back, in the list that mends the watch, with the same generation
    (1, like any new object) and a spec that may differ in anything.
    """
    metadata = body.get("metadata", {})
    return metadata.get("uid"), metadata.get("generation"), metadata.get("deletionTimestamp")
