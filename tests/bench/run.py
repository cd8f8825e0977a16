"""The benchmark's scenarios, and the report they produce.

Latency: with 1, 100 and 1,000 imports present, the VIP of one imported Service moves N times;
each time, the clock runs from just before the status patch until the observer sees the new
address in the local EndpointSlice. The floor and the baseline are measured in the same run,
interleaved with the operator, on remote Services of their own.

Scale: fresh clusters with N imports over 100 namespaces, reading 20 remote namespaces; the
clock runs from the operator's process start until every import is Ready. The scale floor
(`scale_floor.py`) makes the same writes with no framework, on clusters of its own.

Burst: 1,000 VIPs change at once; the clock runs until every local slice is right. The burst
floor (`burst_floor.py`) then meets the same burst in the same clusters, on remote Services
of its own, with the operator stopped.

Recovery (``recovery.py``): through the workload cluster's real data plane, from a VIP's move
until a client's connection reaches the server at the new VIP, with the floor and the
baseline beside the operator. ``--only recovery`` runs it alone and merges it into the saved
results.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import burst_floor
from bench.env import (
    Env,
    apiserver_metric,
    cpu_seconds,
    environment,
    import_ref,
    remote_ref,
    start_script,
    stop_script,
)
from bench.fleet import Fleet, fleet
from bench.observer import Key, Observer
from bench.recovery import Recovery, recovery
from bench.report import write_report
from harness.cluster import Cluster
from harness.operator import OperatorProcess

ADDRESSES = ipaddress.ip_network("198.19.0.0/16")
# Where the floors and the baseline keep the local objects they update.
CONTENDERS = "contenders"
# A burst's moves are sent from this many threads, the operator's and the floor's alike.
BURST_THREADS = 16
BURST_QUIET_SECONDS = 2.0
# A pause after each size's imports are Ready, before its propagation is measured.
SETTLE_SECONDS = 5.0


@dataclass
class Latency:
    """Propagation times of one contender at one number of imports."""

    contender: str
    imports: int
    seconds: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """The q-th percentile in milliseconds."""
        ordered = sorted(self.seconds)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000


@dataclass
class Scale:
    """Start-up of the operator with a number of imports."""

    imports: int
    remote_services: int
    ready_seconds: float
    floor_ready_seconds: float
    cpu_seconds: float
    apiserver_cpu_seconds: float
    floor_apiserver_cpu_seconds: float
    service_create_ms: float
    peak_rss_mb: float
    remote_watches: float
    supervisor_service_watches: float
    requests_per_import: float
    idle_writes_per_minute: float
    # The operator's /debug/memory at this size (tables, types), when it was profiled.
    memory: dict[str, Any] | None = None
    # Every run's Ready seconds, where a contender ran more than once (the fastest counts).
    ready_rounds: list[float] = field(default_factory=list)
    floor_rounds: list[float] = field(default_factory=list)
    # And every run's peak RSS and idle writes, of which the row shows the highest.
    rss_rounds: list[float] = field(default_factory=list)
    idle_rounds: list[float] = field(default_factory=list)


@dataclass
class Burst:
    """Many VIPs changing at once: the operator's figures, then the burst floor's.

    The floor's have defaults, so that results saved before it was measured still load.
    """

    changes: int
    submit_seconds: float
    converged_seconds: float
    floor_submit_seconds: float | None = None
    floor_converged_seconds: float | None = None
    # Every burst's convergence, where each contender met more than one (the fastest counts).
    rounds: list[float] = field(default_factory=list)
    floor_rounds: list[float] = field(default_factory=list)


@dataclass
class Results:
    """Everything the report shows."""

    latency: list[Latency] = field(default_factory=list)
    scale: list[Scale] = field(default_factory=list)
    burst: Burst | None = None
    recovery: list[Recovery] = field(default_factory=list)
    # Many workload clusters on one supervisor (``fleet.py``).
    fleet: list[Fleet] = field(default_factory=list)
    # kube-proxy's own count and mean duration of rule syncs during the recovery moves.
    kube_proxy: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class Addresses:
    """Fresh documentation addresses, never the same twice in a run."""

    def __init__(self) -> None:
        self._hosts = ADDRESSES.hosts()

    def next(self) -> str:
        """The next address."""
        return str(next(self._hosts))


def _prepare_contenders(env: Env) -> None:
    """The floor's EndpointSlice and the baseline's Endpoints, which the scripts only update."""
    env.local.create("/api/v1/namespaces", {"metadata": {"name": "contenders"}})
    env.local.create(
        "/apis/discovery.k8s.io/v1/namespaces/contenders/endpointslices",
        {
            "metadata": {"name": "floor", "labels": {"kubernetes.io/service-name": "floor"}},
            "addressType": "IPv4",
            "endpoints": [],
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        },
    )
    env.local.create(
        "/api/v1/namespaces/contenders/endpoints",
        {"metadata": {"name": "baseline"}, "subsets": []},
    )


def _prepare_burst_floor(env: Env, *, first: int, count: int) -> dict[int, Key]:
    """The burst floor's remote Services, ``first`` onwards, and an empty slice for each.

    Each slice names its remote Service, so the script needs no naming scheme of its own.
    They are created only after the operator's first burst, so the operator's caches held
    no more Services during its measurements before then than before the floor existed.
    """
    env.add_remote_services(first + count)
    indexes = range(first, first + count)
    slices = {i: (CONTENDERS, f"burst-{i:05d}") for i in indexes}

    def create(index: int) -> None:
        name = slices[index][1]
        env.local.create(
            f"/apis/discovery.k8s.io/v1/namespaces/{CONTENDERS}/endpointslices",
            {
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/service-name": name,
                        burst_floor.OWNED_BY[0]: burst_floor.OWNED_BY[1],
                    },
                    "annotations": {burst_floor.REMOTE_ANNOTATION: "/".join(remote_ref(index))},
                },
                "addressType": "IPv4",
                "endpoints": [],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            },
        )

    with ThreadPoolExecutor(BURST_THREADS) as pool:
        list(pool.map(create, indexes))
    return slices


def _burst(env: Env, observer: Observer, moves: dict[int, tuple[Key, str]]) -> tuple[float, float]:
    """Seconds to submit ``moves`` at once, and until every slice held its address.

    ``moves[i]`` is the slice that mirrors remote Service i and i's new address; both
    figures run from the first change sent. A quiet moment comes first, so that a burst
    does not pay for the work its set-up left behind.
    """
    time.sleep(BURST_QUIET_SECONDS)
    started = time.monotonic()
    with ThreadPoolExecutor(BURST_THREADS) as pool:
        list(pool.map(lambda item: env.move_vip(item[0], item[1][1]), moves.items()))
    submitted = time.monotonic() - started
    seen_at = [observer.slice_has(key, address, timeout=300) for key, address in moves.values()]
    return submitted, max(seen_at) - started


def _floor_burst(
    env: Env, observer: Observer, addresses: Addresses, slices: dict[int, Key]
) -> tuple[float, float]:
    """The operator's burst again, met by the burst floor: same clusters, same moves.

    Neither contender works during the other's burst. The floor moves remote Services of
    its own (see :func:`_prepare_burst_floor`), as in the propagation scenario, so that no
    import reads them. The operator is stopped by then: it watches the same namespaces and
    would decode each of these changes on the same cores, for nothing. And the script runs
    only for its own burst, so it watches nothing of the operator's.
    """
    floor = start_script(env, "burst_floor", f"--local={CONTENDERS}")
    try:
        return _burst(env, observer, {i: (key, addresses.next()) for i, key in slices.items()})
    finally:
        stop_script(floor)


def fastest_burst(
    changes: int, runs: list[tuple[float, float]], floor_runs: list[tuple[float, float]]
) -> Burst:
    """Each contender's fastest burst (submitted, converged), and every run's convergence."""
    submitted, converged = min(runs, key=lambda run: run[1])
    floor_submitted, floor_converged = min(floor_runs, key=lambda run: run[1])
    return Burst(
        changes,
        submitted,
        converged,
        floor_submitted,
        floor_converged,
        rounds=[run[1] for run in runs],
        floor_rounds=[run[1] for run in floor_runs],
    )


def latency(
    *,
    sizes: list[int],
    changes: int,
    settle_seconds: float,
    baseline_changes: int,
    baseline_every: float,
    burst: int,
    burst_rounds: int = 1,
) -> tuple[list[Latency], Burst]:
    """Propagation with imports growing, beside the floor and the baseline; then the bursts."""
    results: list[Latency] = []
    addresses = Addresses()
    services = max(*sizes, burst)
    floor_index, baseline_index = services, services + 1
    with environment() as env:
        env.add_remote_services(services + 2)
        _prepare_contenders(env)
        observer = Observer(env.local).start()
        operator = env.operator().start()
        floor = start_script(
            env,
            "floor",
            f"--remote={'/'.join(remote_ref(floor_index))}",
            "--local=contenders/floor",
        )
        baseline = start_script(
            env,
            "baseline",
            f"--remote={'/'.join(remote_ref(baseline_index))}",
            "--local=contenders/baseline",
            f"--every={baseline_every}",
        )
        try:
            for size in sizes:
                env.add_imports(size, services=services)
                observer.all_ready(size, timeout=600)
                # Ready is the imports' last status write, not the end of what it set off:
                # its watch events, the API server's and the operator's settling after the
                # first sync of a thousand imports. The first changes measured that instead.
                time.sleep(settle_seconds)
                mine = Latency("operator", size)
                best = Latency("floor", size)
                key = import_ref(0)
                for _ in range(changes):
                    for contender, index, target in (
                        (mine, 0, key),
                        (best, floor_index, ("contenders", "floor")),
                    ):
                        address = addresses.next()
                        started = time.monotonic()
                        env.move_vip(index, address)
                        seen = observer.slice_has(target, address)
                        contender.seconds.append(seen - started)
                results += [mine, best]
            polled = Latency("baseline", sizes[-1])
            for _ in range(baseline_changes):
                address = addresses.next()
                started = time.monotonic()
                env.move_vip(baseline_index, address)
                seen = observer.endpoints_have(
                    ("contenders", "baseline"), address, timeout=baseline_every * 3 + 10
                )
                polled.seconds.append(seen - started)
            results.append(polled)

            env.add_imports(max(env.imports, burst), services=services)
            observer.all_ready(env.imports, timeout=600)

            # Each remote Service i is imported by import i (and, past `services`, by none).
            def operator_burst() -> tuple[float, float]:
                return _burst(
                    env, observer, {i: (import_ref(i), addresses.next()) for i in range(burst)}
                )

            runs = [operator_burst()]
            operator.stop()
            floor_slices = _prepare_burst_floor(env, first=services + 2, count=burst)
            floor_runs = [_floor_burst(env, observer, addresses, floor_slices)]
            for _ in range(1, burst_rounds):
                # The order turned round: the floor first, then the operator, restarted on
                # the same clusters, once its start-up sync of every import has settled.
                floor_runs.append(_floor_burst(env, observer, addresses, floor_slices))
                operator.start()
                time.sleep(settle_seconds)
                runs.append(operator_burst())
                operator.stop()
            burst_result = fastest_burst(burst, runs, floor_runs)
        finally:
            for process in (floor, baseline):
                stop_script(process)
            operator.stop()
            observer.stop()
    return results, burst_result


def _vmhwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _server_seconds(cluster: Cluster, resource: str, verb: str) -> tuple[float, float]:
    """Total time the API server spent on (resource, verb) requests, and their number."""
    labels = {"resource": resource, "verb": verb}
    return (
        apiserver_metric(cluster, "apiserver_request_duration_seconds_sum", **labels),
        apiserver_metric(cluster, "apiserver_request_duration_seconds_count", **labels),
    )


def _mean_ms(before: tuple[float, float], after: tuple[float, float]) -> float:
    count = after[1] - before[1]
    return (after[0] - before[0]) / count * 1000 if count else 0.0


@contextlib.contextmanager
def _populated(size: int) -> Iterator[Env]:
    """Fresh clusters holding ``size`` imports, one remote Service per five."""
    with environment() as env:
        env.add_remote_services(max(1, size // 5))
        env.add_imports(size, services=max(1, size // 5))
        yield env


def _floor_start_up(size: int) -> tuple[float, float]:
    """Seconds until the scale floor made ``size`` imports Ready; the API server's CPU."""
    with _populated(size) as env:
        observer = Observer(env.local, endpoints=False).start()
        apiserver = env.workload.pids()["kube-apiserver"]
        cpu = cpu_seconds(apiserver)
        started = time.monotonic()
        floor = start_script(env, "scale_floor")
        try:
            ready = observer.all_ready(size, timeout=1800) - started
            return ready, cpu_seconds(apiserver) - cpu
        finally:
            stop_script(floor)
            observer.stop()


