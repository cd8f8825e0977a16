"""The reconcile decision for one import, as pure functions of what the caches hold.

:func:`plan` says, from the import, its resolved source and what is serving now, which
objects to write (or none, and which status instead). :func:`conclude` says, from what the
writes met, which status and which Events follow. :func:`namespace_refusal` says, before
either, whether the import's namespace may have imports at all. The reconciler only
carries the decisions out, so every branch here is tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared_services import api, builders, policy, status
from shared_services.advice import Reason
from shared_services.api import JSON
from shared_services.resolve import SourceState
from shared_services.status import Triple

# The reason of an import in a namespace where imports are not served (see namespace_refusal).
NAMESPACE_NOT_ALLOWED = Reason.NAMESPACE_NOT_ALLOWED
KUBE_SYSTEM = "kube-system"


@dataclass(frozen=True)
class Serving:
    """What an import's EndpointSlices hold: as cached now, or as the operator last wrote them.

    A slice holds the ports that traffic goes to, so ``ports`` read from slices carry the
    slice's port on both sides. That is what a port taken from a source is: the remote
    Service's own port, on the local Service and on the VIP alike; a local port that
    differs comes from ``spec.ports``, which is read before these.
    """

    addresses: tuple[str, ...] = ()  # in its EndpointSlices of the Service it names
    ports: tuple[api.ResolvedPort, ...] = ()


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the import."""

    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """What a sync does before it learns what the writes meet.

    ``desired`` None means no object is written, and ``status`` is the whole answer (or
    None as well: nothing to say yet, a first answer is still coming).
    """

    service_name: str
    source: SourceState
    shown: status.Shown | None = None
    desired: builders.Desired | None = None
    status: JSON | None = None
    verdict: policy.Verdict = field(default_factory=lambda: policy.Verdict((), ()))
    ports: tuple[api.ResolvedPort, ...] = ()
    serving: tuple[str, ...] = ()  # the addresses serving before the writes

    @property
    def moves(self) -> bool:
        """Whether the writes move a slice that is serving to other addresses."""
        if self.desired is None or not self.serving:
            return False
        return set(self.serving) != set(desired_addresses(self.desired))


def plan(
    body: Mapping[str, Any],
    spec: api.ImportSpec,
    source: SourceState,
    serving: Serving,
    *,
    address_policy: policy.AddressPolicy,
    networks: policy.ClusterNetworks,
    families: frozenset[str] | None,
    written: Serving | None = None,
) -> Plan:
    """Decide the objects to write for an import whose spec is valid.

    ``written`` is what this process last wrote for the import, None when it wrote nothing
    yet; with ``serving`` it is all that :func:`last_known` may keep.
    """
    name = str(body["metadata"]["name"])
    namespace = str(body["metadata"]["namespace"])
    old: Mapping[str, Any] = body.get("status") or {}
    generation = body["metadata"].get("generation")
    service_name = spec.effective_service_name(name)
    shown = status.Shown.of(spec, name)
    if source.pending and old.get("conditions"):
        # A watch still listing or a first DNS answer still coming: the import is queued
        # again when it arrives. Writing "pending" meanwhile would be churn on every
        # restart; a new import (no status yet) does show that it is pending.
        return Plan(service_name, source, shown)
    known = last_known(serving, written)
    addresses = source.addresses if source.addresses is not None else known.addresses
    # Whatever the source, and the last known addresses too: a refused address is never
    # written, and the allowed rest of an answer still is.
    verdict = policy.judge(addresses, policy=address_policy, networks=networks)
    ports = spec_ports(spec) or source.ports or known.ports
    if not ports:
        return Plan(service_name, source, shown, status=_no_ports(old, generation, shown, source))
    try:
        desired = builders.build(
            owner=builders.Owner(namespace, name, str(body["metadata"].get("uid"))),
            service_name=service_name,
            ports=ports,
            addresses=verdict.allowed,
            families=families,
        )
    except ValueError as error:
        # Objects the API server would refuse: what is in place stays, and a change of
        # the source queues the import again.
        reason = getattr(error, "reason", Reason.INVALID_SPEC)
        refused = unwritten(
            old,
            generation=generation,
            shown=shown,
            source=source,
            reason=reason,
            message=str(error),
        )
        return Plan(service_name, source, shown, status=refused)
    return Plan(
        service_name,
        source,
        shown,
        desired=desired,
        verdict=verdict,
        ports=ports,
        serving=serving.addresses,
    )


def _no_ports(
    old: Mapping[str, Any], generation: int | None, shown: status.Shown, source: SourceState
) -> JSON:
    """The status of an import with no ports from anywhere: nothing can be written."""
    return status.import_status(
        old,
        generation=generation,
        shown=shown,
        ready=("False", source.reason if not source.ok else Reason.NO_PORTS, source.message),
        source=status.source_condition(source),
        addresses=[],
        ports=[],
    )


def invalid_spec(body: Mapping[str, Any], error: api.InvalidSpecError) -> JSON:
    """The status of an import whose spec is refused: nothing is removed, the message says why.

    A spec that an older CRD let through must not take away endpoints that applications
    use; the condition says what to fix.
    """
    message = str(error)
    return status.kept_status(
        body.get("status") or {},
        generation=body["metadata"].get("generation"),
        shown=None,
        ready=("False", Reason.INVALID_SPEC, message),
        source=("False", Reason.INVALID_SPEC, message),
    )


