"""The chart's memory sizing follows the scale benchmark: the README's per-import figure and
table are the least-squares line through bench/results.json's peak RSS, with the stated
headroom, and the default memory limit covers the largest measured size, so a release that
serves as many imports as the benchmark did is not OOM-killed.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "shared-services-operator"
RESULTS = REPO / "bench" / "results.json"
# Over the expected peak: fragmentation over a long life, a relist held beside the cache,
# bursts of changes, names longer than the benchmark's.
HEADROOM = 1.5
STEP_MIB = 64


def _measured() -> list[tuple[int, float]]:
    rows = json.loads(RESULTS.read_text())["scale"]
    # VmHWM in kB / 1024: the report's "MB" are MiB.
    return [(int(row["imports"]), float(row["peak_rss_mb"])) for row in rows]


def _fit() -> tuple[float, float]:
    """Least squares through the measured peaks: (MiB at no import, MiB per import)."""
    points = _measured()
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    return mean_y - slope * mean_x, slope


def _expected(imports: int) -> float:
    base, per_import = _fit()
    return base + per_import * imports


def _step(mib: float) -> int:
    return math.ceil(mib / STEP_MIB) * STEP_MIB


def _mib(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, f"memory {quantity!r} is not in Mi or Gi"
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


def _sizing_section() -> str:
    readme = (CHART / "README.md").read_text()
    return readme.split("## Sizing", 1)[1].split("\n## ", 1)[0]


def test_the_line_fits_every_measurement() -> None:
    # A peak measured on a shared 2-core machine moves a few percent from run to run (the
    # high-water mark depends on how far the work queue runs ahead of the writes), so a
    # straight line is held to 5 %: closer would be fitting noise.
    points = _measured()
    assert len(points) >= 3
    for imports, peak in points:
        assert abs(_expected(imports) - peak) < 0.05 * peak, (imports, peak)


def test_the_readme_gives_the_fitted_figures() -> None:
    section = _sizing_section()
    base, per_import = _fit()
    assert f"{base:.1f} MiB" in section
    assert f"{per_import * 1024:.1f} KiB per import" in section


def test_the_readme_table_is_the_fit_with_headroom() -> None:
    rows = re.findall(
        r"^\| ([\d,]+) \| (\d+) MiB \| (\d+)Mi \| (\d+)Mi \|$", _sizing_section(), re.MULTILINE
    )
    assert len(rows) >= 4
    largest = max(imports for imports, _ in _measured())
    assert largest in {int(r[0].replace(",", "")) for r in rows}
    for imports_text, peak, request, limit in rows:
        imports = int(imports_text.replace(",", ""))
        expected = _expected(imports)
        assert int(peak) == round(expected), imports
        assert int(request) == _step(expected), imports
        assert int(limit) == _step(HEADROOM * expected), imports


def test_the_default_limit_covers_the_largest_measured_size() -> None:
    resources = yaml.safe_load((CHART / "values.yaml").read_text())["resources"]
    limit = _mib(resources["limits"]["memory"])
    largest, peak = max(_measured())
    assert limit >= HEADROOM * _expected(largest), f"{limit} MiB at {largest} imports"
    assert limit >= HEADROOM * peak
    # The request is what a small release uses: the scheduler reserves no more than that.
    assert _mib(resources["requests"]["memory"]) >= _expected(1000)
