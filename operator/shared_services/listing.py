"""Plain paged lists, for what must be known whole before the first sync.

The start-up lists of imports and RemoteClusters, and the resync's list of imports, read
a collection once, in pages, with the fields nothing reads dropped. A list that is refused
(a missing permission, an API server still starting) is tried again with backoff until it
succeeds, and its last error is kept for readiness to show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from shared_services.api import JSON
from shared_services.informer import PAGE, slim
from shared_services.kube import Kube, KubeError

log = logging.getLogger(__name__)

_RETRY_START = 0.5
_RETRY_MAX = 30.0


def list_all(kube: Kube, paths: Iterable[str]) -> list[JSON]:
    """Every object of these collections, slimmed, fetched in pages."""
    items: list[JSON] = []
    for path in paths:
        cursor = ""
        while True:
            params = {"limit": str(PAGE)} | ({"continue": cursor} if cursor else {})
            listing = kube.request("GET", path, params=params)
            items.extend(slim(item) for item in listing.get("items", []))
            cursor = listing.get("metadata", {}).get("continue") or ""
            if not cursor:
                break
    return items


class Listing:
    """One list that must succeed once, and what stands in its way meanwhile."""

    def __init__(self, kube: Kube, paths: Iterable[str], *, what: str) -> None:
        self.kube = kube
        self.paths = tuple(paths)
        self.what = what
        self.done = False
        self.error: str | None = None

    async def until_allowed(self) -> list[JSON]:
        """List, retrying a refusal with backoff; each new error is logged once."""
        backoff = _RETRY_START
        while True:
            try:
                items = await asyncio.to_thread(list_all, self.kube, self.paths)
            except KubeError as error:
                if str(error) != self.error:
                    log.warning("listing %s: %s", self.what, error)
                self.error = str(error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RETRY_MAX)
                continue
            self.error = None
            self.done = True
            return items

    def waiting(self) -> str | None:
        """What readiness waits for, or None once listed."""
        return None if self.done else f"{self.what}: {self.error or 'listing'}"
