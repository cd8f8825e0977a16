"""The baseline a user would otherwise script: poll the remote Service, rewrite the Endpoints.

Every 10 seconds, read the LoadBalancer's ingress and replace the local Endpoints with it;
the cron-job shape of the manual pattern that the operator replaces.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml
from kubernetes import client, config


def main() -> int:
    """Poll until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--remote-kubeconfig", required=True)
    parser.add_argument("--local-kubeconfig", required=True)
    parser.add_argument("--remote", required=True, help="namespace/name of the remote Service")
    parser.add_argument("--local", required=True, help="namespace/name of the local Endpoints")
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    remote_config = yaml.safe_load(Path(args.remote_kubeconfig).read_text())
    local_config = yaml.safe_load(Path(args.local_kubeconfig).read_text())
    remote = client.CoreV1Api(config.new_client_from_config_dict(remote_config))
    local = client.CoreV1Api(config.new_client_from_config_dict(local_config))
    remote_ns, remote_name = args.remote.split("/")
    local_ns, local_name = args.local.split("/")
    print("ready", flush=True)
    while True:
        status = remote.read_namespaced_service(remote_name, remote_ns).status
        balancer = status.load_balancer if status else None
        ips = [i.ip for i in (balancer.ingress if balancer else None) or [] if i.ip]
        local.replace_namespaced_endpoints(
            local_name,
            local_ns,
            client.V1Endpoints(
                metadata=client.V1ObjectMeta(name=local_name),
                subsets=[
                    client.V1EndpointSubset(
                        addresses=[client.V1EndpointAddress(ip=ip) for ip in ips],
                        ports=[client.CoreV1EndpointPort(port=5432)],
                    )
                ],
            ),
        )
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
