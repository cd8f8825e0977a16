"""Leader election over a coordination.k8s.io Lease, by client-go's rules.

Only the leader syncs; the others keep their caches warm and take over when the leader's
lease runs out. A replica that loses the lease exits rather than carry on half-sure, the way
controller-runtime's managers do: the Deployment starts it again as a standby.

Two rules keep two replicas from ever writing at once, whatever their clocks say:

- **Expiry is judged from this replica's own clock.** A standby never compares the holder's
  ``renewTime`` with its local time (the holder's clock may run ahead or behind). It notes,
  by its own monotonic clock, when it last saw the lease record change, and takes the lease
  over only once a whole lease duration passed after that without a change.
- **The leader stops writing before its lease can run out.** Its leadership counts as
  certain only until the *start* of its last successful renewal plus the renew deadline,
  which is shorter than the lease duration: the renewal cannot have reached the API server
  before it was sent, so no standby saw it earlier, and none takes over before a full lease
  duration after that. :meth:`LeaderElector.may_write` is checked by every write the
  operator sends, at the moment of sending, so even a process that was frozen past its
  lease and then thawed sends nothing before its renew loop has noticed.

Renewals, take-overs and the release are PUTs carrying the resourceVersion that was read,
so of two replicas acting on the same record, one gets 409 and loses. Renewing the lease is
a write every few seconds, so election is off unless asked for: a single replica then writes
nothing at all when nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from shared_services.api import JSON
from shared_services.kube import Conflict, Kube, KubeError, NotFound, collection_path
from shared_services.settings import (
    JITTER,
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    check_timing,
)

log = logging.getLogger(__name__)

State = Literal["standby", "leading", "lost", "released"]


def lease_seconds(duration: float) -> int:
    """The lease duration as the Lease carries it: whole seconds, rounded up.

    Standbys wait what the record says, so a duration rounded down (10.9 s written as 10)
    could let one take over while the leader is still within its renew deadline (10.5 s).
    """
    return math.ceil(duration)


@dataclass
class Observation:
    """The lease record as this replica last saw it, and when it saw it change.

    ``at`` is this replica's monotonic clock; the record's own timestamps are never
    compared with it, they only make a renewal a change.
    """

    record: dict[str, Any] | None = None
    at: float = 0.0

    def see(self, record: Mapping[str, Any], *, now: float) -> bool:
        """Note a record read or written at ``now``; True when it differs from the last."""
        if self.record is not None and dict(record) == self.record:
            return False
        self.record = dict(record)
        self.at = now
        return True

    @property
    def holder(self) -> str:
        """Who holds the lease according to the record, "" for nobody."""
        return str((self.record or {}).get("holderIdentity") or "")

    def expired(self, *, now: float, default_duration: float) -> bool:
        """Whether a full lease duration passed, by this clock, since the record changed.

        The duration is the holder's own (``leaseDurationSeconds``): it promised to renew
        within it.
        """
        if self.record is None:
            return True
        duration = self.record.get("leaseDurationSeconds") or default_duration
        return now >= self.at + float(duration)


@dataclass
class Term:
    """How long this replica may act as the leader: the renew deadline rule."""

    renew_deadline: float
    renewed_at: float | None = field(default=None)

    def renewed(self, *, started: float) -> None:
        """A renewal (or the acquisition) that was sent at ``started`` succeeded."""
        self.renewed_at = started

    def end(self) -> None:
        """Leadership is over, whatever the clock says."""
        self.renewed_at = None

    def certain(self, *, now: float) -> bool:
        """Whether no standby can have taken over yet (the renew deadline rule)."""
        return self.renewed_at is not None and now < self.renewed_at + self.renew_deadline

    def remaining(self, *, now: float) -> float:
        """Seconds of certain leadership left (0 when none)."""
        if self.renewed_at is None:
            return 0.0
        return max(0.0, self.renewed_at + self.renew_deadline - now)


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires and keeps one Lease; ``acquire`` returns once this replica leads.

    ``kube`` must be a client whose writes are not subject to :meth:`may_write` (the
    elector's own requests are what renews it).
    """

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_timing(duration=duration, renew_deadline=renew_deadline, retry_period=retry_period)
        self.kube = kube
        self.path = collection_path(
            group="coordination.k8s.io", version="v1", plural="leases", namespace=namespace
        )
        self.name = name
        self.identity = f"{os.environ.get('HOSTNAME', 'operator')}-{secrets.token_hex(3)}"
        self.duration = duration
        self.retry_period = retry_period
        self.state: State = "standby"
        self._clock = clock
        self._observed = Observation()
        self._term = Term(renew_deadline=renew_deadline)
        # The Lease as last read or written: renewing PUTs it back with its resourceVersion.
        self._lease: JSON | None = None
        self._reported = ""

    @property
    def leading(self) -> bool:
        """Whether this replica won the lease and has not lost or released it."""
        return self.state == "leading"

    def may_write(self) -> bool:
        """Whether this replica may send a write now: it leads, within its renew deadline."""
        return self.state == "leading" and self._term.certain(now=self._clock())

    def time_left(self) -> float:
        """Seconds this replica may still write for: a write may take no longer (0: none)."""
        if self.state != "leading":
            return 0.0
        return self._term.remaining(now=self._clock())

    async def acquire(self) -> None:
        """Wait until this replica holds the lease."""
        failure = ""
        while True:
            try:
                # Polling is the protocol: the lease lives in another process's API server.
                if await asyncio.to_thread(self._try):
                    break
            except KubeError as error:
                # Said once per different error: a standby retries every few seconds.
                if str(error) != failure:
                    log.warning("acquiring the lease %s: %s", self.name, error)
                failure = str(error)
            except Exception as error:  # the last resort: a standby must go on standing by
                if repr(error) != failure:
                    log.exception("acquiring the lease %s failed", self.name)
                failure = repr(error)
            jitter = random.uniform(0, JITTER)  # noqa: S311 - spreading retries, not secrets
            await asyncio.sleep(self.retry_period * (1 + jitter))
        self.state = "leading"
        log.info("leading as %s (lease %s)", self.identity, self.name)

    async def hold(self) -> None:
        """Renew the lease every retry period; return once it is lost.

        It is lost when the renew deadline passes without a successful renewal (the API
        server is slow or unreachable, or this process was frozen), or as soon as the
        record shows another holder.
        """
        reason = ""
        while not reason:
            await asyncio.sleep(self.retry_period)
            if not self.may_write():
                reason = "no renewal succeeded within the renew deadline"
                break
            try:
                renewed = await asyncio.to_thread(self._try)
            except KubeError as error:
                log.warning("renewing the lease %s: %s", self.name, error)
                continue
            except Exception:  # the last resort: the renew deadline still ends the term
                log.exception("renewing the lease %s failed", self.name)
                continue
            if not renewed and self._observed.holder not in ("", self.identity):
                reason = f"it is held by {self._observed.holder}"
        self._term.end()
        self.state = "lost"
        log.error("lost the lease %s: %s; stopping", self.name, reason)

    def release(self) -> None:
        """Stop writing, then give the lease up if this replica still holds it.

        Called on a clean shutdown, after the controller stopped, so that a standby takes
        over at once instead of waiting for the lease to run out.
        """
        was_leading = self.state == "leading"
        self.state = "released"
        self._term.end()
        if not was_leading:
            return
        for _ in range(3):  # a renewal in flight may have moved the resourceVersion on
            try:
                lease = self.kube.get(self._object)
                spec = (lease or {}).get("spec") or {}
                if lease is None or spec.get("holderIdentity") != self.identity:
                    return  # not ours any more: nothing to give up
                now = _micro(datetime.now(UTC))
                lease["spec"] = {
                    "leaseDurationSeconds": 1,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": spec.get("leaseTransitions") or 0,
                }
                self.kube.request("PUT", self._object, body=lease)
            except Conflict:
                continue
            except KubeError as error:
                log.warning("releasing the lease %s: %s", self.name, error)
                return
            log.info("released the lease %s", self.name)
            return

    # -- one try to acquire or renew, as client-go's tryAcquireOrRenew --------------------

    def _try(self) -> bool:
        started = self._clock()
        if not self._campaigning():
            return False
        timeout = self._timeout(started)
        if self.state == "leading" and self._renew(started=started, timeout=timeout):
            return True
        try:
            lease: JSON | None = self.kube.request("GET", self._object, timeout=timeout)
        except NotFound:
            lease = None
        if lease is None:
            return self._create(started=started, timeout=timeout)
        self._lease = lease
        record = lease.get("spec") or {}
        if self._observed.see(record, now=self._clock()):
            self._report()
        holder = self._observed.holder
        if holder and holder != self.identity:
            if self.state == "leading":
                return False  # someone else took it: this replica lost, it never takes back
            if not self._observed.expired(now=self._clock(), default_duration=self.duration):
                return False
        if not self._campaigning():
            return False  # released meanwhile (this runs in a thread): never take it back
        try:
            # The resourceVersion in the body makes this a compare-and-swap: of two replicas
            # taking over an expired lease, one gets 409 and stays a standby.
            written = self.kube.request(
                "PUT", self._object, body=lease | {"spec": self._spec(record)}, timeout=timeout
            )
        except Conflict:
            return False
        self._won(written, started=started)
        return True

    def _renew(self, *, started: float, timeout: tuple[float, float]) -> bool:
        """The usual renewal: one PUT of the lease as last written, and no read.

        A 409 means that someone else changed it; the caller then reads what they did.
        """
        if self._lease is None:
            return False
        body = self._lease | {"spec": self._spec(self._lease.get("spec") or {})}
        try:
            written = self.kube.request("PUT", self._object, body=body, timeout=timeout)
        except Conflict:
            return False
        self._won(written, started=started)
        return True

    def _create(self, *, started: float, timeout: tuple[float, float]) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": self._spec({}),
        }
        try:
            created = self.kube.request("POST", self.path, body=body, timeout=timeout)
        except Conflict:
            return False  # another replica created it first
        self._won(created, started=started)
        return True

    @property
    def _object(self) -> str:
        return f"{self.path}/{self.name}"

    def _campaigning(self) -> bool:
        # Asked again before each write: _try runs in a thread while release() may run.
        return self.state in ("standby", "leading")

    def _spec(self, current: Mapping[str, Any]) -> dict[str, Any]:
        """The record to write: renewed when this replica holds it, taken over otherwise."""
        now = _micro(datetime.now(UTC))
        spec = dict(current) | {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": lease_seconds(self.duration),
            "renewTime": now,
        }
        if current.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + (
                1 if current else 0
            )
        return spec

    def _won(self, lease: JSON, *, started: float) -> None:
        self._lease = lease
        self._observed.see(lease.get("spec") or {}, now=started)
        self._term.renewed(started=started)
        self._report()

    def _timeout(self, now: float) -> tuple[float, float]:
        """A leader's request must not outlast its renew deadline; a standby's is short."""
        budget = self._term.remaining(now=now) if self.state == "leading" else self.duration
        budget = max(0.5, min(budget, self.duration))
        return (min(5.0, budget), budget)

    def _report(self) -> None:
        holder = self._observed.holder
        if holder != self._reported:
            self._reported = holder
            log.info("the lease %s is held by %s", self.name, holder or "nobody")
