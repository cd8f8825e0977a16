"""How the operator is configured: flags first, then environment, then defaults.

The address policy (where endpoints may point, who may use static sources) is set here too,
by the platform team that installs the operator; :mod:`shared_services.policy` says why
it is flags and not a resource.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared_services import dns, memory, policy, profiling

DEFAULT_NAMESPACE = "shared-services-system"
# The Lease replicas elect a leader through, unless told another (the chart names its own).
LEASE_NAME = "shared-services-operator"
_POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace() -> str:
    """OPERATOR_NAMESPACE, else the pod's own namespace, else the chart's default.

    The operator reads kubeconfig Secrets from this namespace and from no other.
    """
    explicit = os.environ.get("OPERATOR_NAMESPACE", "").strip()
    if explicit:
        return explicit
    if _POD_NAMESPACE_FILE.is_file():
        return _POD_NAMESPACE_FILE.read_text().strip()
    return DEFAULT_NAMESPACE


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


# client-go's defaults, which kube-controller-manager and controller-runtime use too.
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
# Candidates wait between one and 2.2 retry periods, so that they do not ask in step.
JITTER = 1.2


def check_timing(*, duration: float, renew_deadline: float, retry_period: float) -> None:
    """Refuse timings under which a leader could still write after its lease ran out.

    client-go's rules: the renew deadline is shorter than the lease duration (the margin is
    what absorbs a slow renewal and clocks that tick at slightly different rates), and long
    enough for more than one jittered try.
    """
    if retry_period <= 0:
        raise ValueError("the retry period must be positive")
    if renew_deadline <= JITTER * retry_period:
        raise ValueError(
            f"the renew deadline ({renew_deadline} s) must be longer than "
            f"{JITTER} times the retry period ({retry_period} s)"
        )
    if duration <= renew_deadline:
        raise ValueError(
            f"the lease duration ({duration} s) must be longer than the renew deadline "
            f"({renew_deadline} s)"
        )


@dataclass(frozen=True)
class Settings:
    """Everything the operator's behaviour depends on besides the custom resources."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    operator_namespace: str = DEFAULT_NAMESPACE
    metrics_port: int = 9090
    health_port: int = 8080
    log_format: str = "text"
    dns_servers: tuple[str, ...] = ()  # empty: the system's resolver configuration
    workers: int = 16
    resync_seconds: float = 600.0
    leader_elect: bool = False
    lease_name: str = LEASE_NAME
    # The Lease's timings, checked by check_timing.
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD
    # This installation's name (the chart's release full name): which RemoteClusters' status
    # it writes, where several installations use them.
    instance: str = ""
    # The labels a RemoteCluster must carry for this installation to use it; none: every one.
    remote_cluster_selector: Mapping[str, str] = field(default_factory=dict)
    # How long an import of a deleted or invalid RemoteCluster keeps its last known addresses.
    remote_gone_grace: float = 300.0
    # Whether imports in kube-system and in the operator's own namespace are served.
    allow_system_namespaces: bool = False
    # How many remote namespaces one RemoteCluster watches at most: a watch, a thread and a
    # list on the central cluster each.
    max_remote_namespaces: int = 50
    verbose: bool = False
    memory_limit: int | None = None  # bytes; None: the cgroup's limit, if any
    # off, tables or full: whether /debug/memory is served, and tracemalloc runs (full).
    profile_memory: str = profiling.OFF
    address_policy: policy.AddressPolicy = field(default_factory=policy.AddressPolicy)

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None) -> Settings:
        """Build settings from the command line, falling back to the environment."""
        env = os.environ
        parser = _parser()
        _add_sync_arguments(parser)
        _add_remote_arguments(parser)
        _add_policy_arguments(parser)
        parser.add_argument("--verbose", action="store_true", help="log debug messages")
        args = parser.parse_args(argv)
        namespaces = tuple(args.namespaces or ()) or _split(env.get("WATCH_NAMESPACES", ""))
        address_policy = _address_policy(parser, args)
        try:
            check_timing(
                duration=args.lease_duration,
                renew_deadline=args.renew_deadline,
                retry_period=args.retry_period,
            )
        except ValueError as error:
            parser.error(f"--lease-duration, --renew-deadline, --retry-period: {error}")
        return cls(
            namespaces=namespaces,
            operator_namespace=args.operator_namespace,
            metrics_port=args.metrics_port,
            health_port=args.health_port,
            log_format=args.log_format,
            dns_servers=args.dns_servers,
            workers=max(1, args.workers),
            resync_seconds=args.resync_seconds,
            leader_elect=args.leader_elect,
            lease_name=args.lease_name,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
            instance=args.instance,
            remote_cluster_selector=args.remote_cluster_selector,
            remote_gone_grace=args.remote_gone_grace,
            allow_system_namespaces=args.allow_system_namespaces,
            max_remote_namespaces=args.max_remote_namespaces,
            verbose=args.verbose,
            memory_limit=args.memory_limit,
            profile_memory=args.profile_memory,
            address_policy=address_policy,
        )


