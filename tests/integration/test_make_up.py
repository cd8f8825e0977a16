"""``make up`` leaves two usable clusters and the workload's data plane running in the
background; ``make down`` ends them and leaves nothing behind.

What a person gets is checked the way they would use it: the kubeconfigs answer, and the
``pod`` and ``lb`` commands run a command in the data plane, pass its output through and exit
with its status. After ``make down``: no process, no network namespace, no interface, no
nftables table, no /etc/netns entry and no file of the state is left; and ``make up`` on a
machine without what the data plane needs says what is missing and how to get it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from harness import netns
from harness.dataplane import PROGRAMS

TESTS = Path(__file__).resolve().parents[1]


def _harness(
    command: str, state: Path, *, check: bool = True, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    # As the Makefile runs it: with the tests and the operator on the path.
    pythonpath = os.pathsep.join([str(TESTS), str(TESTS.parent / "operator")])
    env = {**os.environ, "PYTHONPATH": pythonpath}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "harness", command, "--state", str(state)],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=240,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _host_network() -> tuple[str, str]:
    """The host's interfaces and nftables tables, to compare before and after."""
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    tables = subprocess.run(
        ["nft", "list", "tables"], capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(sorted(line.split(":")[1] for line in links.splitlines())), tables


def test_up_and_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    host_before = _host_network()
    try:
        printed = _harness("up", state).stdout
        assert "supervisor" in printed
        assert "kubectl get ns" in printed
        info = json.loads((state / "clusters.json").read_text())
        plane = info["dataplane"]
        pids = [
            info["pid"],
            *(p for c in info["clusters"] for p in c["pids"].values()),
            *plane["pids"].values(),
        ]
        assert sorted(plane["pids"]) == ["coredns", "forwarder", "kube-proxy"]
        for name in ("supervisor", "workload"):
            config = yaml.safe_load((state / f"{name}.kubeconfig").read_text())
            api = k8s_config.new_client_from_config_dict(config)
            assert k8s.CoreV1Api(api).read_namespace("default").metadata.name == "default"
            api.close()

        # The data plane's namespaces are joined to each other, never to the host's.
        assert _host_network() == host_before
        pod, lb = state / "bin" / "pod", state / "bin" / "lb"
        assert f"{pod} NS -- CMD" in printed or "bin/pod NS -- CMD" in printed
        # A pod of "default" finds the kubernetes Service by its short name, through CoreDNS
        # and the search path of its namespace.
        found = subprocess.run(
            [str(pod), "default", "--", "getent", "ahostsv4", "kubernetes"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert found.stdout.split()[0] == "10.96.0.1"
        resolv = subprocess.run(
            [str(pod), "web", "--", "cat", "/etc/resolv.conf"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        assert "search web.svc.cluster.local svc.cluster.local cluster.local" in resolv
        # Both commands pass output and exit status through; lb runs where the VIPs are.
        status = subprocess.run(
            [str(lb), "--", "sh", "-c", "ip -o addr show dev eth0; exit 3"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert status.returncode == 3
        assert "203.0.113.246/30" in status.stdout
        assert subprocess.run([str(pod), "default", "--", "false"], check=False).returncode == 1
    finally:
        _harness("down", state)
    assert not [pid for pid in pids if _alive(pid)]
    assert sorted(p.name for p in state.iterdir()) == []
    names = plane["namespaces"].values()
    assert not [n for n in names if netns.exists(n)]
    assert not [n for n in names if Path("/etc/netns", n).exists()]
    assert _host_network() == host_before


def test_up_says_what_is_missing(tmp_path: Path) -> None:
    # A machine with everything but nftables: the tools, by their own paths, minus nft.
    tools = tmp_path / "tools"
    tools.mkdir()
    for program in {*PROGRAMS, "sh", "getent"} - {"nft"}:
        found = shutil.which(program)
        assert found is not None, program
        (tools / program).symlink_to(found)
    result = _harness("up", tmp_path / "state", check=False, path=str(tools))
    assert result.returncode == 1
    assert "nft: Debian package nftables" in result.stderr
    assert "make packages" in result.stderr
    assert not (tmp_path / "state" / "clusters.json").exists()
