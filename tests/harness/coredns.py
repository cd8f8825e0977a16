"""Where the CoreDNS binary is, building it from its Go module on first use.

The build is delegated to ``tests/tools/coredns/build.sh`` so that ``make``, CI and pytest
share one cache and one definition of the version, as helm and the control plane do.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.binaries import run_build

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "coredns" / "build.sh"


def ensure_coredns() -> Path:
    """Return the path of the CoreDNS binary, building it if it is missing.

    ``SSO_COREDNS`` names a CoreDNS to use instead. The build's progress goes to stderr so a
    first run in CI shows why it is slow.
    """
    override = os.environ.get("SSO_COREDNS")
    if override:
        return Path(override)
    return run_build(BUILD_SCRIPT)