def _nameservers(text: str) -> tuple[str, ...]:
    # Checked once, here: a typo then stops the start with one line, instead of every
    # hostname lookup failing later.
    try:
        return dns.parse_nameservers(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error} (or DNS_SERVERS)") from error


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        msg = f"{text!r} is not a number of seconds (or REMOTE_GONE_GRACE_SECONDS)"
        raise argparse.ArgumentTypeError(msg)
    return seconds


def _seconds_of(variable: str) -> Callable[[str], float]:
    """A parser of a number of seconds that names its environment variable when refused."""

    def parse(text: str) -> float:
        try:
            seconds = float(text)
        except ValueError:
            seconds = -1.0
        if not seconds > 0:  # also NaN
            msg = f"{text!r} is not a positive number of seconds (or {variable})"
            raise argparse.ArgumentTypeError(msg)
        return seconds

    return parse


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        msg = f"{text!r} is not a whole number of at least 1 (or MAX_REMOTE_NAMESPACES)"
        raise argparse.ArgumentTypeError(msg)
    return number


def _memory_quantity(text: str) -> int:
    try:
        return memory.parse_quantity(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _parser() -> argparse.ArgumentParser:
    """The parser with the flags of where the operator looks and how it is seen."""
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="shared-services-operator",
        description="Keep selectorless Services pointed at shared services on other clusters.",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        default=None,
        help="watch only this namespace (repeatable; env WATCH_NAMESPACES, comma-separated; "
        "default: all namespaces)",
    )
    parser.add_argument(
        "--operator-namespace",
        default=_own_namespace(),
        help="where the kubeconfig Secrets live (env OPERATOR_NAMESPACE; default: the pod's "
        f"own namespace, else {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env.get("METRICS_PORT", "9090")),
        help="Prometheus metrics port, 0 to disable (env METRICS_PORT; default 9090)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=int(env.get("HEALTH_PORT", "8080")),
        help="probes port, serving /healthz and /readyz, 0 to disable (env HEALTH_PORT; "
        "default 8080)",
    )
    parser.add_argument(
        "--memory-limit",
        type=_memory_quantity,
        # A string default goes through the type too, so a bad env value is reported alike.
        default=env.get("MEMORY_LIMIT") or None,
        help="warn in the log when the resident set passes 80%% of this (e.g. 640Mi; env "
        "MEMORY_LIMIT, which the chart sets from resources.limits.memory; default: the "
        "cgroup's limit)",
    )
    parser.add_argument(
        "--profile-memory",
        nargs="?",
        choices=profiling.MODES,
        const=profiling.TABLES,
        default=env.get("PROFILE_MEMORY") or profiling.OFF,
        help="serve /debug/memory on the health port: the bytes of each of the operator's "
        "tables and the objects by type; 'full' also traces allocations from start-up, "
        "which costs memory and time (env PROFILE_MEMORY; default off)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=env.get("LOG_FORMAT", "text"),
        help="log format (env LOG_FORMAT; default text)",
    )
    return parser


