"""Hostnames kept resolved: one task per name in use, resolving again when its TTL runs out.

Who reads which name is recorded once, in the imports' records; this module is told only
when a name gains its first reader (:meth:`Hostnames.want` starts its task) and loses its
last (:meth:`Hostnames.unwant`: the task ends at its next renewal), and says which name's
answer changed. Looking a name up only reads. No error ends a task before it is unwanted:
the resolver answers failures as a resolution that says so, and anything else is logged
and tried again with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shared_services import dns

log = logging.getLogger(__name__)

# After a failure that the resolver did not answer for: once a second at first, then up to
# the longest a DNS answer is trusted for.
_RETRY_START = 1.0
_RETRY_MAX = 300.0


@dataclass
class _Hostname:
    resolution: dns.Resolution | None = None
    task: asyncio.Task[None] | None = None
    wanted: bool = True


class Hostnames:
    """The hostnames imports read, each resolved by its own task."""

    def __init__(self, resolver: dns.HostnameResolver, *, on_change: Callable[[str], None]) -> None:
        self.resolver = resolver
        self._on_change = on_change
        self._names: dict[str, _Hostname] = {}

    def lookup(self, hostname: str) -> dns.Resolution | None:
        """The latest answer for ``hostname``; None until the first, or when not resolved."""
        entry = self._names.get(hostname)
        return None if entry is None else entry.resolution

    def want(self, hostnames: Iterable[str]) -> bool:
        """Keep these names resolved (idempotent); True if any was not resolved until now."""
        started = False
        for hostname in hostnames:
            entry = self._names.get(hostname)
            if entry is None:
                entry = self._names[hostname] = _Hostname()
                entry.task = asyncio.get_running_loop().create_task(
                    self._keep_resolving(hostname, entry), name=f"resolve {hostname}"
                )
                started = True
            entry.wanted = True
        return started

    def unwant(self, hostnames: Iterable[str]) -> None:
        """No import reads these names any more: each task ends at its next renewal."""
        for hostname in hostnames:
            entry = self._names.get(hostname)
            if entry is not None:
                entry.wanted = False

    def stop(self) -> None:
        """End every name's task."""
        for entry in self._names.values():
            if entry.task:
                entry.task.cancel()

    def __len__(self) -> int:
        return len(self._names)

    async def _keep_resolving(self, hostname: str, entry: _Hostname) -> None:
        """Resolve again when the answer's TTL runs out; say so when it changes."""
        retry = _RETRY_START
        while entry.wanted or entry.resolution is None:
            try:
                wait = self._renew(hostname, entry, await self.resolver.resolve(hostname))
            except Exception:  # the last resort: the name must go on being resolved
                log.exception("resolving %s failed; trying again in %.0f s", hostname, retry)
                wait, retry = retry, min(retry * 2, _RETRY_MAX)
            else:
                retry = _RETRY_START
            await asyncio.sleep(wait)
        self._names.pop(hostname, None)

    def _renew(self, hostname: str, entry: _Hostname, resolution: dns.Resolution) -> float:
        """Keep the new answer, say so if it changed; seconds until the next."""
        changed = entry.resolution is None or (
            (entry.resolution.addresses, entry.resolution.error)
            != (resolution.addresses, resolution.error)
        )
        entry.resolution = resolution
        if changed:
            self._on_change(hostname)
        return resolution.ttl
