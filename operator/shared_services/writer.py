"""The one place that changes the local cluster's Services, EndpointSlices and Endpoints.

It compares the desired objects with the informers' caches and writes only the difference,
so a sync with nothing to do makes no request at all. It never takes over an object it did
not create: such an object is reported as a conflict and left exactly as it is, and when the
Service itself conflicts no endpoints are written either, since they would attach to
somebody else's Service.

Every name an import needs is checked before any object is created, and while one is
taken nothing is created. A Service created beside somebody else's Endpoints of its name
would have the EndpointSlice mirroring controller copy those Endpoints into slices of the
Service: traffic to addresses that the address policy never judged.

The writes are sent from the event loop (:class:`~shared_services.kube.AsyncKube`): a
sync's writes no longer go through a thread of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared_services import builders, views
from shared_services.api import JSON
from shared_services.informer import InformerGroup, object_key
from shared_services.kube import AsyncKube, Conflict, KubeError, NotFound, collection_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """A kind of object the operator writes."""

    group: str
    version: str
    plural: str
    kind: str

    def collection(self, namespace: str | None) -> str:
        """Its collection path in ``namespace`` (all namespaces when None)."""
        return collection_path(
            group=self.group, version=self.version, plural=self.plural, namespace=namespace
        )

    def path(self, namespace: str, name: str) -> str:
        """The path of one object."""
        return f"{self.collection(namespace)}/{name}"


SERVICE: Final = Kind("", "v1", "services", "Service")
ENDPOINT_SLICE: Final = Kind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
ENDPOINTS: Final = Kind("", "v1", "endpoints", "Endpoints")
MANAGED_KINDS: Final = (SERVICE, ENDPOINT_SLICE, ENDPOINTS)


_BY_KIND: Final = {k.kind: k for k in MANAGED_KINDS}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    """The managed kind of a desired object."""
    return _BY_KIND[str(obj["kind"])]


@dataclass
class Outcome:
    """What one apply did: conflicts found and the writes made (by kind and verb)."""

    conflicts: list[str] = field(default_factory=list)
    writes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def endpoints_written(self) -> bool:
        """Whether an EndpointSlice was created, changed or removed."""
        return any(kind == ENDPOINT_SLICE.kind for kind, _ in self.writes)


class Writer:
    """Applies desired objects to the local cluster through the managed-object caches."""

    def __init__(
        self,
        kube: AsyncKube,
        caches: Mapping[Kind, InformerGroup],
        names: Mapping[Kind, InformerGroup] | None = None,
    ) -> None:
        self.kube = kube
        self.caches = caches
        # The names of every object of each kind not labelled as the operator's; without
        # them, or while a watch is not current, a name outside the caches is asked of the
        # API server.
        self.names = names if names is not None else {}

    async def apply(
        self,
        *,
        owner: builders.Owner,
        desired: builders.Desired,
        kinds: tuple[Kind, ...] = MANAGED_KINDS,
    ) -> Outcome:
        """Make the cluster hold ``desired`` for ``owner``, and nothing else of it.

        Stale objects of the import (an old serviceName, an address family that went away)
        are deleted last, after the new ones exist, so consumers never see a gap.
        """
        outcome = Outcome()
        taken = await self._taken(owner, desired)
        outcome.conflicts.extend(taken.values())
        if (SERVICE.kind, desired.service["metadata"]["name"]) in taken:
            return outcome
        for obj in desired.objects():
            if kind_of(obj) not in kinds or (kind_of(obj).kind, obj["metadata"]["name"]) in taken:
                continue
            # Objects of the import that exist are still kept current; none is created.
            await self._apply_one(owner, obj, outcome, create=not taken)
            if outcome.conflicts and obj is desired.service:
                return outcome
        keep = {(kind_of(o).kind, o["metadata"]["name"]) for o in desired.objects()}
        if taken:
            # The objects of a former serviceName serve until those of the new one exist,
            # which they cannot while one of its names is taken.
            service = desired.service["metadata"]["name"]
            keep |= {
                (kind.kind, obj["metadata"]["name"])
                for kind, obj in self.owned(owner)
                if _service_of(kind, obj) != service
            }
        await self._remove(owner, outcome, keep=keep, kinds=kinds)
        return outcome

    async def remove(self, *, owner: builders.Owner) -> Outcome:
        """Delete every object of an import that is gone."""
        outcome = Outcome()
        await self._remove(owner, outcome, keep=set(), kinds=MANAGED_KINDS)
        return outcome

    def owned(self, owner: builders.Owner) -> list[tuple[Kind, JSON]]:
        """The cached objects that carry the import's label in its namespace."""
        return [
            (kind, obj)
            for kind, cache in self.caches.items()
            for obj in cache.indexed(owner.namespace, owner.name)
        ]

    async def _taken(
        self, owner: builders.Owner, desired: builders.Desired
    ) -> dict[tuple[str, str], str]:
        """The names the import needs that objects of others hold: the conflict of each.

        Whatever kinds this apply writes, every name is checked, since the Service alone
        already draws in an Endpoints of its name. The caches hold only the imports' own
        objects; a name they do not hold is free when no object holds it (:meth:`_free`).
        Only a name that something else holds, or one the watches cannot vouch for, is
        asked of the API server, which tells whose it is: for 10,000 new imports with free
        names, that is no request instead of 30,000.
        """
        taken: dict[tuple[str, str], str] = {}
        for obj in desired.objects():
            kind = kind_of(obj)
            name = obj["metadata"]["name"]
            key = f"{owner.namespace}/{name}"
            actual = self.caches[kind].get(key)
            if actual is None and not self._free(kind, key):
                actual = await self.kube.get(kind.path(owner.namespace, name))
            if actual is not None and not _ours(actual, owner):
                taken[(kind.kind, name)] = _conflict_message(kind, actual, owner)
        return taken

    def _free(self, kind: Kind, key: str) -> bool:
        """Whether no object holds ``key``: neither watch of the kind, both current, sends one.

        The caches' watch sends every object labelled as the operator's, and the names'
        watch every other, so that between them each name is seen exactly once.
        """
        names = self.names.get(kind)
        return (
            names is not None
            and self.caches[kind].named(key) is False
            and names.named(key) is False
        )

    async def _apply_one(
        self, owner: builders.Owner, obj: JSON, outcome: Outcome, *, create: bool = True
    ) -> None:
        kind = kind_of(obj)
        path = kind.path(owner.namespace, obj["metadata"]["name"])
        key = f"{owner.namespace}/{obj['metadata']['name']}"
        actual = self.caches[kind].get(key)
        if actual is None and not create:
            return
        # The cache can be behind: the object it holds may have been replaced by a
        # same-named one of somebody else's. Every change names the uid it was computed for,
        # so such a change fails instead of landing on the newcomer; the object is then read
        # afresh and judged again, once.
        for attempt in (1, 2):
            if actual is None:
                actual = await self._create(kind, owner, obj, outcome)
                if actual is None:
                    return
            if not _ours(actual, owner):
                outcome.conflicts.append(_conflict_message(kind, actual, owner))
                return
            change = builders.patch_for(desired=obj, actual=actual)
            if change is not None and _cut_references(actual, change):
                # The cache left out others' references, which this patch sends back.
                actual = await self.kube.get(path)
                if actual is None:
                    return  # deleted meanwhile: its DELETED event brings the import back
                change = builders.patch_for(desired=obj, actual=actual)
            if change is None:
                return
            try:
                await self._change(kind, path, actual, change, outcome)
            except Conflict:
                if attempt == 2:
                    raise  # replaced again meanwhile: the retry's backoff takes it from here
                self.caches[kind].drop(key)
                actual = await self.kube.get(path)
            else:
                return

    async def _create(
        self, kind: Kind, owner: builders.Owner, obj: JSON, outcome: Outcome
    ) -> JSON | None:
        """Create ``obj``; return the object that holds its name instead, if there is one."""
        cache = self.caches[kind]
        try:
            with cache.writing(f"{owner.namespace}/{obj['metadata']['name']}"):
                cache.put(await self.kube.create(kind.collection(owner.namespace), obj))
        except Conflict:
            # Its name is taken; None when it was deleted meanwhile, and the watch event of
            # that brings the import back here.
            return await self.kube.get(kind.path(owner.namespace, obj["metadata"]["name"]))
        outcome.writes.append((kind.kind, "create"))
        return None

    async def _change(
        self, kind: Kind, path: str, actual: JSON, change: builders.Change, outcome: Outcome
    ) -> None:
        """Patch or re-create ``actual``; raises Conflict when it is no longer that object."""
        uid = actual["metadata"].get("uid")
        cache = self.caches[kind]
        with cache.writing(object_key(actual)):
            if change.kind == "patch":
                try:
                    cache.put(await self.kube.patch(path, change.body, uid=uid))
                except NotFound:
                    return  # deleted by hand meanwhile: its DELETED event triggers a re-create
                outcome.writes.append((kind.kind, "patch"))
                return
            await self.kube.delete(path, uid=uid)
            cache.put(await self.kube.create(path.rsplit("/", 1)[0], change.body))
        outcome.writes.append((kind.kind, "recreate"))

    async def _remove(
        self,
        owner: builders.Owner,
        outcome: Outcome,
        *,
        keep: set[tuple[str, str]],
        kinds: tuple[Kind, ...],
    ) -> None:
        owned = self.owned(owner)
        services = {obj["metadata"]["name"] for kind, obj in owned if kind is SERVICE}
        for kind, obj in owned:
            if kind not in kinds:
                continue
            metadata = obj["metadata"]
            if (kind.kind, metadata["name"]) in keep:
                continue
            if not views.owns(obj) and _service_of(kind, obj) not in services:
                continue  # a slice of somebody else's Service that copied the labels
            try:
                deleted = await self.kube.delete(
                    kind.path(owner.namespace, metadata["name"]), uid=metadata.get("uid")
                )
            except Conflict:
                continue  # a newer object took the name; it is not ours to delete
            except KubeError as error:
                log.warning(
                    "deleting %s %s/%s: %s", kind.kind, owner.namespace, metadata["name"], error
                )
                raise
            self.caches[kind].drop(object_key(obj))
            if deleted:  # gone already (the garbage collector, a hand): nothing was written
                outcome.writes.append((kind.kind, "delete"))


