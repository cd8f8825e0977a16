"""`make demo` shows a newcomer what it promises, and leaves nothing running.

The whole demo runs in-process with clusters and a data plane of its own. What is checked is
what a user reads: the `kubectl get ssi` tables (READY True, the VIP, then the moved VIP), the
AddressesChanged Event, positive propagation times for every move, the EndpointSlice ending
on the last address; the real client (psql as a pod of `web`) reaching the server at the VIP
before and after each move and all through the supervisor's freeze; and that every process
the demo started, and every network namespace, is gone afterwards.
"""

from __future__ import annotations

import io
import os
import re

import demo
from harness import netns


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
    # Connected by signing in as an SSO user, as on vSphere, not with a ServiceAccount token.
    assert "vsphereSignIn:" in printed
    assert "kubernetes.io/basic-auth" in printed
    (events,) = _tables(
        printed, "kubectl get events -n web --field-selector reason=AddressesChanged"
    )
    assert f"{result.vip} -> {result.moves[0]}" in [e["MESSAGE"] for e in events]

    assert len(result.propagation_ms) == len(result.moves) == 6
    assert all(0 < ms < 10_000 for ms in result.propagation_ms)
    assert re.search(r"min \d+ ms, median \d+ ms, max \d+ ms", printed)
    assert result.final_addresses == (result.moves[-1],)

    # The client reached db-a first, then the server at each new VIP, and db-b throughout
    # the freeze (which came after the first move).
    assert result.answers == ("db-a", *(demo.SERVERS[vip] for vip in result.moves))
    assert result.answers[:3] == ("db-a", "db-b", "db-a")
    assert result.freeze_answers == ("db-b",) * demo.FREEZE_SECONDS
    assert "psql answered by db-b" in printed
    assert len(result.client_ms) == len(result.moves)
    assert all(0 < ms < 30_000 for ms in result.client_ms)

    # Three components per cluster, the supervisor's sign-in service, the operator, the data
    # plane's three and two servers, all stopped and reaped; the network namespaces removed.
    assert len(result.pids) == 13
    assert [pid for pid in result.pids if _alive(pid)] == []
    assert [name for name in result.namespaces if netns.exists(name)] == []
    assert "nothing is left running" in printed
