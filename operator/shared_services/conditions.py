"""Status conditions, computed so that an unchanged state yields an identical status.

The operator writes a status only when it differs from the one in the API server, so
everything here is a function of the state alone: a condition keeps its
``lastTransitionTime`` while its ``status`` stays the same, and no message holds a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared_services import api

Status = api.ConditionStatus


def now() -> str:
    """The current time in the RFC 3339 form Kubernetes uses (second precision)."""
    return api.rfc3339(datetime.now(UTC))


def condition(
    *,
    type_: str,
    status: Status,
    reason: str,
    message: str,
    previous: Sequence[Mapping[str, Any]],
    generation: int | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """A condition, carrying over the previous transition time when the status is unchanged."""
    old = next((c for c in previous if c.get("type") == type_), None)
    transition = (
        old["lastTransitionTime"]
        if old is not None and old.get("status") == status and old.get("lastTransitionTime")
        else at or now()
    )
    result: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": transition,
    }
    if generation is not None:
        result["observedGeneration"] = generation
    return result


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_``, if present."""
    return next((c for c in conditions if c.get("type") == type_), None)
