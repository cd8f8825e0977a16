"""Render an ApplicationSet's template for one cluster as Argo CD's controller does.

The renderer is ``tests/tools/appset`` (Go's text/template with sprig, as argo-cd's
applicationset/utils uses them), built on first use into the cache that the other Go
tools share.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from harness.binaries import run_build

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "appset" / "build.sh"


class RenderError(Exception):
    """The template did not render for these parameters; Argo CD would refuse to generate."""


def render(template: Any, params: dict[str, Any], options: list[str]) -> Any:
    """``template`` with every string rendered for ``params``, under ``options``."""
    binary = run_build(BUILD_SCRIPT)
    result = subprocess.run(
        [str(binary)],
        input=json.dumps({"template": template, "params": params, "options": options}),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return json.loads(result.stdout)
