"""The benchmark report's memory line: peak RSS over sizes as MiB plus KiB per import."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import _burst_rounds, _rounds, rss_fit
from bench.run import Results, Scale, fastest, fastest_burst


def test_the_fit_gives_intercept_in_mib_and_slope_in_kib_per_import() -> None:
    # 80 MiB plus 20 KiB per import, exactly.
    points = [(n, 80 + n * 20 / 1024) for n in (1000, 5000, 10000)]
    fit = rss_fit(points)
    assert fit is not None
    assert fit[0] == pytest.approx(80)
    assert fit[1] == pytest.approx(20)


def test_no_fit_through_one_size() -> None:
    assert rss_fit([(1000, 100.0), (1000, 101.0)]) is None


def _run(
    ready: float, *, memory: dict[str, Any] | None = None, rss: float = 200.0, idle: float = 0.0
) -> Scale:
    return Scale(
        imports=10000,
        remote_services=2000,
        ready_seconds=ready,
        floor_ready_seconds=0.0,
        cpu_seconds=ready / 2,
        apiserver_cpu_seconds=ready,
        floor_apiserver_cpu_seconds=0.0,
        service_create_ms=1.0,
        peak_rss_mb=rss,
        remote_watches=20,
        supervisor_service_watches=20,
        requests_per_import=4.0,
        idle_writes_per_minute=idle,
        memory=memory,
    )


def test_the_faster_run_of_each_contender_counts_and_every_run_is_reported() -> None:
    runs = [_run(144.0, memory={"tables": {}}, rss=212.0, idle=2.0), _run(139.5, rss=208.0)]
    row = fastest(runs, [(121.0, 166.0), (115.5, 159.0)])
    assert (row.ready_seconds, row.cpu_seconds) == (139.5, 69.75)  # the faster run's own figures
    # but the memory and the churn of the worse run: neither is a matter of speed
    assert (row.peak_rss_mb, row.idle_writes_per_minute) == (212.0, 2.0)
    assert row.memory == {"tables": {}}  # the profile of the run that was profiled
    assert (row.floor_ready_seconds, row.floor_apiserver_cpu_seconds) == (115.5, 159.0)
    text = "\n".join(_rounds(Results(scale=[row])))
    assert "At 10,000 imports each contender started twice" in text
    assert "operator 144.0 and 139.5 s, scale floor 121.0 and 115.5 s" in text
    assert "the highest of the runs: 212 and 208 MB, 2 and 0 writes per minute" in text


def test_a_size_run_once_says_nothing_of_rounds() -> None:
    row = fastest([_run(9.0)], [(7.0, 8.0)])
    assert row.ready_rounds == [9.0]
    assert _rounds(Results(scale=[row])) == []


def test_the_fastest_burst_of_each_contender_counts_and_every_burst_is_reported() -> None:
    burst = fastest_burst(1000, [(2.7, 2.9), (2.6, 2.8)], [(2.2, 2.3), (2.3, 2.5)])
    assert (burst.submit_seconds, burst.converged_seconds) == (2.6, 2.8)
    assert (burst.floor_submit_seconds, burst.floor_converged_seconds) == (2.2, 2.3)
    text = "\n".join(_burst_rounds(burst))
    assert "Each contender met the burst twice" in text
    assert "2,900 and 2,800 ms for the operator, 2,300 and 2,500 ms for the floor" in text
