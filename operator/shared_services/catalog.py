"""What a SharedServiceCatalog should hold: which imports to make, change and remove.

A pure step, like :mod:`decide` for an import: given the catalog's spec, the remote
Services its namespace's watch holds (or None while that cannot be known), the imports of
the catalog's namespace and the local names that something else holds, :func:`plan` says
what to write and what the status says. The live part (:mod:`shared_services.catalogs`)
reads and writes.

The rules:

- A selected Service is a LoadBalancer Service the selector picks (with the RemoteCluster's
  ``requireExport``, only exported ones are ever seen).
- Its import is named after it (the rename map first, else the prefix and its name). An
  import of that name that the catalog did not make, or a local Service of that name that
  no import of the catalog made, is a conflict: nothing is made, and only the catalog says
  so. The catalog never takes over what it did not make.
- An import the catalog made whose Service is no longer selected (withdrawn, deselected,
  deleted) is removed. While the namespace cannot be read (an outage), nothing is removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared_services import advice, api, conditions
from shared_services.advice import Reason
from shared_services.api import JSON

SYNCED = Reason.SYNCED
PENDING = Reason.PENDING
CONFLICT = Reason.CONFLICT


@dataclass(frozen=True)
class ImportView:
    """An import in the catalog's namespace, as far as the catalog cares."""

    name: str
    ours: bool  # made by this catalog (its controller owner)
    remote: str | None  # the remote Service it imports, if from the catalog's namespace
    ready: bool


@dataclass(frozen=True)
class Unknown:
    """Why the catalog's Services cannot be read now (or ever, until something changes)."""

    reason: str
    message: str
    # Known to give nothing (a RemoteCluster that denies the namespace): its imports go.
    empty: bool = False


@dataclass(frozen=True)
class CatalogPlan:
    """The writes, and the status that follows once they are made."""

    create: tuple[tuple[str, str], ...] = ()  # (import name, remote Service name)
    update: tuple[tuple[str, str], ...] = ()  # imports made by the catalog, source changed
    delete: tuple[str, ...] = ()
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        """Whether anything is to be written besides the status."""
        return bool(self.create or self.update or self.delete)


def selected(spec: api.CatalogSpec, services: Iterable[JSON]) -> dict[str, str]:
    """Local import name by remote Service name, for every Service the catalog selects."""
    chosen: dict[str, str] = {}
    for service in services:
        metadata = service.get("metadata") or {}
        name = metadata.get("name")
        kind = (service.get("spec") or {}).get("type")
        if not isinstance(name, str) or kind != "LoadBalancer":
            continue
        if spec.selects(metadata.get("labels") or {}):
            chosen[name] = spec.local_name(name)
    return chosen


def plan(
    body: JSON,
    spec: api.CatalogSpec,
    services: Sequence[JSON] | Unknown,
    imports: Mapping[str, ImportView],
    taken: frozenset[str] = frozenset(),
) -> CatalogPlan:
    """What the catalog should make, change and remove, and what its status says."""
    source = f"{spec.cluster}/{spec.namespace}"
    ours = {name: view for name, view in imports.items() if view.ours}
    if isinstance(services, Unknown):
        delete = tuple(sorted(ours)) if services.empty else ()
        kept = [] if services.empty else [_entry(view) for view in ours.values()]
        ready = _ready(body, "False", services.reason, services.message)
        return CatalogPlan(delete=delete, status=_status(body, source, kept, ready))
    wanted = selected(spec, services)
    create: list[tuple[str, str]] = []
    update: list[tuple[str, str]] = []
    entries: list[JSON] = []
    used: set[str] = set()
    for remote, local in sorted(wanted.items()):
        view = imports.get(local)
        if (
            local in used
            or (view is not None and not view.ours)
            or (view is None and local in taken)
        ):
            entries.append(_named(remote, local, CONFLICT))
            continue
        used.add(local)
        if view is None:
            create.append((local, remote))
            entries.append(_named(remote, local, PENDING))
            continue
        if view.remote != remote:
            update.append((local, remote))
        entries.append(_named(remote, local, "Imported" if view.ready else PENDING))
    delete = tuple(sorted(name for name in ours if name not in used))
    return CatalogPlan(
        create=tuple(create),
        update=tuple(update),
        delete=delete,
        status=_status(body, source, entries, _verdict(body, source, entries)),
    )


def _entry(view: ImportView) -> JSON:
    return _named(view.remote or view.name, view.name, "Imported" if view.ready else PENDING)


def _named(remote: str, local: str, state: str) -> JSON:
    return {"name": remote, "importName": local, "state": state}


def _verdict(body: JSON, source: str, entries: Sequence[JSON]) -> JSON:
    clashes = [e for e in entries if e["state"] == CONFLICT]
    waiting = [e for e in entries if e["state"] == PENDING]
    if clashes:
        names = ", ".join(f"{e['name']} as {e['importName']}" for e in clashes[:5])
        more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        message = (
            f"not imported, as the name is taken by an import or Service the catalog did not "
            f"make: {names}{more}"
        )
        return _ready(body, "False", CONFLICT, message)
    if waiting:
        names = ", ".join(e["importName"] for e in waiting[:5])
        more = f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""
        return _ready(body, "False", PENDING, f"imports not ready yet: {names}{more}")
    return _ready(body, "True", SYNCED, f"{len(entries)} Services of {source} imported")


def _ready(body: JSON, status: str, reason: str, message: str) -> JSON:
    old = (body.get("status") or {}).get("conditions") or []
    said = message if status == "True" else advice.advised(message, reason, advice.CATALOG_STEPS)
    return conditions.condition(
        type_="Ready",
        status="True" if status == "True" else "False",
        reason=reason,
        message=said,
        previous=old,
        generation=(body.get("metadata") or {}).get("generation"),
    )


def _status(body: JSON, source: str, entries: Sequence[JSON], ready: JSON) -> dict[str, Any]:
    states = [e["state"] for e in entries]
    return {
        "observedGeneration": (body.get("metadata") or {}).get("generation"),
        "source": source,
        "imported": states.count("Imported"),
        "pending": states.count(PENDING),
        "conflicts": states.count(CONFLICT),
        "services": list(entries[: api.MAX_CATALOG_ENTRIES]),
        "conditions": [ready],
    }
