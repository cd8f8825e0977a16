"""The benchmark's code runs end to end at a tiny scale, so `make bench` cannot rot."""

from __future__ import annotations

from pathlib import Path

from bench.run import main


def test_benchmark_smoke(tmp_path: Path) -> None:
    assert main(["--smoke", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    for heading in ("## Propagation latency", "## Burst", "## Scale"):
        assert heading in report
    rows = [line for line in report.splitlines() if line.startswith("| operator |")]
    assert len(rows) == 2
    scale = next(line for line in report.splitlines() if line.startswith("| 20 |"))
    # Twenty imports reading four remote Services in four namespaces: four shared watches,
    # not twenty, and nothing written once start-up settled.
    cells = [cell.strip() for cell in scale.strip("|").split("|")]
    assert float(cells[3]) > 0  # the scale floor made them Ready too
    assert cells[7] == "4"
    assert cells[8] == "4"
    assert cells[10] == "0"
    assert (tmp_path / "latency.png").stat().st_size > 0
    assert (tmp_path / "scale.png").stat().st_size > 0

    # The report renders again from the saved results alone, to the same text.
    (tmp_path / "REPORT.md").unlink()
    assert main(["--report-only", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "REPORT.md").read_text() == report
