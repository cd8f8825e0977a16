"""bench/REPORT.md and its plots, from the benchmark's results."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from bench.run import Burst, Results, Scale

TARGET_P99_MS = 250.0
TARGET_READY_S = 120.0  # for 10,000 imports
TARGET_BURST_RATIO = 1.2  # the operator's burst against the burst floor's


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, text_first: bool) -> list[str]:
    """A Markdown table; numbers align right, and so does the first column unless it is text."""
    alignments = ["---" if text_first else "---:"] + ["---:"] * (len(headers) - 1)
    return [
        f"| {' | '.join(headers)} |",
        f"|{'|'.join(alignments)}|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]


def _latency_table(results: Results) -> list[str]:
    floors = {row.imports: row for row in results.latency if row.contender == "floor"}
    rows = []
    for row in results.latency:
        floor = floors.get(row.imports)
        ratio = (
            f"{row.percentile(99) / floor.percentile(99):.2f}"
            if floor is not None and row.contender != "floor"
            else "—"
        )
        rows.append(
            [
                row.contender,
                f"{row.imports:,}",
                f"{len(row.seconds)}",
                *(f"{row.percentile(q):.1f}" for q in (50, 90, 99)),
                ratio,
            ]
        )
    headers = ["contender", "imports present", "changes", "p50 ms", "p90 ms", "p99 ms"]
    return _table([*headers, "p99 / floor p99"], rows, text_first=True)


def _scale_table(results: Results) -> list[str]:
    headers = [
        "imports",
        "remote Services",
        "all Ready after s",
        "scale floor s",
        "Ready / floor",
        "operator CPU s",
        "peak RSS MB",
        "remote watches",
        "Service watches the supervisor counts for it",
        "API requests per import",
        "idle writes per minute",
    ]
    rows = [
        [
            f"{row.imports:,}",
            f"{row.remote_services:,}",
            f"{row.ready_seconds:.1f}",
            f"{row.floor_ready_seconds:.1f}" if row.floor_ready_seconds else "—",
            f"{row.ready_seconds / row.floor_ready_seconds:.2f}"
            if row.floor_ready_seconds
            else "—",
            f"{row.cpu_seconds:.1f}",
            f"{row.peak_rss_mb:.0f}",
            f"{row.remote_watches:.0f}",
            f"{row.supervisor_service_watches:.0f}",
            f"{row.requests_per_import:.2f}",
            f"{row.idle_writes_per_minute:.0f}",
        ]
        for row in results.scale
    ]
    return _table(headers, rows, text_first=False)


_TIMES = {1: "once", 2: "twice", 3: "three times"}


def _worst_of(row: Scale) -> str:
    """The runs' peak RSS and idle writes, of which the row shows the highest; if kept."""
    if len(row.rss_rounds) < 2:
        return ""
    rss = " and ".join(f"{mb:.0f}" for mb in row.rss_rounds)
    idle = " and ".join(f"{n:.0f}" for n in row.idle_rounds)
    return (
        f" Peak RSS and idle writes are the highest of the runs: {rss} MB, {idle} writes "
        "per minute."
    )


def _rounds(results: Results) -> list[str]:
    """Every run of a size that was run more than once, of which the table shows the faster."""
    lines = []
    for row in results.scale:
        if len(row.ready_rounds) < 2 and len(row.floor_rounds) < 2:
            continue
        mine = " and ".join(f"{s:.1f}" for s in row.ready_rounds)
        floors = " and ".join(f"{s:.1f}" for s in row.floor_rounds)
        lines += [
            f"At {row.imports:,} imports each contender started "
            f"{_TIMES.get(len(row.ready_rounds), f'{len(row.ready_rounds)} times')} "
            "on fresh clusters, the order turned round each time (floor then operator, then "
            "operator then floor), and the table shows the faster run of each, with that "
            f"run's other figures: operator {mine} s, scale floor {floors or '—'} s."
            + _worst_of(row),
            "",
        ]
    return lines


