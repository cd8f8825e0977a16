"""Leader election over a coordination.k8s.io Lease, for running more than one replica.

Only the leader syncs; the others keep their caches warm and take over when the leader's
lease runs out. A replica that loses the lease exits rather than carry on half-sure, the way
controller-runtime's managers do: the Deployment starts it again as a standby.

Renewing the lease is a write every few seconds, so election is off unless asked for: a
single replica then writes nothing at all when nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from shared_services.kube import JSON, Conflict, Kube, KubeError, collection_path

log = logging.getLogger(__name__)

LEASE_NAME = "shared-services-operator"


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


class LeaderElector:
    """Acquires and keeps one Lease; ``acquire`` returns once this replica leads."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str = LEASE_NAME,
        duration: float = 15.0,
        renew_every: float = 5.0,
        retry_every: float = 2.0,
    ) -> None:
        self.kube = kube
        self.path = collection_path(
            group="coordination.k8s.io", version="v1", plural="leases", namespace=namespace
        )
        self.name = name
        self.identity = f"{os.environ.get('HOSTNAME', 'operator')}-{secrets.token_hex(3)}"
        self.duration = duration
        self.renew_every = renew_every
        self.retry_every = retry_every
        self.leading = False

    async def acquire(self) -> None:
        """Wait until this replica holds the lease."""
        # Polling is the protocol: the lease lives in another process's API server.
        while not await asyncio.to_thread(self._try):  # noqa: ASYNC110
            await asyncio.sleep(self.retry_every)
        self.leading = True
        log.info("leading as %s", self.identity)

    async def hold(self) -> None:
        """Renew the lease until it is lost (returns then), e.g. after a network partition."""
        last = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                renewed = await asyncio.to_thread(self._try)
            except KubeError as error:
                log.warning("renewing the lease: %s", error)
                renewed = True  # not lost yet: only the deadline decides
                if asyncio.get_running_loop().time() - last > self.duration:
                    renewed = False
            else:
                if renewed:
                    last = asyncio.get_running_loop().time()
            if not renewed:
                self.leading = False
                log.error("lost the lease %s; stopping", self.name)
                return

    def release(self) -> None:
        """Give the lease up on a clean shutdown, so a standby takes over at once."""
        if not self.leading:
            return
        try:
            lease = self.kube.get(f"{self.path}/{self.name}")
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                self.kube.request("PUT", f"{self.path}/{self.name}", body=lease)
        except KubeError as error:
            log.warning("releasing the lease: %s", error)

    def _try(self) -> bool:
        now = datetime.now(UTC)
        lease = self.kube.get(f"{self.path}/{self.name}")
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": _micro(now),
        }
        if lease is None:
            body: JSON = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name},
                "spec": spec | {"acquireTime": _micro(now), "leaseTransitions": 0},
            }
            try:
                self.kube.create(self.path, body)
            except Conflict:
                return False
            return True
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        if holder and holder != self.identity:
            renewed = _parse(current.get("renewTime")) or datetime.min.replace(tzinfo=UTC)
            expires = renewed + timedelta(seconds=current.get("leaseDurationSeconds") or 15)
            if expires > now:
                return False
        if holder != self.identity:
            spec["acquireTime"] = _micro(now)
            spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
        lease["spec"] = current | spec
        try:
            # The resourceVersion in the body makes this a compare-and-swap: of two replicas
            # taking over an expired lease, one gets 409 and stays a standby.
            self.kube.request("PUT", f"{self.path}/{self.name}", body=lease)
        except Conflict:
            return False
        return True
