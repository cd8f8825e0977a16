"""The operator's Prometheus metrics.

Names follow Prometheus conventions (``_total`` counters, base units). They answer the
questions a platform team asks: are imports ready, are the remote watches up, how fast does
a VIP move reach the local endpoints, and is the operator writing when nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

IMPORTS = Gauge(
    "shared_services_imports",
    "SharedServiceImports by the status and reason of their Ready condition.",
    ["ready", "reason"],
)
SYNCS = Counter(
    "shared_services_syncs_total",
    "Syncs of an import, by result (ok, conflict, error).",
    ["result"],
)
SYNC_ERRORS = Counter(
    "shared_services_sync_errors_total",
    "Syncs that failed with an error and will be retried.",
)
WRITES = Counter(
    "shared_services_writes_total",
    "Requests that changed the local cluster, by kind and verb; flat when idle.",
    ["kind", "verb"],
)
STATUS_WRITES = Counter(
    "shared_services_status_writes_total",
    "Status updates of imports and RemoteClusters; flat when idle.",
    ["kind"],
)
ADDRESS_CHANGES = Counter(
    "shared_services_address_changes_total",
    "Times the addresses of an import changed.",
)
PROPAGATION = Histogram(
    "shared_services_propagation_seconds",
    "From a remote Service event arriving to the local EndpointSlice write that it caused.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REMOTE_WATCHES = Gauge(
    "shared_services_remote_watches",
    "Open watches of remote Services, one per (RemoteCluster, remote namespace), by state.",
    ["cluster", "state"],
)
REMOTE_CONNECTED = Gauge(
    "shared_services_remote_cluster_connected",
    "1 when the RemoteCluster's credentials work and its API server answered.",
    ["cluster"],
)
SIGN_INS = Counter(
    "shared_services_remote_sign_ins_total",
    "Sign-ins to a RemoteCluster's vSphere sign-in endpoint, by result (succeeded, "
    "rejected: the user or password refused, failed: anything else).",
    ["cluster", "result"],
)
API_REQUESTS = Counter(
    "shared_services_api_requests_total",
    "Requests sent to an API server, by target (local, or the RemoteCluster's name) and verb.",
    ["target", "verb"],
)

LEADING = Gauge(
    "shared_services_leading",
    "1 while this replica syncs imports: it holds the lease, or runs without leader election.",
)
MEMORY_LIMIT = Gauge(
    "shared_services_memory_limit_bytes",
    "The memory limit the operator watches its resident set against; 0 when unknown.",
)


def forget_cluster(name: str) -> None:
    """End the series of a RemoteCluster that was deleted.

    Left in place they would stay at their last value for the life of the process, and
    clusters created and deleted over months would pile up series.
    """
    REMOTE_CONNECTED.remove_by_labels({"cluster": name})
    REMOTE_WATCHES.remove_by_labels({"cluster": name})
    API_REQUESTS.remove_by_labels({"target": name})


class _Tracked(Collector):
    """``shared_services_tracked_items{table}``: what the operator holds in memory, by table.

    Counted when scraped, not kept up to date on every change, so it costs nothing on the
    hot path. Every table should follow the imports and RemoteClusters that exist; one that
    only grows is a leak, which is what this series is for.
    """

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[str, int]] = dict

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "shared_services_tracked_items",
            "Entries the operator holds in memory, by table; they follow the imports and "
            "RemoteClusters that exist.",
            labels=["table"],
        )
        for table, count in sorted(self.source().items()):
            family.add_metric([table], count)
        yield family


TRACKED = _Tracked()
REGISTRY.register(TRACKED)
