"""The reconcile decision for one import, as pure functions of what the caches hold.

:func:`plan` says, from the import, its resolved source and what is serving now, which
objects to write (or none, and which status instead). :func:`conclude` says, from what the
writes met, which status and which Events follow. The reconciler only carries the
decisions out, so every branch here is tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared_services import api, builders, policy, status
from shared_services.api import JSON
from shared_services.resolve import SourceState
from shared_services.status import Triple


@dataclass(frozen=True)
class Serving:
    """What the caches hold of an import's objects right now."""

    addresses: tuple[str, ...] = ()  # in its EndpointSlices of the Service it names
    ports: tuple[api.ResolvedPort, ...] = ()  # of that Service, if the import owns it


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
) -> Plan:
    """Decide the objects to write for an import whose spec is valid."""
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
    addresses = source.addresses if source.addresses is not None else last_known(serving, old)
    # Whatever the source, and the last known addresses too: a refused address is never
    # written, and the allowed rest of an answer still is.
    verdict = policy.judge(addresses, policy=address_policy, networks=networks)
    ports = spec_ports(spec) or source.ports or status.ports_of(old) or serving.ports
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
        reason = getattr(error, "reason", "InvalidSpec")
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
        ready=("False", source.reason if not source.ok else "NoPorts", source.message),
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
        ready=("False", "InvalidSpec", message),
        source=("False", "InvalidSpec", message),
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
        if previous_reason != "Conflict":
            events.append(Event("Warning", "Conflict", message))
        ready = ("False", "Conflict", message)
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


def last_known(serving: Serving, old_status: Mapping[str, Any]) -> tuple[str, ...]:
    """The addresses to keep while the source cannot be known.

    What is serving comes first: the import's EndpointSlices as the cache holds them. The
    status says what was last reported, which lags behind the slices when a status write
    failed (and then the operator restarted): trusting it then would empty slices that
    applications are using. Only with no slice at all (deleted by hand while the source is
    unknown) is the status used, to put them back.
    """
    if serving.addresses:
        return serving.addresses
    return tuple(str(a) for a in old_status.get("addresses") or ())


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
