"""Run the real kubectl against a local cluster and read what it prints, as a user would.

The tables are read by the headers' offsets, because kubectl leaves an empty cell blank and
splitting on spaces would shift every later cell one column to the left.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.binaries import ensure_binaries


@dataclass(frozen=True)
class Table:
    """What ``kubectl get`` printed: the column headers, and each row by object name."""

    headers: list[str]
    rows: dict[str, dict[str, str]]


def kubectl(kubeconfig: Path, *args: str) -> str:
    """What ``kubectl ARGS`` prints; a failure raises with kubectl's own message."""
    result = subprocess.run(
        [str(ensure_binaries() / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout


def kubectl_get(kubeconfig: Path, *args: str) -> Table:
    """Run ``kubectl get ARGS`` and read its table."""
    header, *lines = [
        line for line in kubectl(kubeconfig, "get", *args).splitlines() if line.strip()
    ]
    headers = header.split()
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    ends: list[int | None] = [*starts[1:], None]
    rows: dict[str, dict[str, str]] = {}
    for line in lines:
        cells = {name: line[a:b].strip() for name, a, b in zip(headers, starts, ends, strict=True)}
        rows[cells["NAME"]] = cells
    return Table(headers=headers, rows=rows)
