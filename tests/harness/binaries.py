"""Where the control-plane binaries are, building them on first use.

The build is delegated to ``tests/controlplane/build.sh`` so that ``make``, CI and pytest
share one cache and one definition of each version. The newest supported Kubernetes
release is the default; ``SSO_K8S_RELEASE`` (a minor release such as ``1.30``) names an
older one for the workload cluster, where the operator runs, and the tests marked
``releases`` run against it (``make test`` does so for every older release it builds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "controlplane" / "build.sh"
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "kube-proxy")
RELEASE_ENV = "SSO_K8S_RELEASE"


def ensure_binaries(release: str | None = None) -> Path:
    """Return the directory holding the binaries, building whatever is missing.

    ``release`` is a minor release (``"1.30"``) older than the newest; None is the newest.
    The build's progress goes to stderr so a first run in CI shows why it is slow.
    """
    override = os.environ.get("SSO_K8S_BIN_DIR")
    if override and release is None:
        return Path(override)
    return run_build(BUILD_SCRIPT, *([release] if release else []))


def supported_releases() -> list[str]:
    """The minor releases the project builds and tests, newest first (``["1.37", ...]``)."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--list"], check=True, capture_output=True, text=True
    )
    return result.stdout.split()


def workload_release() -> str | None:
    """The older release the workload cluster runs in this session, or None for the newest."""
    release = os.environ.get(RELEASE_ENV, "").strip()
    if not release:
        return None
    if release not in supported_releases():
        msg = f"{RELEASE_ENV}={release}: not one of {', '.join(supported_releases())}"
        raise RuntimeError(msg)
    return None if release == supported_releases()[0] else release


def run_build(script: Path, *args: str) -> Path:
    """Run one of the repository's cached-build scripts; return the path it prints last.

    The build's progress goes to stderr so a first run in CI shows why it is slow.
    """
    result = subprocess.run(
        ["bash", str(script), *args],
        check=True,
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
    )
    return Path(result.stdout.strip().splitlines()[-1])
