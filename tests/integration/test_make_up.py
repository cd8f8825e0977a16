"""``make up`` leaves two usable clusters running in the background; ``make down`` ends them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

TESTS = Path(__file__).resolve().parents[1]


def _harness(command: str, state: Path) -> str:
    # As the Makefile runs it: with the tests and the operator on the path.
    path = os.pathsep.join([str(TESTS), str(TESTS.parent / "operator")])
    result = subprocess.run(
        [sys.executable, "-m", "harness", command, "--state", str(state)],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    return result.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_and_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        printed = _harness("up", state)
        assert "supervisor" in printed
        assert "kubectl get ns" in printed
        info = json.loads((state / "clusters.json").read_text())
        pids = [info["pid"], *(p for c in info["clusters"] for p in c["pids"].values())]
        for name in ("supervisor", "workload"):
            config = yaml.safe_load((state / f"{name}.kubeconfig").read_text())
            api = k8s_config.new_client_from_config_dict(config)
            assert k8s.CoreV1Api(api).read_namespace("default").metadata.name == "default"
            api.close()
    finally:
        _harness("down", state)
    assert not [pid for pid in pids if _alive(pid)]
    assert sorted(p.name for p in state.iterdir()) == []
