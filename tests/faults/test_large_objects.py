"""Large objects that carry the operator's labels cost it almost nothing.

The local caches are filled by a watch on the operator's labels, and Kubernetes copies a
Service's labels onto the EndpointSlices and Endpoints it makes for it; so a tenant who
labels a Service as the operator's, with a megabyte of other labels, would have the
operator hold that megabyte three times over, once per kind. A few hundred such Services
would push it past its memory limit, again after every restart. The remote Services of a
watched namespace are cached the same way, whatever the central team put in them.

Here 50 Services of about 1 MB each (12,000 labels) in the tenant's namespace carry the
operator's labels and name a real import, without being that import's objects, and 10
more of the same size stand in the remote namespace the import reads. The operator's
resident memory may grow by less than 20 MB; it neither deletes nor changes the tenant's
Services, and the import keeps following its VIP.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from faults.toolkit import FaultEnv, Sampler, load_balancer, wait_for
from harness.operator import OperatorProcess
from kit import Kit
from suite import Row

LOCAL = 50
REMOTE = 10
LABELS = 12_000  # of 63 characters each: about 1 MB of labels per object
BUDGET_MB = 20.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _heavy(name: str, labels: dict[str, str]) -> dict[str, Any]:
    filler = {f"filler.example/k{i:05d}": "x" * 63 for i in range(LABELS)}
    return {
        "metadata": {"name": name, "labels": {**filler, **labels}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def test_large_labelled_objects_are_not_cached(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    session = kit.operator
    session.stop()
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig, log_path=fault_env.logs / "large-objects.log"
    )
    kit.operator = operator
    try:
        operator.start()
        kit.remote_cluster()
        vip = "192.0.2.76"
        load_balancer(kit, "db", [vip])
        kit.import_remote("db", "db")
        kit.wait_addresses("db", {"IPv4": [vip]})
        ours = {"app.kubernetes.io/managed-by": "shared-services-operator"}
        tenant = {**ours, "sharedservices.io/import": "db"}
        time.sleep(2.0)  # the start-up's garbage settled
        before = _rss_mb(operator.process.pid)
        row.injected = (
            f"{LOCAL} Services of ~1 MB ({LABELS} labels) labelled as the operator's for a "
            f"real import in the tenant's namespace, {REMOTE} more in the remote namespace"
        )
        with Sampler(lambda: _rss_mb(operator.process.pid), interval=0.5) as rss:
            for i in range(LOCAL):
                kit.core.create_namespaced_service(kit.namespace, _heavy(f"big-{i}", tenant))
            for i in range(REMOTE):
                kit.remote.create_namespaced_service(kit.namespace, _heavy(f"big-{i}", ours))
            # Kubernetes copies the labels onto an EndpointSlice and an Endpoints of each.
            wait_for(
                lambda: (
                    len(
                        kit.discovery.list_namespaced_endpoint_slice(
                            kit.namespace, label_selector="sharedservices.io/import=db"
                        ).items
                    )
                    > LOCAL
                ),
                timeout=120,
                what="the EndpointSlices of the tenant's Services",
            )
            moved = "192.0.2.77"
            kit.set_ingress("db", [{"ip": moved}])
            kit.wait_addresses("db", {"IPv4": [moved]}, timeout=60)
            time.sleep(3.0)  # every watch event of the large objects has come by now
        after = _rss_mb(operator.process.pid)
        peak = max(rss.between(0.0, time.monotonic()), default=after)
        row.figure("RSS before", f"{before:.0f}", "MB")
        row.figure("RSS after", f"{after:.0f}", "MB")
        row.figure("peak RSS", f"{peak:.0f}", "MB")
        assert after - before < BUDGET_MB, (before, after, peak)
        # Not the import's objects: left as they are, none deleted or relabelled.
        services = kit.core.list_namespaced_service(
            kit.namespace, label_selector="sharedservices.io/import=db"
        ).items
        names = {s.metadata.name for s in services}
        assert {f"big-{i}" for i in range(LOCAL)} <= names, sorted(names)
        for service in services:
            if service.metadata.name.startswith("big-"):
                assert not service.metadata.owner_references, service.metadata.name
                assert service.spec.selector == {"app": service.metadata.name}
        # Nor the slices Kubernetes made for them, which name their own Services, not the
        # import's: none deleted.
        slices = kit.discovery.list_namespaced_endpoint_slice(
            kit.namespace, label_selector="sharedservices.io/import=db"
        ).items
        assert len(slices) > LOCAL, len(slices)
        assert kit.condition("db", "Ready")["status"] == "True"  # type: ignore[index]
        row.happened = (
            f"RSS grew {after - before:.1f} MB; the import followed a VIP move; "
            "the tenant's Services untouched"
        )
    finally:
        # Gone before the session's operator starts again, whatever the outcome here.
        for i in range(LOCAL):
            with contextlib.suppress(ApiException):
                kit.core.delete_namespaced_service(f"big-{i}", kit.namespace)
        operator.stop()
        kit.operator = session
        session.start()
