"""The benchmark report's memory line: peak RSS over sizes as MiB plus KiB per import."""

from __future__ import annotations

import pytest

from bench.report import rss_fit


def test_the_fit_gives_intercept_in_mib_and_slope_in_kib_per_import() -> None:
    # 80 MiB plus 20 KiB per import, exactly.
    points = [(n, 80 + n * 20 / 1024) for n in (1000, 5000, 10000)]
    fit = rss_fit(points)
    assert fit is not None
    assert fit[0] == pytest.approx(80)
    assert fit[1] == pytest.approx(20)


def test_no_fit_through_one_size() -> None:
    assert rss_fit([(1000, 100.0), (1000, 101.0)]) is None
