"""The operator is killed (SIGKILL) in the middle of syncing many imports whose VIPs keep
moving, and started again: it converges on the truth with no wrong endpoints, no orphans and
no duplicates.

While it is down, the VIPs go on moving, some imports are renamed (their old Services become
leftovers it must remove), some are deleted, and a leftover of an import that never existed
appears. The truth is read from the API servers at the end: every import's Service, its one
EndpointSlice and its Endpoints hold exactly the current ingress of its remote Service, and
nothing else carries the operator's label.
"""

from __future__ import annotations

import ipaddress
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from faults.toolkit import wait_for, writes
from kit import GROUP, VERSION, Kit
from suite import Row

MANAGED = "app.kubernetes.io/managed-by=shared-services-operator"
SCALES = [
    pytest.param(40, id="40-imports"),
    pytest.param(500, id="500-imports", marks=[pytest.mark.slow, pytest.mark.timeout(1200)]),
]
# RFC 2544's benchmarking range: room for a distinct VIP per Service and move.
_BASE = ipaddress.IPv4Address("198.18.0.1")


def _vip(index: int, generation: int) -> str:
    return str(_BASE + (generation * 1000 + index) % 130_000)


class Mover:
    """Moves random VIPs on the supervisor from a thread, about ``rate`` times a second."""

    def __init__(self, kit: Kit, count: int, *, rate: float) -> None:
        self.kit = kit
        self.count = count
        self.rate = rate
        self.moves = 0
        self.failures = 0
        self._generation = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mover", daemon=True)

    def start(self) -> Mover:
        """Start moving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop moving and wait for the last move to finish."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        chooser = random.Random(4)
        while not self._stop.is_set():
            index = chooser.randrange(self.count)
            self._generation += 1
            try:
                self.kit.set_ingress(f"svc-{index:04d}", [{"ip": _vip(index, self._generation)}])
            except Exception:  # the next move is as good; the end state is what is checked
                self.failures += 1
            else:
                self.moves += 1
            self._stop.wait(1 / self.rate)


def _parallel(calls: list[Any]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


def _names(items: list[Any]) -> list[str]:
    return [item.metadata.name for item in items]


def _check(kit: Kit) -> dict[str, list[str]]:
    """Every way the local state differs from the truth, by kind of problem."""
    truth = {
        item.metadata.name: sorted(i.ip for i in item.status.load_balancer.ingress or [])
        for item in kit.remote.list_namespaced_service(kit.namespace).items
    }
    imports = kit.custom.list_namespaced_custom_object(
        GROUP, VERSION, kit.namespace, "sharedserviceimports"
    )["items"]
    expected = {
        (item["spec"].get("serviceName") or item["metadata"]["name"]): truth[
            item["spec"]["source"]["remoteService"]["name"]
        ]
        for item in imports
    }
    services = kit.core.list_namespaced_service(kit.namespace, label_selector=MANAGED).items
    slices = kit.discovery.list_namespaced_endpoint_slice(
        kit.namespace, label_selector=MANAGED
    ).items
    endpoints = kit.core.list_namespaced_endpoints(kit.namespace, label_selector=MANAGED).items
    problems: dict[str, list[str]] = {"wrong": [], "orphans": [], "duplicates": []}
    slice_addresses: dict[str, list[str]] = {}
    families = Counter()
    for item in slices:
        service = item.metadata.labels["kubernetes.io/service-name"]
        families[(service, item.address_type)] += 1
        slice_addresses.setdefault(service, []).extend(
            a for e in item.endpoints or [] for a in e.addresses
        )
    endpoint_addresses = {
        item.metadata.name: sorted(a.ip for s in item.subsets or [] for a in s.addresses or [])
        for item in endpoints
    }
    problems["duplicates"] = [f"{s}/{f}" for (s, f), n in families.items() if n > 1]
    for kind, names in (
        ("Service", _names(services)),
        ("EndpointSlice", list(slice_addresses)),
        ("Endpoints", list(endpoint_addresses)),
    ):
        problems["orphans"] += [f"{kind} {n}" for n in names if n not in expected]
    service_names = set(_names(services))
    for name, addresses in expected.items():
        if (
            name not in service_names
            or sorted(slice_addresses.get(name, [])) != addresses
            or endpoint_addresses.get(name) != addresses
        ):
            problems["wrong"].append(name)
    return problems


def _ready(kit: Kit) -> int:
    imports = kit.custom.list_namespaced_custom_object(
        GROUP, VERSION, kit.namespace, "sharedserviceimports"
    )["items"]
    return sum(
        1
        for item in imports
        for c in (item.get("status") or {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    )


@pytest.mark.parametrize("count", SCALES)
def test_killed_while_syncing_converges(kit: Kit, row: Row, count: int) -> None:
    row.injected = (
        f"SIGKILL while syncing {count} imports with VIPs moving; while down: more moves, "
        f"{count // 10} renamed, {count // 10} deleted, 1 stray object; then restarted"
    )
    cluster = kit.remote_cluster()
    _parallel(
        [
            lambda i=i: (
                kit.remote.create_namespaced_service(
                    kit.namespace,
                    {
                        "metadata": {"name": f"svc-{i:04d}"},
                        "spec": {"type": "LoadBalancer", "ports": [{"name": "tcp", "port": 5432}]},
                    },
                ),
                kit.set_ingress(f"svc-{i:04d}", [{"ip": _vip(i, 0)}]),
            )
            for i in range(count)
        ]
    )
    operator = kit.operator
    mover = Mover(kit, count, rate=40).start()
    try:
        before = writes(operator)
        _parallel(
            [
                lambda i=i: kit.create_import(
                    f"imp-{i:04d}",
                    {
                        "source": {
                            "remoteService": {
                                "cluster": cluster,
                                "namespace": kit.namespace,
                                "name": f"svc-{i:04d}",
                            }
                        }
                    },
                )
                for i in range(count)
            ]
        )
        # Killed once it has done about a third of the work: some imports complete, some
        # half-written, some not started.
        wait_for(
            lambda: writes(operator) - before >= count * 4 / 3,
            timeout=60 + count,
            what="the operator to get going",
        )
        written = writes(operator) - before
        operator.stop(signal.SIGKILL)
        killed = time.monotonic()
        ready_at_kill = _ready(kit)
        moves_at_kill = mover.moves
        try:
            renamed = range(0, count, 10)
            deleted = range(5, count, 10)
            _parallel(
                [
                    lambda i=i: kit.patch_import(
                        f"imp-{i:04d}", {"spec": {"serviceName": f"imp-{i:04d}-v2"}}
                    )
                    for i in renamed
                ]
                + [lambda i=i: kit.delete_import(f"imp-{i:04d}") for i in deleted]
            )
            kit.core.create_namespaced_service(
                kit.namespace,
                {
                    "metadata": {
                        "name": "stray",
                        "labels": {
                            "app.kubernetes.io/managed-by": "shared-services-operator",
                            "sharedservices.io/import": "never-existed",
                        },
                        # As the operator writes every object: owned by its import. One
                        # with the labels alone is somebody else's, and left alone.
                        "ownerReferences": [
                            {
                                "apiVersion": "sharedservices.io/v1alpha1",
                                "kind": "SharedServiceImport",
                                "name": "never-existed",
                                "uid": "00000000-0000-4000-8000-000000000001",
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {"ports": [{"port": 80}]},
                },
            )
            time.sleep(max(0.0, killed + 2 - time.monotonic()))
        finally:
            operator.start()
        restarted = time.monotonic()
        moves_while_down = mover.moves - moves_at_kill
        time.sleep(2)  # the VIPs keep moving while it catches up
    finally:
        mover.stop()
    last: dict[str, list[str]] = {}

    def converged() -> bool:
        last.update(_check(kit))
        return not any(last.values())

    try:
        wait_for(converged, timeout=60 + count / 2, what="convergence")
    finally:
        row.figure("writes before the kill", written)
        row.figure("Ready at the kill", f"{ready_at_kill}/{count}")
        row.figure("VIP moves", mover.moves)
        row.figure("moves while down", moves_while_down)
        for problem, names in last.items():
            row.figure(problem, len(names))
    converged_after = time.monotonic() - restarted
    after = writes(operator)
    problems = _check(kit)
    assert problems == {"wrong": [], "orphans": [], "duplicates": []}
    row.happened = "converged on the remote truth; leftovers of renames and the stray removed"
    row.figure("converged after restart (VIPs moving for the first 2 s)", converged_after, "s")
    row.figure("writes since restart", after)
    assert mover.failures == 0
