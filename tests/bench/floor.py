"""The floor: the least a Python program can do to mirror one VIP into one EndpointSlice.

No framework, no queue, no status: watch the remote Service, and on every change patch the
local EndpointSlice with its ingress address. What the operator adds on top of this is its
overhead; this script's latency is the best these API servers and this language allow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from kubernetes import client, config, watch


def main() -> int:
    """Mirror until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--remote-kubeconfig", required=True)
    parser.add_argument("--local-kubeconfig", required=True)
    parser.add_argument("--remote", required=True, help="namespace/name of the remote Service")
    parser.add_argument("--local", required=True, help="namespace/name of the local slice")
    args = parser.parse_args()
    remote_config = yaml.safe_load(Path(args.remote_kubeconfig).read_text())
    local_config = yaml.safe_load(Path(args.local_kubeconfig).read_text())
    remote = client.CoreV1Api(config.new_client_from_config_dict(remote_config))
    local = client.DiscoveryV1Api(config.new_client_from_config_dict(local_config))
    remote_ns, remote_name = args.remote.split("/")
    local_ns, local_name = args.local.split("/")
    print("ready", flush=True)
    for event in watch.Watch().stream(
        remote.list_namespaced_service, remote_ns, field_selector=f"metadata.name={remote_name}"
    ):
        ingress = event["object"].status.load_balancer.ingress or []
        ips = [i.ip for i in ingress if i.ip]
        if ips:
            local.patch_namespaced_endpoint_slice(
                local_name,
                local_ns,
                {"endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]},
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