def _add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of how the operator syncs: DNS, workers, resync and leader election."""
    env = os.environ
    parser.add_argument(
        "--dns-servers",
        type=_nameservers,
        default=env.get("DNS_SERVERS", ""),
        help="nameservers for hostname sources, e.g. 10.0.0.10 or 127.0.0.1:5353 "
        "(env DNS_SERVERS; default: /etc/resolv.conf)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env.get("WORKERS", "16")),
        help="imports synced at once (env WORKERS; default 16); as many again serve only "
        "imports whose remote VIP moved",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=float(env.get("RESYNC_SECONDS", "600")),
        help="safety resync period; changes never wait for it (default 600)",
    )
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        default=env.get("LEADER_ELECT", "").lower() in {"1", "true", "yes"},
        help="elect a leader through a Lease in the operator namespace, so several replicas "
        "can run (env LEADER_ELECT; off by default: renewing the lease is a write)",
    )
    parser.add_argument(
        "--lease-name",
        default=env.get("LEASE_NAME", LEASE_NAME),
        help="the Lease to elect a leader with; releases sharing a namespace need their "
        "own (env LEASE_NAME; the chart uses the release's full name)",
    )
    for flag, variable, default, what in (
        ("--lease-duration", "LEASE_DURATION", LEASE_DURATION, "a standby waits"),
        ("--renew-deadline", "RENEW_DEADLINE", RENEW_DEADLINE, "the leader keeps writing"),
        ("--retry-period", "RETRY_PERIOD", RETRY_PERIOD, "candidates wait between tries"),
    ):
        parser.add_argument(
            flag,
            type=_seconds_of(variable),
            default=env.get(variable, str(default)),
            help=f"seconds {what}, by client-go's rules (env {variable}; default {default:g}); "
            "the lease duration must exceed the renew deadline, and that 1.2 retry periods",
        )
    parser.add_argument(
        "--instance",
        default=env.get("INSTANCE", ""),
        help="this installation's name; where several use one RemoteCluster, only the one "
        "its sharedservices.io/status-writer annotation names writes its status (env "
        "INSTANCE; the chart uses the release's full name)",
    )
    parser.add_argument(
        "--remote-cluster-selector",
        type=_label_selector,
        default=env.get("REMOTE_CLUSTER_SELECTOR", ""),
        help="use only the RemoteClusters with these labels, key=value[,key=value...], "
        "and leave the others to other installations: neither connect nor write their "
        "status (env REMOTE_CLUSTER_SELECTOR; default: every RemoteCluster)",
    )
    parser.add_argument(
        "--remote-gone-grace",
        type=_seconds,
        # Long enough for a tool that replaces a RemoteCluster (Helm, Argo CD, kubectl
        # replace) or an edit that passes through an invalid spec, which take seconds; short
        # enough that a VIP the central cluster frees meanwhile is not used for long. Five
        # minutes, as long as Kubernetes waits before it evicts the Pods of a Node that
        # stopped answering, for the same reason: not to act on a change that is undone.
        default=env.get("REMOTE_GONE_GRACE_SECONDS", "300"),
        help="seconds an import keeps its last known addresses after its RemoteCluster is "
        "deleted or its spec becomes invalid, then empties its endpoints, as the central "
        "cluster may give those addresses to another service; outages and refused "
        "credentials keep them as long as they last (env REMOTE_GONE_GRACE_SECONDS; "
        "default 300)",
    )
    parser.add_argument(
        "--allow-system-namespaces",
        action="store_true",
        default=env.get("ALLOW_SYSTEM_NAMESPACES", "").lower() in {"1", "true", "yes"},
        help="serve imports in kube-system and in the operator's own namespace, refused by "
        "default (env ALLOW_SYSTEM_NAMESPACES; the chart's imports.allowSystemNamespaces)",
    )


def _add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of what the operator spends on each RemoteCluster."""
    env = os.environ
    parser.add_argument(
        "--max-remote-namespaces",
        type=_positive,
        # Each remote namespace watched is a thread, a watch connection and a list on the
        # central cluster; tenants choose the namespaces. A central cluster's shared services
        # live in a handful of namespaces (the ACME shop's six databases and caches in one
        # or two), so 50 is ample while it keeps one RemoteCluster's watches, and
        # the load on its API server, to a few dozen rather than one per import.
        default=env.get("MAX_REMOTE_NAMESPACES", "50"),
        help="remote namespaces one RemoteCluster watches at most; an import of one more "
        "says TooManyRemoteNamespaces (env MAX_REMOTE_NAMESPACES; default 50)",
    )


def _add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    group = parser.add_argument_group(
        "address policy",
        "where endpoints may point; refused addresses are reported on the import "
        "(AddressNotAllowed), never written",
    )
    group.add_argument(
        policy.ALLOWED_FLAG,
        action="append",
        dest="allowed_cidrs",
        metavar="CIDR[,CIDR...]",
        help="endpoints may point only into these ranges, e.g. the Supervisor's ingress "
        "range (repeatable; env ALLOWED_CIDRS, comma-separated; default: anywhere not denied)",
    )
    group.add_argument(
        policy.DENIED_FLAG,
        action="append",
        dest="denied_cidrs",
        metavar="CIDR[,CIDR...]",
        help="endpoints may never point into these ranges (repeatable; env DENIED_CIDRS, "
        "comma-separated)",
    )
    group.add_argument(
        policy.CLUSTER_FLAG,
        action="store_true",
        default=env.get("ALLOW_CLUSTER_NETWORKS", "").lower() in {"1", "true", "yes"},
        help="let endpoints point at this cluster's Service and Pod ranges and Node "
        "addresses, refused by default (env ALLOW_CLUSTER_NETWORKS)",
    )
    group.add_argument(
        policy.SERVICE_CIDRS_FLAG,
        action="append",
        dest="service_cidrs",
        metavar="CIDR[,CIDR...]",
        help="the cluster's Service range(s), for the rule above on API servers that serve no "
        "ServiceCIDRs (before Kubernetes 1.33) where the API server does not name it itself "
        "(repeatable; env SERVICE_CIDRS, comma-separated)",
    )
    group.add_argument(
        policy.NAT64_FLAG,
        action="append",
        dest="nat64_prefixes",
        metavar="CIDR[,CIDR...]",
        help="the network's NAT64 prefixes (/32, /40, /48, /56, /64 or /96): an address under "
        "one is judged by the IPv4 address it carries as well, as one under 64:ff9b::/96 "
        "always is; addresses in 64:ff9b:1::/48 under none are refused (repeatable; env "
        "NAT64_PREFIXES, comma-separated)",
    )
    group.add_argument(
        policy.METADATA_FLAG,
        action="store_true",
        default=env.get("ALLOW_METADATA_SERVICES", "").lower() in {"1", "true", "yes"},
        help="let endpoints point at the cloud metadata services outside the link-local "
        "range (fd00:ec2::254, 168.63.129.16, 100.100.100.200), refused by default (env "
        "ALLOW_METADATA_SERVICES)",
    )
    group.add_argument(
        policy.REMOTE_SERVERS_FLAG,
        action="append",
        dest="remote_server_cidrs",
        metavar="CIDR[,CIDR...]",
        help="where RemoteCluster servers may be: only in these ranges, whatever else the "
        "addresses are; unset, a server is judged as an endpoint is, but for --allowed-cidrs "
        "(never loopback, link-local, a metadata service or the local cluster) (repeatable; "
        "env REMOTE_SERVER_CIDRS, comma-separated)",
    )
    group.add_argument(
        policy.STATIC_FLAG,
        choices=policy.STATIC_SOURCES,
        default=None,
        help="which namespaces may import from spec.source.addresses and hostname: all, "
        "none, or those listed (env STATIC_SOURCES; default all)",
    )
    group.add_argument(
        policy.STATIC_NAMESPACE_FLAG,
        action="append",
        dest="static_source_namespaces",
        metavar="NS",
        help="a namespace that may use static sources with --static-sources=listed "
        "(repeatable; env STATIC_SOURCE_NAMESPACES, comma-separated)",
    )


