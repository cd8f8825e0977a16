"""``python -m harness up|down|status``: long-running local clusters for people and the demo.

``up`` starts a background ``serve`` process that owns the clusters (they die with it), waits
until they are ready, and returns; ``down`` asks that process to stop and waits for it. The
kubeconfigs land in ``.local/<name>.kubeconfig``.
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

from harness.allocator import LoadBalancerAllocator
from harness.binaries import ensure_binaries
from harness.cluster import start_clusters

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
    clusters = start_clusters(list(CLUSTERS), bin_dir=bin_dir, base_dir=state / "clusters")
    elapsed = time.monotonic() - started
    allocator = LoadBalancerAllocator(clusters[0].api_client()).start()
    kubeconfigs = {
        c.name: str(c.write_kubeconfig(state / f"{c.name}.kubeconfig")) for c in clusters
    }
    _state_file(state).write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "bin_dir": str(bin_dir),
                "ready_seconds": round(elapsed, 1),
                "clusters": [c.describe() | {"kubeconfig": kubeconfigs[c.name]} for c in clusters],
            },
            indent=2,
        )
    )
    try:
        stop.wait()
    finally:
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
    ensure_binaries()  # build in the foreground, so its progress shows
    log = (state / "harness.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--state", str(state)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
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
    return 0


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
    shutil.rmtree(state / "clusters", ignore_errors=True)
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
