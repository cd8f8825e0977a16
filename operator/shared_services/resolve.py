"""What an import's source resolves to, and what it read to get there.

A pure step: :func:`resolve` asks its :class:`Lookups` for the RemoteCluster, the remote
Service and the hostnames it needs, and returns a :class:`SourceState` with the
:class:`Dependencies` it read. Looking up only reads: whoever acts on the answer starts
the watches and DNS tasks of what was read (:mod:`shared_services.sources`). This module
only decides, so it is tested with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from shared_services import api, builders, policy
from shared_services.advice import Reason
from shared_services.api import JSON

if TYPE_CHECKING:  # a type only: resolving talks to no server
    from shared_services.dns import Resolution

# Reasons that mean "not known yet, ask again when it arrives", not "known to be wrong".
PENDING: frozenset[str] = frozenset({Reason.CONNECTING, Reason.RESOLVING})
# Reasons that mean the RemoteCluster an import names is gone: deleted, or its spec no
# longer valid. Unlike an outage or refused credentials, nothing says that it comes back.
GONE: frozenset[str] = frozenset({Reason.REMOTE_CLUSTER_NOT_FOUND, Reason.INVALID_REMOTE_CLUSTER})


@dataclass(frozen=True)
class SourceState:
    """What an import's source resolved to.

    ``addresses`` and ``ports`` are None when the truth is not known right now (cluster
    unreachable, DNS not answering): the last known addresses are then kept.
    ``recheck_after`` is how many seconds from now the state changes with no event to
    say so (a grace period running out), None when it does not.
    """

    ok: bool
    reason: str
    message: str
    addresses: tuple[str, ...] | None = None
    ports: tuple[api.ResolvedPort, ...] | None = None
    recheck_after: float | None = None

    @property
    def pending(self) -> bool:
        """A watch still listing or a first DNS answer still coming."""
        return self.reason in PENDING

    @property
    def gone(self) -> bool:
        """The RemoteCluster is gone, and the last known addresses are still kept."""
        return self.reason in GONE and self.addresses is None


@dataclass(frozen=True)
class Dependencies:
    """What an import's sync read, so that a change of any of it queues the import."""

    cluster: str | None = None
    remote: tuple[str, str, str] | None = None  # cluster, namespace, name
    hostnames: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RemoteLookup:
    """What a remote Service looks like right now, as far as the operator can tell.

    ``known`` is False when the truth cannot be had (cluster unreachable, watch not yet
    listed): the caller then keeps the last known addresses instead of acting on silence.
    """

    known: bool
    service: JSON | None
    reason: str
    message: str

    @classmethod
    def unknown(cls, reason: str, message: str) -> RemoteLookup:
        """The truth cannot be had now: the last known addresses are kept."""
        return cls(known=False, service=None, reason=reason, message=message)

    @classmethod
    def absent(cls, reason: str, message: str) -> RemoteLookup:
        """Known for certain to give no Service: the endpoints are emptied."""
        return cls(known=True, service=None, reason=reason, message=message)


class Lookups(Protocol):
    """Where :func:`resolve` reads what it needs; reading changes nothing."""

    def cluster_exists(self, name: str) -> bool:
        """Whether a RemoteCluster of this name exists."""

    def cluster_spec(self, name: str) -> api.RemoteClusterSpec | None:
        """The RemoteCluster's valid spec; None when its spec is invalid."""

    def remote_service(self, cluster: str, namespace: str, name: str) -> RemoteLookup:
        """The remote Service as its namespace's watch last saw it, if it is watched."""

    def hostname(self, hostname: str) -> Resolution | None:
        """The latest answer for a hostname; None until the first, or when not resolved."""


@dataclass(frozen=True)
class Resolved:
    """A source and what was read to resolve it."""

    source: SourceState
    dependencies: Dependencies = field(default_factory=Dependencies)


def resolve(
    spec: api.ImportSpec, namespace: str, *, address_policy: policy.AddressPolicy, lookups: Lookups
) -> Resolved:
    """Resolve an import's source: fixed addresses, a hostname, or a remote LoadBalancer."""
    source = spec.source
    refusal = policy.static_source_refusal(source.kind, namespace, policy=address_policy)
    if refusal is not None:
        # Known for certain, so the endpoints are emptied: they pointed where the tenant
        # said, which the platform team has now ruled out.
        return Resolved(SourceState(False, policy.SOURCE_NOT_ALLOWED, refusal, addresses=()))
    if source.addresses is not None:
        addresses = tuple(api.canonical_address(a) for a in source.addresses)
        return Resolved(SourceState(True, Reason.RESOLVED, "fixed addresses", addresses=addresses))
    if source.hostname is not None:
        found = _from_hostname(source.hostname, lookups.hostname(source.hostname))
        return Resolved(found, Dependencies(hostnames=frozenset({source.hostname})))
    remote = source.remote_service
    assert remote is not None  # the model allows exactly one source
    return _from_remote(namespace, remote, lookups)


