"""Where the operator's memory goes: its tables by bytes, and the allocations behind them.

Opt-in (``--profile-memory``), as controller-runtime's pprof is: the chart sizes memory by
the number of imports, and when a release needs more than that line says, the first
question is which table grew. The answer is served on the health port at
``/debug/memory``, computed only when asked; off, nothing of it runs.

The tables are found without knowing them: from the controller, every attribute of the
operator's own objects is followed, through small containers of such objects (the caches
by kind, the informers by namespace, the remote clusters by name), to the first container
that holds data; that is a table, named by its path (``caches[EndpointSlice].members[ns]
.cache``). A table's bytes are the deep size of everything reachable from it through
containers and the operator's own objects, each object counted once over all tables, so
the tables add up to what they hold together. A container of many of the operator's own
objects (one record per import, say) is a table too: walked as data, not as structure.
Types, modules, functions, threads and other objects the operator did not define are
counted by their own size and not followed: a bound method reaches the whole controller.

With ``--profile-memory=full`` tracemalloc also runs from start-up, and the report adds
the top allocations by file and line; it costs memory and time of its own, so the tables
alone are the default of the flag.
"""

from __future__ import annotations

import collections
import enum
import gc
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# A container of at most this many of the operator's own objects is structure (each one's
# attributes get paths of their own); a larger one is a table.
MAX_BRANCHES = 64
# Attribute paths nest no deeper than this (a cycle of references is cut by ``seen`` too).
MAX_DEPTH = 12
TOP = 25
# tracemalloc's frames per allocation in ``full`` mode: one says where, cheaply.
FRAMES = 1
OFF, TABLES, FULL = "off", "tables", "full"
MODES = (OFF, TABLES, FULL)

_PACKAGE = "shared_services"
_CONTAINERS = (dict, list, tuple, set, frozenset, collections.deque)
_NOT_OURS = (type, enum.Enum, *_CONTAINERS)
_LEAVES = (str, bytes, int, float, bool, complex, type(None), enum.Enum)


def ours(obj: object) -> bool:
    """Whether ``obj`` is an instance of a class the operator defines, not a container.

    A dict or list of the operator's own class (a store that keeps views) holds data: it
    is walked as a container. Neither is a class or an enum member an object of its own.
    """
    kind = type(obj)
    return kind.__module__.startswith(_PACKAGE) and not isinstance(obj, _NOT_OURS)


def _attributes(obj: object) -> Iterator[tuple[str, Any]]:
    """An object's instance attributes: its ``__dict__`` and its slots."""
    values = getattr(obj, "__dict__", None)
    if isinstance(values, dict):
        yield from list(values.items())
    for klass in type(obj).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                yield slot, getattr(obj, slot)


def _children(obj: object) -> list[Any]:
    """What deep size follows from ``obj``: a container's items, an own object's attributes.

    Copies are taken at once, in C, so that a dict another thread changes meanwhile does
    not break the walk.
    """
    if isinstance(obj, dict):
        return [item for pair in list(obj.items()) for item in pair]
    if isinstance(obj, _CONTAINERS):
        return list(obj)
    if ours(obj):
        values = getattr(obj, "__dict__", None)
        children: list[Any] = [values] if isinstance(values, dict) else []
        return children + [value for name, value in _attributes(obj) if not _in_dict(obj, name)]
    return []


def _in_dict(obj: object, name: str) -> bool:
    values = getattr(obj, "__dict__", None)
    return isinstance(values, dict) and name in values


@dataclass
class Sizes:
    """What a walk counted: bytes and objects, in all and by type."""

    bytes: int = 0
    objects: int = 0
    by_type: dict[str, list[int]] = field(default_factory=dict)  # name -> [count, bytes]

    def add(self, obj: object, size: int) -> None:
        """Count one object of ``size`` bytes."""
        self.bytes += size
        self.objects += 1
        entry = self.by_type.setdefault(type(obj).__qualname__, [0, 0])
        entry[0] += 1
        entry[1] += size


def deep_size(root: object, seen: set[int], sizes: Sizes | None = None) -> Sizes:
    """The bytes of ``root`` and of all it holds that ``seen`` has not counted yet.

    Followed: containers and the operator's own objects; strings, numbers and any other
    object are counted by their own size and not followed. Each object counted is added to
    ``seen``, so a later call does not count it again.
    """
    sizes = sizes if sizes is not None else Sizes()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        try:
            sizes.add(obj, sys.getsizeof(obj))
        except TypeError:  # an extension type that cannot say
            continue
        if not isinstance(obj, _LEAVES):
            stack.extend(_children(obj))
    return sizes


@dataclass
class Table:
    """One container the walk reached from the root, and what it holds."""

    path: str
    length: int
    sizes: Sizes


def _branches(container: object) -> list[tuple[str, Any]] | None:
    """A small container of the operator's own objects as (label, object); else None."""
    if isinstance(container, dict):
        items = [(_label(key), value) for key, value in list(container.items())]
    elif isinstance(container, list | tuple | collections.deque):
        items = [(str(i), value) for i, value in enumerate(list(container))]
    else:
        return None
    if not items or len(items) > MAX_BRANCHES or not all(ours(v) for _, v in items):
        return None
    return items


def _label(key: object) -> str:
    if isinstance(key, enum.Enum):
        return str(key.value)
    if isinstance(key, tuple):
        return "/".join(_label(k) for k in key)
    if isinstance(key, type):
        return key.__name__
    kind = getattr(key, "kind", None)  # a key that stands for a kind (Kind(...)) by its name
    return kind if isinstance(kind, str) else str(key)


