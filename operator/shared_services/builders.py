"""The desired local objects of an import, and the decision whether an existing one needs a write.

Everything here is a pure function of its arguments: no API client, no clock, no I/O. That
is what lets the writer stay a thin loop ("build, compare, patch if needed") and what lets
the shapes and the comparison be pinned by unit tests without any cluster.

Two properties matter more than anything else in this module:

* ``build`` is deterministic. The same import and the same remote state always give the
  same objects, byte for byte (addresses canonicalised, de-duplicated and sorted), so a
  resync or a repeated watch event never looks like a change.
* ``patch_for`` looks only at the fields the operator owns and tolerates everything the
  API server adds or rearranges on its own. An idle operator therefore writes nothing,
  while a hand edit of an owned field is always seen and undone.

Kubernetes objects are plain JSON dicts in their wire form (camelCase keys), as the API
returns them, not the kubernetes client's model classes. The values that are the API's own
concepts (a resolved port, an endpoint address, the import's kind) come from
:mod:`shared_services.api`, so that each has one definition.
"""

import contextlib
import copy
import ipaddress
import reprlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from shared_services import api
from shared_services.advice import Reason
from shared_services.api import IPAddress, ResolvedPort, endpoint_ip

# --- Labels, names and references -----------------------------------------------------------

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "shared-services-operator"
IMPORT_LABEL = "sharedservices.io/import"
# The Service an EndpointSlice belongs to; kube-proxy and CoreDNS select slices by it.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# A value other than the EndpointSlice controller's own keeps that controller from
# deleting or rewriting our slices (it only touches slices it manages).
SLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICE_MANAGED_BY_VALUE = "shared-services-operator.sharedservices.io"
# Without it the EndpointSlice mirroring controller would copy our Endpoints into a second,
# duplicate set of slices for the same selectorless Service.
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
SKIP_MIRROR_VALUE = "true"

IPV4 = "IPv4"
IPV6 = "IPv6"
SINGLE_STACK = "SingleStack"
PREFER_DUAL_STACK = "PreferDualStack"
PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
# The API server defaults an absent protocol to TCP, so absent and "TCP" mean the same.
DEFAULT_PROTOCOL = "TCP"

# Label values are limited to 63 characters, while object names may be longer.
_MAX_LABEL_VALUE = 63
_MIN_PORT = 1
_MAX_PORT = 65535
# What one EndpointSlice holds; the operator writes one slice per address family.
_MAX_SLICE_PORTS = 100
# The addresses one import serves, both families together. A slice holds 1,000 of its
# family, but the status lists every address in one list of at most this many, and the
# legacy Endpoints are cut at 1,000 by their consumers: one limit, so that nothing is
# written that the status then cannot say.
_MAX_ADDRESSES = api.MAX_STATUS_ADDRESSES


class LimitExceeded(ValueError):
    """More ports or addresses than an EndpointSlice holds; ``reason`` names which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def managed_selector() -> str:
    """Label selector of every object labelled as the operator's, for listing and watching.

    Which of them an import really owns, its controlling reference decides (``views.owns``);
    with :func:`others_selector`, it splits a kind's objects in two, so that every name
    is seen by exactly one of two watches.
    """
    return f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"


def others_selector() -> str:
    """Label selector of every object not labelled as the operator's (see above)."""
    return f"{MANAGED_BY_LABEL}!={MANAGED_BY_VALUE}"


def slice_name(*, service_name: str, address_type: str) -> str:
    """Name of the EndpointSlice of one address family.

    Fixed names, rather than the generateName the EndpointSlice controller uses, make a
    create idempotent: an operator killed between two writes finds its slice again on
    restart instead of making a duplicate.
    """
    return f"{service_name}-{address_type.lower()}"


# --- Inputs and outputs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The SharedServiceImport that owns the written objects."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Desired:
    """The objects one import should have, in the order they are best written."""

    service: dict[str, Any]
    endpoint_slices: tuple[dict[str, Any], ...]
    endpoints: dict[str, Any]

    def objects(self) -> tuple[dict[str, Any], ...]:
        """Service first, so that consumers never see endpoints of a Service not yet there."""
        return (self.service, *self.endpoint_slices, self.endpoints)


