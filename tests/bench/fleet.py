"""A fleet: many workload clusters import one catalog from one supervisor.

Each simulated workload cluster is a namespace of one workload API server with its own
operator process (``--namespace``, ``--instance`` and ``--remote-cluster-selector`` its own),
its own RemoteCluster, whose kubeconfig holds the token of its own ServiceAccount on the
supervisor (allowed to read the catalog's namespace and nothing else), and one
SharedServiceCatalog that imports the namespace's exported Services. The RemoteClusters
require exports, so each operator's watch selects them on the supervisor.

What it measures, at each fleet size, is what the supervisor carries: the Service watches
it holds, its API server's CPU while the fleet is idle, its resident memory, the bytes of
watch events it sends per VIP move, and how long a move takes to reach every cluster's
EndpointSlice, against a floor of as many bare watch-and-patch loops (``floor.py``), one per
cluster with that cluster's identity, run with the operators stopped.

What the simulation shares that real clusters would not: one workload API server and its
etcd take every cluster's writes; the operators, both API servers and the floor share two
cores; and the network is loopback, with no round trip and no bandwidth limit.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.env import (
    Env,
    apiserver_metric,
    cpu_seconds,
    environment,
    start_script,
    stop_script,
)
from bench.observer import Observer
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import GROUP, VERSION
from shared_services.kube import Conflict

CATALOG_NAMESPACE = "fleet-catalog"
ACCESS_NAMESPACE = "fleet-access"
FLEET_LABEL = "sharedservices.io/fleet"
EXPORTED = {"sharedservices.io/export": "true"}
MOVED = "svc-00"  # the Service whose VIP moves
FLOOR_SLICE = "floor-00"
IDLE_SECONDS = 30.0
QUIET_SECONDS = 1.5


@dataclass
class Fleet:
    """One fleet size's figures."""

    clusters: int
    services: int
    ready_seconds: float
    supervisor_watches: float  # Service watches the fleet added on the supervisor
    idle_cpu_ms_per_minute: float  # the supervisor API server's, added by the fleet, idle
    rss_mb: float  # the supervisor API server's resident memory added by the fleet
    bytes_per_move: float  # watch-event bytes the supervisor sent per VIP move, all watchers
    operator_seconds: list[float] = field(default_factory=list)  # a move until every cluster
    floor_seconds: list[float] = field(default_factory=list)


def _status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _create(env: Env, path: str, body: Mapping[str, Any], *, remote: bool) -> None:
    with contextlib.suppress(Conflict):
        (env.remote if remote else env.local).create(path, body)


def _catalog_services(env: Env, services: int) -> None:
    """The central namespace: ``services`` exported LoadBalancer Services, each with a VIP."""
    _create(env, "/api/v1/namespaces", {"metadata": {"name": CATALOG_NAMESPACE}}, remote=True)
    for index in range(services):
        body = {
            "metadata": {"name": f"svc-{index:02d}", "labels": EXPORTED},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "pg", "port": 5432}]},
        }
        _create(env, f"/api/v1/namespaces/{CATALOG_NAMESPACE}/services", body, remote=True)
    env.wait_allocated(services, timeout=120)


def _identities(env: Env, names: list[str]) -> dict[str, str]:
    """A ServiceAccount per cluster on the supervisor, allowed to read the catalog; tokens."""
    remote = env.remote
    _create(env, "/api/v1/namespaces", {"metadata": {"name": ACCESS_NAMESPACE}}, remote=True)
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{CATALOG_NAMESPACE}"
    rule = {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}
    role = {"metadata": {"name": "fleet-reader"}, "rules": [rule]}
    _create(env, f"{rbac}/roles", role, remote=True)
    binding = {
        "metadata": {"name": "fleet-reader"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "fleet-reader",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": name, "namespace": ACCESS_NAMESPACE}
            for name in names
        ],
    }
    _create(env, f"{rbac}/rolebindings", binding, remote=True)
    accounts = f"/api/v1/namespaces/{ACCESS_NAMESPACE}/serviceaccounts"
    tokens = {}
    for name in names:
        _create(env, accounts, {"metadata": {"name": name}}, remote=True)
        answer = remote.create(
            f"{accounts}/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 7200},
            },
        )
        tokens[name] = str(answer["status"]["token"])
    return tokens


def _member(env: Env, name: str, token: str) -> Path:
    """One workload cluster's objects: namespace, Secret, RemoteCluster, catalog, floor slice.

    Returns the kubeconfig of its identity on the supervisor, for its floor.
    """
    kubeconfig = env.directory / f"{name}.kubeconfig"
    text = yaml.safe_dump(env.supervisor.kubeconfig(token=token))
    kubeconfig.write_text(text)
    kubeconfig.chmod(0o600)
    local = f"/apis/{GROUP}/{VERSION}"
    _create(env, "/api/v1/namespaces", {"metadata": {"name": name}}, remote=False)
    _create(
        env,
        f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets",
        {
            "metadata": {"name": f"{name}-kubeconfig"},
            "data": {"kubeconfig": base64.b64encode(text.encode()).decode()},
        },
        remote=False,
    )
    _create(
        env,
        f"{local}/remoteclusters",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RemoteCluster",
            "metadata": {"name": name, "labels": {FLEET_LABEL: name}},
            "spec": {"kubeconfigSecretRef": {"name": f"{name}-kubeconfig"}, "requireExport": True},
        },
        remote=False,
    )
    _create(
        env,
        f"{local}/namespaces/{name}/sharedservicecatalogs",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceCatalog",
            "metadata": {"name": "catalog"},
            "spec": {"cluster": name, "namespace": CATALOG_NAMESPACE},
        },
        remote=False,
    )
    _create(
        env,
        f"/apis/discovery.k8s.io/v1/namespaces/{name}/endpointslices",
        {
            "metadata": {
                "name": FLOOR_SLICE,
                "labels": {"kubernetes.io/service-name": FLOOR_SLICE},
            },
            "addressType": "IPv4",
            "endpoints": [],
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        },
        remote=False,
    )
    return kubeconfig