def tables(root: object, *, name: str = "") -> tuple[list[Table], Sizes]:
    """Every table reachable from ``root``, largest first; and the structure's own bytes.

    The structure (the operator's objects on the way, their attribute names and scalar
    values, the small containers that lead to them) is walked first and counted once, so a
    table that refers back to it (a record that names its informer) does not take it into
    its own bytes.
    """
    seen: set[int] = set()
    structure = Sizes()
    found: list[tuple[str, object]] = []
    # Breadth first: a table gets the shortest path that reaches it.
    level: list[tuple[str, object]] = [(name, root)]
    for _ in range(MAX_DEPTH):
        following: list[tuple[str, object]] = []
        for path, obj in level:
            if id(obj) not in seen:
                _structure(
                    path, obj, seen=seen, structure=structure, following=following, found=found
                )
        level = following
        if not level:
            break
    result = []
    for path, container in found:
        if id(container) in seen:
            continue
        length = len(container) if isinstance(container, _CONTAINERS) else 1
        result.append(Table(path, length, deep_size(container, seen)))
    # What was left at the depth limit counts as tables of their own, whole.
    for path, obj in level:
        if id(obj) not in seen:
            result.append(Table(path, 1, deep_size(obj, seen)))
    result.sort(key=lambda table: table.sizes.bytes, reverse=True)
    return result, structure


def _own_size(obj: object, seen: set[int], structure: Sizes) -> None:
    if id(obj) not in seen:
        seen.add(id(obj))
        structure.add(obj, sys.getsizeof(obj))


def _structure(
    path: str,
    obj: object,
    *,
    seen: set[int],
    structure: Sizes,
    following: list[tuple[str, object]],
    found: list[tuple[str, object]],
) -> None:
    """Count one of the operator's objects as structure; say where its attributes lead."""
    _own_size(obj, seen, structure)
    values = getattr(obj, "__dict__", None)
    if isinstance(values, dict):
        _own_size(values, seen, structure)
    for attribute, value in _attributes(obj):
        deep_size(attribute, seen, structure)
        where = f"{path}.{attribute}" if path else attribute
        if ours(value):
            following.append((where, value))
        elif isinstance(value, _CONTAINERS) and value:
            branches = _branches(value)
            if branches is None:
                found.append((where, value))
                continue
            _own_size(value, seen, structure)
            following += [(f"{where}[{label}]", item) for label, item in branches]
            if isinstance(value, dict):
                for key in list(value):
                    deep_size(key, seen, structure)
        else:  # a scalar, an empty container, or an object not followed
            deep_size(value, seen, structure)


def start(mode: str) -> None:
    """Start what ``mode`` needs from the process's start: tracemalloc in ``full`` mode."""
    if mode == FULL and not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)


def _gc_types() -> list[dict[str, Any]]:
    """The objects the garbage collector tracks (not those frozen), by type: count, bytes."""
    counts: dict[str, list[int]] = {}
    for obj in gc.get_objects():
        entry = counts.setdefault(type(obj).__qualname__, [0, 0])
        entry[0] += 1
        entry[1] += sys.getsizeof(obj)
    ordered = sorted(counts.items(), key=lambda item: item[1][1], reverse=True)[:TOP]
    return [{"type": t, "count": c, "bytes": b} for t, (c, b) in ordered]


def _allocations() -> dict[str, Any]:
    if not tracemalloc.is_tracing():
        return {"tracing": False, "hint": "start with --profile-memory=full for allocations"}
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__),)
    )
    current, peak = tracemalloc.get_traced_memory()

    def top(key: str) -> list[dict[str, Any]]:
        return [
            {"where": str(stat.traceback[0]), "bytes": stat.size, "count": stat.count}
            for stat in snapshot.statistics(key)[:TOP]
        ]

    return {
        "tracing": True,
        "traced_bytes": current,
        "traced_peak_bytes": peak,
        "by_line": top("lineno"),
        "by_file": top("filename"),
    }


def report(root: object, *, imports: int, resident: Callable[[], int]) -> dict[str, Any]:
    """The whole answer of ``/debug/memory``: tables, types, allocations, resident set."""
    found, structure = tables(root)
    counted = sum(t.sizes.bytes for t in found) + structure.bytes
    by_type: dict[str, list[int]] = {}
    for sizes in (structure, *(t.sizes for t in found)):
        for kind, (count, size) in sizes.by_type.items():
            entry = by_type.setdefault(kind, [0, 0])
            entry[0] += count
            entry[1] += size
    types = sorted(by_type.items(), key=lambda item: item[1][1], reverse=True)[:TOP]
    return {
        "imports": imports,
        "resident_bytes": resident(),
        "tables_bytes": counted,
        "tables_bytes_per_import": round(counted / imports) if imports else None,
        "tables": [
            {"path": t.path, "length": t.length, "bytes": t.sizes.bytes, "objects": t.sizes.objects}
            for t in found
        ]
        + [
            {
                "path": "(structure)",
                "length": 0,
                "bytes": structure.bytes,
                "objects": structure.objects,
            }
        ],
        "table_types": [{"type": t, "count": c, "bytes": b} for t, (c, b) in types],
        "gc_types": _gc_types(),
        "gc_frozen": gc.get_freeze_count(),
        "allocations": _allocations(),
    }
