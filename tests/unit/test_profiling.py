"""The memory profile's walker: tables found by path, bytes counted once, nothing followed out.

The tables must add up without double counting (an object two tables share is counted in
one), a new record type must show up without the walker knowing it, and a callback must
not drag the whole operator into the table that holds it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, cast

from shared_services import profiling
from shared_services.profiling import Sizes, deep_size, tables


def _own(cls: type) -> type:
    # The walker takes the operator's own objects for those whose class is in its package.
    cls.__module__ = "shared_services.test_double"
    return cls


@_own
@dataclass
class Record:
    """A per-import record, as another module might add one."""

    addresses: list[str]
    name: str = "x"


@_own
class Slotted:
    """A record with slots and no __dict__."""

    __slots__ = ("values",)

    def __init__(self, values: list[int]) -> None:
        self.values = values


@_own
@dataclass
class Informer:
    cache: dict[str, Any] = field(default_factory=dict)
    callback: Any = None


@_own
@dataclass
class Group:
    members: dict[str, Informer] = field(default_factory=dict)


@_own
@dataclass
class Root:
    caches: dict[str, Group] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    empty: list[int] = field(default_factory=list)
    name: str = "root"


def test_deep_size_counts_each_object_once() -> None:
    shared = ["a" * 1000]
    seen: set[int] = set()
    first = deep_size({"x": shared}, seen)
    second = deep_size({"y": shared}, seen)
    assert first.bytes > 1000
    assert second.bytes < 1000  # the shared list and its text were counted already


def test_deep_size_follows_own_objects_and_slots() -> None:
    text = "b" * 5000
    sizes = deep_size([Slotted([1, 2]), Record([text])], set())
    assert sizes.bytes >= sys.getsizeof(text)
    assert sizes.by_type["Slotted"][0] == 1
    assert sizes.by_type["Record"][0] == 1


def test_deep_size_does_not_follow_functions_or_other_objects() -> None:
    big = ["c" * 100_000]

    def callback() -> list[str]:
        return big

    class Foreign:
        def __init__(self) -> None:
            self.held = big

    sizes = deep_size({"f": callback, "o": Foreign()}, set())
    assert sizes.bytes < 10_000


def test_tables_are_named_by_path_and_sum_without_double_counting() -> None:
    shared = "d" * 50_000
    root = Root()
    root.caches["EndpointSlice"] = Group({"ns-a": Informer({"k": {"v": shared}})})
    root.caches["Service"] = Group({"ns-a": Informer({"k": {"v": shared}}, callback=root)})
    root.records = {f"imp-{i}": Record([f"10.0.0.{i}"]) for i in range(profiling.MAX_BRANCHES + 1)}
    found, structure = tables(root)
    by_path = {t.path: t for t in found}
    assert set(by_path) == {
        "caches[EndpointSlice].members[ns-a].cache",
        "caches[Service].members[ns-a].cache",
        "records",
    }
    # The shared text is in one of the two caches, not both.
    big = [t for t in found if t.sizes.bytes > 50_000]
    assert len(big) == 1
    # Many records are data: one table, holding every record.
    assert by_path["records"].length == profiling.MAX_BRANCHES + 1
    assert by_path["records"].sizes.by_type["Record"][0] == profiling.MAX_BRANCHES + 1
    # Each object counted once: the walk over the whole root, from scratch, agrees.
    whole = sum(t.sizes.bytes for t in found) + structure.bytes
    assert whole == deep_size(root, set()).bytes


def test_report_never_needs_tracemalloc() -> None:
    root = Root(records={"a": Record(["10.0.0.1"])})
    found = profiling.report(root, imports=1, resident=lambda: 123)
    assert found["resident_bytes"] == 123
    assert found["tables_bytes_per_import"] == found["tables_bytes"]
    assert [t["path"] for t in found["tables"]][-1] == "(structure)"
    assert found["allocations"]["tracing"] is False


def test_sizes_by_type() -> None:
    sizes = Sizes()
    sizes.add("x", 10)
    sizes.add("y", 20)
    assert sizes.by_type["str"] == [2, 30]


@_own
class Store(dict[str, Any]):
    """A container of the operator's own class, as the import store is."""


def test_a_container_of_an_own_class_is_a_table() -> None:
    root = Root(records={"a": Record(["10.0.0.1"])})
    root.caches = cast(Any, Store({"k": {"v": "e" * 10_000}}))
    found, _ = tables(root)
    by_path = {t.path: t for t in found}
    assert by_path["caches"].length == 1
    assert by_path["caches"].sizes.bytes > 10_000