@dataclass(frozen=True)
class Change:
    """What the writer has to do to an existing object.

    ``patch``: send ``body`` as a JSON merge patch (``application/merge-patch+json``).
    ``recreate``: the object differs in an immutable field; delete it (with a uid
    precondition, so that a newer object of the same name is never deleted) and create
    ``body``, which is then the whole desired object.
    """

    kind: Literal["patch", "recreate"]
    body: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """An ingress entry that was not used, and why; ``value`` is bounded for messages."""

    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.value} ({self.reason})"


@dataclass(frozen=True)
class IngressInfo:
    """What a remote LoadBalancer Service's status offers as addresses.

    ``ips`` are usable and canonical; ``hostnames`` still need resolving by the caller;
    ``rejected`` lists what was dropped so that the import can say so instead of staying
    silently empty.
    """

    ips: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    rejected: tuple[Rejected, ...] = ()


# --- Addresses -------------------------------------------------------------------------------

# Enough to recognise a value in a message, short enough for an Event (1 kB at most).
_MAX_DESCRIPTION = 80
_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlist = 4
_repr.maxdict = 4
_repr.maxlevel = 2


def describe(value: object) -> str:
    """Render a raw value short and printable, safe to put in a condition or an Event.

    Remote status is not under our control: a 10 kB string or a control character must not
    end up verbatim in a message the API server would reject or a terminal would garble.
    """
    if isinstance(value, str) and value.isprintable():
        if len(value) <= _MAX_DESCRIPTION:
            return value
        return f"{value[:_MAX_DESCRIPTION]}... ({len(value)} chars)"
    text = _repr.repr(value)
    return text if len(text) <= _MAX_DESCRIPTION else f"{text[:_MAX_DESCRIPTION]}..."


def canonical_hostname(raw: object) -> str:
    """Lower-case a DNS name and drop its final dot; raise ValueError if it is not one.

    Validating before resolving keeps garbage from remote status out of DNS queries; the
    rule is the one every hostname meets (:func:`api.hostname_problem`).
    """
    if not isinstance(raw, str):
        raise ValueError(f"not a string but {type(raw).__name__}")  # noqa: TRY004
    problem = api.hostname_problem(raw)
    if problem is not None:
        raise ValueError(problem)
    return raw.lower().removesuffix(".")


def _sorted_addresses(addresses: Iterable[IPAddress]) -> tuple[list[str], list[str]]:
    unique = set(addresses)
    ipv4 = sorted(a for a in unique if isinstance(a, ipaddress.IPv4Address))
    ipv6 = sorted(a for a in unique if isinstance(a, ipaddress.IPv6Address))
    return [str(a) for a in ipv4], [str(a) for a in ipv6]


# --- Building --------------------------------------------------------------------------------


