"""The burst floor: the least a Python program can do to mirror many VIPs that move at once.

It is floor.py's loop, once per remote namespace: list the Services, bring every slice this
script owns up to date, then watch from that list and, on every change of a Service, patch
its local EndpointSlice with the ingress addresses. No framework, no queue, no cache of the
Services, no status, no retry. The slices it owns name their remote Service in an annotation,
so the benchmark alone decides which Services are mirrored and where.

Two choices keep it a floor rather than a straw man. Bodies stay JSON, through the
operator's own thin layer over the kubernetes client (as in scale_floor.py), and the patches
go the operator's way, from an event loop through :class:`AsyncKube`: the generated models
would cost this script more per event than the operator pays. And each namespace's thread
patches as it reads, so a burst spread over 20 namespaces has 20 patches in flight while
the changes of one Service stay in order. The operator may have more (its 16 workers
and 16 that serve only moves), but neither limit binds: this script's slices follow the
moves as fast as they are sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from shared_services.api import JSON
from shared_services.kube import AsyncKube, Gone, Kube, collection_path

# Which local EndpointSlices are this script's, and the remote Service each one mirrors.
OWNED_BY = ("app.kubernetes.io/managed-by", "burst-floor")
REMOTE_ANNOTATION = "bench.sharedservices.io/remote-service"
# How long the lists, the catching up and the opening of every watch may take.
START_SECONDS = 300.0


def _client(path: str) -> Kube:
    configuration = client.Configuration()
    config.load_kube_config_from_dict(
        yaml.safe_load(Path(path).read_text()), client_configuration=configuration
    )
    # A connection for each namespace's watch and each one's patches, so none waits for one.
    configuration.connection_pool_maxsize = 64
    return Kube(client.ApiClient(configuration))


class Patches:
    """Patches sent from an event loop of their own, each waited for by the thread sending it."""

    def __init__(self, kube: Kube) -> None:
        self.loop = asyncio.new_event_loop()
        self.writes = AsyncKube(kube)
        threading.Thread(target=self.loop.run_forever, name="patches", daemon=True).start()

    def patch(self, path: str, body: Mapping[str, Any]) -> None:
        """Send one patch and wait for its answer."""
        asyncio.run_coroutine_threadsafe(self.writes.patch(path, body), self.loop).result()


def _ips(service: JSON) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if i.get("ip")]


def _mirror(
    *,
    remote: Kube,
    local: Patches,
    namespace: str,
    slices: dict[str, str],
    local_namespace: str,
    opened: threading.Event,
    deadline: float,
) -> None:
    """Keep the slices of ``namespace``'s Services on their ingress until ``deadline``."""
    services = collection_path(group="", version="v1", plural="services", namespace=namespace)
    local_slices = collection_path(
        group="discovery.k8s.io", version="v1", plural="endpointslices", namespace=local_namespace
    )

    def patch(service: JSON) -> None:
        name = slices.get(service["metadata"]["name"])
        ips = _ips(service)
        if name is not None and ips:
            local.patch(
                f"{local_slices}/{name}",
                {"endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]},
            )

    resource_version = ""
    while (remaining := deadline - time.monotonic()) > 1:
        if not resource_version:
            listing = remote.request("GET", services)
            for service in listing.get("items") or []:
                patch(service)
            resource_version = listing["metadata"]["resourceVersion"]
        try:
            for event in remote.watch(
                services,
                resource_version=resource_version,
                timeout_seconds=int(min(300, remaining)),
                opened=lambda _: opened.set(),
            ):
                # Bookmarks carry a resourceVersion too: a watch reopened from it skips nothing.
                resource_version = event["object"]["metadata"]["resourceVersion"]
                if event["type"] in {"ADDED", "MODIFIED"}:
                    patch(event["object"])
        except Gone:
            resource_version = ""  # compacted away: list again


def main() -> int:
    """Mirror until killed, or until ``--lifetime`` has passed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--remote-kubeconfig", required=True)
    parser.add_argument("--local-kubeconfig", required=True)
    parser.add_argument("--local", required=True, help="namespace of the slices to keep")
    parser.add_argument("--lifetime", type=float, default=1800.0, help="seconds, then exit")
    args = parser.parse_args()
    deadline = time.monotonic() + args.lifetime
    remote, local = _client(args.remote_kubeconfig), _client(args.local_kubeconfig)
    patches = Patches(local)
    owned = local.request(
        "GET",
        collection_path(
            group="discovery.k8s.io", version="v1", plural="endpointslices", namespace=args.local
        ),
        params={"labelSelector": "=".join(OWNED_BY)},
    )
    by_namespace: dict[str, dict[str, str]] = {}
    for item in owned.get("items") or []:
        metadata = item["metadata"]
        namespace, name = metadata["annotations"][REMOTE_ANNOTATION].split("/")
        by_namespace.setdefault(namespace, {})[name] = metadata["name"]
    threads: list[tuple[threading.Thread, threading.Event]] = []
    for namespace, slices in sorted(by_namespace.items()):
        opened = threading.Event()
        thread = threading.Thread(
            target=_mirror,
            kwargs={
                "remote": remote,
                "local": patches,
                "namespace": namespace,
                "slices": slices,
                "local_namespace": args.local,
                "opened": opened,
                "deadline": deadline,
            },
            name=f"mirror {namespace}",
            daemon=True,
        )
        thread.start()
        threads.append((thread, opened))
    # "ready" only once every namespace has caught up and its watch is open at the server,
    # so that a burst starting then is timed from changes alone, not from this start-up.
    started = time.monotonic()
    while not all(opened.is_set() for _, opened in threads):
        if not all(thread.is_alive() for thread, _ in threads):
            print("a namespace's mirror stopped while starting", file=sys.stderr)
            return 1
        if time.monotonic() - started > START_SECONDS:
            print("the watches did not all open in time", file=sys.stderr)
            return 1
        time.sleep(0.05)
    print("ready", flush=True)
    for thread, _ in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