def after_gone(source: SourceState, *, gone_for: float, grace: float, keeping: bool) -> SourceState:
    """What a source whose RemoteCluster is gone says ``gone_for`` seconds after it went.

    Within ``grace`` the last known addresses are kept: a tool that replaces the
    RemoteCluster, or an edit that passes through an invalid spec, brings it back in
    seconds. After that the endpoints are emptied, since with no RemoteCluster nothing is
    watched, and the central cluster may give those VIPs to another service: applications
    would send their traffic and credentials there. With none to keep (``keeping`` False:
    a new import, a name mistyped) the source simply has no addresses. The messages hold
    no clock, so an unchanged state writes no status.
    """
    if not source.gone:
        return source
    if not keeping:
        return replace(source, addresses=())
    if gone_for < grace:
        message = (
            f"{source.message}; its last known addresses are removed {grace:g} s after it "
            "went, unless it comes back"
        )
        return replace(source, message=message, recheck_after=grace - gone_for)
    message = (
        f"{source.message}; its last known addresses were removed {grace:g} s after it went, "
        "as the central cluster may give them to another service"
    )
    return replace(source, message=message, addresses=())


def _from_remote(namespace: str, remote: api.RemoteServiceRef, lookups: Lookups) -> Resolved:
    cluster = remote.cluster
    read = Dependencies(cluster=cluster)
    if not lookups.cluster_exists(cluster):
        message = f"RemoteCluster {cluster!r} does not exist"
        return Resolved(SourceState(False, Reason.REMOTE_CLUSTER_NOT_FOUND, message), read)
    spec = lookups.cluster_spec(cluster)
    if spec is None:
        message = f"RemoteCluster {cluster!r} is invalid"
        return Resolved(SourceState(False, Reason.INVALID_REMOTE_CLUSTER, message), read)
    if not spec.allows_namespace(namespace):
        message = (
            f"RemoteCluster {cluster!r} does not allow imports from namespace "
            f"{namespace!r} (spec.allowedNamespaces)"
        )
        return Resolved(SourceState(False, Reason.NAMESPACE_DENIED, message, addresses=()), read)
    if not spec.allows_remote_namespace(remote.namespace):
        message = (
            f"RemoteCluster {cluster!r} does not allow importing from remote "
            f"namespace {remote.namespace!r} (spec.allowedRemoteNamespaces)"
        )
        return Resolved(
            SourceState(False, Reason.REMOTE_NAMESPACE_DENIED, message, addresses=()), read
        )
    read = Dependencies(cluster=cluster, remote=(cluster, remote.namespace, remote.name))
    lookup = lookups.remote_service(cluster, remote.namespace, remote.name)
    if not lookup.known:
        return Resolved(SourceState(False, lookup.reason, lookup.message), read)
    if lookup.service is None:
        return Resolved(SourceState(False, lookup.reason, lookup.message, addresses=()), read)
    where = f"Service {remote.namespace}/{remote.name} on {cluster}"
    service = lookup.service
    ports = builders.ports_from_service(service)
    kind = (service.get("spec") or {}).get("type")
    if kind != "LoadBalancer":
        message = (
            f"{where} is of type {kind!r}, not LoadBalancer: it has no address reachable from here"
        )
        return Resolved(
            SourceState(False, Reason.NOT_LOAD_BALANCER, message, addresses=(), ports=ports), read
        )
    return _from_ingress(service, where=where, ports=ports, read=read, lookups=lookups)


def _from_ingress(
    service: JSON,
    *,
    where: str,
    ports: tuple[api.ResolvedPort, ...],
    read: Dependencies,
    lookups: Lookups,
) -> Resolved:
    """Addresses from a LoadBalancer's ingress: its IPs, and its hostnames resolved."""
    ingress = builders.ingress_addresses(service)
    addresses = list(ingress.ips)
    problems = [f"ignored ingress {r}" for r in ingress.rejected]
    unknown = False
    for hostname in ingress.hostnames:
        resolved = _from_hostname(hostname, lookups.hostname(hostname))
        if resolved.addresses is None:
            unknown = True
        else:
            addresses.extend(resolved.addresses)
        if not resolved.ok:
            problems.append(resolved.message)
    read = Dependencies(
        cluster=read.cluster, remote=read.remote, hostnames=frozenset(ingress.hostnames)
    )
    if not addresses:
        if unknown:
            source = SourceState(
                False, Reason.HOSTNAME_UNRESOLVED, "; ".join(problems), ports=ports
            )
            return Resolved(source, read)
        reason = Reason.INGRESS_INVALID if ingress.rejected else Reason.NO_INGRESS
        message = "; ".join(problems) or f"{where} has no load-balancer ingress address yet"
        return Resolved(SourceState(False, reason, message, addresses=(), ports=ports), read)
    message = f"{where}: {', '.join(addresses)}"
    if problems:
        message += f" ({'; '.join(problems)})"
    return Resolved(
        SourceState(True, Reason.RESOLVED, message, addresses=tuple(addresses), ports=ports), read
    )


def _from_hostname(hostname: str, resolution: Resolution | None) -> SourceState:
    if resolution is None:
        return SourceState(False, Reason.RESOLVING, f"resolving {hostname}")
    if resolution.error is not None:
        return SourceState(False, Reason.HOSTNAME_UNRESOLVED, resolution.error)
    return SourceState(
        True,
        Reason.RESOLVED,
        f"{hostname}: {', '.join(resolution.addresses)}",
        addresses=resolution.addresses,
    )
