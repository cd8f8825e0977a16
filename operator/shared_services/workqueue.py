"""The work queue and its rate limiter: which key syncs next, and how long a failing one waits.

A key is at most once in the queue and at most once in flight, so no two syncs of one
object race; a key asked for while it syncs runs once more afterwards. Retries go through a
:class:`RateLimiter`, one per kind of failure, so that the backoff of each key lives in one
place and is forgotten with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    """Keys to sync, each at most once in the queue and at most once in flight."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key) -> None:
        """Ask for a sync of ``key``; repeated asks before it runs collapse into one."""
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        """Ask for a sync of ``key`` in ``delay`` seconds.

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

    async def get(self) -> Key:
        """The next key; the caller must call :meth:`done` with it."""
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: Key) -> None:
        """The sync of ``key`` finished; run it again if it was asked for meanwhile."""
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def close(self) -> None:
        """Cancel every pending retry: a stopped queue fires nothing later."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)


class RateLimiter(Generic[Key]):
    """Exponential backoff per key: ``start``, then twice as long, up to ``limit`` seconds.

    The count of a key's failures in a row is all it keeps; :meth:`forget` on the first
    success (or when the key is gone), so that memory follows the keys that are failing.
    """

    def __init__(self, *, start: float, limit: float) -> None:
        if start <= 0 or limit < start:
            raise ValueError("a backoff needs 0 < start <= limit")
        self.start = start
        self.limit = limit
        self._failures: dict[Key, int] = {}

    def when(self, key: Key) -> float:
        """Count one more failure of ``key``; how many seconds until it is tried again."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        # Capped before the power, so a key failing for days cannot overflow a float.
        return min(self.start * 2.0 ** min(failures - 1, 64), self.limit)

    def failures(self, key: Key) -> int:
        """How many times in a row ``key`` has failed."""
        return self._failures.get(key, 0)

    def forget(self, key: Key) -> None:
        """``key`` succeeded, or is gone: its next failure waits ``start`` again."""
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
