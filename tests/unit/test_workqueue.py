"""The work queue runs each key at most once at a time and never loses a request for it.

* Asks for a key before it is taken collapse into one sync; keys come out in the order
  they were first asked for.
* A key asked for while it syncs is not handed to a second worker: it runs exactly once
  more, after ``done``.
* ``add_after`` keeps one timer per key, the earliest: a later, longer delay does not
  postpone a retry, a shorter one brings it forward, and either way it fires once.
* ``close`` cancels every pending timer, so a stopped queue fires nothing later.
* ``len`` counts the keys queued and in flight, which the tracked-items metric reports.
* Urgent keys (a remote VIP moved) are served before every normal one, whenever asked for;
  an urgent ask moves a waiting key up without running it twice, and survives a sync in
  flight. A worker for urgent keys only never takes a normal one, and an urgent key goes
  to such a worker first, leaving the others to the rest. A worker cancelled just as it
  was woken does not take the key down with it.

The rate limiter doubles a failing key's delay from ``start`` up to ``limit``, forgets a
key on success, keeps memory only for keys that are failing, and stays finite however
long a key keeps failing.

Timers use short real delays and the assertions are about which keys run and how often,
never about how precisely a delay was kept: a slow, shared machine only makes the tests
wait longer, not fail.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from shared_services.workqueue import RateLimiter, WorkQueue

# Long enough for a timer that must fire to have fired on a busy machine; a timer that
# must not fire would have fired well within it.
_PATIENCE = 5.0
# How long to watch for a key that must not come: past every timer the test set.
_QUIET = 0.5


async def _nothing_comes(queue: WorkQueue[str], within: float = _QUIET) -> bool:
    """Whether no key can be taken from ``queue`` for ``within`` seconds."""
    try:
        key = await asyncio.wait_for(queue.get(), within)
    except TimeoutError:
        return True
    queue.done(key)
    return False


async def _next(queue: WorkQueue[str]) -> str:
    return await asyncio.wait_for(queue.get(), _PATIENCE)


# --- add, get, done ------------------------------------------------------------------------


def test_repeated_adds_before_get_collapse_into_one_sync() -> None:
    async def scenario() -> tuple[list[str], bool]:
        queue: WorkQueue[str] = WorkQueue()
        for _ in range(3):
            queue.add("shop/db")
        queue.add("shop/cache")
        queue.add("shop/db")
        taken = [await _next(queue), await _next(queue)]
        for key in taken:
            queue.done(key)
        return taken, await _nothing_comes(queue)

    taken, quiet = asyncio.run(scenario())
    assert taken == ["shop/db", "shop/cache"]  # first asked, first served; each once
    assert quiet


def test_a_key_asked_for_while_in_flight_runs_once_more_after_done() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("shop/db")
        key = await _next(queue)
        queue.add("shop/db")
        queue.add("shop/db")
        second = asyncio.create_task(queue.get())
        for _ in range(5):
            await asyncio.sleep(0)
        # A second worker waiting for work must not get the key that is still syncing.
        assert not second.done()
        queue.done(key)
        assert await asyncio.wait_for(second, _PATIENCE) == "shop/db"
        queue.done("shop/db")
        # The asks made while it ran were served by that one extra run.
        assert await _nothing_comes(queue)

    asyncio.run(scenario())


def test_workers_never_sync_one_key_twice_at_once() -> None:
    """Three workers and a stream of asks for one key: one run at a time, none lost."""

    async def scenario() -> tuple[int, int]:
        queue: WorkQueue[str] = WorkQueue()
        running = 0
        most = 0
        runs = 0

        async def worker() -> None:
            nonlocal running, most, runs
            while True:
                key = await queue.get()
                running += 1
                most = max(most, running)
                runs += 1
                # Asked for again mid-sync, as a watch event during a write would.
                queue.add(key)
                queue.add(key)
                await asyncio.sleep(0)
                running -= 1
                queue.done(key)
                if runs >= 10:
                    return

        queue.add("shop/db")
        workers = [asyncio.create_task(worker()) for _ in range(3)]
        done, pending = await asyncio.wait(workers, timeout=_PATIENCE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        assert done, "no worker finished: a re-asked key was lost"
        return most, runs

    most, runs = asyncio.run(scenario())
    assert most == 1
    assert runs >= 10


def test_len_counts_queued_and_in_flight_keys() -> None:
    async def scenario() -> list[int]:
        queue: WorkQueue[str] = WorkQueue()
        sizes = [len(queue)]
        queue.add("a")
        queue.add("b")
        sizes.append(len(queue))  # two queued
        first = await _next(queue)
        sizes.append(len(queue))  # one queued, one in flight
        queue.add(first)
        sizes.append(len(queue))  # asked for again while in flight: still one key
        queue.done(first)
        sizes.append(len(queue))  # back in the queue
        for _ in range(2):
            queue.done(await _next(queue))
        sizes.append(len(queue))
        return sizes

    assert asyncio.run(scenario()) == [0, 2, 2, 2, 2, 0]


# --- lanes --------------------------------------------------------------------------------


async def _drain(queue: WorkQueue[str]) -> list[str]:
    """Every key the queue hands out now, in order, each marked done at once."""
    taken = []
    while True:
        try:
            key = await asyncio.wait_for(queue.get(), _QUIET)
        except TimeoutError:
            return taken
        taken.append(key)
        queue.done(key)


def test_urgent_keys_are_served_before_normal_ones_asked_for_earlier() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("status/a")
        queue.add("status/b")
        queue.add("moved/c", urgent=True)
        queue.add("status/d")
        queue.add("moved/e", urgent=True)
        return await _drain(queue)

    assert asyncio.run(scenario()) == ["moved/c", "moved/e", "status/a", "status/b", "status/d"]


def test_an_urgent_ask_moves_a_waiting_key_up_and_it_runs_once() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        queue.add("b")
        queue.add("b", urgent=True)
        queue.add("b")  # a normal ask does not move it back
        return await _drain(queue)

    assert asyncio.run(scenario()) == ["b", "a"]


def test_an_urgent_key_asked_for_while_in_flight_runs_again_ahead_of_normal_keys() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("db")
        key = await _next(queue)
        queue.add("other")
        queue.add(key, urgent=True)
        queue.add(key)
        assert await _next(queue) == "other"  # not db: it is in flight
        queue.done("other")
        queue.add("later")
        queue.done(key)
        return await _drain(queue)

    assert asyncio.run(scenario()) == ["db", "later"]


def test_a_worker_for_urgent_keys_only_leaves_normal_keys_and_is_woken_first() -> None:
    async def scenario() -> tuple[bool, str, bool]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("status/a")
        mover = asyncio.create_task(queue.get(urgent_only=True))
        await asyncio.sleep(0.05)
        left_alone = not mover.done()  # a normal key is not for it
        general = asyncio.create_task(queue.get())
        assert await asyncio.wait_for(general, _PATIENCE) == "status/a"
        other = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        queue.add("moved/b", urgent=True)  # both wait: the mover takes it
        taken = await asyncio.wait_for(mover, _PATIENCE)
        await asyncio.sleep(0.05)
        other_free = not other.done()
        other.cancel()
        await asyncio.gather(other, return_exceptions=True)
        return left_alone, taken, other_free

    assert asyncio.run(scenario()) == (True, "moved/b", True)


def test_drained_returns_once_nothing_is_queued_or_in_flight() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        await asyncio.wait_for(queue.drained(), _PATIENCE)  # empty: at once
        seen = []
        queue.add("a")
        queue.add("b")
        waiting = asyncio.create_task(queue.drained())
        key = await _next(queue)
        queue.add(key)  # asked again while in flight: runs once more first
        queue.done(key)
        seen.append("drained" if waiting.done() else "waiting")
        for _ in range(2):
            key = await _next(queue)
            queue.done(key)
        await asyncio.wait_for(waiting, _PATIENCE)
        seen.append("drained")
        return seen

    assert asyncio.run(scenario()) == ["waiting", "drained"]


def test_a_worker_cancelled_as_it_is_woken_leaves_the_key_to_another() -> None:
    async def scenario() -> str:
        queue: WorkQueue[str] = WorkQueue()
        first = asyncio.create_task(queue.get())
        second = asyncio.create_task(queue.get())
        await asyncio.sleep(0)  # both wait
        queue.add("db")  # wakes the first
        first.cancel()  # before it runs: it must hand the key on
        await asyncio.gather(first, return_exceptions=True)
        return await asyncio.wait_for(second, _PATIENCE)

    assert asyncio.run(scenario()) == "db"


# --- add_after and close ---------------------------------------------------------------------


def test_a_later_longer_delay_does_not_postpone_a_pending_retry() -> None:
    async def scenario() -> str:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_after("shop/db", 0.05)
        queue.add_after("shop/db", 60.0)
        try:
            return await _next(queue)  # would time out had the retry moved to 60 s
        finally:
            queue.close()

    assert asyncio.run(scenario()) == "shop/db"


def test_a_shorter_delay_brings_a_pending_retry_forward() -> None:
    async def scenario() -> str:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_after("shop/db", 60.0)
        queue.add_after("shop/db", 0.05)
        try:
            return await _next(queue)
        finally:
            queue.close()

    assert asyncio.run(scenario()) == "shop/db"


@pytest.mark.parametrize(
    "delays", [(0.2, 0.05), (0.05, 0.2), (0.05, 0.05, 0.1)], ids=["shorter", "longer", "three"]
)
def test_several_retries_of_one_key_fire_once(delays: tuple[float, ...]) -> None:
    """Retries asked for by several syncs of one key do not pile up into parallel chains."""

    async def scenario() -> tuple[str, bool]:
        queue: WorkQueue[str] = WorkQueue()
        for delay in delays:
            queue.add_after("shop/db", delay)
        key = await _next(queue)
        queue.done(key)
        return key, await _nothing_comes(queue)

    key, quiet = asyncio.run(scenario())
    assert key == "shop/db"
    assert quiet


def test_retries_of_different_keys_are_independent() -> None:
    async def scenario() -> set[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_after("shop/db", 0.05)
        queue.add_after("shop/cache", 0.1)
        taken = {await _next(queue), await _next(queue)}
        queue.close()
        return taken

    assert asyncio.run(scenario()) == {"shop/db", "shop/cache"}


def test_a_retry_that_fires_while_the_key_syncs_runs_after_done() -> None:
    async def scenario() -> tuple[bool, str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("shop/db")
        key = await _next(queue)
        queue.add_after("shop/db", 0.05)
        # Past the retry's time: it has fired, and must wait for the running sync.
        early = await _nothing_comes(queue, within=0.2)
        queue.done(key)
        return early, await _next(queue)

    early, again = asyncio.run(scenario())
    assert early
    assert again == "shop/db"


def test_close_cancels_every_pending_retry() -> None:
    async def scenario() -> tuple[bool, int]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_after("shop/db", 0.05)
        queue.add_after("shop/cache", 0.1)
        queue.close()
        await asyncio.sleep(0.2)
        return await _nothing_comes(queue), len(queue)

    quiet, size = asyncio.run(scenario())
    assert quiet
    assert size == 0


# --- RateLimiter -----------------------------------------------------------------------------


def test_backoff_starts_at_start_doubles_and_stops_at_limit() -> None:
    limiter: RateLimiter[str] = RateLimiter(start=2.0, limit=300.0)
    delays = [limiter.when("shop/db") for _ in range(11)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0, 300.0]


def test_each_key_has_its_own_backoff() -> None:
    limiter: RateLimiter[str] = RateLimiter(start=1.0, limit=60.0)
    for _ in range(4):
        limiter.when("shop/db")
    assert limiter.when("shop/cache") == 1.0
    assert limiter.when("shop/db") == 16.0


def test_failures_counts_a_keys_failures_in_a_row() -> None:
    limiter: RateLimiter[str] = RateLimiter(start=1.0, limit=60.0)
    assert limiter.failures("shop/db") == 0
    for _ in range(3):
        limiter.when("shop/db")
    assert limiter.failures("shop/db") == 3
    assert limiter.failures("shop/cache") == 0


def test_forget_makes_the_next_failure_wait_start_again() -> None:
    limiter: RateLimiter[str] = RateLimiter(start=5.0, limit=300.0)
    for _ in range(6):
        limiter.when("shop/db")
    limiter.forget("shop/db")
    assert limiter.failures("shop/db") == 0
    assert limiter.when("shop/db") == 5.0
    limiter.forget("shop/never-failed")  # a key that is gone may never have failed


def test_len_follows_the_keys_that_are_failing() -> None:
    limiter: RateLimiter[str] = RateLimiter(start=1.0, limit=60.0)
    sizes = [len(limiter)]
    limiter.when("shop/db")
    limiter.when("shop/cache")
    limiter.when("shop/db")
    sizes.append(len(limiter))
    limiter.forget("shop/db")
    sizes.append(len(limiter))
    limiter.forget("shop/cache")
    sizes.append(len(limiter))
    assert sizes == [0, 2, 1, 0]


@pytest.mark.parametrize("limit", [300.0, 1e308])
def test_a_key_failing_for_days_keeps_a_finite_delay(limit: float) -> None:
    limiter: RateLimiter[str] = RateLimiter(start=1.0, limit=limit)
    delays = [limiter.when("shop/db") for _ in range(5000)]
    assert limiter.failures("shop/db") == 5000
    assert all(math.isfinite(d) and 0 < d <= limit for d in delays)
    assert delays == sorted(delays)  # never shorter after another failure
    if limit == 300.0:
        assert delays[-1] == 300.0


def test_start_equal_to_limit_is_a_fixed_delay() -> None:
    limiter: RateLimiter[str] = RateLimiter(start=7.0, limit=7.0)
    assert [limiter.when("shop/db") for _ in range(4)] == [7.0] * 4


@pytest.mark.parametrize(
    ("start", "limit"),
    [(0.0, 10.0), (-1.0, 10.0), (5.0, 4.0)],
    ids=["zero", "negative", "inverted"],
)
def test_a_backoff_that_cannot_work_is_refused(start: float, limit: float) -> None:
    with pytest.raises(ValueError, match="0 < start <= limit"):
        RateLimiter[str](start=start, limit=limit)
