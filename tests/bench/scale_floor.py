"""The scale floor: the least a Python program can do to make N imports Ready.

One list of the remote Services, one list of the imports, then for every import the same
four writes the operator makes (Service, EndpointSlice, Endpoints, status), as many imports
at a time as the operator has workers. No watch, no cache, no diff, no retry: it only works
on a fresh cluster where nothing exists yet. The bodies come from the operator's own pure
builders, so the API servers do exactly the work they do for the operator, and the writes
go the operator's way, from an event loop through :class:`AsyncKube`; the time this script
takes is what those API servers allow on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config

from shared_services import api, builders
from shared_services.api import JSON
from shared_services.kube import AsyncKube, Kube, collection_path

WORKERS = 16


def _load(path: str) -> Kube:
    return Kube(config.new_client_from_config_dict(yaml.safe_load(Path(path).read_text())))


def _status(address: str, ports: list[api.ResolvedPort], generation: int) -> JSON:
    """The status the operator writes for a Ready import, field for field."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def condition(type_: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": type_,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": generation,
        }

    return {
        "observedGeneration": generation,
        "addresses": [address],
        "ports": [
            {"name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": p.protocol}
            for p in ports
        ],
        "conditions": [
            condition("Ready", "Synced", f"Service points at {address}"),
            condition("SourceResolved", "Resolved", f"ingress {address}"),
        ],
        "lastChangeTime": now,
    }


def main() -> int:
    """Make every import Ready once, then exit."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--remote-kubeconfig", required=True)
    parser.add_argument("--local-kubeconfig", required=True)
    args = parser.parse_args()
    remote, local = _load(args.remote_kubeconfig), _load(args.local_kubeconfig)
    print("ready", flush=True)
    services = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s
        for s in remote.request("GET", "/api/v1/services")["items"]
    }
    every_import = collection_path(
        group=api.GROUP, version=api.VERSION, plural=api.IMPORT_PLURAL, namespace=None
    )
    imports = local.request("GET", every_import)["items"]

    asyncio.run(_make_ready(AsyncKube(local), services, imports))
    print("done", flush=True)
    return 0


async def _make_ready(
    writes: AsyncKube, services: dict[tuple[str, str], JSON], imports: list[JSON]
) -> None:
    """Make every import Ready, ``WORKERS`` at a time."""
    running = asyncio.Semaphore(WORKERS)

    async def make_ready(item: JSON) -> None:
        async with running:
            await _ready(writes, services, item)

    try:
        await asyncio.gather(*(make_ready(item) for item in imports))
    finally:
        await writes.close()


async def _ready(writes: AsyncKube, services: dict[tuple[str, str], JSON], item: JSON) -> None:
    """The operator's four writes for one import."""
    metadata = item["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    source = item["spec"]["source"]["remoteService"]
    service = services[(source["namespace"], source["name"])]
    address = service["status"]["loadBalancer"]["ingress"][0]["ip"]
    ports = list(builders.ports_from_service(service))
    desired = builders.build(
        owner=builders.Owner(namespace, name, metadata["uid"]),
        service_name=name,
        ports=ports,
        addresses=[address],
    )
    for obj in desired.objects():
        plural = {"Service": "services", "EndpointSlice": "endpointslices"}.get(
            obj["kind"], "endpoints"
        )
        group = "discovery.k8s.io" if obj["kind"] == "EndpointSlice" else ""
        await writes.create(
            collection_path(group=group, version="v1", plural=plural, namespace=namespace),
            obj,
        )
    imports_here = collection_path(
        group=api.GROUP, version=api.VERSION, plural=api.IMPORT_PLURAL, namespace=namespace
    )
    await writes.patch(
        f"{imports_here}/{name}/status",
        {"status": _status(address, ports, metadata["generation"])},
    )


if __name__ == "__main__":
    sys.exit(main())
