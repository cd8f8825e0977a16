"""The work queue and its rate limiter: which key syncs next, and how long a failing one waits.

A key is at most once in the queue and at most once in flight, so no two syncs of one
object race; a key asked for while it syncs runs once more afterwards. Retries go through a
:class:`RateLimiter`, one per kind of failure, so that the backoff of each key lives in one
place and is forgotten with it; an import counts its failures in its own record and asks
a :class:`Backoff` how long to wait.

The queue has two lanes. A key asked for ``urgent`` (a remote VIP moved: applications wait
for it) is served before every key of the normal lane (the writes that follow a move, local
changes, retries, the resync). When a thousand VIPs move at once, the slices of all of them
go out before any Endpoints, status or Event, instead of each slice waiting behind the
trailing writes of the imports that moved before it. The normal lane waits only while
remote changes keep coming faster than the workers can write slices, and then the slices
are what must not wait. A worker may also serve the urgent lane only (``get(urgent_only=
True)``): with some of those, a move never waits for a worker busy with somebody's status.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    """Keys to sync, each at most once in the queue and at most once in flight."""

    def __init__(self) -> None:
        self._urgent: deque[Key] = deque()
        self._normal: deque[Key] = deque()
        # Each queued key and whether it waits in the urgent lane. A key moved to the urgent
        # lane leaves a stale entry in the normal one, skipped when it comes up.
        self._queued: dict[Key, bool] = {}
        self._active: set[Key] = set()
        # Keys asked for while in flight, and whether any of those asks was urgent.
        self._dirty: dict[Key, bool] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        # Workers waiting for any key, and workers waiting for urgent keys only.
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._urgent_waiters: deque[asyncio.Future[None]] = deque()
        # Waiting for the queue to have nothing queued and nothing in flight.
        self._drained: list[asyncio.Future[None]] = []

    def add(self, key: Key, *, urgent: bool = False) -> None:
        """Ask for a sync of ``key``; repeated asks before it runs collapse into one.

        An urgent ask for a key that waits in the normal lane moves it to the urgent one.
        """
        if key in self._active:
            self._dirty[key] = self._dirty.get(key, False) or urgent
            return
        queued = self._queued.get(key)
        if queued is None:
            self._queued[key] = urgent
            (self._urgent if urgent else self._normal).append(key)
            self._wake(urgent=urgent)
        elif urgent and not queued:
            self._queued[key] = True
            self._urgent.append(key)
            self._wake(urgent=True)

    def add_after(self, key: Key, delay: float) -> None:
        """Ask for a sync of ``key`` in the normal lane in ``delay`` seconds.

        One timer per key, the earliest asked for: retries asked for by several syncs of the
        same key do not pile up into parallel chains.
        """
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= loop.time() + delay:
                return
            timer.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _wake(self, *, urgent: bool) -> None:
        """Wake one worker that can take a key of this lane.

        For an urgent key, one that serves only urgent keys if any waits, so that the
        others stay free for the rest.
        """
        for waiters in (self._urgent_waiters, self._waiters) if urgent else (self._waiters,):
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return

    def _take(self, *, urgent_only: bool) -> Key | None:
        """The next key to serve, urgent lane first; None when there is none to take."""
        while self._urgent:
            key = self._urgent.popleft()
            if self._queued.get(key) is True:
                del self._queued[key]
                return key
        while self._normal and not urgent_only:
            key = self._normal.popleft()
            if self._queued.get(key) is False:
                del self._queued[key]
                return key
        return None

    async def get(self, *, urgent_only: bool = False) -> Key:
        """The next key (only an urgent one if ``urgent_only``); pass it to :meth:`done`."""
        while (key := self._take(urgent_only=urgent_only)) is None:
            waiter = asyncio.get_running_loop().create_future()
            (self._urgent_waiters if urgent_only else self._waiters).append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Woken and cancelled at once: the key it was woken for goes to another.
                if waiter.done() and not waiter.cancelled():
                    self._wake(urgent=bool(self._urgent))
                raise
        self._active.add(key)
        if self._queued:  # more keys than one: another waiting worker takes the next
            self._wake(urgent=bool(self._urgent))
        return key

    def done(self, key: Key) -> None:
        """The sync of ``key`` finished; run it again if it was asked for meanwhile."""
        self._active.discard(key)
        urgent = self._dirty.pop(key, None)
        if urgent is not None:
            self.add(key, urgent=urgent)
        elif not self._queued and not self._active:
            for drained in self._drained:
                if not drained.done():
                    drained.set_result(None)
            self._drained.clear()

    async def drained(self) -> None:
        """Return once nothing is queued or in flight (timers pending do not count)."""
        if self._queued or self._active:
            waiter = asyncio.get_running_loop().create_future()
            self._drained.append(waiter)
            await waiter

    def close(self) -> None:
        """Cancel every pending retry: a stopped queue fires nothing later."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``start`` seconds, then twice as long, up to ``limit``."""

    start: float
    limit: float

    def __post_init__(self) -> None:
        if self.start <= 0 or self.limit < self.start:
            raise ValueError("a backoff needs 0 < start <= limit")

    def delay(self, failures: int) -> float:
        """How long to wait after ``failures`` failures in a row (at least one)."""
        # Capped before the power, so a key failing for days cannot overflow a float.
        return min(self.start * 2.0 ** min(max(failures, 1) - 1, 64), self.limit)


class RateLimiter(Generic[Key]):
    """A :class:`Backoff` per key, for keys that have no record of their own to count in.

    The count of a key's failures in a row is all it keeps; :meth:`forget` on the first
    success (or when the key is gone), so that memory follows the keys that are failing.
    """

    def __init__(self, *, start: float, limit: float) -> None:
        self.backoff = Backoff(start, limit)
        self._failures: dict[Key, int] = {}

    def when(self, key: Key) -> float:
        """Count one more failure of ``key``; how many seconds until it is tried again."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        return self.backoff.delay(failures)

    def failures(self, key: Key) -> int:
        """How many times in a row ``key`` has failed."""
        return self._failures.get(key, 0)

    def forget(self, key: Key) -> None:
        """``key`` succeeded, or is gone: its next failure waits ``start`` again."""
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