def _address_policy(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> policy.AddressPolicy:
    """The policy from flags, else the environment; anything malformed stops start-up.

    Starting with a policy other than the one written down would be worse than not
    starting: a typo in an allow-list must not open it to everything.
    """
    env = os.environ
    static_sources = args.static_sources or env.get("STATIC_SOURCES", "").strip() or "all"
    if not policy.is_static_sources(static_sources):
        parser.error(
            f"STATIC_SOURCES: invalid choice {static_sources!r} "
            f"(choose from {', '.join(policy.STATIC_SOURCES)})"
        )
    namespaces = _split(",".join(args.static_source_namespaces or ())) or _split(
        env.get("STATIC_SOURCE_NAMESPACES", "")
    )
    try:
        allowed = policy.parse_cidrs(args.allowed_cidrs or [env.get("ALLOWED_CIDRS", "")])
    except ValueError as error:
        parser.error(f"{policy.ALLOWED_FLAG} (or ALLOWED_CIDRS): {error}")
    try:
        denied = policy.parse_cidrs(args.denied_cidrs or [env.get("DENIED_CIDRS", "")])
    except ValueError as error:
        parser.error(f"{policy.DENIED_FLAG} (or DENIED_CIDRS): {error}")
    try:
        service_cidrs = policy.parse_cidrs(args.service_cidrs or [env.get("SERVICE_CIDRS", "")])
    except ValueError as error:
        parser.error(f"{policy.SERVICE_CIDRS_FLAG} (or SERVICE_CIDRS): {error}")
    try:
        nat64 = policy.parse_nat64_prefixes(args.nat64_prefixes or [env.get("NAT64_PREFIXES", "")])
    except ValueError as error:
        parser.error(f"{policy.NAT64_FLAG} (or NAT64_PREFIXES): {error}")
    try:
        remote_servers = policy.parse_cidrs(
            args.remote_server_cidrs or [env.get("REMOTE_SERVER_CIDRS", "")]
        )
    except ValueError as error:
        parser.error(f"{policy.REMOTE_SERVERS_FLAG} (or REMOTE_SERVER_CIDRS): {error}")
    try:
        return policy.AddressPolicy(
            allowed=allowed,
            denied=denied,
            allow_cluster_networks=args.allow_cluster_networks,
            static_sources=static_sources,
            static_source_namespaces=frozenset(namespaces),
            service_cidrs=service_cidrs,
            nat64_prefixes=nat64,
            allow_metadata_services=args.allow_metadata_services,
            remote_servers=remote_servers,
        )
    except ValueError as error:
        parser.error(f"{error} (or STATIC_SOURCE_NAMESPACES)")


def _label_selector(text: str) -> dict[str, str]:
    """Read ``key=value[,key=value...]``, the equality form of a label selector."""
    selector: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, equals, value = term.partition("=")
        if not equals or not key.strip():
            msg = f"{term!r} is not key=value"
            raise argparse.ArgumentTypeError(msg)
        selector[key.strip()] = value.strip()
    return selector
