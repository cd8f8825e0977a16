"""The local cluster's own networks, which the address policy keeps endpoints out of.

Nodes and ServiceCIDRs are watched (with only the fields the policy reads kept: a Node's
status also lists every image on it, tens of kB each), and reduced to one entry per
object, so that a Node's heartbeat is compared in microseconds and changes nothing. A
change that counts is applied once per burst (a scale-up adds Nodes by the dozen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from shared_services import builders, policy
from shared_services.api import JSON
from shared_services.informer import Informer
from shared_services.kube import Kube, collection_path

_NODES = collection_path(group="", version="v1", plural="nodes", namespace=None)
_SERVICE_CIDRS = collection_path(
    group="networking.k8s.io", version="v1", plural="servicecidrs", namespace=None
)
_SETTLE = 0.5


class LocalNetworks:
    """The cluster's Node and Service ranges, and the address families it gives Services."""

    def __init__(self, *, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._nodes: dict[str, policy.NodeNetworks] = {}
        self._service_cidrs: dict[str, policy.ServiceCIDRNetworks] = {}
        self.networks = policy.ClusterNetworks()
        self.service_families: frozenset[str] | None = None
        self.informers: list[Informer] = []
        self.active = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, kube: Kube) -> None:
        """Start the watches of Nodes and ServiceCIDRs."""
        self._loop = asyncio.get_running_loop()
        self.informers = [
            self._informer(kube, "nodes", _NODES),
            self._informer(kube, "servicecidrs", _SERVICE_CIDRS),
        ]

    def _informer(self, kube: Kube, what: str, path: str) -> Informer:
        loop = asyncio.get_running_loop()

        def on_event(event_type: str, obj: JSON) -> None:
            loop.call_soon_threadsafe(self._event, what, event_type, obj)

        return Informer(
            kube, path, name=f"local {what}", on_event=on_event, transform=_network_fields
        ).start()

    def _event(self, what: str, event_type: str, obj: JSON) -> None:
        """A Node or ServiceCIDR changed: rebuild the networks if what counts did."""
        name = str(obj.get("metadata", {}).get("name"))
        table: dict[str, Any] = self._nodes if what == "nodes" else self._service_cidrs
        entry = None
        if event_type != "DELETED":
            entry = (
                policy.node_networks(obj) if what == "nodes" else policy.service_cidr_networks(obj)
            )
        if table.get(name) == entry:
            return  # a heartbeat, a label: nothing the policy reads
        if entry is None:
            table.pop(name, None)
        else:
            table[name] = entry
        if self.active and self._timer is None and self._loop is not None:
            # Nodes come in bursts (a scale-up); one rebuild and one requeue for the burst.
            self._timer = self._loop.call_later(_SETTLE, self.rebuild)

    def close(self) -> None:
        """Cancel a rebuild still waiting for its burst to end."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def rebuild(self) -> None:
        """Make the networks whole from the tables; say so if they changed."""
        self._timer = None
        networks = policy.ClusterNetworks.of(
            service_cidrs=self._service_cidrs.values(), nodes=self._nodes.values()
        )
        if networks == self.networks:
            return
        self.networks = networks
        # The families the cluster gives Services, from its ServiceCIDRs; None when it has
        # none to read (older clusters, or the cluster rule turned off), and then a Service
        # takes the families of its addresses, as the API server allows.
        families = {
            builders.IPV4 if n.version == 4 else builders.IPV6
            for s in networks.service_cidrs
            for n in s.cidrs
        }
        self.service_families = frozenset(families) or None
        if self.active:
            # An address allowed until now may be a new Node's, and the other way round.
            self._on_change()


def _network_fields(obj: JSON) -> JSON:
    """What the address policy reads of a Node or ServiceCIDR, and the watch's bookkeeping."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return {
        "metadata": {k: metadata[k] for k in ("name", "uid", "resourceVersion") if k in metadata},
        "spec": {k: spec[k] for k in ("podCIDR", "podCIDRs", "cidrs") if k in spec},
        "status": {"addresses": (obj.get("status") or {}).get("addresses") or []},
    }
