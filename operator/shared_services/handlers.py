"""kopf's side: start and stop the operator, pass imports, catalogs and RemoteClusters on.

The handlers are event handlers only (no create/update/delete handlers), so kopf keeps no
per-object state: it writes no progress annotations and adds no finalizers, and deleting
an import, a RemoteCluster or their namespace never waits for the operator to be running. The
:class:`~shared_services.manager.Manager` comes in kopf's memo, built by the entry point.
"""

from __future__ import annotations

from typing import Any

import kopf

from shared_services.manager import (
    CATALOG_PLURAL,
    GROUP,
    IMPORT_PLURAL,
    REMOTE_CLUSTER_PLURAL,
    VERSION,
    Manager,
)


@kopf.on.startup()
async def startup(memo: kopf.Memo, **_: Any) -> None:
    """Start the manager; a health port that cannot be bound ends the start-up for good."""
    manager: Manager = memo.manager
    try:
        await manager.start()
    except OSError as error:
        raise kopf.PermanentError(f"cannot serve probes: {error}") from error


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop syncing, give the lease up if held, close the watches and the probes."""
    manager: Manager = memo.manager
    await manager.stop()


@kopf.on.event(GROUP, VERSION, REMOTE_CLUSTER_PLURAL)
async def cluster_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Any change of a RemoteCluster."""
    manager: Manager = memo.manager
    manager.cluster_event(type, body)


@kopf.on.event(GROUP, VERSION, IMPORT_PLURAL)
async def import_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Any change of a SharedServiceImport: the manager queues it if its spec changed."""
    manager: Manager = memo.manager
    manager.import_event(type, body)


@kopf.on.event(GROUP, VERSION, CATALOG_PLURAL)
async def catalog_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Any change of a SharedServiceCatalog."""
    manager: Manager = memo.manager
    manager.catalog_event(type, body)
