"""Where endpoints may point: the platform team's address policy, judged without side effects.

Whoever writes a Service's endpoints decides where its traffic goes, which is why Kubernetes
took Endpoints write out of the ``edit`` role (CVE-2021-25740). The operator writes them for
anyone allowed to create a SharedServiceImport, so every address it is about to write, from
any source (a RemoteCluster's VIP, a hostname's answer, a fixed list), is judged here first,
by these rules in this order:

1. what the API server refuses as an endpoint (unspecified, loopback, link-local,
   multicast, broadcast), so the refusal has a reason instead of a 422;
2. IPv6 forms that stand for an IPv4 address and are never a service's VIP
   (IPv4-compatible, IPv4-translated, 6to4, Teredo), and addresses of the local-use NAT64
   range ``64:ff9b:1::/48`` that no NAT64 prefix of the settings covers: where such an
   address carries its IPv4 one is decided by the network, so it cannot be judged;
3. the local cluster itself: its Service ranges (ServiceCIDRs), its Pod ranges and its
   Nodes' addresses, unless ``allow_cluster_networks`` (a tenant must not reach another
   namespace's pods, a node or the API server through a Service of their own);
4. the cloud's metadata and control services that lie outside the link-local range
   (``fd00:ec2::254``, ``168.63.129.16``, ``100.100.100.200``), unless
   ``allow_metadata_services``: they hand out the node's credentials;
5. the deny-list;
6. the allow-list, when there is one: then it is the only place endpoints may point.

An address under a NAT64 prefix (the well-known ``64:ff9b::/96``, and those of the
settings) reaches the IPv4 address it carries through the translator, so it is judged
twice: as written, and by that IPv4 address; it is refused if either form is. On a
cluster whose DNS server synthesises AAAA records (DNS64), every name with an A record has
such an address, so this is what keeps a hostname from reaching a Node through it.

A tenant is told which address is refused and by which rule, not the cluster's topology:
"is in the local cluster's Pod range", not which Node has that range. Each refusal keeps
the full story (the Node, its range, the ServiceCIDR) in ``detail``, for the operator's log.

The policy is set by flags (and their environment variables) rather than by a
cluster-scoped resource: it belongs to whoever installs the operator (the platform team,
through the chart's values and their GitOps), no broad role can ever grant a tenant write
on it, and it is visible in the Deployment. external-dns's ``--target-net-filter`` and
``--exclude-target-net`` are the precedent.

Everything here is pure: no client, no clock, no I/O. It runs on every sync (10,000 imports
at start-up, clusters of 1,000 Nodes), so ranges are collapsed into sorted intervals once,
when a policy or a :class:`ClusterNetworks` is built; an allowed address costs a parse, a
dict lookup and a few bisections. The Node or ServiceCIDR behind a refusal is looked for
only to word the refusal.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeGuard, get_args

from shared_services import api, builders
from shared_services.advice import Reason

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
StaticSources = Literal["all", "none", "listed"]
STATIC_SOURCES: tuple[str, ...] = get_args(StaticSources)
# Which rule refused an address; stable words for tests, logs and metrics.
Rule = Literal[
    "not-an-address",
    "api-server",
    "service-range",
    "pod-range",
    "node-address",
    "pod-address",
    "ipv4-in-ipv6",
    "metadata-service",
    "denied",
    "not-allowed",
]

# The reasons of the import's Ready condition that this module's answers lead to.
ADDRESS_NOT_ALLOWED = Reason.ADDRESS_NOT_ALLOWED
SOURCE_NOT_ALLOWED = Reason.SOURCE_NOT_ALLOWED

ALLOWED_FLAG = "--allowed-cidrs"
DENIED_FLAG = "--denied-cidrs"
CLUSTER_FLAG = "--allow-cluster-networks"
STATIC_FLAG = "--static-sources"
STATIC_NAMESPACE_FLAG = "--static-source-namespace"
SERVICE_CIDRS_FLAG = "--service-cidrs"
NAT64_FLAG = "--nat64-prefixes"
METADATA_FLAG = "--allow-metadata-services"
REMOTE_SERVERS_FLAG = "--remote-server-cidrs"
# The reason of a RemoteCluster's condition when its server (or sign-in endpoint) is in a
# place the operator may not connect to.
SERVER_NOT_ALLOWED = Reason.SERVER_NOT_ALLOWED

# The longest textual address (IPv6 with an IPv4 tail) is 45 characters, a CIDR 49; a
# longer string is garbage and not worth handing to the parser.
_MAX_TEXT = 64
# Kubernetes object names are DNS subdomains of at most 253 characters.
_MAX_NAME = 253
# Parsed texts remembered: a 1,000-Node cluster has a few thousand ranges and addresses.
_PARSE_CACHE = 16384
# How many allowed ranges a refusal lists before it says "and N more".
_LISTED_RANGES = 4
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# The prefix lengths RFC 6052 defines for NAT64, each with its own place for the IPv4 bits.
NAT64_PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)
# RFC 8215's range for NAT64 prefixes of a network's own choosing: which of the lengths
# above a network uses in it is known only from the settings.
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# Cloud metadata and control services outside the link-local range (whose addresses the API
# server refuses already), with who serves each: they answer any local caller, and a
# Service pointed at them would hand a node's credentials to whoever can reach the Service.
METADATA_SERVICES: tuple[tuple[Address, str], ...] = (
    (ipaddress.IPv6Address("fd00:ec2::254"), "the EC2 instance metadata service (IPv6)"),
    (ipaddress.IPv4Address("168.63.129.16"), "Azure's WireServer"),
    (ipaddress.IPv4Address("100.100.100.200"), "Alibaba Cloud's metadata service"),
)


# --- parsing -------------------------------------------------------------------------------


def is_static_sources(value: str) -> TypeGuard[StaticSources]:
    """Whether ``value`` is one of the ``--static-sources`` choices."""
    return value in STATIC_SOURCES


@functools.lru_cache(maxsize=_PARSE_CACHE)
def _address(text: str) -> Address | None:
    """Parse an address as Kubernetes components do, or return None.

    IPv4-mapped IPv6 (``::ffff:10.96.0.1``) is the IPv4 address: Go treats it so, and a
    policy that let it through would be bypassed by spelling an address differently.
    Remembered, because the same few addresses are judged on every sync and ipaddress
    parses in pure Python.
    """
    if len(text) > _MAX_TEXT:
        return None
    try:
        if ":" not in text:
            return ipaddress.IPv4Address(text)
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if address.scope_id is not None:
        return None
    return address.ipv4_mapped or address


def _unmapped(network: Network) -> Network:
    """An IPv4-mapped IPv6 range as the IPv4 range it stands for, since addresses are so."""
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.prefixlen >= _IPV4_MAPPED.prefixlen
        and network.subnet_of(_IPV4_MAPPED)
    ):
        return ipaddress.IPv4Network(
            (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96)
        )
    return network


def parse_cidr(text: str) -> Network:
    """Parse one CIDR of a flag (a bare address is one address); raise ValueError if unfit.

    Host bits are refused rather than masked: ``10.1.2.3/8`` more likely means a typo than
    ``10.0.0.0/8``, and in a security rule a guess either way is worse than a clear stop.
    """
    text = text.strip()
    if not text or len(text) > _MAX_TEXT:
        raise ValueError(f"{builders.describe(text)} is not a CIDR such as 198.51.100.0/24")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        if "host bits set" in str(error):
            masked = ipaddress.ip_network(text, strict=False)
            raise ValueError(f"{text} has host bits set; did you mean {masked}?") from None
        raise ValueError(
            f"{builders.describe(text)} is not a CIDR such as 198.51.100.0/24"
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and "%" in text:
        raise ValueError(f"{builders.describe(text)} has a zone index")
    return _unmapped(network)


def parse_cidrs(values: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDRs given as repeated or comma-separated values, keeping their order."""
    return tuple(parse_cidr(part) for value in values for part in value.split(",") if part.strip())


