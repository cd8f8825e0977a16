"""Where the helm binary is, building it from its Go module on first use.

The build is delegated to ``tests/tools/helm/build.sh`` so that ``make``, CI and pytest share
one cache and one definition of the version, as the control-plane binaries do.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.binaries import run_build

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "helm" / "build.sh"


def ensure_helm() -> Path:
    """Return the path of the helm binary, building it if it is missing.

    ``SSO_HELM`` names a helm to use instead. The build's progress goes to stderr so a first
    run in CI shows why it is slow.
    """
    override = os.environ.get("SSO_HELM")
    if override:
        return Path(override)
    return run_build(BUILD_SCRIPT)