def owner_reference(owner: Owner) -> dict[str, Any]:
    """Point at the import, so that the garbage collector removes our objects with it."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.IMPORT_KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        # True would make a foreground deletion of the import wait for these objects, but
        # setting it requires the writer to have update permission on the import's
        # finalizers subresource; the objects are cheap to collect afterwards, so least
        # privilege wins.
        "blockOwnerDeletion": False,
    }


def _metadata(*, owner: Owner, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, IMPORT_LABEL: owner.name, **labels},
        "ownerReferences": [owner_reference(owner)],
    }


def _named(port: ResolvedPort, fields: Mapping[str, Any]) -> dict[str, Any]:
    # An unnamed port has no "name" key at all, as the API server returns it.
    named: dict[str, Any] = {"name": port.name} if port.name else {}
    return {**named, **fields}


def _check_label_value(value: str, what: str) -> None:
    if len(value) > _MAX_LABEL_VALUE:
        raise ValueError(
            f"{what} {describe(value)} is longer than {_MAX_LABEL_VALUE} characters "
            "and cannot be a label value"
        )


def _family_fields(
    *, ipv4: Sequence[str], ipv6: Sequence[str], cluster: Collection[str] | None
) -> dict[str, Any]:
    """The Service's IP families: those of its addresses, as far as the cluster has them.

    kube-proxy routes a ClusterIP only to endpoints of its own family, and cluster DNS
    answers A and AAAA for the families a Service has. A single-stack IPv4 Service (the
    default on most clusters) in front of an IPv6 VIP is therefore unreachable, and a
    dual-stack one in front of an IPv4 VIP answers AAAA with an address that refuses. With
    no addresses, or none of a family the cluster has, nothing is said: the families stay
    as they are rather than change back and forth.
    """
    present = [family for family, ips in ((IPV4, ipv4), (IPV6, ipv6)) if ips]
    usable = [f for f in present if cluster is None or f in cluster]
    if not usable:
        return {}
    policy = SINGLE_STACK if len(usable) == 1 else PREFER_DUAL_STACK
    return {"ipFamilyPolicy": policy, "ipFamilies": usable}


def build(
    *,
    owner: Owner,
    service_name: str,
    ports: Sequence[ResolvedPort],
    addresses: Sequence[str],
    families: Collection[str] | None = None,
) -> Desired:
    """Build the whole set of local objects for one import.

    ``families`` are the address families the local cluster gives Services (from its
    ServiceCIDRs), None when unknown: the Service takes the families of its addresses that
    the cluster has, so that a name resolves to exactly the families that lead somewhere.

    Built in full every time, rather than edited, so that the result depends on nothing
    but the arguments. An EndpointSlice exists only for a family that has addresses: the
    writer deletes the other one. Raises ValueError for input the API server would reject
    anyway (no ports, an unusable address, a name too long for a label), so that the
    caller can report it on the import instead of retrying a write doomed to fail.
    """
    ipv4, ipv6 = _checked(owner=owner, service_name=service_name, ports=ports, addresses=addresses)
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner=owner, name=service_name, labels={}),
        "spec": {
            # No selector: the endpoints are ours to write, not derived from pods.
            "type": "ClusterIP",
            "ports": [
                _named(p, {"port": p.port, "targetPort": p.target_port, "protocol": p.protocol})
                for p in ports
            ],
            **_family_fields(ipv4=ipv4, ipv6=ipv6, cluster=families),
        },
    }
    slices = tuple(
        _endpoint_slice(owner, service_name, address_type, ips, ports)
        for address_type, ips in ((IPV4, ipv4), (IPV6, ipv6))
        if ips
    )
    return Desired(
        service=service,
        endpoint_slices=slices,
        endpoints=_endpoints(owner, service_name, (*ipv4, *ipv6), ports),
    )


def _checked(
    *, owner: Owner, service_name: str, ports: Sequence[ResolvedPort], addresses: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The addresses by family, sorted; ValueError for what the API server would refuse."""
    if not ports:
        raise ValueError("a Service needs at least one port")
    if len(ports) > _MAX_SLICE_PORTS:
        # Only a remote Service's own ports can be this many: spec.ports is limited.
        raise LimitExceeded(
            Reason.TOO_MANY_PORTS,
            f"the source has {len(ports)} ports, more than the {_MAX_SLICE_PORTS} an "
            "EndpointSlice holds; list the ports to import in spec.ports",
        )
    _check_label_value(owner.name, "import name")
    _check_label_value(service_name, "service name")
    parsed = []
    for raw in addresses:
        try:
            parsed.append(endpoint_ip(raw))
        except ValueError as error:
            raise ValueError(f"address {describe(raw)} is unusable: {error}") from None
    ipv4, ipv6 = _sorted_addresses(parsed)
    if len(ipv4) + len(ipv6) > _MAX_ADDRESSES:
        raise LimitExceeded(
            Reason.TOO_MANY_ADDRESSES,
            f"the source has {len(ipv4) + len(ipv6)} addresses ({len(ipv4)} IPv4, "
            f"{len(ipv6)} IPv6), more than the {_MAX_ADDRESSES} one import serves",
        )
    return ipv4, ipv6


