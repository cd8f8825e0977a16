"""What the status of an import or a RemoteCluster should say: pure functions of the state.

Nothing here writes; :mod:`shared_services.recorder` does. Because an unchanged state
yields an identical status (transition times carried over, no clock in a message), the
recorder can compare and skip the write, and an idle operator writes nothing. Every status
is built through the pydantic model that generates the CRD's status schema
(:class:`~shared_services.api.ImportStatus`, :class:`~shared_services.api.RemoteClusterStatus`),
so a status the API server would refuse fails here, with the field named, not at the write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared_services import advice, api, conditions
from shared_services.advice import Reason
from shared_services.api import JSON
from shared_services.resolve import SourceState

# A condition's status, reason and message.
Triple = tuple[conditions.Status, str, str]


@dataclass(frozen=True)
class ClusterReport:
    """What a RemoteCluster's status should say."""

    connected: bool
    reason: str
    message: str
    version: str | None = None
    connected_at: str | None = None


@dataclass(frozen=True)
class Shown:
    """What ``kubectl get ssi`` prints of an import's spec: its source and its local Service.

    Both come from the spec alone, so they change only when the spec does; a spec that
    cannot be read keeps what the status last said.
    """

    source: str
    service_name: str

    @classmethod
    def of(cls, spec: api.ImportSpec, name: str) -> Shown:
        """What the import named ``name`` with this spec shows."""
        return cls(spec.source.display(), spec.effective_service_name(name))


def import_status(
    old: Mapping[str, Any],
    *,
    generation: int | None,
    shown: Shown | None,
    ready: Triple,
    source: Triple,
    addresses: list[str],
    ports: list[dict[str, Any]],
) -> dict[str, Any]:
    """An import's status: what is written, and the Ready and SourceResolved conditions."""
    previous = list(old.get("conditions") or [])
    ready_status, ready_reason, ready_message = ready
    ready = (
        ready_status,
        ready_reason,
        advice.advised(ready_message, ready_reason, advice.IMPORT_STEPS),
    )
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "source": shown.source if shown else old.get("source"),
        "serviceName": shown.service_name if shown else old.get("serviceName"),
        "addresses": addresses,
        "ports": ports,
        "conditions": [
            conditions.condition(
                type_=type_,
                status=status_,
                reason=reason,
                message=message,
                previous=previous,
                generation=generation,
            )
            for type_, (status_, reason, message) in (("Ready", ready), ("SourceResolved", source))
        ],
    }
    changed = list(old.get("addresses") or []) != addresses
    status["lastChangeTime"] = (
        conditions.now() if changed or not old.get("lastChangeTime") else old["lastChangeTime"]
    )
    return _through(api.ImportStatus, status)


def kept_status(
    old: Mapping[str, Any],
    *,
    generation: int | None,
    shown: Shown | None,
    ready: Triple,
    source: Triple,
) -> dict[str, Any]:
    """The status of an import whose objects were not written: addresses and ports stay."""
    return import_status(
        old,
        generation=generation,
        shown=shown,
        ready=ready,
        source=source,
        addresses=list(old.get("addresses") or []),
        ports=list(old.get("ports") or []),
    )


def cluster_status(
    old: Mapping[str, Any], report: ClusterReport, *, generation: int | None
) -> dict[str, Any]:
    """A RemoteCluster's status: the Connected condition, its version and last contact."""
    status: dict[str, Any] = {
        "conditions": [
            conditions.condition(
                type_="Connected",
                status="True" if report.connected else "False",
                reason=report.reason,
                message=(
                    report.message
                    if report.connected
                    else advice.advised(report.message, report.reason, advice.CLUSTER_STEPS)
                ),
                previous=old.get("conditions") or [],
                generation=generation,
            )
        ]
    }
    if report.version:
        status["serverVersion"] = report.version
    still_connected = (
        report.connected
        and (conditions.find(old.get("conditions") or [], "Connected") or {}).get("status")
        == "True"
    )
    if report.connected_at and not (still_connected and old.get("lastContactTime")):
        status["lastContactTime"] = report.connected_at
    elif old.get("lastContactTime"):
        # Connected before and after (a restart, a rotated Secret): the contact never
        # broke, and rewriting the time would be a write on every restart.
        status["lastContactTime"] = old["lastContactTime"]
    return _through(api.RemoteClusterStatus, status)


def _through(model: type[api.ImportStatus | api.RemoteClusterStatus], raw: JSON) -> JSON:
    """``raw`` as the status model reads and writes it: validated, camelCase, no nulls."""
    return model.model_validate(raw).model_dump(mode="json", by_alias=True, exclude_none=True)


def ready(source: SourceState, written: list[str], service_name: str) -> Triple:
    """The Ready condition after a write without conflicts."""
    if not written:
        reason = source.reason if not source.ok else Reason.NO_ADDRESSES
        return ("False", reason, source.message or "the source has no addresses")
    if not source.ok and source.addresses is None:
        return (
            "True",
            Reason.LAST_KNOWN_ADDRESSES,
            f"serving the last known addresses; {source.message}",
        )
    return ("True", Reason.SYNCED, f"Service {service_name} points at {', '.join(written)}")


def source_condition(source: SourceState) -> Triple:
    """The SourceResolved condition: Unknown while a first answer is still coming."""
    if source.ok:
        return ("True", source.reason, source.message)
    if source.pending:
        return ("Unknown", source.reason, source.message)
    return ("False", source.reason, source.message)


def same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two statuses say the same, a null field counting as an absent one."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return bool(clean(old) == clean(new))


def port_status(port: api.ResolvedPort) -> dict[str, Any]:
    """A port as the status lists it (an unnamed port has no name key)."""
    return port.model_dump(mode="json", by_alias=True, exclude_none=True)


def ports_of(status: Mapping[str, Any]) -> tuple[api.ResolvedPort, ...]:
    """The ports a status (or a Service's spec, which has the same shape) lists.

    A port that does not read as one (a named targetPort, a hand-edited status) is left
    out rather than failing the sync.
    """
    ports = []
    for p in status.get("ports") or []:
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            ports.append(
                api.ResolvedPort.model_validate(
                    {
                        "name": p.get("name") or None,
                        "port": p["port"],
                        "targetPort": p.get("targetPort") or p["port"],
                        "protocol": p.get("protocol") or "TCP",
                    }
                )
            )
    return tuple(ports)
