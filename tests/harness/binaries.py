"""Where the control-plane binaries are, building them on first use.

The build is delegated to ``tests/controlplane/build.sh`` so that ``make``, CI and pytest
share one cache and one definition of the version.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "controlplane" / "build.sh"
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "kube-proxy")


def ensure_binaries() -> Path:
    """Return the directory holding the binaries, building whatever is missing.

    The build's progress goes to stderr so a first run in CI shows why it is slow.
    """
    override = os.environ.get("SSO_K8S_BIN_DIR")
    if override:
        return Path(override)
    return run_build(BUILD_SCRIPT)


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
