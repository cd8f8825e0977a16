"""What of each watched object the operator keeps in memory: the fields it reads, no more.

Whoever writes an object chooses its size, up to the API server's limit of about 1.5 MB: a
tenant may label a Service of their own as the operator's, and Kubernetes copies those labels
onto the EndpointSlices and Endpoints it makes for that Service; the central team's Services
may carry any labels and annotations. A cache that held whole objects would hold all of that,
three times over for a tenant's Service, and a few hundred such Services would push the
operator past its memory limit again after every restart. So each informer keeps a view:

- of a local object, only one an import owns (the operator's labels *and* a controlling
  owner reference to the import the label names, as every object the operator writes has),
  and of it only the fields that the comparison with the desired object reads; and every
  EndpointSlice labelled as an import's that names a Service (one created by hand, or
  made by Kubernetes for a selector added to the import's Service, with the Service's
  labels copied), since kube-proxy sends that Service's traffic to it and the writer
  removes those of the import's own Services;
- of a remote Service, its type, ports and load-balancer ingress.

Every list in a view is cut just beyond the most that a desired object holds, which keeps
each comparison's answer: a list longer than any the operator writes still differs from
every one it writes. Only the owner references other than the import's cannot be cut that
way, since a patch of the references sends them back whole; when there are many, the view
says so (:data:`REFERENCES_CUT`) and the writer reads the object afresh before such a patch.

A view's short texts are interned. Each object arrives as JSON of its own, parsed into
strings of its own, so the same namespace, import name and uid, label value, protocol and
address type would otherwise be held once per object that names them (an import's name is
in its three objects' names, labels and owner references): about 50 bytes each, some
twenty times per import. Interned, each such text is held once. Long texts are rarely
repeated and are not interned.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from shared_services import api, builders
from shared_services.api import JSON

# Beyond what any desired object holds: 1,000 addresses per import, 100 ports per slice.
_MAX_ADDRESSES = api.MAX_STATUS_ADDRESSES + 1
_MAX_PORTS = 101
_MAX_SUBSETS = 2
_MAX_INGRESS = 2 * api.MAX_STATUS_ADDRESSES + 1
# Owner references of others kept with an object; beyond that the view is marked.
_MAX_OTHER_REFERENCES = 8
REFERENCES_CUT = "referencesCut"
# Longer than any name, address or port name the API server accepts, or a resolver reads.
_MAX_TEXT = 1024
# Labels of a remote Service kept for catalogs' selectors: beyond any real Service's.
MAX_REMOTE_LABELS = 32
# Texts up to this long are interned: names, uids, addresses, label values, times.
_MAX_INTERNED = 64

_OUR_LABELS = (
    builders.MANAGED_BY_LABEL,
    builders.IMPORT_LABEL,
    builders.SERVICE_NAME_LABEL,
    builders.SLICE_MANAGED_BY_LABEL,
    builders.SKIP_MIRROR_LABEL,
)
_REFERENCE_FIELDS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")
_METADATA_FIELDS = ("name", "namespace", "uid", "resourceVersion")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object, limit: int) -> list[Any]:
    return list(value[:limit]) if isinstance(value, list) else []


def _pick(value: object, fields: tuple[str, ...]) -> dict[str, Any]:
    given = _mapping(value)
    return {key: given[key] for key in fields if key in given}


def text(value: str) -> str:
    """``value``, interned if short (see the module's doc)."""
    return sys.intern(value) if len(value) <= _MAX_INTERNED else value


def compact(value: object) -> Any:
    """A JSON value rebuilt with its keys and short texts interned, all else as it is."""
    if isinstance(value, Mapping):
        return {text(k) if isinstance(k, str) else k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    if type(value) is str:
        return text(value)
    return value


def _scalar(value: object) -> object:
    """A scalar as it is, a long text cut, anything else as a short text.

    Whatever reads the view reports such a value as malformed, as it would the original.
    """
    if isinstance(value, str):
        return text(value[:_MAX_TEXT])
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value)[:64]


def _scalar_fields(value: object, fields: tuple[str, ...]) -> dict[str, Any]:
    """``fields`` of a mapping, each as :func:`_scalar` keeps it."""
    return {key: _scalar(item) for key, item in _pick(value, fields).items()}


def owns(obj: Mapping[str, Any]) -> bool:
    """Whether an object is one an import's: our labels and its controlling reference.

    The reference is the garbage collector's link to the import; the operator sets it on
    everything it writes. An object that someone labelled as ours without it is theirs,
    and neither cached nor touched. One whose reference was stripped is found again by the
    writer, which asks the API server about a name that something outside the cache holds.
    """
    metadata = _mapping(obj.get("metadata"))
    labels = _mapping(metadata.get("labels"))
    name = labels.get(builders.IMPORT_LABEL)
    if labels.get(builders.MANAGED_BY_LABEL) != builders.MANAGED_BY_VALUE or not name:
        return False
    references = metadata.get("ownerReferences")
    return isinstance(references, list) and any(
        _mapping(r).get("kind") == api.IMPORT_KIND
        and _mapping(r).get("name") == name
        and _mapping(r).get("controller") is True
        for r in references
    )


def service_slice(obj: Mapping[str, Any]) -> bool:
    """Whether an object is an EndpointSlice of a Service, labelled as an import's.

    kube-proxy routes a Service's traffic to every slice that names it, whoever made it: one
    that Kubernetes made for a selector added by hand (copying the Service's labels), or one
    created by hand. Whether the Service is the import's own, and so whether the writer
    removes the slice, is decided from the Service's cache.
    """
    labels = _mapping(_mapping(obj.get("metadata")).get("labels"))
    return (
        labels.get(builders.MANAGED_BY_LABEL) == builders.MANAGED_BY_VALUE
        and bool(labels.get(builders.IMPORT_LABEL))
        and bool(labels.get(builders.SERVICE_NAME_LABEL))
    )


def _metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = _mapping(obj.get("metadata"))
    labels = _mapping(metadata.get("labels"))
    view: dict[str, Any] = {
        **_scalar_fields(metadata, _METADATA_FIELDS),
        "labels": {
            key: text(labels[key]) for key in _OUR_LABELS if isinstance(labels.get(key), str)
        },
    }
    references = [r for r in _list(metadata.get("ownerReferences"), 1 << 16) if _mapping(r)]
    ours = [r for r in references if _mapping(r).get("kind") == api.IMPORT_KIND]
    others = [r for r in references if _mapping(r).get("kind") != api.IMPORT_KIND]
    if len(others) > _MAX_OTHER_REFERENCES or len(ours) > _MAX_OTHER_REFERENCES:
        view[REFERENCES_CUT] = True
        others = []
        ours = ours[:_MAX_OTHER_REFERENCES]
    view["ownerReferences"] = [_scalar_fields(r, _REFERENCE_FIELDS) for r in (*others, *ours)]
    return view


def _ports(value: object) -> list[Any]:
    fields = ("name", "port", "targetPort", "protocol")
    return [
        _scalar_fields(p, fields) if isinstance(p, Mapping) else _scalar(p)
        for p in _list(value, _MAX_PORTS)
    ]


def _service(obj: Mapping[str, Any]) -> JSON:
    spec = _mapping(obj.get("spec"))
    view: dict[str, Any] = {
        **_scalar_fields(spec, ("type", "ipFamilyPolicy")),
        "ports": _ports(spec.get("ports")),
        "ipFamilies": [text(str(f)[:16]) for f in _list(spec.get("ipFamilies"), 3)],
    }
    selector = _mapping(spec.get("selector"))
    if selector:  # only whether there is one is read; one entry says it
        key = next(iter(selector))
        view["selector"] = {text(str(key)[:64]): text(str(selector[key])[:64])}
    return {"kind": "Service", "metadata": _metadata(obj), "spec": view}


def _endpoint(value: object) -> dict[str, Any]:
    endpoint = _mapping(value)
    addresses = [text(str(a)[: api.MAX_IP_LENGTH]) for a in _list(endpoint.get("addresses"), 2)]
    conditions = _scalar_fields(endpoint.get("conditions"), ("ready", "serving", "terminating"))
    return {"addresses": addresses, "conditions": conditions}


def _endpoint_slice(obj: Mapping[str, Any]) -> JSON:
    return {
        "kind": "EndpointSlice",
        "metadata": _metadata(obj),
        **_scalar_fields(obj, ("addressType",)),
        "endpoints": [_endpoint(e) for e in _list(obj.get("endpoints"), _MAX_ADDRESSES)],
        "ports": _ports(obj.get("ports")),
    }


def _addresses(value: object) -> list[dict[str, Any]]:
    return [_scalar_fields(a, ("ip",)) for a in _list(value, _MAX_ADDRESSES)]


def _endpoints(obj: Mapping[str, Any]) -> JSON:
    subsets = [
        {
            "addresses": _addresses(_mapping(s).get("addresses")),
            "notReadyAddresses": _addresses(_mapping(s).get("notReadyAddresses")),
            "ports": _ports(_mapping(s).get("ports")),
        }
        for s in _list(obj.get("subsets"), _MAX_SUBSETS)
    ]
    view: JSON = {"kind": "Endpoints", "metadata": _metadata(obj)}
    if subsets:
        view["subsets"] = subsets
    return view


_VIEWS = {"Service": _service, "EndpointSlice": _endpoint_slice, "Endpoints": _endpoints}


def managed(kind: str) -> Callable[[JSON], JSON | None]:
    """The view of local objects of ``kind`` (Service, EndpointSlice, Endpoints).

    None for an object no import owns: the informer then holds nothing of it.
    """
    view = _VIEWS[kind]
    slices = kind == "EndpointSlice"

    def transform(obj: JSON) -> JSON | None:
        return view(obj) if owns(obj) or (slices and service_slice(obj)) else None

    return transform


def remote_service(obj: JSON) -> JSON:
    """A remote Service as the resolver and the catalogs read it.

    Its type, ports and ingress; and its labels, which a catalog's selector reads: the first
    ``MAX_REMOTE_LABELS`` (as many as a selector's terms), each as long as Kubernetes allows.
    """
    spec = _mapping(obj.get("spec"))
    load_balancer = _mapping(_mapping(obj.get("status")).get("loadBalancer"))
    ingress = load_balancer.get("ingress")
    metadata = _mapping(obj.get("metadata"))
    labels = {
        key: value
        for key, value in list(_mapping(metadata.get("labels")).items())[:MAX_REMOTE_LABELS]
        if isinstance(key, str) and isinstance(value, str) and len(key) <= 317 and len(value) <= 63
    }
    view: JSON = {
        "metadata": {**_scalar_fields(metadata, _METADATA_FIELDS), "labels": labels},
        "spec": {**_scalar_fields(spec, ("type",)), "ports": _ports(spec.get("ports"))},
    }
    if isinstance(ingress, list):
        entries = [
            _scalar_fields(e, ("ip", "hostname")) if isinstance(e, Mapping) else _scalar(e)
            for e in ingress[:_MAX_INGRESS]
        ]
        view["status"] = {"loadBalancer": {"ingress": entries}}
    elif ingress is not None:  # not a list: reported as such by the resolver
        view["status"] = {"loadBalancer": {"ingress": _scalar(ingress)}}
    return view


# What of an import's metadata anything reads: who it is, and whether its spec changed.
_IMPORT_METADATA = ("name", "namespace", "uid", "generation", "resourceVersion")


def shared_service_import(obj: Mapping[str, Any]) -> JSON:
    """An import as the syncs and the catalogs read it: identity, generation, spec, status.

    Not its annotations (``kubectl apply`` keeps a copy of the whole import in one), labels,
    finalizers or managed fields: nothing reads them; of its owner references only the
    catalog that controls it, if one does (the catalog tells its own imports by it). Its
    spec and status are kept whole, interned: the spec is what is synced, and the status is
    compared with the one a sync would write, so that an unchanged import is not written
    again.
    """
    metadata = _mapping(obj.get("metadata"))
    kept: dict[str, Any] = {key: metadata[key] for key in _IMPORT_METADATA if key in metadata}
    if metadata.get("deletionTimestamp") is not None:
        kept["deletionTimestamp"] = metadata["deletionTimestamp"]
    catalogs = [
        _scalar_fields(r, ("kind", "name", "uid", "controller"))
        for r in _list(metadata.get("ownerReferences"), 1 << 16)
        if isinstance(r, Mapping) and r.get("kind") == api.CATALOG_KIND and r.get("controller")
    ][:1]
    if catalogs:
        kept["ownerReferences"] = catalogs
    view: JSON = {"metadata": compact(kept)}
    for part in ("spec", "status"):
        if part in obj:
            view[part] = compact(obj[part])
    return view