def _apiserver_pid(env: Env) -> int:
    return env.supervisor.pids()["kube-apiserver"]


def _metric(env: Env, name: str, **labels: str) -> float:
    return apiserver_metric(env.supervisor, name, **labels)


def _event_bytes(env: Env) -> float:
    """Bytes of Service watch events the supervisor has sent so far, to every watcher."""
    return _metric(env, "apiserver_watch_events_sizes_sum", resource="services") or _metric(
        env, "apiserver_watch_events_sizes_sum", kind="Service"
    )


def _idle_cpu_ms_per_minute(pid: int) -> float:
    before = cpu_seconds(pid)
    time.sleep(IDLE_SECONDS)
    return (cpu_seconds(pid) - before) * 1000 * 60 / IDLE_SECONDS


def _moves(
    env: Env, observer: Observer, members: list[str], key: str, addresses: Iterator[str], count: int
) -> list[float]:
    """Move the VIP ``count`` times; each time, until every member's slice ``key`` holds it."""
    seconds = []
    for _ in range(count):
        address = next(addresses)
        # Each move after the last one's trailing writes (Endpoints, status, Event, 0.2 s
        # after the slice) and their echoes: real clusters would not do those on the cores
        # the next move's slices need, as all of them do here.
        time.sleep(QUIET_SECONDS)
        began = time.monotonic()
        env.remote.patch(
            f"/api/v1/namespaces/{CATALOG_NAMESPACE}/services/{MOVED}/status",
            {"status": {"loadBalancer": {"ingress": [{"ip": address}]}}},
        )
        last = max(observer.slice_has((member, key), address, timeout=60) for member in members)
        seconds.append(last - began)
    return seconds


def fleet(*, sizes: list[int], services: int, moves: int, addresses: Iterator[str]) -> list[Fleet]:
    """Measure one fresh supervisor and workload cluster per fleet size."""
    results = []
    for size in sizes:
        with environment() as env:
            results.append(_one(env, size, services, moves, addresses))
        print(f"fleet of {size} done", flush=True)
    return results


def _one(env: Env, size: int, services: int, moves: int, addresses: Iterator[str]) -> Fleet:
    members = [f"fleet-{index:02d}" for index in range(size)]
    _catalog_services(env, services)
    tokens = _identities(env, members)
    with ThreadPoolExecutor(8) as pool:
        kubeconfigs = dict(
            zip(
                members,
                pool.map(lambda m: _member(env, m, tokens[m]), members),
                strict=True,
            )
        )
    pid = _apiserver_pid(env)
    watches_before = _metric(
        env, "apiserver_longrunning_requests", resource="services", verb="WATCH"
    )
    rss_before = _status_mb(pid, "VmRSS")
    idle_before = _idle_cpu_ms_per_minute(pid)
    observer = Observer(env.local).start()
    operators = [
        OperatorProcess(
            kubeconfig=env.local_kubeconfig,
            log_path=env.directory / f"{member}.log",
            extra_args=[
                f"--namespace={member}",
                f"--instance={member}",
                f"--remote-cluster-selector={FLEET_LABEL}={member}",
            ],
        )
        for member in members
    ]
    try:
        began = time.monotonic()
        for operator in operators:
            operator.start(wait=False)
        ready = observer.all_ready(size * services, timeout=600) - began
        for operator in operators:
            operator.wait_ready(timeout=120)
        time.sleep(5)  # the last statuses' echoes
        watches = (
            _metric(env, "apiserver_longrunning_requests", resource="services", verb="WATCH")
            - watches_before
        )
        idle = _idle_cpu_ms_per_minute(pid) - idle_before
        rss = _status_mb(pid, "VmRSS") - rss_before
        sent = _event_bytes(env)
        operator_seconds = _moves(env, observer, members, MOVED, addresses, moves)
        bytes_per_move = (_event_bytes(env) - sent) / moves
    finally:
        for operator in operators:
            operator.stop()
    floors = []
    try:
        for member in members:
            floors.append(
                start_script(
                    env,
                    "floor",
                    f"--remote={CATALOG_NAMESPACE}/{MOVED}",
                    f"--local={member}/{FLOOR_SLICE}",
                    remote_kubeconfig=kubeconfigs[member],
                    log_name=f"floor-{member}",
                )
            )
        floor_seconds = _moves(env, observer, members, FLOOR_SLICE, addresses, moves)
    finally:
        for process in floors:
            stop_script(process)
        observer.stop()
    return Fleet(
        clusters=size,
        services=services,
        ready_seconds=ready,
        supervisor_watches=watches,
        idle_cpu_ms_per_minute=idle,
        rss_mb=rss,
        bytes_per_move=bytes_per_move,
        operator_seconds=operator_seconds,
        floor_seconds=floor_seconds,
    )
