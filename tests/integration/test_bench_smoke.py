"""The benchmark's code runs end to end at a tiny scale, so `make bench` cannot rot."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from bench.recovery import Recovery, RecoveryResults
from bench.run import main


def test_benchmark_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--smoke", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    for heading in (
        "## Propagation latency",
        "## Client-visible recovery after a VIP move",
        "## Burst",
        "## Scale",
        "## A fleet on one supervisor",
    ):
        assert heading in report
    rows = [line for line in report.splitlines() if line.startswith("| operator |")]
    assert len(rows) == 4  # propagation and recovery, at two sizes each
    # Recovery: every contender's row, each with every move measured.
    recovery = report.split("## Client-visible recovery")[1].split("##")[0]
    table = [line for line in recovery.splitlines() if line.startswith("| ")][1:]  # past the header
    assert [row.split("|")[1:4] for row in table] == [
        [" operator ", " 1 ", " 3 "],
        [" floor ", " 1 ", " 3 "],
        [" operator ", " 5 ", " 3 "],
        [" floor ", " 5 ", " 3 "],
        [" baseline ", " 5 ", " 1 "],
    ]
    assert (tmp_path / "recovery.png").stat().st_size > 0
    scale = next(line for line in report.splitlines() if line.startswith("| 20 |"))
    # Twenty imports reading four remote Services in four namespaces: four shared watches,
    # not twenty, and nothing written once start-up settled.
    cells = [cell.strip() for cell in scale.strip("|").split("|")]
    assert float(cells[3]) > 0  # the scale floor made them Ready too
    assert cells[7] == "4"
    assert cells[8] == "4"
    assert cells[10] == "0"
    # A fleet of two clusters, each its own operator and identity, importing three Services:
    # one Service watch each on the supervisor, and every move reached both.
    fleet = next(line for line in report.splitlines() if line.startswith("| 2 | 6 |"))
    cells = [cell.strip() for cell in fleet.strip("|").split("|")]
    assert cells[3] == "2"
    saved_fleet = json.loads((tmp_path / "results.json").read_text())["fleet"]
    assert [len(row["operator_seconds"]) for row in saved_fleet] == [2]
    assert [len(row["floor_seconds"]) for row in saved_fleet] == [2]
    assert (tmp_path / "latency.png").stat().st_size > 0
    assert (tmp_path / "scale.png").stat().st_size > 0

    # The report renders again from the saved results alone, to the same text.
    (tmp_path / "REPORT.md").unlink()
    assert main(["--report-only", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "REPORT.md").read_text() == report

    # `--only recovery` runs that scenario alone and merges it into the saved results. Its
    # run was proven above; here a stand-in result shows what is kept and what replaced.
    saved = json.loads((tmp_path / "results.json").read_text())
    again = RecoveryResults(
        rows=[Recovery("operator", 1, [0.5], [0.25])],
        kube_proxy_syncs=1,
        kube_proxy_sync_mean_ms=2.0,
    )
    monkeypatch.setattr("bench.run.recovery", lambda **_: again)
    assert main(["--smoke", "--only", "recovery", "--out", str(tmp_path)]) == 0
    merged = json.loads((tmp_path / "results.json").read_text())
    assert (merged["latency"], merged["scale"]) == (saved["latency"], saved["scale"])
    assert merged["recovery"] == [asdict(again.rows[0])]
    assert merged["kube_proxy"] == {"syncs": 1, "sync_mean_ms": 2.0}
    assert "| operator | 1 | 1 | 500.0 |" in (tmp_path / "REPORT.md").read_text()

    # `--only scale` runs that scenario alone at the sizes given, with the operator's memory
    # profile, and merges it: a line through the sizes, and the tables at the largest.
    assert (
        main(
            ["--smoke", "--only", "scale", "--sizes", "10,20", "--no-floor", "--out", str(tmp_path)]
        )
        == 0
    )
    merged = json.loads((tmp_path / "results.json").read_text())
    assert [row["imports"] for row in merged["scale"]] == [10, 20]
    assert merged["latency"] == saved["latency"]
    largest = merged["scale"][-1]["memory"]
    assert largest["imports"] == 20
    paths = {table["path"]: table for table in largest["tables"]}
    assert paths["imports"]["length"] == 20
    report = (tmp_path / "REPORT.md").read_text()
    assert "KiB per import (least squares" in report
    assert "Where it goes at 20 imports" in report
    assert "`imports` | 20 |" in report
