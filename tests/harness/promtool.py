"""Where promtool is, and the program that lists what PromQL expressions read.

Both are built from the Prometheus Go module by ``tests/tools/promtool/build.sh``, so that
``make``, CI and pytest share one cache and one definition of the version, as helm does.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.binaries import run_build

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "promtool" / "build.sh"


def ensure_promtool() -> Path:
    """Return the path of promtool, building it if it is missing (``SSO_PROMTOOL`` overrides)."""
    override = os.environ.get("SSO_PROMTOOL")
    if override:
        return Path(override)
    return run_build(BUILD_SCRIPT)


def ensure_selectors() -> Path:
    """Return the path of the selectors program (``tests/tools/promtool/selectors``)."""
    return run_build(BUILD_SCRIPT, "selectors")