def nat64_prefix_problem(network: Network) -> str | None:
    """Why ``network`` cannot be a NAT64 prefix, or None when it can (RFC 6052, 2.2)."""
    lengths = ", ".join(f"/{n}" for n in NAT64_PREFIX_LENGTHS)
    if not isinstance(network, ipaddress.IPv6Network):
        return f"{network} is not an IPv6 prefix, so it cannot be a NAT64 prefix"
    if network.prefixlen not in NAT64_PREFIX_LENGTHS:
        return f"{network} cannot be a NAT64 prefix: its length must be one of {lengths}"
    return None


def parse_nat64_prefixes(values: Iterable[str]) -> tuple[ipaddress.IPv6Network, ...]:
    """Parse NAT64 prefixes given as repeated or comma-separated values; ValueError if unfit."""
    prefixes: list[ipaddress.IPv6Network] = []
    for network in parse_cidrs(values):
        problem = nat64_prefix_problem(network)
        if problem is not None:
            raise ValueError(problem)
        assert isinstance(network, ipaddress.IPv6Network)
        prefixes.append(network)
    return tuple(prefixes)


def nat64_ipv4(
    address: ipaddress.IPv6Address, prefix: ipaddress.IPv6Network
) -> ipaddress.IPv4Address:
    """The IPv4 address that ``address`` carries under the NAT64 ``prefix`` (RFC 6052, 2.2).

    The 32 bits right after the prefix, except bits 64 to 71, which are never used; after
    a /96 prefix, the last 32 bits.
    """
    value = int(address)
    if prefix.prefixlen == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    without_u = ((value >> 64) << 56) | (value & ((1 << 56) - 1))
    return ipaddress.IPv4Address((without_u >> (88 - prefix.prefixlen)) & 0xFFFFFFFF)