def _memory_report(operator: OperatorProcess) -> dict[str, Any] | None:
    """The operator's /debug/memory, or None if it does not answer with one."""
    status, body = operator.probe("/debug/memory", timeout=600)
    if status != 200:
        print(f"no memory report: {status} {body[:200]}", flush=True)
        return None
    found: dict[str, Any] = json.loads(body)
    return found


def scale(
    *,
    sizes: list[int],
    idle_seconds: float,
    floor: bool = True,
    profile: str | None = None,
    rounds: int = 1,
) -> list[Scale]:
    """Start-up time, memory, watches and requests with N imports, each on fresh clusters.

    The scale floor runs first, on clusters of its own, so that both start from the same
    cold, freshly populated state; without ``floor`` it does not run. With ``profile``
    (``tables`` or ``full``) the operator serves its memory profile, which is read at the
    largest size only after its peak RSS (the walk allocates memory of its own).

    At the largest size, where the start-up target is set, each contender runs ``rounds``
    times, the order turned round each time, and its faster run counts: from one run to
    the next on this shared machine the same start-up varies by 5 to 10 %, as much as the
    difference being measured.
    """
    rows = []
    for size in sizes:
        repeats = rounds if size == max(sizes) else 1
        floors: list[tuple[float, float]] = []
        runs: list[Scale] = []
        for round_ in range(repeats):
            operator_first = round_ % 2 == 1
            if operator_first:
                runs.append(_operator_start_up(size, idle_seconds, profile=None))
            if floor:
                floors.append(_floor_start_up(size))
            if not operator_first:
                profiled = profile if size == max(sizes) and round_ == 0 else None
                runs.append(_operator_start_up(size, idle_seconds, profile=profiled))
        rows.append(fastest(runs, floors))
    return rows


