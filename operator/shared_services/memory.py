"""Say so in the log before the operator's memory limit is near, not after the OOM kill.

Memory grows with the imports a release serves (the chart's README sizes it). A release
that outgrows its limit is killed by the kernel without a word in its own log, restarts,
relists everything and is killed again. So the resident set is compared with the limit
every few seconds, and crossing 80 % logs a warning that says what to raise; the warning
comes again only after the use has fallen below 70 %, so a process that hovers near the
line does not repeat it every check.

The limit is the chart's ``resources.limits.memory`` (passed by the Downward API as
``MEMORY_LIMIT``), else the cgroup's, which is the same number seen from inside.

:func:`settle` keeps the caches out of the garbage collector's way (see there).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from shared_services import metrics

log = logging.getLogger(__name__)

WARN_AT = 0.8
REARM_AT = 0.7
CHECK_SECONDS = 10.0
# What cgroup v1 reports for "no limit" is a page-rounded 2**63 - 1; anything this large is
# no limit either.
_NO_LIMIT = 1 << 60
_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
}
_QUANTITY = re.compile(r"(\d+)(|k|M|G|T|Ki|Mi|Gi|Ti)")
_MIB = 1 << 20


def parse_quantity(text: str) -> int:
    """Bytes in a Kubernetes memory quantity ("640Mi", "1G", "671088640").

    Raises ValueError for anything else, which the flag parser reports by name.
    """
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a memory quantity: {text!r} (e.g. 640Mi, 1Gi, 671088640)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def cgroup_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of the process's cgroup (v2, else v1); None when there is none."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < _NO_LIMIT:
            return int(text)
        return None
    return None


def resident_bytes() -> int:
    """The process's resident set, from /proc (what the OOM killer weighs)."""
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Watch:
    """Decides, check by check, when to warn; pure, so its thresholds are tested alone."""

    limit: int
    warned: bool = False

    def check(self, resident: int) -> str | None:
        """The warning to log now, if ``resident`` bytes have just crossed the line."""
        share = resident / self.limit
        if self.warned:
            self.warned = share >= REARM_AT
            return None
        if share < WARN_AT:
            return None
        self.warned = True
        return (
            f"memory use is {resident / _MIB:.0f} MiB, {share:.0%} of the "
            f"{self.limit / _MIB:.0f} MiB limit: raise resources.limits.memory (the chart's "
            "README sizes it by the number of imports) or split the imports over releases "
            "with watchNamespaces, before the process is killed for lack of memory"
        )


async def watch(limit: int | None) -> None:
    """Check the resident set against ``limit`` (else the cgroup's) until cancelled."""
    limit = limit or cgroup_limit()
    if not limit:
        log.debug("no memory limit known; memory use is not watched")
        return
    metrics.MEMORY_LIMIT.set(limit)
    state = Watch(limit)
    while True:
        warning = state.check(resident_bytes())
        if warning is not None:
            log.warning("%s", warning)
        await asyncio.sleep(CHECK_SECONDS)


# How many younger collections a full one waits for while start-up syncs: ten times the
# interpreter's default. Garbage in reference cycles waits longer for a full collection; the
# full collection at the end of start-up (see settle) takes it.
START_UP_FULL_EVERY = 100
_held: list[int] = []


def settle() -> None:
    """Leave what is alive now out of every later full collection.

    The caches are millions of small dicts and lists that live until the object they mirror
    changes, and they hold no reference cycles, so reference counting frees them. Yet each
    full collection walks all of them: at 1,000 imports such a pause came in the middle of
    a sync often enough to be a propagation's p99. Called once the caches are filled and
    once start-up is synced, after a collection of its own, so that no garbage is frozen;
    full collections come as often as the interpreter's default again from then on.
    """
    resume_full_collections()
    gc.collect()
    gc.freeze()


def hold_full_collections() -> None:
    """Make full collections rarer while start-up fills the caches; until :func:`settle`.

    Start-up makes every import's objects and status at once, and the caches grow by tens
    of thousands of objects a second, which a full collection walks again and again: at
    10,000 imports about twenty of them, 2 s of CPU, on a machine whose cores the API server
    needs for the same start-up. One full collection at its end (:func:`settle`) does.
    """
    if not _held:
        first, second, third = gc.get_threshold()
        _held.append(third)
        gc.set_threshold(first, second, max(third, START_UP_FULL_EVERY))


def resume_full_collections() -> None:
    """Undo :func:`hold_full_collections`, if it is in force."""
    if _held:
        first, second, _ = gc.get_threshold()
        gc.set_threshold(first, second, _held.pop())


# glibc's mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Buffers this large or larger get pages of their own, which go back to the system when freed.
MMAP_THRESHOLD = 128 * 1024
ARENAS = 2


def return_freed_memory() -> bool:
    """Make glibc give large freed buffers back to the system; False where it cannot.

    Whoever writes an object the operator watches chooses its size: a tenant's Service may
    carry a megabyte of labels, which arrives as one line of a watch stream, is parsed and
    then mostly dropped (see ``views``). glibc, by default, raises its threshold for giving
    a buffer pages of its own each time such a buffer is freed, so the next megabyte comes
    from, and stays in, the heap of whichever thread read it: each informer's thread has a
    heap of its own. A fixed threshold and two heaps keep the resident set to what is held.
    Called before any thread starts; elsewhere than glibc it does nothing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_ARENA_MAX, ARENAS))
