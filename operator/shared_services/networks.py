"""The local cluster's own networks, which the address policy keeps endpoints out of.

Nodes and ServiceCIDRs are watched (with only the fields the policy reads kept: a Node's
status also lists every image on it, tens of kB each), and reduced to one entry per
object, so that a Node's heartbeat is compared in microseconds and changes nothing. A
change that counts is applied once per burst (a scale-up adds Nodes by the dozen).

ServiceCIDRs are served only from Kubernetes 1.33; discovery says whether this API server
serves them, and a watch of an API it does not serve is never opened (it would answer 404
forever, and readiness would wait for it forever). Without them the Service range is still
needed, since "never into the cluster itself" is the default: it is taken from
``--service-cidrs`` where the platform team set it, and otherwise from the API server's own
words, which name the range when a dry-run create asks for a ClusterIP outside it. Where
neither gives it, every address is refused with a message saying what to set: the rule
never fails open.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from shared_services import builders, policy
from shared_services.api import JSON
from shared_services.informer import Informer
from shared_services.kube import Conflict, Invalid, Kube, KubeError, collection_path

log = logging.getLogger(__name__)

_NODES = collection_path(group="", version="v1", plural="nodes", namespace=None)
_PODS = collection_path(group="", version="v1", plural="pods", namespace=None)
_SERVICE_CIDRS = collection_path(
    group="networking.k8s.io", version="v1", plural="servicecidrs", namespace=None
)
_SETTLE = 0.5
_SERVICE_CIDRS_API = "networking.k8s.io/v1"
# Allocation refusals name the range: "the provided IP (203.0.113.254) is not in the valid
# range. The range of valid IPs is 10.96.0.0/16" (the API server's ErrNotInRange).
_RANGE_IN_REFUSAL = re.compile(r"range of valid IPs is ([0-9A-Fa-f:.]{2,45}/[0-9]{1,3})")
# A family the cluster gives no Service addresses: "...: not configured on this cluster".
_FAMILY_NOT_CONFIGURED = "not configured"
# ClusterIPs asked for in the dry run, per family: documentation addresses, outside any
# sane Service range; the next is tried when one happens to lie inside it.
_PROBE_ADDRESSES = {
    builders.IPV4: ("203.0.113.254", "198.51.100.254", "192.0.2.254"),
    builders.IPV6: ("2001:db8:ffff::fffe", "fd00:ffff::fffe"),
}
_PROBE_NAME = "shared-services-range-probe"


class LocalNetworks:
    """The cluster's Node and Service ranges, and the address families it gives Services."""

    def __init__(
        self,
        *,
        on_change: Callable[[], None],
        on_pod_addresses: Callable[[frozenset[str]], None] = lambda _new: None,
    ) -> None:
        self._on_change = on_change
        self._on_pod_addresses = on_pod_addresses
        # Each Pod's addresses, and every Pod address to its Pod, kept up to date event by
        # event: a rebuild of the networks per Pod would cost the whole table each time.
        self._pods: dict[str, tuple[policy.Address, ...]] = {}
        self.pod_addresses: dict[policy.Address, str] = {}
        self._new_pod_addresses: set[str] = set()
        self._pod_timer: asyncio.TimerHandle | None = None
        self._nodes: dict[str, policy.NodeNetworks] = {}
        self._service_cidrs: dict[str, policy.ServiceCIDRNetworks] = {}
        # The Service range where no ServiceCIDRs are served: from the settings or the API
        # server's words; or why it is unknown.
        self._fixed_ranges: tuple[policy.ServiceCIDRNetworks, ...] = ()
        self._unknown = ""
        # What readiness and the log say about APIs skipped and where the range came from.
        self.notes: list[str] = []
        self.networks = policy.ClusterNetworks()
        self.service_families: frozenset[str] | None = None
        self.informers: list[Informer] = []
        self.active = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def watch(
        self, kube: Kube, *, service_cidrs: Sequence[policy.Network], probe_namespace: str
    ) -> None:
        """Start the watches of Nodes, and of ServiceCIDRs where the API server serves them.

        Where it does not, learn the Service range once, here: before 1.33 it cannot change
        without restarting the API server with another flag.
        """
        self._loop = asyncio.get_running_loop()
        self.informers = [
            self._informer(kube, "nodes", _NODES),
            self._informer(kube, "pods", _PODS, transform=pod_fields),
        ]
        given = (
            (policy.ServiceCIDRNetworks("--service-cidrs", tuple(service_cidrs), "set by"),)
            if service_cidrs
            else ()
        )
        served = await asyncio.to_thread(served_resources, kube, _SERVICE_CIDRS_API)
        if served is not None and "servicecidrs" in served:
            self.informers.append(self._informer(kube, "servicecidrs", _SERVICE_CIDRS))
            self._fixed_ranges = given
            return
        why = "not served by this API server (Kubernetes before 1.33)"
        if served is None:
            why = "the API server's discovery could not be read"
        skipped = f"skipped {_SERVICE_CIDRS_API} ServiceCIDRs: {why}"
        if given:
            self._fixed_ranges = given
            self._note(f"{skipped}; Service range {_ranges(given)} set by --service-cidrs")
            return
        found = await asyncio.to_thread(probe_service_ranges, kube, probe_namespace)
        if isinstance(found, str):
            self._unknown = f"the local cluster's Service range is unknown ({found})"
            self._note(f"{skipped}; {self._unknown}: every address is refused until it is set")
            return
        self._fixed_ranges = (policy.ServiceCIDRNetworks("the API server", found, "named by"),)
        self._note(
            f"{skipped}; Service range {_ranges(self._fixed_ranges)} named by the API server"
        )

    def _note(self, text: str) -> None:
        log.info("%s", text)
        self.notes.append(text)

    def _informer(
        self,
        kube: Kube,
        what: str,
        path: str,
        *,
        transform: Callable[[JSON], JSON] | None = None,
    ) -> Informer:
        loop = asyncio.get_running_loop()
        handle = self._pod_event if what == "pods" else self._event

        def on_event(event_type: str, obj: JSON) -> None:
            loop.call_soon_threadsafe(handle, what, event_type, obj)

        return Informer(
            kube,
            path,
            name=f"local {what}",
            on_event=on_event,
            transform=transform or _network_fields,
        ).start()

    def _pod_event(self, _what: str, event_type: str, obj: JSON) -> None:
        """A Pod changed: keep the address table, and say which addresses are new."""
        metadata = obj.get("metadata") or {}
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        addresses = () if event_type == "DELETED" else pod_addresses(obj)
        old = self._pods.get(key, ())
        if addresses == old:
            return  # a status change that moves no address: most Pod events
        for address in old:
            if self.pod_addresses.get(address) == key:
                del self.pod_addresses[address]
        if addresses:
            self._pods[key] = addresses
        else:
            self._pods.pop(key, None)
        for address in addresses:
            self.pod_addresses[address] = key
        added = {str(a) for a in addresses if a not in old}
        if not added or not self.active or self._loop is None:
            return
        # An address allowed until now may be this Pod's: the imports that serve it are
        # judged again, once per burst (a Deployment scales up by the dozen).
        self._new_pod_addresses |= added
        if self._pod_timer is None:
            self._pod_timer = self._loop.call_later(_SETTLE, self._pods_settled)

    def _pods_settled(self) -> None:
        self._pod_timer = None
        added, self._new_pod_addresses = frozenset(self._new_pod_addresses), set()
        self._on_pod_addresses(added)

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
        for timer in (self._timer, self._pod_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._pod_timer = None

    def rebuild(self) -> None:
        """Make the networks whole from the tables; say so if they changed."""
        self._timer = None
        networks = policy.ClusterNetworks.of(
            service_cidrs=[*self._service_cidrs.values(), *self._fixed_ranges],
            nodes=self._nodes.values(),
            unknown_service_range=self._unknown,
            pods=self.pod_addresses,
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


def _ranges(entries: Sequence[policy.ServiceCIDRNetworks]) -> str:
    return ", ".join(str(n) for entry in entries for n in entry.cidrs)


def served_resources(kube: Kube, group_version: str) -> frozenset[str] | None:
    """The resources the API server serves in ``group_version``; None when it cannot say.

    A group version the server does not serve answers 404: an empty set, not an error.
    """
    path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    try:
        listing = kube.get(path)
    except KubeError as error:
        log.warning("discovery of %s failed: %s", group_version, error)
        return None
    if listing is None:
        return frozenset()
    return frozenset(
        str(r.get("name")) for r in listing.get("resources") or [] if isinstance(r, dict)
    )


def probe_service_ranges(kube: Kube, namespace: str) -> tuple[policy.Network, ...] | str:
    """The cluster's Service ranges as the API server names them; or why they are unknown.

    A dry-run create of a Service that asks for a ClusterIP outside the range is refused
    with the range in the message; nothing is written. Each family is asked on its own: a
    family the cluster does not give Services says "not configured", and any other answer
    leaves the range unknown, since a family judged by half a range would fail open.
    """
    ranges: list[policy.Network] = []
    for family, candidates in _PROBE_ADDRESSES.items():
        found = _probe_family(kube, namespace, family, candidates)
        if isinstance(found, str):
            return found
        ranges.extend(found)
    if not ranges:
        return "the API server named no Service range for either address family"
    return tuple(ranges)


def named_range(message: str) -> policy.Network | Literal["none"] | None:
    """The Service range that an allocation refusal names, if it names one.

    "none" when it says the family is not one the cluster gives Services; None when it says
    neither (someone else's refusal: an admission policy, a name in use).
    """
    match = _RANGE_IN_REFUSAL.search(message)
    if match is not None:
        try:
            return policy.parse_cidr(match.group(1))
        except ValueError:
            return None
    return "none" if _FAMILY_NOT_CONFIGURED in message else None


def _probe_family(
    kube: Kube, namespace: str, family: str, candidates: Sequence[str]
) -> list[policy.Network] | str:
    path = collection_path(group="", version="v1", plural="services", namespace=namespace)
    for address in candidates:
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": _PROBE_NAME},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": address,
                "clusterIPs": [address],
                "ipFamilies": [family],
                "ipFamilyPolicy": "SingleStack",
                "ports": [{"port": 1, "protocol": "TCP"}],
            },
        }
        try:
            kube.request("POST", path, body=body, params={"dryRun": "All"})
        except (Invalid, Conflict) as error:
            named = named_range(error.message)
            if named is not None:
                return [named] if named != "none" else []
            if isinstance(error, Invalid) and "denied" not in error.message:
                return f"a dry-run Service create in {namespace} was refused: {error}"
        except KubeError as error:
            return f"a dry-run Service create in {namespace} failed: {error}"
        # Accepted, or refused only after the address was taken (a name in use, an
        # admission policy that denied it): the address lies inside the range; ask with
        # the next one.
    return f"the API server named no {family} Service range"