def _loose_network(raw: object) -> Network | None:
    """A CIDR from a Node or ServiceCIDR, or None: those objects are data, never trusted.

    Host bits are masked, as Go's ``net.ParseCIDR`` does for the API server, so a range is
    never missed because of how it was written.
    """
    if not isinstance(raw, str) or len(raw) > _MAX_TEXT or "%" in raw:
        return None
    return _cached_network(raw)


@functools.lru_cache(maxsize=_PARSE_CACHE)
def _cached_network(text: str) -> Network | None:
    # Every Node event repeats the Node's ranges; parsing them again each time was most of
    # the cost of rebuilding the networks of a 1,000-Node cluster.
    try:
        return _unmapped(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return None


# --- sorted intervals ----------------------------------------------------------------------


def _family_key(item: Network | Address) -> tuple[int, int, int]:
    # Addresses and networks of the two families do not compare with each other.
    if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return item.version, int(item.network_address), item.prefixlen
    return item.version, int(item), 0


class _Ranges:
    """Networks collapsed into disjoint sorted intervals, so membership is a bisection."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, networks: Iterable[Network]) -> None:
        by_family: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for network in networks:
            start = int(network.network_address)
            by_family[network.version].append((start, start + network.num_addresses - 1))
        self._starts: dict[int, tuple[int, ...]] = {}
        self._ends: dict[int, tuple[int, ...]] = {}
        for version, intervals in by_family.items():
            merged: list[list[int]] = []
            for start, end in sorted(intervals):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            self._starts[version] = tuple(s for s, _ in merged)
            self._ends[version] = tuple(e for _, e in merged)

    def __contains__(self, address: Address) -> bool:
        starts = self._starts[address.version]
        value = int(address)
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[address.version][index]


# What the API server refuses in Endpoints and EndpointSlices, as ranges: the same set that
# api.endpoint_address_problem names (a unit test holds the two together); that function
# words the refusal.
_REFUSED_BY_API_SERVER = _Ranges(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/32",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fe80::/10",
        "ff00::/8",
    )
)


_METADATA_SERVICES: dict[Address, str] = dict(METADATA_SERVICES)


# --- the policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressPolicy:
    """The platform team's rules for where endpoints may point, and who may use static sources.

    ``allowed`` empty means anywhere that is not denied. ``static_sources`` says which
    namespaces may use ``addresses`` and ``hostname``: all (the default), none, or the
    ``static_source_namespaces`` listed. ``nat64_prefixes`` are the network's own NAT64
    prefixes, whose addresses are judged by the IPv4 address they carry as well; the
    well-known ``64:ff9b::/96`` always is.
    """

    allowed: tuple[Network, ...] = ()
    denied: tuple[Network, ...] = ()
    allow_cluster_networks: bool = False
    static_sources: StaticSources = "all"
    static_source_namespaces: frozenset[str] = frozenset()
    # The cluster's Service range as the platform team gives it: needed only where the API
    # server serves no ServiceCIDRs (before 1.33) and will not name its range itself.
    service_cidrs: tuple[Network, ...] = ()
    nat64_prefixes: tuple[ipaddress.IPv6Network, ...] = ()
    allow_metadata_services: bool = False
    # Where RemoteCluster servers and sign-in endpoints may be; empty means wherever the
    # rules for endpoints (but their allow-list) would let an endpoint point.
    remote_servers: tuple[Network, ...] = ()
    _allowed: _Ranges = field(init=False, repr=False, compare=False)
    _denied: _Ranges = field(init=False, repr=False, compare=False)
    _remote_servers: _Ranges = field(init=False, repr=False, compare=False)
    # Every NAT64 prefix that applies, the well-known one first.
    _nat64: tuple[ipaddress.IPv6Network, ...] = field(init=False, repr=False, compare=False)
    # Every IPv6 range whose addresses carry an IPv4 one: a single bisection tells an
    # ordinary IPv6 address from one that needs a closer look.
    _carriers: _Ranges = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_static_sources(self.static_sources):
            raise ValueError(
                f"static sources must be one of {', '.join(STATIC_SOURCES)}, "
                f"not {builders.describe(self.static_sources)}"
            )
        if self.static_sources == "listed" and not self.static_source_namespaces:
            raise ValueError(f"{STATIC_FLAG}=listed needs at least one {STATIC_NAMESPACE_FLAG}")
        # ::ffff:198.51.100.0/120 is judged as the IPv4 range, as addresses are.
        object.__setattr__(self, "allowed", tuple(map(_unmapped, self.allowed)))
        object.__setattr__(self, "denied", tuple(map(_unmapped, self.denied)))
        object.__setattr__(
            self, "static_source_namespaces", frozenset(self.static_source_namespaces)
        )
        object.__setattr__(self, "_allowed", _Ranges(self.allowed))
        object.__setattr__(self, "_denied", _Ranges(self.denied))
        object.__setattr__(self, "remote_servers", tuple(map(_unmapped, self.remote_servers)))
        object.__setattr__(self, "_remote_servers", _Ranges(self.remote_servers))
        for prefix in self.nat64_prefixes:
            problem = nat64_prefix_problem(prefix)
            if problem is not None:
                raise ValueError(f"{problem} ({NAT64_FLAG})")
        object.__setattr__(self, "nat64_prefixes", tuple(self.nat64_prefixes))
        nat64 = dict.fromkeys((api.NAT64_WELL_KNOWN_PREFIX, *self.nat64_prefixes))
        object.__setattr__(self, "_nat64", tuple(nat64))
        object.__setattr__(
            self,
            "_carriers",
            _Ranges([*(n for n, _ in api.IPV4_IN_IPV6_FORMS), NAT64_LOCAL_USE, *nat64]),
        )

    def carried_ipv4(
        self, address: ipaddress.IPv6Address
    ) -> list[tuple[ipaddress.IPv4Address, ipaddress.IPv6Network]]:
        """The IPv4 addresses ``address`` carries under the NAT64 prefixes, with each prefix.

        More than one when prefixes nest: then each reading is judged, as either may be the
        translator's.
        """
        if address not in self._carriers:
            return []
        return [(nat64_ipv4(address, p), p) for p in self._nat64 if address in p]

    def ipv4_form(self, address: ipaddress.IPv6Address) -> str | None:
        """Why ``address`` is an IPv6 form of an IPv4 address that cannot be judged, or None."""
        if address not in self._carriers:
            return None
        for network, word in api.IPV4_IN_IPV6_FORMS:
            if address in network:
                return (
                    f"is an IPv6 address in {word} form ({network}), which stands for an "
                    "IPv4 address and is never an endpoint"
                )
        if address in NAT64_LOCAL_USE and not any(address in p for p in self._nat64):
            return (
                f"is in the local-use NAT64 range {NAT64_LOCAL_USE}, and no NAT64 prefix "
                f"({NAT64_FLAG}) says which IPv4 address it carries"
            )
        return None

    def metadata_service(self, address: Address) -> str | None:
        """Which cloud metadata service ``address`` is, unless those are allowed; or None."""
        if self.allow_metadata_services:
            return None
        return _METADATA_SERVICES.get(address)

    def denied_range(self, address: Address) -> Network | None:
        """The deny-list's range that holds ``address``, or None (one bisection if none)."""
        if address not in self._denied:
            return None
        return next(n for n in self.denied if address in n)

    def is_outside_allowed(self, address: Address) -> bool:
        """Whether an allow-list is set and ``address`` is in none of its ranges."""
        return bool(self.allowed) and address not in self._allowed


# --- the local cluster's networks ----------------------------------------------------------


@dataclass(frozen=True)
class ServiceCIDRNetworks:
    """The ranges of one ServiceCIDR object (``networking.k8s.io/v1``, ``spec.cidrs``).

    Before Kubernetes 1.33 there are no such objects; the Service range then comes from
    the ``--service-cidrs`` setting or from the API server's own words, and ``origin`` says
    which, so that a refusal names where the range came from.
    """

    name: str
    cidrs: tuple[Network, ...]
    origin: str = "ServiceCIDR"


@dataclass(frozen=True)
class NodeNetworks:
    """What of one Node is off limits: its Pod ranges and its IP addresses."""

    name: str
    pod_cidrs: tuple[Network, ...]
    addresses: tuple[Address, ...]


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()


def _name(obj: Mapping[str, object]) -> str:
    # The API server validates names; this is for objects that did not come from it.
    name = _mapping(obj.get("metadata")).get("name")
    if isinstance(name, str) and 0 < len(name) <= _MAX_NAME and name.isprintable():
        return name
    return "(unnamed)"


def _unique(items: Iterable[Network]) -> tuple[Network, ...]:
    return tuple(sorted(set(items), key=_family_key))


def service_cidr_networks(obj: object) -> ServiceCIDRNetworks | None:
    """The ranges of a raw ServiceCIDR object; None when it holds none that parse."""
    if not isinstance(obj, Mapping):
        return None
    cidrs = _unique(
        n
        for n in map(_loose_network, _list(_mapping(obj.get("spec")).get("cidrs")))
        if n is not None
    )
    return ServiceCIDRNetworks(_name(obj), cidrs) if cidrs else None


def node_networks(obj: object) -> NodeNetworks | None:
    """The Pod ranges and IP addresses of a raw Node object; None when it has neither.

    Every ``status.addresses`` entry whose value is an IP address counts, whatever its
    type: the type is a label set by the kubelet or a cloud provider, and an address of the
    node is off limits however it is labelled. Hostnames are not resolved (no I/O here).
    """
    if not isinstance(obj, Mapping):
        return None
    spec = _mapping(obj.get("spec"))
    pod_cidrs = _unique(
        n
        for n in map(_loose_network, (*_list(spec.get("podCIDRs")), spec.get("podCIDR")))
        if n is not None
    )
    addresses: set[Address] = set()
    for entry in _list(_mapping(obj.get("status")).get("addresses")):
        value = _mapping(entry).get("address")
        address = _address(value) if isinstance(value, str) else None
        if address is not None:
            addresses.add(address)
    if not pod_cidrs and not addresses:
        return None
    return NodeNetworks(_name(obj), pod_cidrs, tuple(sorted(addresses, key=_family_key)))


@dataclass(frozen=True)
class ClusterNetworks:
    """The local cluster's own ranges and addresses, where no endpoint may point by default.

    Equal when built from the same ranges, addresses and names, so that a Node heartbeat or
    a relabelled Node compares equal and changes nothing. Empty means nothing is known yet:
    judge only once the Node and ServiceCIDR caches are filled.
    """

    service_cidrs: tuple[ServiceCIDRNetworks, ...] = ()
    nodes: tuple[NodeNetworks, ...] = ()
    # Why the Service range is not known, when it is not: then no address can be judged
    # against it, and every one is refused rather than let through (never fail open).
    unknown_service_range: str = ""
    # Every Pod's address, whichever CNI allocated it (many give Pods addresses outside
    # every Node's podCIDRs), to the Pod's "namespace/name". Shared with whoever keeps it up
    # to date rather than copied, and not compared: Pods come and go by the thousand, and a
    # new one requeues only the imports that point at its address (see networks.py).
    pods: Mapping[Address, str] = field(default_factory=dict, compare=False, repr=False)
    _ranges: _Ranges = field(init=False, repr=False, compare=False)
    _node_addresses: dict[Address, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "_ranges",
            _Ranges(
                [
                    *(n for s in self.service_cidrs for n in s.cidrs),
                    *(n for node in self.nodes for n in node.pod_cidrs),
                ]
            ),
        )
        owners: dict[Address, str] = {}
        for node in self.nodes:
            for address in node.addresses:
                owners.setdefault(address, node.name)
        object.__setattr__(self, "_node_addresses", owners)

    @classmethod
    def of(
        cls,
        *,
        service_cidrs: Iterable[ServiceCIDRNetworks],
        nodes: Iterable[NodeNetworks],
        unknown_service_range: str = "",
        pods: Mapping[Address, str] | None = None,
    ) -> ClusterNetworks:
        """Assemble from per-object entries, sorted by name so that order does not matter.

        A controller that keeps one entry per Node can compare an event's new entry with
        the old one and rebuild only when it differs.
        """
        # Names are unique in the API, so sorting by them alone is a total order.
        return cls(
            service_cidrs=tuple(sorted(service_cidrs, key=lambda s: s.name)),
            nodes=tuple(sorted(nodes, key=lambda n: n.name)),
            unknown_service_range=unknown_service_range,
            pods=pods if pods is not None else {},
        )

    def where(self, address: Address) -> tuple[Rule, str, str] | None:
        """Which part of the cluster ``address`` is in, worded; None when in none.

        Worded twice: for the tenant, who is not told which Node has the address or the
        range, nor the Pod ranges; and for the operator's log, which names them. The
        Service range is named to both: the API server names it to anyone who creates a
        Service with a ClusterIP outside it. A scan of every Node: it runs only to word a
        refusal, never on the allowed path.
        """
        for service_cidr in self.service_cidrs:
            for network in service_cidr.cidrs:
                if address in network:
                    said = f"is in the local cluster's Service range {network}"
                    origin = f"{service_cidr.origin} {service_cidr.name}"
                    return "service-range", said, f"{said} ({origin})"
        owner = self._node_addresses.get(address)
        if owner is not None:
            return (
                "node-address",
                "is an address of one of the local cluster's Nodes",
                f"is the address of Node {owner}",
            )
        for node in self.nodes:
            for network in node.pod_cidrs:
                if address in network:
                    return (
                        "pod-range",
                        "is in the local cluster's Pod range",
                        f"is in the Pod range {network} of Node {node.name}",
                    )
        pod = self.pods.get(address)
        if pod is not None:
            return (
                "pod-address",
                "is the address of a Pod of the local cluster",
                f"is the address of Pod {pod}",
            )
        return None

    def contains(self, address: Address) -> bool:
        """Whether ``address`` is one of the cluster's own: dict lookups and a bisection."""
        return address in self._node_addresses or address in self._ranges or address in self.pods


def cluster_networks(
    *, service_cidrs: Iterable[object], nodes: Iterable[object]
) -> ClusterNetworks:
    """The cluster's networks from raw ServiceCIDR and Node objects, as the API returns them.

    Entries that are malformed (or hostile) are skipped, never raised on: one bad Node must
    not stop every import from syncing.
    """
    return ClusterNetworks.of(
        service_cidrs=(s for s in map(service_cidr_networks, service_cidrs) if s is not None),
        nodes=(n for n in map(node_networks, nodes) if n is not None),
    )


# --- judging -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One address that may not be written, the rule that refused it, and why in words.

    ``message`` is for the import's tenant; ``detail`` says the same for the operator's
    log, naming what the tenant is not told (the Node, the Pod range, the ServiceCIDR).
    """

    address: str
    rule: Rule
    message: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The addresses that may be written (in the order given) and those that may not."""

    allowed: tuple[str, ...]
    refused: tuple[Refusal, ...]

    def message(self, *, limit: int = 3) -> str:
        """The refusals for a condition: the first ``limit`` in full, then how many more."""
        return _listed([r.message for r in self.refused], limit)

    def details(self, *, limit: int = 10) -> str:
        """The refusals for the operator's log, in full detail; "" when there are none."""
        return _listed([r.detail for r in self.refused], limit)


def _listed(sentences: Sequence[str], limit: int) -> str:
    shown = "; ".join(sentences[:limit])
    rest = len(sentences) - limit
    return f"{shown}; and {rest} more refused" if rest > 0 else shown


_CLUSTER_HINT = f"endpoints may not point into the local cluster ({CLUSTER_FLAG})"


def _ranges_text(networks: Sequence[Network]) -> str:
    shown = ", ".join(str(n) for n in networks[:_LISTED_RANGES])
    rest = len(networks) - _LISTED_RANGES
    return f"{shown} and {rest} more" if rest > 0 else shown


# The first rule that refuses an address: the rule, the rest of the sentence for the tenant,
# and the same for the operator's log.
_Found = tuple[Rule, str, str]


def _refusal(
    address: Address, *, policy: AddressPolicy, networks: ClusterNetworks
) -> _Found | None:
    """The first rule that refuses ``address`` or the IPv4 address it carries, worded.

    The address as written is judged first; then, for an address under a NAT64 prefix,
    the IPv4 address that the translator sends its traffic to.
    """
    found = _refusal_as_written(address, policy=policy, networks=networks)
    if found is not None or not isinstance(address, ipaddress.IPv6Address):
        return found
    for carried, prefix in policy.carried_ipv4(address):
        found = _refusal_as_written(carried, policy=policy, networks=networks)
        if found is not None:
            rule, message, detail = found
            via = f"carries {carried} (NAT64 prefix {prefix}), which"
            return rule, f"{via} {message}", f"{via} {detail}"
    return None


def _refusal_as_written(
    address: Address, *, policy: AddressPolicy, networks: ClusterNetworks
) -> _Found | None:
    if address in _REFUSED_BY_API_SERVER:
        problem = api.endpoint_address_problem(str(address)) or api.NOT_UNICAST_MESSAGE
        return _same("api-server", f"{problem}: the API server refuses it as an endpoint")
    if isinstance(address, ipaddress.IPv6Address):
        form = policy.ipv4_form(address)
        if form is not None:
            return _same("ipv4-in-ipv6", form)
    if not policy.allow_cluster_networks and networks.unknown_service_range:
        return _same(
            "service-range",
            f"cannot be judged: {networks.unknown_service_range}; set the cluster's Service "
            f"range with {SERVICE_CIDRS_FLAG} (chart value addressPolicy.serviceCIDRs), "
            f"or let endpoints into the cluster with {CLUSTER_FLAG}",
        )
    if not policy.allow_cluster_networks and networks.contains(address):
        rule, where, detail = networks.where(address) or (
            "service-range",
            "is in the local cluster",
            "is in the local cluster",
        )
        return rule, f"{where}: {_CLUSTER_HINT}", f"{detail}: {_CLUSTER_HINT}"
    service = policy.metadata_service(address)
    if service is not None:
        return _same(
            "metadata-service",
            f"is {service}, a cloud's metadata and control endpoint, where endpoints may "
            f"not point ({METADATA_FLAG})",
        )
    network = policy.denied_range(address)
    if network is not None:
        return _same("denied", f"is in the denied range {network} ({DENIED_FLAG})")
    if policy.is_outside_allowed(address):
        return _same(
            "not-allowed",
            f"is outside the allowed ranges {_ranges_text(policy.allowed)} ({ALLOWED_FLAG})",
        )
    return None


def _same(rule: Rule, why: str) -> _Found:
    # A refusal that names nothing the tenant may not know reads the same in the log.
    return rule, why, why


def _judge_one(raw: object, *, policy: AddressPolicy, networks: ClusterNetworks) -> Refusal | None:
    address = _address(raw) if isinstance(raw, str) else None
    if address is None:
        described = builders.describe(raw)
        why = (
            "has a zone index, which means nothing off its host"
            if isinstance(raw, str) and "%" in raw
            else "is not an IP address"
        )
        message = f"{described} {why}"
        return Refusal(described, "not-an-address", message, message)
    found = _refusal(address, policy=policy, networks=networks)
    if found is None:
        return None
    assert isinstance(raw, str)
    rule, why, detail = found
    # Named as written, with what it was judged as when that differs (an IPv4-mapped form).
    shown = raw if str(address) == raw.lower() else f"{raw} (that is {address})"
    return Refusal(raw, rule, f"{shown} {why}", f"{shown} {detail}")


def judge(
    addresses: Iterable[object], *, policy: AddressPolicy, networks: ClusterNetworks
) -> Verdict:
    """Split ``addresses`` into those the policy lets be written and those it refuses.

    Each address is judged on its own, so the allowed part of a multi-address answer is
    kept while the rest is refused. Non-text and non-address entries are refused, not
    raised on: addresses come from DNS answers and remote status, which are not ours.
    """
    allowed: list[str] = []
    refused: list[Refusal] = []
    for raw in addresses:
        refusal = _judge_one(raw, policy=policy, networks=networks)
        if refusal is None:
            assert isinstance(raw, str)
            allowed.append(raw)
        else:
            refused.append(refusal)
    return Verdict(tuple(allowed), tuple(refused))


def static_source_refusal(kind: str, namespace: str, *, policy: AddressPolicy) -> str | None:
    """Why ``namespace`` may not use the static source ``kind``, or None when it may.

    Static sources (``addresses``, ``hostname``) let the tenant name the destination
    outright; a ``remoteService`` is vouched for by the RemoteCluster, so it is never
    refused here. The message names the setting to change, not the namespaces that are
    allowed: those are other tenants' names.
    """
    if kind not in ("addresses", "hostname") or policy.static_sources == "all":
        return None
    if policy.static_sources == "none":
        return (
            f"spec.source.{kind} is turned off on this cluster ({STATIC_FLAG}=none); "
            "import from a RemoteCluster with spec.source.remoteService instead"
        )
    if namespace in policy.static_source_namespaces:
        return None
    return (
        f"spec.source.{kind} is not allowed in namespace {builders.describe(namespace)}: "
        f"static sources are limited to listed namespaces ({STATIC_FLAG}=listed, "
        f"{STATIC_NAMESPACE_FLAG})"
    )


def server_refusal(
    address: Address, *, policy: AddressPolicy, networks: ClusterNetworks
) -> str | None:
    """Why the operator may not connect to ``address`` as a remote server, or None.

    Whoever can edit a kubeconfig Secret chooses where the operator connects, and sees the
    answers reflected in statuses: pointed at a kubelet on loopback, a metadata service or
    the local API server, the operator would lend its own network position. So a server is
    judged as an endpoint is (never loopback, link-local or into the local cluster, never a
    metadata service, never a denied range), except by the endpoints' allow-list, which
    says where Services may point, not where API servers are. Where the platform team lists
    the ranges of its servers (``--remote-server-cidrs``), those alone decide: a server
    inside them is allowed whatever else it is (a test's loopback API server, say), and
    every other is refused. Worded for the RemoteCluster's condition, which only the
    platform team reads.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # the socket goes to the IPv4 address
    if policy.remote_servers:
        if address in policy._remote_servers:
            return None
        return (
            f"is outside the ranges where remote servers may be, "
            f"{_ranges_text(policy.remote_servers)} ({REMOTE_SERVERS_FLAG})"
        )
    hint = f"{REMOTE_SERVERS_FLAG} (chart value addressPolicy.remoteServerCIDRs) lists its range"
    if address in _REFUSED_BY_API_SERVER:
        problem = api.endpoint_address_problem(str(address)) or api.NOT_UNICAST_MESSAGE
        return f"{problem}, unless {hint}"
    found = _refusal(address, policy=_for_servers(policy), networks=networks)
    if found is None:
        return None
    _rule, _message, detail = found
    return f"{detail}, unless {hint}"


@functools.lru_cache(maxsize=8)
def _for_servers(policy: AddressPolicy) -> AddressPolicy:
    """The policy without the endpoints' allow-list, which says nothing about servers."""
    return dataclasses.replace(policy, allowed=())
