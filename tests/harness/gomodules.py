"""Files of the Go modules pinned in ``tests/tools/crds/go.mod``, read from the module cache.

The Argo CD and Prometheus Operator CRDs that tests install come from the releases pinned
there, downloaded by ``go mod download`` and verified against that directory's go.sum, so
nothing of them is copied into the repository and a bump is a one-line change.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PINS = Path(__file__).resolve().parent.parent / "tools" / "crds"


def module_dir(module: str) -> Path:
    """The directory holding the pinned release of ``module``, downloading it when missing."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", module],
        cwd=PINS,
        env={**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    if result.returncode != 0 or "Error" in info or "Dir" not in info:
        msg = f"go mod download {module} failed: {info.get('Error') or result.stderr.strip()}"
        raise RuntimeError(msg)
    return Path(info["Dir"])