def _network_fields(obj: JSON) -> JSON:
    """What the address policy reads of a Node or ServiceCIDR, and the watch's bookkeeping."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return {
        "metadata": {k: metadata[k] for k in ("name", "uid", "resourceVersion") if k in metadata},
        "spec": {k: spec[k] for k in ("podCIDR", "podCIDRs", "cidrs") if k in spec},
        "status": {"addresses": (obj.get("status") or {}).get("addresses") or []},
    }


def pod_addresses(obj: JSON) -> tuple[policy.Address, ...]:
    """The addresses of a (trimmed) Pod that parse; hostile text is skipped, never raised on."""
    found = []
    for entry in (obj.get("status") or {}).get("podIPs") or []:
        try:
            found.append(policy.parse_cidr(str(entry["ip"])).network_address)
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(found)


def pod_fields(obj: JSON) -> JSON:
    """What the address policy reads of a Pod: its addresses, and the watch's bookkeeping.

    A Pod object runs to kilobytes (its spec, its containers' statuses); ten thousand of
    them whole would cost the operator tens of megabytes for a few bytes each it reads.
    """
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    ips = [
        {"ip": entry["ip"]}
        for entry in status.get("podIPs") or []
        if isinstance(entry, dict) and isinstance(entry.get("ip"), str)
    ]
    if not ips and isinstance(status.get("podIP"), str):
        ips = [{"ip": status["podIP"]}]
    return {
        "metadata": {
            k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in metadata
        },
        "status": {"podIPs": ips},
    }