def namespace_refusal(namespace: str, *, operator_namespace: str, allowed: bool) -> str | None:
    """Why imports in ``namespace`` are not served; None when they are.

    kube-system holds the cluster's own Services, and the operator's namespace holds its
    credentials and its own Services. A Service written there for whoever may create an
    import there is one the platform team has to ask for (``allowed``).
    """
    if allowed:
        return None
    if namespace == KUBE_SYSTEM:
        what = "kube-system, which holds the cluster's own Services"
    elif namespace == operator_namespace:
        what = "the namespace of the operator itself"
    else:
        return None
    return f"imports in namespace {namespace!r} are not served: it is {what}"


def refused_namespace(body: Mapping[str, Any], message: str) -> JSON:
    """The status of an import in a namespace where imports are not served.

    Nothing is written for it, and nothing in place is removed: objects written before the
    namespace was refused stay until the import goes, and the condition says why.
    """
    refused: Triple = ("False", NAMESPACE_NOT_ALLOWED, message)
    return status.kept_status(
        body.get("status") or {},
        generation=body["metadata"].get("generation"),
        shown=None,
        ready=refused,
        source=refused,
    )


def unwritten(
    old: Mapping[str, Any],
    *,
    generation: int | None,
    shown: status.Shown | None,
    source: SourceState,
    reason: str,
    message: str,
) -> JSON:
    """The status of an import whose objects were not written; what is in place stays."""
    return status.kept_status(
        old,
        generation=generation,
        shown=shown,
        ready=("False", reason, message),
        source=status.source_condition(source),
    )


@dataclass(frozen=True)
class Conclusion:
    """The status and Events that follow a sync's writes."""

    status: JSON
    events: tuple[Event, ...] = ()
    conflicted: bool = False
    addresses_changed: bool = False  # what is written differs from what the status said


def conclude(
    body: Mapping[str, Any], plan: Plan, *, conflicts: list[str], previous_reason: str
) -> Conclusion:
    """Decide the status and Events after the writes met ``conflicts`` (usually none).

    ``previous_reason`` is the reason of the Ready condition last recorded: a Warning is
    recorded when a problem starts, not on every retry while it lasts.
    """
    assert plan.desired is not None
    old: Mapping[str, Any] = body.get("status") or {}
    events: list[Event] = []
    written = desired_addresses(plan.desired)
    ready: Triple
    if conflicts:
        message = "; ".join(conflicts)
        if previous_reason != Reason.CONFLICT:
            events.append(Event("Warning", Reason.CONFLICT, message))
        ready = ("False", Reason.CONFLICT, message)
        written = [str(a) for a in old.get("addresses") or []]
    elif plan.verdict.refused:
        serving = f"serving {', '.join(written)}" if written else "nothing is served"
        message = f"{plan.verdict.message()}; {serving}"
        if previous_reason != policy.ADDRESS_NOT_ALLOWED:
            events.append(Event("Warning", policy.ADDRESS_NOT_ALLOWED, message))
        ready = ("False", policy.ADDRESS_NOT_ALLOWED, message)
    else:
        ready = status.ready(plan.source, written, plan.service_name)
    old_addresses = list(old.get("addresses") or [])
    if written != old_addresses and old_addresses and not conflicts:
        # Addresses after none are not an Event: a new import's status says it is pending
        # (no addresses) before its first answer, and 10,000 imports would start with
        # 10,000 Events. Every change from some addresses, to others or to none, has one.
        change = f"{', '.join(old_addresses)} -> {', '.join(written) or '(none)'}"
        events.append(Event("Normal", "AddressesChanged", change))
    new = status.import_status(
        old,
        generation=body["metadata"].get("generation"),
        shown=plan.shown,
        ready=ready,
        source=status.source_condition(plan.source),
        addresses=written,
        ports=[status.port_status(p) for p in plan.ports],
    )
    return Conclusion(
        new,
        tuple(events),
        conflicted=bool(conflicts),
        addresses_changed=written != old_addresses and not conflicts,
    )


def last_known(serving: Serving, written: Serving | None) -> Serving:
    """The addresses and ports to keep while the source cannot be known.

    Only what the operator itself holds counts: what it last wrote in this process, which
    puts back slices deleted or edited by hand meanwhile; after a restart, what the
    import's EndpointSlices hold. Never the import's status: whoever may write that (a
    tenant, by a broad role) could put addresses there that no source gave, getting
    around ``--static-sources``; and it lags behind the slices when a status write failed.
    """
    return written if written is not None else serving


def spec_ports(spec: api.ImportSpec) -> tuple[api.ResolvedPort, ...]:
    """The ports the spec lists, with their defaults filled in."""
    return tuple(
        api.ResolvedPort(
            name=p.name, port=p.port, target_port=p.effective_target_port, protocol=p.protocol
        )
        for p in spec.ports or ()
    )


def desired_addresses(desired: builders.Desired) -> list[str]:
    """Every address the desired slices hold, in order."""
    return [a for s in desired.endpoint_slices for e in s["endpoints"] for a in e["addresses"]]


@dataclass(frozen=True)
class Result:
    """What a sync asks of the worker that ran it: another sync after ``after`` seconds.

    A sync never puts its import back on the queue itself; it says when it needs to run
    again (a grace period that ends, a conflict to look at again, writes held behind a
    moved slice), and the worker, which also handles failures, asks the queue. None: only
    a change brings it back.
    """

    after: float | None = None

    def again(self, after: float | None) -> Result:
        """This result, asking to run again no later than ``after`` as well."""
        if after is None or (self.after is not None and self.after <= after):
            return self
        return Result(after)


DONE: Final = Result()


def settle_until(*, moved: float, last_move: float, settle: float, hold: float) -> float:
    """When the writes held behind an import's moved slice are due.

    ``settle`` after its move, or after the last move of any import if that came later,
    so that while VIPs keep moving no slice waits behind the other writes; never later than
    ``hold`` after its own move.
    """
    return min(max(moved, last_move) + settle, moved + hold)