def _cut_references(actual: Mapping[str, Any], change: builders.Change) -> bool:
    """Whether ``change`` rewrites owner references of which the cached view kept too few."""
    metadata = actual.get("metadata") or {}
    return bool(metadata.get(views.REFERENCES_CUT)) and "ownerReferences" in (
        change.body.get("metadata") or {}
    )


def _service_of(kind: Kind, obj: Mapping[str, Any]) -> str | None:
    """The name of the Service an object of ours belongs to."""
    metadata = obj.get("metadata") or {}
    if kind is ENDPOINT_SLICE:
        return (metadata.get("labels") or {}).get(builders.SERVICE_NAME_LABEL)
    return metadata.get("name")


def _ours(actual: Mapping[str, Any], owner: builders.Owner) -> bool:
    """Whether the object is the import's: by its labels, or by its owner reference."""
    return builders.owned_by(actual, (owner.namespace, owner.name)) or _refers_to(actual, owner)


def _refers_to(actual: Mapping[str, Any], owner: builders.Owner) -> bool:
    """Whether the object names the import, by uid, as its controlling owner.

    Only the operator sets that reference, so an object carrying it is ours even when
    someone stripped its labels; it is restored rather than reported as a conflict.
    """
    references = (actual.get("metadata") or {}).get("ownerReferences") or []
    return bool(owner.uid) and any(
        isinstance(r, Mapping) and r.get("uid") == owner.uid and r.get("controller")
        for r in references
    )


def _conflict_message(kind: Kind, actual: Mapping[str, Any], owner: builders.Owner) -> str:
    metadata = actual.get("metadata", {})
    labels = metadata.get("labels") or {}
    name = f"{kind.kind} {owner.namespace}/{metadata.get('name')}"
    other = labels.get(builders.IMPORT_LABEL)
    if builders.is_managed(actual) and other and other != owner.name:
        return f"{name} belongs to SharedServiceImport {other!r}; choose another serviceName"
    return (
        f"{name} already exists and is not managed by shared-services-operator; "
        "delete it or choose another serviceName"
    )