def _endpoint_slice(
    owner: Owner,
    service_name: str,
    address_type: str,
    ips: Sequence[str],
    ports: Sequence[ResolvedPort],
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _metadata(
            owner=owner,
            name=slice_name(service_name=service_name, address_type=address_type),
            labels={
                SERVICE_NAME_LABEL: service_name,
                SLICE_MANAGED_BY_LABEL: SLICE_MANAGED_BY_VALUE,
            },
        ),
        "addressType": address_type,
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
        "ports": [_named(p, {"port": p.target_port, "protocol": p.protocol}) for p in ports],
    }


def _endpoints(
    owner: Owner, service_name: str, ips: Sequence[str], ports: Sequence[ResolvedPort]
) -> dict[str, Any]:
    endpoints: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": _metadata(
            owner=owner, name=service_name, labels={SKIP_MIRROR_LABEL: SKIP_MIRROR_VALUE}
        ),
    }
    if ips:
        # The API server refuses a subset without addresses, so no addresses means no subsets.
        endpoints["subsets"] = [
            {
                "addresses": [{"ip": ip} for ip in ips],
                "ports": [
                    _named(p, {"port": p.target_port, "protocol": p.protocol}) for p in ports
                ],
            }
        ]
    return endpoints


# --- Ownership -------------------------------------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(obj.get("metadata")).get("labels"))


def is_managed(obj: Mapping[str, Any]) -> bool:
    """Whether an object carries our managed-by label.

    The writer changes nothing that lacks it: a same-named Service made by someone else is
    a conflict to report, never an object to take over.
    """
    return _labels(obj).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def owned_by(obj: Mapping[str, Any], owner_namespace_name: tuple[str, str]) -> bool:
    """Whether an object is ours and was written for the import ``(namespace, name)``.

    Tells a second import claiming the same Service name apart from the one that made it.
    """
    namespace, name = owner_namespace_name
    return (
        is_managed(obj)
        and _mapping(obj.get("metadata")).get("namespace") == namespace
        and _labels(obj).get(IMPORT_LABEL) == name
    )


# --- Comparison ------------------------------------------------------------------------------
#
# Each "view" below reduces an object, desired or actual, to the fields we own in a form
# where everything the API server may add or rearrange compares equal. Desired and actual go
# through the same function, so the comparison is symmetric by construction.


def _is_import_reference(reference: object) -> bool:
    if not isinstance(reference, Mapping):
        return False
    api_version = reference.get("apiVersion")
    return (
        reference.get("kind") == api.IMPORT_KIND
        and isinstance(api_version, str)
        and api_version.split("/", 1)[0] == api.GROUP
    )


def _reference_view(reference: Mapping[str, Any]) -> tuple[str, ...]:
    return (
        str(reference.get("apiVersion")),
        str(reference.get("kind")),
        str(reference.get("name")),
        str(reference.get("uid")),
        # Unset and false mean the same to the garbage collector.
        str(reference.get("controller") is True),
        str(reference.get("blockOwnerDeletion") is True),
    )


