"""The memory watch: quantities as Kubernetes writes them, the cgroup's limit, and when to warn."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from shared_services import memory
from shared_services.settings import Settings

MIB = 1 << 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("671088640", 671088640),
        ("640Mi", 640 * MIB),
        ("1Gi", 1 << 30),
        ("1G", 10**9),
        ("512k", 512000),
    ],
)
def test_quantities_read_as_kubernetes_writes_them(text: str, expected: int) -> None:
    assert memory.parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "640MB", "-1Gi", "1.5Gi", "lots"])
def test_a_bad_quantity_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 640Mi"):
        memory.parse_quantity(text)


def test_the_flag_and_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.parse(["--memory-limit=768Mi"]).memory_limit == 768 * MIB
    monkeypatch.setenv("MEMORY_LIMIT", "805306368")
    assert Settings.parse([]).memory_limit == 805306368
    monkeypatch.delenv("MEMORY_LIMIT")
    assert Settings.parse([]).memory_limit is None


def test_a_bad_environment_value_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEMORY_LIMIT", "lots")
    with pytest.raises(SystemExit):
        Settings.parse([])
    assert "--memory-limit" in capsys.readouterr().err


def test_the_cgroup_v2_limit(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text("805306368\n")
    assert memory.cgroup_limit(tmp_path) == 805306368
    (tmp_path / "memory.max").write_text("max\n")
    assert memory.cgroup_limit(tmp_path) is None


def test_the_cgroup_v1_limit(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("268435456\n")
    assert memory.cgroup_limit(tmp_path) == 268435456
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert memory.cgroup_limit(tmp_path) is None


def test_no_cgroup_no_limit(tmp_path: Path) -> None:
    assert memory.cgroup_limit(tmp_path) is None


def test_the_resident_set_is_read() -> None:
    assert memory.resident_bytes() > 10 * MIB


def test_a_warning_once_past_the_line_and_again_only_after_falling_well_below() -> None:
    watch = memory.Watch(limit=100 * MIB)
    assert watch.check(79 * MIB) is None
    first = watch.check(81 * MIB)
    assert first is not None
    assert "81 MiB, 81% of the 100 MiB limit" in first
    assert watch.check(90 * MIB) is None  # still above: said once
    assert watch.check(75 * MIB) is None  # below the line, not yet below 70 %
    assert watch.check(85 * MIB) is None
    assert watch.check(60 * MIB) is None  # re-armed
    assert watch.check(95 * MIB) is not None


def test_glibc_is_told_to_return_large_freed_buffers() -> None:
    # The image and the test plane run on glibc; elsewhere the call does nothing.
    assert memory.return_freed_memory() is True


def test_full_collections_are_rarer_until_start_up_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc, "freeze", lambda: None)  # this test process keeps its heap as is
    before = gc.get_threshold()
    memory.hold_full_collections()
    memory.hold_full_collections()  # held once, however often asked
    assert gc.get_threshold() == (*before[:2], memory.START_UP_FULL_EVERY)
    memory.settle()
    assert gc.get_threshold() == before
    memory.resume_full_collections()  # nothing held: nothing to undo
    assert gc.get_threshold() == before
