"""The memory profile: /debug/memory on the health port, only when asked for.

- Without ``--profile-memory`` the path is not found, like any other: nothing of the
  profile runs.
- With it, a running operator answers with its tables, by path and bytes: the import store
  and the local caches holding the import's objects among them, and the process's
  resident set beside them; the probes answer as before.

The session's operator is stopped meanwhile, so that only the profiled one syncs.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.cluster import Cluster
from harness.operator import OperatorProcess
from kit import Kit
from support import eventually


def test_not_served_unless_asked_for(kit: Kit) -> None:
    status, _ = kit.operator.probe("/debug/memory")
    assert status == 404
    assert kit.operator.probe("/healthz")[0] == 200


def test_tables_when_asked_for(kit: Kit, workload: Cluster, tmp_path: Path) -> None:
    profiled = OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / "workload.kubeconfig"),
        log_path=tmp_path / "profiled.log",
        extra_args=[f"--namespace={kit.namespace}", "--profile-memory"],
    )
    kit.operator.stop()
    try:
        profiled.start()
        kit.create_import(
            "db", {"source": {"addresses": ["203.0.113.80"]}, "ports": [{"port": 80}]}
        )
        kit.wait_condition("db", "Ready", "True", timeout=30)
        status, body = profiled.probe("/debug/memory", timeout=60)
        assert status == 200, body
        report = json.loads(body)
        assert report["imports"] == 1
        assert report["resident_bytes"] > report["tables_bytes"] > 0
        tables = {t["path"]: t for t in report["tables"]}
        assert tables["imports"]["length"] == 1
        caches = [p for p in tables if p.startswith("caches[") and p.endswith(".cache")]
        assert caches, sorted(tables)
        assert all(tables[p]["bytes"] > 0 for p in caches)
        assert report["table_types"]
        assert report["gc_types"]
        # Without full, no allocations are traced, and the report says how to get them.
        assert report["allocations"]["tracing"] is False
        assert profiled.probe("/healthz")[0] == 200
        assert eventually(lambda: profiled.probe("/readyz")[0] == 200)
    finally:
        profiled.stop()
        kit.operator.start()
