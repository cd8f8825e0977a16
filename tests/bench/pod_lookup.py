"""What it costs to know the addresses Pods really have: a trimmed index, or a lookup each time.

The address policy must refuse an endpoint at any Pod's address, whichever CNI allocated it
(Calico's IPAM, Cilium's cluster pool and the cloud CNIs give Pods addresses outside every
Node's ``podCIDRs``). Two ways were weighed, on one real API server holding ``--pods`` Pods
with addresses:

- an index: the operator's own list-then-watch cache of Pods, trimmed to the fields the
  rule reads, filled once; measured: the time to fill it and the bytes it holds
  (tracemalloc), and the cost of one lookup in it;
- a lookup: before writing an address, ask the API server for Pods with that address
  (``fieldSelector=status.podIP=...``, which the API server answers by filtering every Pod
  in its cache); measured: ``--lookups`` such requests, one after another.

At start-up every import is judged at once, so the lookup's total is its time per request
times the imports; the index's is one list. Prints the figures; writes nothing else.

Usage: ``python -m bench.pod_lookup [--pods 10000] [--imports 10000] [--lookups 200]``.
"""

from __future__ import annotations

import argparse
import gc
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.binaries import ensure_binaries
from harness.cluster import start_clusters
from shared_services import policy
from shared_services.informer import Informer
from shared_services.kube import Kube, collection_path
from shared_services.networks import pod_fields

_NAMESPACES = 10
_WORKERS = 8


def _address(index: int) -> str:
    # Outside the cluster's Service range and any Node's: where a CNI's own pool would be.
    return f"10.{200 + index // 65536}.{index // 256 % 256}.{index % 256}"


def _make_pods(kube: Kube, count: int) -> None:
    """``count`` Pods across a few namespaces, each given an address as a kubelet would."""
    for n in range(_NAMESPACES):
        kube.create("/api/v1/namespaces", {"metadata": {"name": f"pods-{n}"}})

    def one(index: int) -> None:
        namespace = f"pods-{index % _NAMESPACES}"
        path = collection_path(group="", version="v1", plural="pods", namespace=namespace)
        name = f"p-{index}"
        kube.create(
            path,
            {
                "metadata": {"name": name, "labels": {"app": f"a{index % 97}"}},
                "spec": {"containers": [{"name": "c", "image": "app:1"}]},
            },
        )
        address = _address(index)
        kube.request(
            "PATCH",
            f"{path}/{name}/status",
            body={"status": {"podIP": address, "podIPs": [{"ip": address}]}},
            content_type="application/merge-patch+json",
        )

    with ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(one, range(count)))


def _index(kube: Kube) -> tuple[float, int, dict[policy.Address, str]]:
    """Fill a trimmed cache of every Pod; its seconds, its bytes, and the address lookup."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    informer = Informer(
        kube, "/api/v1/pods", name="bench pods", on_event=lambda *_: None, transform=pod_fields
    ).start()
    informer.synced.wait(timeout=600)
    seconds = time.perf_counter() - started
    addresses: dict[policy.Address, str] = {}
    for key, obj in list(informer.cache.items()):
        for entry in obj["status"]["podIPs"]:
            parsed = policy.parse_cidr(entry["ip"]).network_address
            addresses[parsed] = key
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    informer.stop()
    return seconds, size, addresses


def main(argv: list[str] | None = None) -> int:
    """Measure both ways on a cluster of its own, and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.pod_lookup")
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--imports", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="pod-lookup-"))
    (cluster,) = start_clusters(["pods"], bin_dir=ensure_binaries(), base_dir=base)
    try:
        kube = Kube(cluster.api_client())
        started = time.perf_counter()
        _make_pods(kube, args.pods)
        print(f"{args.pods} Pods made in {time.perf_counter() - started:.0f} s", flush=True)

        seconds, size, addresses = _index(kube)
        probe = policy.parse_cidr(_address(args.pods // 2)).network_address
        rounds = 100_000
        timer = time.perf_counter()
        for _ in range(rounds):
            _ = probe in addresses
        per_check = (time.perf_counter() - timer) / rounds

        latencies = []
        for _ in range(args.lookups):
            address = _address(secrets.randbelow(args.pods))
            timer = time.perf_counter()
            found = kube.request(
                "GET",
                "/api/v1/pods",
                params={"fieldSelector": f"status.podIP={address}", "limit": 1},
            )
            latencies.append(time.perf_counter() - timer)
            assert found["items"], address
        median = statistics.median(latencies)
        p99 = statistics.quantiles(latencies, n=100)[98]

        print(
            f"index: filled in {seconds:.2f} s, {size / 2**20:.1f} MiB "
            f"({size / args.pods:.0f} B per Pod), {per_check * 1e6:.2f} µs per check"
        )
        print(
            f"lookup: {median * 1e3:.1f} ms median, {p99 * 1e3:.1f} ms p99 per request; "
            f"{args.imports} imports at start-up: {median * args.imports:.0f} s of requests"
        )
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