def _metadata_patch(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    desired_meta = _mapping(desired.get("metadata"))
    actual_meta = _mapping(actual.get("metadata"))

    # Only our keys are compared and sent; a merge patch merges maps key by key, so labels
    # and annotations that others added stay as they are.
    ours = _mapping(desired_meta.get("labels"))
    theirs = _mapping(actual_meta.get("labels"))
    if any(theirs.get(key) != value for key, value in ours.items()):
        patch["labels"] = dict(ours)

    desired_refs = [
        r for r in _list(desired_meta.get("ownerReferences")) if _is_import_reference(r)
    ]
    actual_refs = [r for r in _list(actual_meta.get("ownerReferences")) if isinstance(r, Mapping)]
    ours_now = sorted(_reference_view(r) for r in actual_refs if _is_import_reference(r))
    if ours_now != sorted(_reference_view(r) for r in desired_refs):
        # A merge patch replaces the whole list, so references to other owners are sent
        # back unchanged; a stale one to an import of the same name is replaced by ours.
        patch["ownerReferences"] = [
            copy.deepcopy(dict(r)) for r in actual_refs if not _is_import_reference(r)
        ] + copy.deepcopy(desired_refs)
    return patch


def _protocol(port: Mapping[str, Any]) -> object:
    return port.get("protocol") or DEFAULT_PROTOCOL


def _service_ports_view(ports: object) -> list[tuple[object, ...]]:
    view: list[tuple[object, ...]] = []
    for port in _list(ports):
        if not isinstance(port, Mapping):
            view.append(("invalid", describe(port)))
            continue
        number = port.get("port")
        # The API server fills an absent targetPort with the port; nodePort and appProtocol
        # are not ours and are left out.
        target = port.get("targetPort")
        view.append(
            (port.get("name") or "", number, number if target is None else target, _protocol(port))
        )
    return view


def _endpoint_ports_view(ports: object) -> list[tuple[object, ...]]:
    return [
        (port.get("name") or "", port.get("port"), _protocol(port))
        if isinstance(port, Mapping)
        else ("invalid", describe(port))
        for port in _list(ports)
    ]


def _conditions_ready(conditions: object) -> bool:
    # We write only ready=true. serving=true and terminating=false say the same thing, so a
    # server or tool filling them in is no drift; serving=false or terminating=true would
    # change how kube-proxy routes, and is.
    given = _mapping(conditions)
    serving = given.get("serving")
    terminating = given.get("terminating")
    return (
        given.get("ready") is True
        and (serving is None or serving is True)
        and (terminating is None or terminating is False)
    )


def _slice_endpoints_view(endpoints: object) -> list[tuple[tuple[str, ...], bool]]:
    view = []
    for item in _list(endpoints):
        endpoint = _mapping(item)
        addresses = tuple(str(a) for a in _list(endpoint.get("addresses")))
        view.append((addresses, _conditions_ready(endpoint.get("conditions"))))
    # The order of endpoints in a slice means nothing to any consumer.
    return sorted(view)


def _scalar(value: object) -> object:
    return (
        value if isinstance(value, str | int | float | bool) or value is None else describe(value)
    )


def _subsets_view(
    subsets: object,
) -> dict[frozenset[tuple[object, ...]], frozenset[tuple[str, bool]]]:
    # The API server repacks subsets on every write (sorts addresses, sorts ports, merges
    # subsets with the same ports), so only the meaning is compared: which addresses, ready
    # or not, serve which set of ports.
    view: dict[frozenset[tuple[object, ...]], set[tuple[str, bool]]] = {}
    for item in _list(subsets):
        subset = _mapping(item)
        ports = frozenset(
            tuple(_scalar(part) for part in key)
            for key in _endpoint_ports_view(subset.get("ports"))
        )
        addresses = {
            (str(_mapping(a).get("ip")), ready)
            for field, ready in (("addresses", True), ("notReadyAddresses", False))
            for a in _list(subset.get(field))
        }
        if addresses:
            view.setdefault(ports, set()).update(addresses)
    return {ports: frozenset(addresses) for ports, addresses in view.items()}


def _families_patch(want: Mapping[str, Any], have: Mapping[str, Any]) -> dict[str, Any] | None:
    """What to patch of the Service's IP families; None when only a re-create can do it.

    A Service's first family cannot change (its first ClusterIP would have to), so a VIP
    that moves from IPv4 to IPv6 takes a new Service. A second family can be added or
    removed in place, keeping the first ClusterIP.
    """
    wanted = [str(f) for f in _list(want.get("ipFamilies"))]
    if not wanted:
        return {}
    actual = [str(f) for f in _list(have.get("ipFamilies"))]
    policy = have.get("ipFamilyPolicy") or SINGLE_STACK
    if len(wanted) == 1:
        if actual and actual[0] != wanted[0]:
            return None
        if policy == SINGLE_STACK and actual in ([], wanted):
            return {}
        return {"ipFamilyPolicy": SINGLE_STACK, "ipFamilies": wanted}
    if policy != SINGLE_STACK:
        return {}
    primary = actual[0] if actual else wanted[0]
    return {
        "ipFamilyPolicy": PREFER_DUAL_STACK,
        "ipFamilies": [primary] + [f for f in wanted if f != primary],
    }


def _service_spec_patch(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    want = _mapping(desired.get("spec"))
    have = _mapping(actual.get("spec"))
    # clusterIP(s), sessionAffinity, internalTrafficPolicy are the API server's defaults,
    # not ours, and are never compared; the IP families are ours only when we say them.
    patch.update(_families_patch(want, have) or {})
    type_differs = have.get("type", "ClusterIP") != want.get("type")
    if type_differs:
        patch["type"] = want.get("type")
    # When the type changes back from NodePort or LoadBalancer the ports are sent too, so
    # that no leftover nodePort stays in a ClusterIP Service.
    if type_differs or _service_ports_view(have.get("ports")) != _service_ports_view(
        want.get("ports")
    ):
        patch["ports"] = copy.deepcopy(want.get("ports"))
    # A selector added by hand would make the endpoints controllers fight over ours;
    # null removes the key in a merge patch. An empty selector is no selector.
    if have.get("selector"):
        patch["selector"] = None
    return {"spec": patch} if patch else {}


def _slice_patch(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    if _slice_endpoints_view(actual.get("endpoints")) != _slice_endpoints_view(
        desired.get("endpoints")
    ):
        patch["endpoints"] = copy.deepcopy(desired.get("endpoints"))
    if _endpoint_ports_view(actual.get("ports")) != _endpoint_ports_view(desired.get("ports")):
        patch["ports"] = copy.deepcopy(desired.get("ports"))
    return patch


def _endpoints_patch(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    if _subsets_view(actual.get("subsets")) == _subsets_view(desired.get("subsets")):
        return {}
    return {"subsets": copy.deepcopy(desired.get("subsets")) or None}


def patch_for(*, desired: Mapping[str, Any], actual: Mapping[str, Any]) -> Change | None:
    """Say what to write so that ``actual`` matches ``desired`` in the fields we own, or None.

    None is the common case and what keeps an idle operator silent: fields the API server
    defaults or reorders, and labels, annotations or owners that others add, never count
    as a difference. The caller checks ``is_managed`` first; this function assumes the
    object is ours.

    The body is a JSON merge patch rather than a strategic merge patch: a merge patch
    replaces lists whole, which is what we want for ports, endpoints and subsets (a
    strategic merge would merge Service ports by number and keep a port we removed),
    merges maps key by key so that others' labels survive, and removes a field sent as
    null, which is how a hand-added selector is undone. Only the parts that differ are
    sent, so an Event or a log line can show what drifted.

    No ``metadata.resourceVersion`` goes into the patch: every field in it is one we own
    and set to an absolute value, so applying it after any concurrent change is still
    right; a precondition would only turn unrelated writes (someone adding a label) into
    409s and retries. A concurrent change of our own fields shows up as a watch event,
    and the next comparison settles it. The writer does add the object's uid, which is
    not a concurrency check but an identity check: the patch is for this object, not for a
    same-named one that replaced it.
    """
    kind = desired.get("kind")
    if kind == "EndpointSlice" and actual.get("addressType") != desired.get("addressType"):
        return Change(kind="recreate", body=copy.deepcopy(dict(desired)))
    if kind == "Service" and (
        _families_patch(_mapping(desired.get("spec")), _mapping(actual.get("spec"))) is None
    ):
        return Change(kind="recreate", body=copy.deepcopy(dict(desired)))
    body: dict[str, Any] = {}
    metadata = _metadata_patch(desired, actual)
    if metadata:
        body["metadata"] = metadata
    if kind == "Service":
        body.update(_service_spec_patch(desired, actual))
    elif kind == "EndpointSlice":
        body.update(_slice_patch(desired, actual))
    elif kind == "Endpoints":
        body.update(_endpoints_patch(desired, actual))
    else:
        raise ValueError(f"no comparison for kind {describe(kind)}")
    return Change(kind="patch", body=body) if body else None


# --- Reading the remote Service --------------------------------------------------------------


def _valid_port(value: object) -> TypeGuard[int]:
    # bool is an int in Python, and true is not port 1.
    return (
        isinstance(value, int) and not isinstance(value, bool) and _MIN_PORT <= value <= _MAX_PORT
    )


def ports_from_service(service: Mapping[str, Any]) -> tuple[ResolvedPort, ...]:
    """Take the remote Service's ports as the default ports of an import.

    Both the local port and the target port are the remote ``port``: traffic goes to the
    load balancer's VIP, which listens on the Service port, not on the pods' targetPort.
    Entries the remote API server would never return (no valid port, an unknown protocol)
    are skipped rather than raising, because remote state is not ours to trust.
    """
    resolved = []
    for port in _list(_mapping(_mapping(service).get("spec")).get("ports")):
        if not isinstance(port, Mapping):
            continue
        number = port.get("port")
        protocol = port.get("protocol") or DEFAULT_PROTOCOL
        name = port.get("name")
        if not _valid_port(number) or not (isinstance(protocol, str) and protocol in PROTOCOLS):
            continue
        # A port whose name the remote API server would have refused is skipped too.
        with contextlib.suppress(ValueError):
            resolved.append(
                ResolvedPort.model_validate(
                    {
                        "name": name if isinstance(name, str) and name else None,
                        "port": number,
                        "targetPort": number,
                        "protocol": protocol,
                    }
                )
            )
    return tuple(resolved)


def _is_address_text(value: object) -> bool:
    if not isinstance(value, str) or len(value) > api.MAX_IP_LENGTH:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _blank(value: object) -> bool:
    return value is None or value == ""


def ingress_addresses(service: Mapping[str, Any]) -> IngressInfo:
    """Read the addresses in a remote Service's ``status.loadBalancer.ingress``.

    An entry with a usable ``ip`` gives that address; otherwise its ``hostname`` (or an IP
    written where a hostname belongs) is used. Everything unusable is reported in
    ``rejected`` instead of raising: the remote status is written by a load balancer
    controller we do not control, and one bad entry must not hide the good ones. A missing
    status or ingress is normal (no VIP yet) and is not reported.
    """
    load_balancer = _mapping(_mapping(_mapping(service).get("status")).get("loadBalancer"))
    ingress = load_balancer.get("ingress")
    if _blank(ingress):
        return IngressInfo()
    if not isinstance(ingress, list):
        return IngressInfo(rejected=(Rejected(describe(ingress), "ingress is not a list"),))

    ips: list[IPAddress] = []
    hostnames: list[str] = []
    rejected: list[Rejected] = []
    for entry in ingress:
        if not isinstance(entry, Mapping):
            rejected.append(Rejected(describe(entry), "ingress entry is not an object"))
            continue
        ip, hostname = entry.get("ip"), entry.get("hostname")
        if _blank(ip) and _blank(hostname):
            rejected.append(Rejected(describe(dict(entry)), "neither ip nor hostname"))
            continue
        if not _blank(ip):
            try:
                ips.append(endpoint_ip(ip))
                continue
            except ValueError as error:
                rejected.append(Rejected(describe(ip), str(error)))
        if _blank(hostname):
            continue
        # Some controllers write an address into the hostname field; it is judged as an
        # address, so that "127.0.0.1" is not passed on as a name to resolve.
        as_address = _is_address_text(hostname)
        try:
            if as_address:
                ips.append(endpoint_ip(hostname))
            else:
                hostnames.append(canonical_hostname(hostname))
        except ValueError as error:
            rejected.append(Rejected(describe(hostname), str(error)))
    ipv4, ipv6 = _sorted_addresses(ips)
    return IngressInfo(
        ips=(*ipv4, *ipv6),
        hostnames=tuple(sorted(set(hostnames))),
        rejected=tuple(rejected),
    )
