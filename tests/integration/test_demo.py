"""`make demo` shows a newcomer what it promises, and leaves nothing running.

The whole demo runs in-process with clusters of its own. What is checked is what a user reads:
the `kubectl get ssi` tables (READY True, the VIP, then the moved VIP), the AddressesChanged
Event, positive propagation times for every move, the EndpointSlice ending on the last address,
and that every process the demo started is gone afterwards.
"""

from __future__ import annotations

import io
import os
import re

import demo


def _tables(printed: str, command: str) -> list[list[dict[str, str]]]:
    """Every table printed under ``$ <command>``, as rows keyed by column header."""
    tables = []
    lines = printed.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != f"$ {command}":
            continue
        block = []
        for row in lines[index + 1 :]:
            if not row.strip():
                break
            block.append(re.split(r"\s{2,}", row.strip()))
        header, *rows = block
        tables.append([dict(zip(header, row, strict=True)) for row in rows])
    return tables


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_shows_the_import_following_its_vip() -> None:
    out = io.StringIO()
    result = demo.run(out)
    printed = out.getvalue()

    before, after = _tables(printed, "kubectl get ssi -n web")
    assert [(r["NAME"], r["READY"]) for r in before] == [("db", "True")]
    assert before[0]["ADDRESSES"] == f'["{result.vip}"]'
    assert result.vip.startswith("192.0.2.")
    assert [(r["NAME"], r["READY"]) for r in after] == [("db", "True")]
    assert after[0]["ADDRESSES"] == f'["{result.moves[0]}"]'

    (clusters,) = _tables(printed, "kubectl get remoteclusters")
    assert [(r["NAME"], r["CONNECTED"]) for r in clusters] == [("supervisor", "True")]
    (events,) = _tables(
        printed, "kubectl get events -n web --field-selector reason=AddressesChanged"
    )
    assert f"{result.vip} -> {result.moves[0]}" in [e["MESSAGE"] for e in events]

    assert len(result.propagation_ms) == len(result.moves) == 6
    assert all(0 < ms < 10_000 for ms in result.propagation_ms)
    assert re.search(r"min \d+ ms, median \d+ ms, max \d+ ms", printed)
    assert result.final_addresses == (result.moves[-1],)

    # Three components per cluster and the operator, all stopped and reaped.
    assert len(result.pids) == 7
    assert [pid for pid in result.pids if _alive(pid)] == []
    assert "nothing is left running" in printed