def rss_fit(points: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares line of peak RSS (MiB) over imports: intercept MiB, slope KiB/import.

    None with fewer than two distinct sizes, through which no line is fixed.
    """
    line = _line([(float(size), rss) for size, rss in points])
    return None if line is None else (line[0], line[1] * 1024)


def _memory_section(results: Results) -> list[str]:
    """The fit of peak RSS over sizes, and the largest profiled size's tables."""
    lines: list[str] = []
    fit = rss_fit([(row.imports, row.peak_rss_mb) for row in results.scale])
    if fit is not None:
        lines += [
            f"Memory per import: peak RSS = {fit[0]:.1f} MiB + {fit[1]:.1f} KiB per import "
            "(least squares over the rows above).",
            "",
        ]
    profiled = [row for row in results.scale if row.memory]
    if not profiled:
        return lines
    row = profiled[-1]
    memory = row.memory or {}
    tables = memory.get("tables", [])
    shown = [t for t in tables if t["bytes"] >= 0.005 * max(1, memory.get("tables_bytes", 1))]
    lines += [
        f"Where it goes at {row.imports:,} imports: the operator's `/debug/memory` "
        "(`--profile-memory`), read after the peak RSS above. Each table is a container "
        "reached from the controller, by its attribute path; its bytes are the deep size of "
        "what it holds, each object counted once over all tables. Together "
        f"{memory.get('tables_bytes', 0) / 2**20:.1f} MiB of "
        f"{memory.get('resident_bytes', 0) / 2**20:.1f} MiB resident; tables under 0.5 % "
        "are left out.",
        "",
        *_table(
            ["table", "entries", "MiB", "bytes per import"],
            [
                [
                    f"`{t['path']}`",
                    f"{t['length']:,}",
                    f"{t['bytes'] / 2**20:.2f}",
                    f"{t['bytes'] / row.imports:,.0f}",
                ]
                for t in shown
            ],
            text_first=True,
        ),
        "",
    ]
    types = memory.get("table_types", [])[:10]
    if types:
        lines += [
            "The tables' objects by type (the ten largest):",
            "",
            *_table(
                ["type", "objects", "MiB"],
                [[f"`{t['type']}`", f"{t['count']:,}", f"{t['bytes'] / 2**20:.2f}"] for t in types],
                text_first=True,
            ),
            "",
        ]
    return lines


def _cost_table(results: Results) -> list[str]:
    headers = [
        "imports",
        "workload API server CPU s, operator",
        "same, scale floor",
        "mean Service create in the API server ms",
    ]
    rows = [
        [
            f"{row.imports:,}",
            f"{row.apiserver_cpu_seconds:.1f}",
            f"{row.floor_apiserver_cpu_seconds:.1f}" if row.floor_ready_seconds else "—",
            f"{row.service_create_ms:.1f}",
        ]
        for row in results.scale
    ]
    return _table(headers, rows, text_first=False)


def _burst_section(burst: Burst) -> list[str]:
    """The operator's burst beside the burst floor's; results saved before it had none."""
    floor = burst.floor_converged_seconds
    floor_submit = burst.floor_submit_seconds
    row = [
        f"{burst.changes:,}",
        f"{burst.submit_seconds * 1000:,.0f}",
        f"{burst.converged_seconds * 1000:,.0f}",
        f"{floor_submit * 1000:,.0f}" if floor_submit is not None else "—",
        f"{floor * 1000:,.0f}" if floor is not None else "—",
        f"{burst.converged_seconds / floor:.2f}" if floor else "—",
    ]
    headers = [
        "VIPs moved",
        "operator: submitted in ms",
        "operator: every slice right after ms",
        "burst floor: submitted in ms",
        "burst floor: every slice right after ms",
        "operator / floor",
    ]
    return [
        "## Burst",
        "",
        f"{burst.changes:,} remote VIPs moved at once, the moves sent by 16 threads; from the "
        "first move sent until the independent watcher saw every local EndpointSlice hold its "
        "new address. The burst floor (`tests/bench/burst_floor.py`) is the propagation "
        "floor's watch-and-patch loop once per remote namespace, each patching as it reads, "
        "through an event loop as the operator does; "
        "it meets the same burst in the same clusters, right after the operator's, on as many "
        "remote Services of its own, with the operator stopped and the script started only "
        "for its burst, so neither works during the other's. Target: operator / floor at most "
        f"{TARGET_BURST_RATIO:g}.",
        "",
        *_table(headers, [row], text_first=False),
        "",
        *_burst_rounds(burst),
    ]


def _burst_rounds(burst: Burst) -> list[str]:
    """Every burst of each contender, where they met more than one; the table's is the fastest."""
    if len(burst.rounds) < 2:
        return []
    mine = " and ".join(f"{s * 1000:,.0f}" for s in burst.rounds)
    floors = " and ".join(f"{s * 1000:,.0f}" for s in burst.floor_rounds)
    return [
        f"Each contender met the burst {_TIMES.get(len(burst.rounds), 'more than once')}, the "
        "order turned round the second time (operator then floor, then floor then the "
        "operator, restarted on the same clusters), and the table shows the fastest of each: "
        f"every slice right after {mine} ms for the operator, {floors or '—'} ms for the floor.",
        "",
    ]


def _recovery_table(results: Results) -> list[str]:
    floors = {row.imports: row for row in results.recovery if row.contender == "floor"}
    rows = []
    for row in results.recovery:
        floor = floors.get(row.imports)
        ratio = (
            f"{row.percentile(99) / floor.percentile(99):.2f}"
            if floor is not None and row.contender != "floor"
            else "—"
        )
        rows.append(
            [
                row.contender,
                f"{row.imports:,}",
                f"{len(row.seconds)}",
                *(f"{row.percentile(q):.1f}" for q in (50, 90, 99)),
                ratio,
                f"{row.slice_percentile(50):.1f} / {row.slice_percentile(99):.1f}",
                f"{row.data_plane_percentile(50):.1f} / {row.data_plane_percentile(99):.1f}",
            ]
        )
    headers = [
        "contender",
        "imports present",
        "moves",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99 / floor p99",
        "of which to the local slice, p50 / p99 ms",
        "then kube-proxy and the client, p50 / p99 ms",
    ]
    return _table(headers, rows, text_first=True)


def _recovery_plot(results: Results, out: Path) -> None:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for row in results.recovery:
        ordered = sorted(s * 1000 for s in row.seconds)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        style = {"operator": "-", "floor": "--"}.get(row.contender, ":")
        axes.plot(ordered, fractions, style, label=f"{row.contender}, {row.imports:,} imports")
    axes.set_xscale("log")
    axes.set_xlabel("recovery: VIP move to first client connection at the new server (ms, log)")
    axes.set_ylabel("fraction of moves")
    axes.set_title("Client-visible recovery through kube-proxy (CDF)")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(out / "recovery.png", dpi=110)
    plt.close(figure)


def _recovery_section(results: Results) -> list[str]:
    settings = results.settings
    proxy = results.kube_proxy
    return [
        "## Client-visible recovery after a VIP move",
        "",
        "Through the workload cluster's real data plane (`tests/harness/dataplane.py`): "
        "kube-proxy v1.37.2 in nftables mode and CoreDNS in network namespaces, and a server "
        "on the supervisor's load-balancer network that tells each client which VIP it "
        "reached. Each move is to a fresh address, never one used before (a failed attempt's "
        "conntrack entry keeps its NAT to the old VIP for two minutes, and an attempt that "
        "reuses its source port would follow it). From just before the remote Service's "
        "ingress is patched to the first connection of a client (run as a pod, a new "
        "connection to the ClusterIP every 5 ms) that reaches the new VIP. The independent "
        "watcher's stamp of the local EndpointSlice holding the new VIP splits it: the "
        "contender's part, then kube-proxy's sync and the client's next "
        "connection (for the baseline, its Endpoints; the mirrored slice is in the second "
        "part). Operator and floor moves are interleaved, each after more than a quiet "
        "second (kube-proxy applies a change at once only after its 1 s `minSyncPeriod`); the "
        "operator's import is one of 1 or of 1,000 present (the others read 200 other remote "
        "Services); the baseline polls every "
        f"{settings.get('baseline_every', 10):g} s. kube-proxy made "
        f"{proxy.get('syncs', 0):.0f} rule syncs meanwhile, "
        f"{proxy.get('sync_mean_ms', 0):.1f} ms each on average "
        "(`kubeproxy_sync_proxy_rules_duration_seconds`, both families). Run alone with "
        "`make bench BENCH_ARGS='--only recovery'`.",
        "",
        *_recovery_table(results),
        "",
        "![recovery](recovery.png)",
        "",
    ]


def _plots(results: Results, out: Path) -> None:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for row in results.latency:
        if row.contender == "baseline":
            continue
        ordered = sorted(s * 1000 for s in row.seconds)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        style = "-" if row.contender == "operator" else "--"
        axes.plot(ordered, fractions, style, label=f"{row.contender}, {row.imports:,} imports")
    axes.axvline(TARGET_P99_MS, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xscale("log")
    axes.set_xlabel("propagation: remote ingress change to local EndpointSlice (ms, log)")
    axes.set_ylabel("fraction of changes")
    axes.set_title("Propagation latency (CDF)")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(out / "latency.png", dpi=110)
    plt.close(figure)
    if results.recovery:
        _recovery_plot(results, out)

    if results.scale:
        figure, left = plt.subplots(figsize=(8, 4.5))
        sizes = [row.imports for row in results.scale]
        for label, seconds, style, color in (
            ("operator", [row.ready_seconds for row in results.scale], "o-", "tab:blue"),
            ("scale floor", [row.floor_ready_seconds for row in results.scale], "o:", "tab:cyan"),
        ):
            left.plot(sizes, seconds, style, color=color, label=f"{label}: all Ready (s)")
        left.legend(loc="upper left", fontsize="small")
        left.set_xlabel("imports")
        left.axhline(TARGET_READY_S, color="grey", linewidth=0.8, linestyle=":")
        left.set_ylabel("start until all Ready (s)", color="tab:blue")
        right = left.twinx()
        right.plot(sizes, [row.peak_rss_mb for row in results.scale], "s--", color="tab:red")
        right.set_ylabel("peak RSS (MB)", color="tab:red")
        left.set_title("Start-up cost against the number of imports")
        figure.tight_layout()
        figure.savefig(out / "scale.png", dpi=110)
        plt.close(figure)


def write_report(results: Results, out: Path) -> str:
    """Write REPORT.md and the plots into ``out``; return the report's text."""
    _plots(results, out)
    burst = results.burst
    lines = [
        "# Benchmark report",
        "",
        "Produced by `make bench` on the local clusters (kube-apiserver v1.37.2 built from its "
        "Go modules), with the operator running as its own process. "
        f"Machine: {platform.machine()}, {_cores()} cores, Python {platform.python_version()}. "
        f"Settings: `{results.settings}`.",
        *(
            [
                "",
                "The client-visible recovery was measured alone (`--only recovery`), after "
                "the other sections, which come from an earlier full run.",
            ]
            if results.settings.get("recovery_alone")
            else []
        ),
        *(
            [
                "",
                "The scale section was measured alone (`--only scale --sizes "
                f"{','.join(str(n) for n in results.settings.get('scale_sizes', []))}"
                f"{_no_floor(results)}`), after the other sections, which come from an "
                "earlier run.",
            ]
            if results.settings.get("scale_alone")
            else []
        ),
        "",
        "## Propagation latency",
        "",
        "From just before the remote Service's `status.loadBalancer.ingress` is patched to an "
        "independent watcher of the workload cluster seeing the new address in the local "
        "EndpointSlice (Endpoints, for the baseline). The floor is a bare Python watch-and-patch "
        "loop (`tests/bench/floor.py`); the baseline polls every "
        f"{results.settings.get('baseline_every', 10):g} s and rewrites the Endpoints "
        "(`tests/bench/baseline.py`). Operator and floor changes are interleaved, and start "
        f"{results.settings.get('settle_seconds', 0):g} s after the last import of that size "
        "is Ready, so that neither meets the end of the start-up.",
        "",
        *_latency_table(results),
        "",
        "![latency](latency.png)",
        "",
    ]
    if results.recovery:
        lines += _recovery_section(results)
    if burst is not None:
        lines += _burst_section(burst)
    if results.scale:
        lines += [
            "## Scale",
            "",
            "Fresh clusters for each row; imports spread over 100 namespaces, reading from one "
            "RemoteCluster's 20 namespaces (one remote Service per five imports). Time from the "
            "operator's process start until the watcher saw every import Ready; peak RSS is the "
            "process's high-water mark; remote watches from the operator's metric and from the "
            "supervisor API server's own `apiserver_longrunning_requests` (which also counts the "
            "controller-manager's and the load-balancer stand-in's watches; the table shows the "
            "difference the operator made); API requests are the operator's "
            "own (`shared_services_api_requests_total`, local and remote) at the moment all "
            "were Ready; idle writes are objects and statuses written over "
            f"{results.settings.get('idle_seconds', 30):g} s after start-up settled. The "
            "scale floor (`tests/bench/scale_floor.py`) lists once and then makes the same "
            "four writes per import (Service, EndpointSlice, Endpoints, status), 16 imports at "
            "a time from an event loop as the operator sends its writes, with no watch, cache "
            "or retry, on fresh clusters of its own.",
            "",
            *_scale_table(results),
            "",
            *_rounds(results),
            *_memory_section(results),
            "Where the time goes: the workload kube-apiserver's CPU from start until all were "
            "Ready, and the mean time it took per Service create "
            "(`apiserver_request_duration_seconds`, POST services).",
            "",
            *_cost_table(results),
            "",
            "![scale](scale.png)",
            "",
        ]
    if results.fleet:
        lines += _fleet_section(results)
    text = "\n".join(lines)
    (out / "REPORT.md").write_text(text)
    return text


def _ms(seconds: Sequence[float], q: float) -> float:
    ordered = sorted(seconds)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index] * 1000


def _fleet_table(results: Results) -> list[str]:
    rows = []
    for row in results.fleet:
        p99, floor_p99 = _ms(row.operator_seconds, 99), _ms(row.floor_seconds, 99)
        rows.append(
            [
                f"{row.clusters:,}",
                f"{row.clusters * row.services:,}",
                f"{row.ready_seconds:.1f}",
                f"{row.supervisor_watches:.0f}",
                f"{row.idle_cpu_ms_per_minute / row.clusters:.0f}",
                f"{row.rss_mb / row.clusters:.2f}",
                f"{row.bytes_per_move:,.0f}",
                f"{row.bytes_per_move / row.clusters:,.0f}",
                f"{_ms(row.operator_seconds, 50):.1f} / {p99:.1f}",
                f"{_ms(row.floor_seconds, 50):.1f} / {floor_p99:.1f}",
                f"{p99 / floor_p99:.2f}" if floor_p99 else "—",
            ]
        )
    headers = [
        "workload clusters",
        "imports",
        "all Ready after s",
        "Service watches on the supervisor",
        "supervisor CPU per cluster, idle, ms/min",
        "supervisor memory per cluster MB",
        "watch bytes per VIP move",
        "of which per cluster",
        "a move to every cluster, p50 / p99 ms",
        "floor, p50 / p99 ms",
        "p99 / floor p99",
    ]
    return _table(headers, rows, text_first=False)


def _line(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares intercept and slope; None through fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    return mean_y - slope * mean_x, slope


def _fleet_growth(results: Results) -> list[str]:
    """How each figure grows with the fleet, and where one supervisor would stop."""
    rows = results.fleet
    cpu = _line([(r.clusters, r.idle_cpu_ms_per_minute) for r in rows])
    sent = _line([(r.clusters, r.bytes_per_move) for r in rows])
    memory = _line([(r.clusters, r.rss_mb) for r in rows])
    if cpu is None or sent is None or memory is None:
        return []
    thousand_cpu = (cpu[0] + cpu[1] * 1000) / 60_000  # cores, idle, at 1,000 clusters
    thousand_bytes = sent[0] + sent[1] * 1000
    return [
        "How it grows (least squares over the sizes): the supervisor holds one Service watch "
        f"per cluster, exactly; an idle cluster costs its API server {cpu[1]:.1f} ms of CPU a "
        f"minute (the heartbeat and the watch's bookmarks) and {memory[1] * 1024:.0f} KiB of "
        f"memory; each VIP move sends {sent[1]:,.0f} bytes of watch events per cluster (the "
        "Service, once to each watcher). All grow linearly with the clusters and with "
        "nothing else: the catalog's other Services cost a cluster nothing after its list, "
        "and unexported Services are never sent. At 1,000 clusters that is "
        f"{thousand_cpu:.2f} of a core idle and {thousand_bytes / 1e6:.1f} MB per move. So "
        "one supervisor's limit is not the watches, its memory or an idle fleet: it is the "
        "fan-out of changes, each sent whole to every watching cluster: clusters times VIP "
        "moves, against the API server's CPU and network when many VIPs move at once. The "
        "time a move takes to reach every "
        "cluster grows here mostly with what the simulation shares (every operator and the "
        "workload API server on the same cores), which the floor shares too.",
        "",
    ]


def _fleet_section(results: Results) -> list[str]:
    settings = results.settings
    alone = (
        " Measured alone (`make bench BENCH_ARGS='--only fleet'`), after the other sections."
        if settings.get("fleet_alone")
        else ""
    )
    return [
        "## A fleet on one supervisor",
        "",
        "Workload clusters importing one catalog of "
        f"{settings.get('fleet_services', 20)} exported Services from one supervisor "
        "(`tests/bench/fleet.py`). Each simulated cluster has its own operator process, its "
        "own RemoteCluster (the others' left alone through `--remote-cluster-selector`), its "
        "own ServiceAccount token on the supervisor, allowed to read the catalog's namespace "
        "only, and one SharedServiceCatalog; the RemoteClusters require exports, so each "
        "watch selects exported Services on the supervisor. The simulation shares what real "
        "clusters would not: one workload API server and etcd take every cluster's writes, "
        "the operators, both API servers and the floor share the machine's cores, and the "
        "network is loopback. Watches from the supervisor's `apiserver_longrunning_requests` "
        "(Services, WATCH) less those before the fleet started; CPU is the supervisor "
        f"kube-apiserver's over {30:g} s of an idle fleet (a `/version` heartbeat per cluster "
        "about every 20 s) less the same window before; memory its resident set less "
        "before; bytes the growth of `apiserver_watch_events_sizes` (Services) per move. A "
        "move's time runs from the status patch until its new VIP is in every cluster's "
        "EndpointSlice, by an independent watcher of the workload API server "
        f"({settings.get('fleet_moves', 20)} moves at each size, each 1.5 s after the last, "
        "so that the operators' trailing writes of one move, which real clusters make on "
        "cores of their own, are done before the next); the floor is as many bare "
        "watch-and-patch loops "
        "(`floor.py`), one per cluster with that cluster's identity, with the operators "
        f"stopped.{alone}",
        "",
        *_fleet_table(results),
        "",
        *_fleet_growth(results),
    ]


def _no_floor(results: Results) -> str:
    """The flag that left the scale floor out, if it was."""
    return " --no-floor" if not any(row.floor_ready_seconds for row in results.scale) else ""


def _cores() -> int:
    import os  # noqa: PLC0415

    return os.cpu_count() or 0