def fastest(runs: list[Scale], floors: list[tuple[float, float]]) -> Scale:
    """The operator's fastest run, beside the floor's fastest (its Ready and API server CPU).

    The peak RSS and the idle writes are the highest of any run: the memory the chart
    sizes for and the churn an idle operator must not make are not a matter of speed.
    Every run's figures are kept for the report, and the memory profile of whichever run
    was profiled.
    """
    row = min(runs, key=lambda r: r.ready_seconds)
    row.memory = next((r.memory for r in runs if r.memory), None)
    row.ready_rounds = [r.ready_seconds for r in runs]
    row.rss_rounds = [r.peak_rss_mb for r in runs]
    row.idle_rounds = [r.idle_writes_per_minute for r in runs]
    row.peak_rss_mb = max(row.rss_rounds)
    row.idle_writes_per_minute = max(row.idle_rounds)
    if floors:
        row.floor_ready_seconds, row.floor_apiserver_cpu_seconds = min(floors)
        row.floor_rounds = [ready for ready, _ in floors]
    return row


def _operator_start_up(size: int, idle_seconds: float, *, profile: str | None) -> Scale:
    """The operator's start-up with ``size`` imports on fresh clusters, then its idle writes."""
    with _populated(size) as env:
        observer = Observer(env.local, endpoints=False).start()
        operator = env.operator("operator", *([f"--profile-memory={profile}"] if profile else []))
        others = apiserver_metric(
            env.supervisor, "apiserver_longrunning_requests", resource="services", verb="WATCH"
        )
        apiserver = env.workload.pids()["kube-apiserver"]
        apiserver_cpu = cpu_seconds(apiserver)
        service_creates = _server_seconds(env.workload, "services", "POST")
        started = time.monotonic()
        operator.start(wait=False)
        try:
            ready = observer.all_ready(size, timeout=1800) - started
            apiserver_cpu = cpu_seconds(apiserver) - apiserver_cpu
            service_create_ms = _mean_ms(
                service_creates, _server_seconds(env.workload, "services", "POST")
            )
            assert operator.process is not None
            cpu = cpu_seconds(operator.process.pid)
            requests = sum(
                v
                for k, v in operator.metrics().items()
                if k.startswith("shared_services_api_requests_total{")
            )
            time.sleep(5)  # let the last status events of start-up arrive
            writes = _writes(operator.metrics())
            time.sleep(idle_seconds)
            idle = (_writes(operator.metrics()) - writes) * 60 / idle_seconds
            row = Scale(
                imports=size,
                remote_services=max(1, size // 5),
                ready_seconds=ready,
                floor_ready_seconds=0.0,
                cpu_seconds=cpu,
                apiserver_cpu_seconds=apiserver_cpu,
                floor_apiserver_cpu_seconds=0.0,
                service_create_ms=service_create_ms,
                peak_rss_mb=_vmhwm_mb(operator.process.pid),
                remote_watches=operator.metric(
                    "shared_services_remote_watches", cluster="supervisor", state="up"
                ),
                supervisor_service_watches=apiserver_metric(
                    env.supervisor,
                    "apiserver_longrunning_requests",
                    resource="services",
                    verb="WATCH",
                )
                - others,
                requests_per_import=requests / size,
                idle_writes_per_minute=idle,
            )
            if profile:
                row.memory = _memory_report(operator)
            return row
        finally:
            operator.stop()
            observer.stop()


def _writes(samples: dict[str, float]) -> float:
    return sum(
        v
        for k, v in samples.items()
        if k.startswith(("shared_services_writes_total{", "shared_services_status_writes_total{"))
    )


def _load(path: Path) -> Results:
    """Results as ``main`` saved them."""
    saved = json.loads(path.read_text())
    burst = saved.get("burst")
    return Results(
        latency=[Latency(**row) for row in saved.get("latency", [])],
        scale=[Scale(**row) for row in saved.get("scale", [])],
        burst=Burst(**burst) if burst else None,
        recovery=[Recovery(**row) for row in saved.get("recovery", [])],
        fleet=[Fleet(**row) for row in saved.get("fleet", [])],
        kube_proxy=saved.get("kube_proxy", {}),
        settings=saved.get("settings", {}),
    )


def _recover(results: Results, settings: dict[str, Any]) -> None:
    """Run the recovery scenario into ``results``."""
    found = recovery(
        sizes=settings["recovery_sizes"],
        moves=settings["recovery_moves"],
        baseline_moves=settings["recovery_baseline_moves"],
        baseline_every=settings["baseline_every"],
    )
    results.recovery = found.rows
    results.kube_proxy = {
        "syncs": found.kube_proxy_syncs,
        "sync_mean_ms": found.kube_proxy_sync_mean_ms,
    }


def _fleet(settings: dict[str, Any]) -> list[Fleet]:
    addresses = Addresses()
    return fleet(
        sizes=settings["fleet_sizes"],
        services=settings["fleet_services"],
        moves=settings["fleet_moves"],
        addresses=iter(addresses.next, None),
    )


def _save(results: Results, out: Path) -> int:
    """Save the results and write the report from them."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(asdict(results), indent=1) + "\n")
    print(write_report(results, out))
    return 0


def _fleet_alone(args: argparse.Namespace, settings: dict[str, Any], began: float) -> int:
    """Run the fleet scenario alone, into the results.json in ``--out``."""
    saved = args.out / "results.json"
    results = _load(saved) if saved.exists() else Results(settings=dict(settings))
    results.fleet = _fleet(settings)
    results.settings |= {k: v for k, v in settings.items() if k.startswith("fleet_")}
    results.settings["fleet_seconds"] = round(time.monotonic() - began)
    results.settings["fleet_alone"] = True
    return _save(results, args.out)


def _scale_alone(args: argparse.Namespace, settings: dict[str, Any], began: float) -> int:
    """Run the scale scenario alone, at ``--sizes``, into the results.json in ``--out``."""
    saved = args.out / "results.json"
    results = _load(saved) if saved.exists() else Results(settings=dict(settings))
    sizes = args.sizes or settings["scale_sizes"]
    results.scale = scale(
        sizes=sizes,
        idle_seconds=settings["idle_seconds"],
        floor=not args.no_floor,
        profile=args.profile,
        rounds=settings["scale_rounds"],
    )
    results.settings["scale_sizes"] = sizes
    results.settings["scale_seconds"] = round(time.monotonic() - began)
    results.settings["scale_alone"] = True
    return _save(results, args.out)


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and write the report."""
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to prove the code runs")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="render REPORT.md and the plots again from the results.json in --out",
    )
    parser.add_argument(
        "--only",
        choices=["recovery", "scale", "fleet"],
        help="run only this scenario and merge it into the results.json in --out",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        help="with --only scale: the numbers of imports, comma-separated (default 1000,5000,10000)",
    )
    parser.add_argument(
        "--profile",
        choices=["tables", "full"],
        default="tables",
        help="the operator's --profile-memory in the scale scenario: its tables are read at "
        "the largest size; full also traces allocations, which inflates the RSS (default "
        "tables)",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="with --only scale: skip the scale floor"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        print(write_report(_load(args.out / "results.json"), args.out))
        return 0
    if args.smoke:
        settings: dict[str, Any] = {
            "latency_sizes": [1, 5],
            "changes": 3,
            "settle_seconds": 0.1,
            "baseline_changes": 1,
            "baseline_every": 0.5,
            "burst": 5,
            "burst_rounds": 2,
            "scale_sizes": [20],
            "scale_rounds": 2,
            "idle_seconds": 1.0,
            "recovery_sizes": [1, 5],
            "recovery_moves": 3,
            "recovery_baseline_moves": 1,
            "fleet_sizes": [2],
            "fleet_services": 3,
            "fleet_moves": 2,
        }
    else:
        settings = {
            "latency_sizes": [1, 100, 1000],
            "changes": 1000,
            "settle_seconds": SETTLE_SECONDS,
            "baseline_changes": 12,
            "baseline_every": 10.0,
            "burst": 1000,
            "burst_rounds": 2,
            "scale_sizes": [1000, 5000, 10000],
            "scale_rounds": 2,
            "idle_seconds": 30.0,
            "recovery_sizes": [1, 1000],
            "recovery_moves": 50,
            "recovery_baseline_moves": 10,
            "fleet_sizes": [10, 25, 50],
            "fleet_services": 20,
            "fleet_moves": 20,
        }
    began = time.monotonic()
    saved = args.out / "results.json"
    if args.only == "scale":
        return _scale_alone(args, settings, began)
    if args.only == "fleet":
        return _fleet_alone(args, settings, began)
    if args.only:
        results = _load(saved) if saved.exists() else Results(settings=dict(settings))
        _recover(results, settings)
        results.settings |= {k: v for k, v in settings.items() if k.startswith("recovery_")}
        results.settings["recovery_seconds"] = round(time.monotonic() - began)
        results.settings["recovery_alone"] = True  # the report says so: other code, other day
        args.out.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(asdict(results), indent=1) + "\n")
        print(write_report(results, args.out))
        return 0
    results = Results(settings=settings)
    results.latency, results.burst = latency(
        sizes=settings["latency_sizes"],
        changes=settings["changes"],
        settle_seconds=settings["settle_seconds"],
        baseline_changes=settings["baseline_changes"],
        baseline_every=settings["baseline_every"],
        burst=settings["burst"],
        burst_rounds=settings["burst_rounds"],
    )
    print(f"latency and burst done in {time.monotonic() - began:.0f} s", flush=True)
    results.scale = scale(
        sizes=settings["scale_sizes"],
        idle_seconds=settings["idle_seconds"],
        profile=args.profile,
        rounds=settings["scale_rounds"],
    )
    print(f"scale done after {time.monotonic() - began:.0f} s", flush=True)
    recovered = time.monotonic()
    _recover(results, settings)
    settings["recovery_seconds"] = round(time.monotonic() - recovered)
    results.fleet = _fleet(settings)
    settings["total_seconds"] = round(time.monotonic() - began)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(asdict(results), indent=1) + "\n")
    report = write_report(results, args.out)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
