"""``python -m harness up|down|status``: long-running local clusters for people and the demo.

``up`` starts a background ``serve`` process that owns the clusters and the workload
cluster's data plane (they die with it), waits until they are ready, and returns; ``down``
asks that process to stop and waits for it, then removes whatever a killed ``serve`` left.
The kubeconfigs land in ``.local/<name>.kubeconfig``, the data plane's commands in
``.local/bin/pod`` and ``.local/bin/lb``. The supervisor signs SSO users in at its
``/wcp/login``, whose users ``python -m harness.signin add-user`` adds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import dataplane
from harness.allocator import LoadBalancerAllocator
from harness.binaries import ensure_binaries
from harness.cluster import DUAL_STACK_SERVICE_CIDR, start_clusters
from harness.coredns import ensure_coredns

CLUSTERS = ("supervisor", "workload")


def _state_file(state: Path) -> Path:
    return state / "clusters.json"


def serve(state: Path) -> int:
    """Run the clusters in the foreground until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bin_dir = ensure_binaries()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    clusters = start_clusters(
        list(CLUSTERS),
        bin_dir=bin_dir,
        base_dir=state / "clusters",
        service_cidrs={"workload": DUAL_STACK_SERVICE_CIDR},
    )
    allocator = LoadBalancerAllocator(clusters[0].api_client()).start()
    plane = dataplane.DataPlane(
        workload=clusters[1],
        supervisor=clusters[0],
        directory=state / "dataplane",
        commands_dir=state / "bin",
        kube_proxy=bin_dir / "kube-proxy",
        coredns=ensure_coredns(),
    )
    try:
        plane.start()
        elapsed = time.monotonic() - started
        kubeconfigs = {
            c.name: str(c.write_kubeconfig(state / f"{c.name}.kubeconfig")) for c in clusters
        }
        _state_file(state).write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "bin_dir": str(bin_dir),
                    "ready_seconds": round(elapsed, 1),
                    "clusters": [
                        c.describe() | {"kubeconfig": kubeconfigs[c.name]} for c in clusters
                    ],
                    "dataplane": plane.describe(),
                },
                indent=2,
            )
        )
        stop.wait()
    finally:
        plane.stop()
        allocator.stop()
        for cluster in clusters:
            cluster.stop()
        _state_file(state).unlink(missing_ok=True)
    return 0


def up(state: Path) -> int:
    """Start ``serve`` in the background and wait until the clusters are ready."""
    state.mkdir(parents=True, exist_ok=True)
    if _state_file(state).exists():
        print(f"clusters are already up (see {_state_file(state)}); `make down` stops them")
        return 0
    try:
        dataplane.check_requirements()
    except dataplane.DataPlaneUnavailable as error:
        print(f"make up: {error}", file=sys.stderr)
        return 1
    # Build in the foreground, so that the progress shows.
    ensure_binaries()
    ensure_coredns()
    log = (state / "harness.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--state", str(state)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while not _state_file(state).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            print((state / "harness.log").read_text(), file=sys.stderr)
            print("the clusters did not start", file=sys.stderr)
            if process.poll() is None:
                process.terminate()
            return 1
        time.sleep(0.2)
    info = json.loads(_state_file(state).read_text())
    print(f"clusters ready in {info['ready_seconds']} s:")
    for cluster in info["clusters"]:
        print(f"  {cluster['name']:<11} {cluster['url']}  kubeconfig {cluster['kubeconfig']}")
    kubectl = Path(info["bin_dir"]) / "kubectl"
    print("look at them with the kubectl that was built alongside:")
    for cluster in info["clusters"]:
        print(f"  KUBECONFIG={cluster['kubeconfig']} {kubectl} get ns")
    for cluster in info["clusters"]:
        if "signin" in cluster:
            signin = cluster["signin"]
            control = f"PYTHONPATH=tests {_relative(Path(sys.executable))} -m harness.signin"
            print(
                f"SSO users sign in to the {cluster['name']} as on vSphere, with HTTP Basic at\n"
                f"  {signin['login_url']}\n"
                "add one (its password is printed) with\n"
                f"  {control} add-user --directory {_relative(Path(signin['directory']))} "
                "devops@vsphere.local"
            )
    plane = info["dataplane"]
    pod, lb = (_relative(Path(plane["commands"][c])) for c in ("pod", "lb"))
    print(
        "the workload cluster's data plane (kube-proxy, CoreDNS; network namespaces "
        f"{', '.join(plane['namespaces'].values())}):\n"
        f"  {pod} NS -- CMD...   runs CMD as a pod of namespace NS would, e.g.\n"
        f"      {pod} default -- getent hosts kubernetes.default\n"
        f"  {lb} -- CMD...       runs CMD on the supervisor's load-balancer network, where\n"
        "      every LoadBalancer VIP is an address"
    )
    return 0


def _relative(path: Path) -> str:
    """``path`` as a person in the current directory would type it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def down(state: Path) -> int:
    """Stop the background clusters and remove their state."""
    path = _state_file(state)
    if path.exists():
        pid = json.loads(path.read_text())["pid"]
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.2)
        except ProcessLookupError:
            pass
        print("clusters stopped")
    else:
        print("no clusters were up")
    # A serve process that was killed outright left its network namespaces behind (its
    # children died with it); those of live data planes are left alone.
    removed = dataplane.remove_orphans()
    if removed:
        print(f"removed network namespaces left behind: {', '.join(removed)}")
    for directory in ("clusters", "dataplane", "bin"):
        shutil.rmtree(state / directory, ignore_errors=True)
    (state / "harness.log").unlink(missing_ok=True)
    for name in CLUSTERS:
        (state / f"{name}.kubeconfig").unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return 0


def main() -> int:
    """Parse the command line and run the command."""
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "serve", "build"])
    parser.add_argument("--state", type=Path, default=Path(".local"))
    args = parser.parse_args()
    state = args.state.resolve()
    if args.command == "build":
        print(ensure_binaries())
        return 0
    return {"up": up, "down": down, "serve": serve}[args.command](state)


if __name__ == "__main__":
    sys.exit(main())
