"""Hostnames kept resolved: one task per name in use, resolving again when its TTL runs out.

An import that reads a hostname (its source, or a LoadBalancer's ingress hostname) is one
of the name's users. The first user starts the name's task; when the answer changes, every
user is queued; when the last user is gone, the task ends at its next renewal. No error
ends a task before that: the resolver answers failures as a resolution that says so, and
anything else is logged and tried again with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared_services import dns
from shared_services.api import ImportKey

log = logging.getLogger(__name__)

# After a failure that the resolver did not answer for: once a second at first, then up to
# the longest a DNS answer is trusted for.
_RETRY_START = 1.0
_RETRY_MAX = 300.0


@dataclass
class _Hostname:
    resolution: dns.Resolution | None = None
    task: asyncio.Task[None] | None = None
    users: set[ImportKey] = field(default_factory=set)


class Hostnames:
    """The hostnames imports read, each resolved by its own task."""

    def __init__(
        self, resolver: dns.HostnameResolver, *, on_change: Callable[[ImportKey], None]
    ) -> None:
        self.resolver = resolver
        self._on_change = on_change
        self._names: dict[str, _Hostname] = {}

    def lookup(self, key: ImportKey, hostname: str) -> dns.Resolution | None:
        """The latest answer for ``hostname``, which ``key`` now uses; None until the first."""
        entry = self._names.get(hostname)
        if entry is None:
            entry = self._names[hostname] = _Hostname()
            entry.task = asyncio.get_running_loop().create_task(
                self._keep_resolving(hostname, entry), name=f"resolve {hostname}"
            )
        entry.users.add(key)
        return entry.resolution

    def release(self, key: ImportKey, hostnames: Iterable[str]) -> None:
        """``key`` no longer reads these names."""
        for hostname in hostnames:
            entry = self._names.get(hostname)
            if entry is not None:
                entry.users.discard(key)

    def stop(self) -> None:
        """End every name's task."""
        for entry in self._names.values():
            if entry.task:
                entry.task.cancel()

    def __len__(self) -> int:
        return len(self._names)

    async def _keep_resolving(self, hostname: str, entry: _Hostname) -> None:
        """Resolve again when the answer's TTL runs out; queue the users when it changes."""
        retry = _RETRY_START
        while entry.users or entry.resolution is None:
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
        """Keep the new answer, queue the users if it changed; seconds until the next."""
        changed = entry.resolution is None or (
            (entry.resolution.addresses, entry.resolution.error)
            != (resolution.addresses, resolution.error)
        )
        entry.resolution = resolution
        if changed:
            for key in list(entry.users):
                self._on_change(key)
        return resolution.ttl
