"""Client-visible recovery after a VIP move, through the real data plane.

On fresh clusters with the workload cluster's data plane (kube-proxy, CoreDNS), each
contender keeps one local Service on one remote Service, whose VIP moves to a fresh address
each time; a server on the load-balancer network answers at every VIP and tells a client
which one it reached. For every move, the clock runs from just before the status patch
until the first connection of a client (a new connection every 5 ms, as a pod, to the
ClusterIP) reaches the new VIP.

Never an address twice: a connection attempt that failed while a VIP was gone leaves a
conntrack entry (SYN_SENT, two minutes) with its NAT to that VIP, and a later attempt that
happens to reuse its source port follows that entry, not kube-proxy's current rules. With
VIPs that come back, such attempts would reach the "new" VIP before kube-proxy did.

The independent watcher of the workload cluster stamps when the local EndpointSlice held
the new VIP, which splits the time in two: the contender's part (remote event to local
slice) and the data plane's (kube-proxy's sync, then the client's next connection). For
the baseline, the first part ends at its Endpoints; the mirrored slice is in the second.

Contenders, interleaved move by move: the operator (one import of its own, with 1 and with
1,000 imports present), the floor (``floor.py``: the bare watch-and-patch loop) and the
baseline (``baseline.py``: polling every 10 s and rewriting Endpoints, which the mirroring
controller turns into a slice). Moves are at least a second apart, as kube-proxy applies a
change at once only after a quiet second (its ``minSyncPeriod``) and batches closer ones.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench.env import Env, environment, remote_ref, start_script, stop_script
from bench.observer import Observer
from harness import probe
from harness.binaries import ensure_binaries
from harness.coredns import ensure_coredns
from harness.dataplane import DataPlane, http_get
from harness.greeter import command as greeter_command
from harness.operator import total
from kit import GROUP, VERSION

# The data plane takes addresses from the documentation ranges only: the allocator's VIPs
# (one remote Service per five background imports, and the three contenders') from
# 192.0.2.0/24, the moved-to VIPs from 198.51.100.0/24 and the low part of 203.0.113.0/24
# (its top is the data plane's links): room for about 460 moves.
POOL = "192.0.2.0/24"
MOVE_TO = ("198.51.100.0/24", "203.0.113.0/25")
CONTENDERS = ("operator", "floor", "baseline")
PORT = 5432  # the benchmark's remote Services' port; the greeter listens there
QUIET = 1.1  # seconds between moves: more than kube-proxy's minSyncPeriod of 1 s
MEASURED = ("contenders", "measured")  # the operator's import


@dataclass
class Recovery:
    """Recovery times of one contender at one number of imports present."""

    contender: str
    imports: int
    seconds: list[float] = field(default_factory=list)  # patch to first new connection
    slice_seconds: list[float] = field(default_factory=list)  # patch to local slice

    @staticmethod
    def _percentile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    def percentile(self, q: float) -> float:
        """The q-th percentile of the client-visible recovery, in milliseconds."""
        return self._percentile(self.seconds, q)

    def slice_percentile(self, q: float) -> float:
        """The q-th percentile of the contender's part, in milliseconds."""
        return self._percentile(self.slice_seconds, q)

    def data_plane_percentile(self, q: float) -> float:
        """The q-th percentile of the data plane's part, in milliseconds."""
        return self._percentile(
            [c - s for c, s in zip(self.seconds, self.slice_seconds, strict=True)], q
        )


@dataclass
class RecoveryResults:
    """The rows, and kube-proxy's own accounting of its rule syncs meanwhile."""

    rows: list[Recovery]
    kube_proxy_syncs: int
    kube_proxy_sync_mean_ms: float


class Client:
    """The probe, run as a pod for one move: started before the patch, stopped after."""

    def __init__(self, plane: DataPlane, host: str, *, seconds: float) -> None:
        self._process = subprocess.Popen(
            plane.pod_command(
                "default",
                *probe.command(
                    host,
                    PORT,
                    "--every=0.005",
                    f"--count={int(seconds / 0.005) + 1}",
                    f"--seconds={seconds}",
                    "--timeout=1",
                    "--resolve-once",
                    "--protocol=greeting",
                ),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._lines: list[str] = []
        self._read(until=lambda: bool(self._lines), timeout=20)  # connected once: it runs

    def _read(self, *, until: Callable[[], bool], timeout: float) -> None:
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            ready, _, _ = select.select([self._process.stdout], [], [], 0.1)
            if ready:
                line = self._process.stdout.readline()
                if not line:
                    return
                self._lines.append(line)

    def first(self, server: str, *, since: float, timeout: float) -> float:
        """When the first connection made after ``since`` reached ``server`` (an address)."""

        def seen() -> list[float]:
            return [
                a.at
                for a in probe.attempts("".join(self._lines))
                if a.ok and a.server == server and a.at >= since
            ]

        self._read(until=lambda: bool(seen()), timeout=timeout)
        # Attempts end out of order: give those that started earlier a moment to report.
        self._read(until=lambda: False, timeout=0.05)
        self.stop()
        found = seen()
        if not found:
            msg = f"no connection reached {server} within {timeout} s"
            raise TimeoutError(msg)
        return min(found)

    def stop(self) -> None:
        """Stop the probe (it would stop by itself within its bound)."""
        self._process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            out, _ = self._process.communicate(timeout=10)
            self._lines.append(out)


def _prepare(env: Env, *, services: int) -> None:
    """The floor's and the baseline's local Services, and the operator's measured import."""
    env.local.create("/api/v1/namespaces", {"metadata": {"name": "contenders"}})
    for name, port in (("floor", {"name": "pg", "port": PORT}), ("baseline", {"port": PORT})):
        env.local.create(
            "/api/v1/namespaces/contenders/services",
            {"metadata": {"name": name}, "spec": {"ports": [port]}},
        )
    env.local.create(
        "/apis/discovery.k8s.io/v1/namespaces/contenders/endpointslices",
        {
            "metadata": {"name": "floor", "labels": {"kubernetes.io/service-name": "floor"}},
            "addressType": "IPv4",
            "endpoints": [],
            "ports": [{"name": "pg", "port": PORT, "protocol": "TCP"}],
        },
    )
    env.local.create("/api/v1/namespaces/contenders/endpoints", {"metadata": {"name": "baseline"}})
    remote_ns, remote_name = remote_ref(services)
    env.local.create(
        f"/apis/{GROUP}/{VERSION}/namespaces/contenders/sharedserviceimports",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceImport",
            "metadata": {"name": MEASURED[1]},
            "spec": {
                "source": {
                    "remoteService": {
                        "cluster": "supervisor",
                        "namespace": remote_ns,
                        "name": remote_name,
                    }
                }
            },
        },
    )


def _kube_proxy_syncs(plane: DataPlane) -> tuple[float, float]:
    """kube-proxy's rule syncs so far: total seconds and count (both families)."""
    _, text = http_get(plane.node, 10249, "/metrics")
    syncs = "kubeproxy_sync_proxy_rules_duration_seconds"
    return total(text, f"{syncs}_sum"), total(text, f"{syncs}_count")


def _settle(plane: DataPlane, *, quiet: float = 2.0, timeout: float = 300.0) -> None:
    """Wait until kube-proxy has made no rule sync for ``quiet`` seconds.

    New imports mean new Services for kube-proxy to program; a move measured while it still
    works through them would time its backlog, not the move.
    """
    deadline = time.monotonic() + timeout
    last = _kube_proxy_syncs(plane)[1]
    still_since = time.monotonic()
    while time.monotonic() - still_since < quiet:
        if time.monotonic() > deadline:
            msg = f"kube-proxy did not settle within {timeout} s"
            raise TimeoutError(msg)
        time.sleep(0.2)
        count = _kube_proxy_syncs(plane)[1]
        if count != last:
            last, still_since = count, time.monotonic()


@contextlib.contextmanager
def _data_plane(env: Env) -> Iterator[DataPlane]:
    plane = DataPlane(
        workload=env.workload,
        supervisor=env.supervisor,
        directory=env.directory / "dataplane",
        kube_proxy=ensure_binaries() / "kube-proxy",
        coredns=ensure_coredns(),
    ).start()
    try:
        yield plane
    finally:
        plane.stop()


def recovery(
    *, sizes: list[int], moves: int, baseline_moves: int, baseline_every: float
) -> RecoveryResults:
    """Recovery of the operator (at each size), the floor and the baseline."""
    rows: list[Recovery] = []
    background = max(1, (max(sizes) - 1) // 5)  # one remote Service per five imports
    indexes = {"operator": background, "floor": background + 1, "baseline": background + 2}
    hosts = {
        "operator": "measured.contenders.svc.cluster.local",
        "floor": "floor.contenders.svc.cluster.local",
        "baseline": "baseline.contenders.svc.cluster.local",
    }
    slices = {"operator": MEASURED, "floor": ("contenders", "floor"),
              "baseline": ("contenders", "baseline")}  # fmt: skip
    fresh = (str(a) for cidr in MOVE_TO for a in list(ipaddress.ip_network(cidr).hosts())[9:])
    with environment(pool=POOL) as env, _data_plane(env) as plane:
        env.add_remote_services(background + 3)
        _prepare(env, services=background)
        greeter = plane.spawn_on_lb("greeter", greeter_command(PORT), ready_line=True)
        observer = Observer(env.local).start()
        operator = env.operator().start()
        floor = start_script(
            env, "floor", f"--remote={'/'.join(remote_ref(indexes['floor']))}",
            "--local=contenders/floor",
        )  # fmt: skip
        baseline = start_script(
            env, "baseline", f"--remote={'/'.join(remote_ref(indexes['baseline']))}",
            "--local=contenders/baseline", f"--every={baseline_every}",
        )  # fmt: skip

        def move(contender: str, *, timeout: float = 30.0) -> tuple[float, float]:
            """Move the contender's VIP to a fresh address; (client, slice) seconds."""
            address = next(fresh)
            client = Client(plane, hosts[contender], seconds=timeout + 5)
            try:
                started = time.monotonic()
                env.move_vip(indexes[contender], address)
                reached = client.first(address, since=started, timeout=timeout)
            finally:
                client.stop()
            if contender == "baseline":
                # What the baseline writes: its Endpoints. The mirroring controller's slice
                # follows, as a new slice for each change, so its own stamps mislead.
                sliced = observer.endpoints_have(slices[contender], address, timeout=timeout)
            else:
                sliced = observer.slice_has(slices[contender], address, timeout=timeout)
            return reached - started, sliced - started

        try:
            for contender in CONTENDERS:  # away from the allocator's VIP, once, untimed
                move(contender, timeout=baseline_every * 3 + 10)
            syncs_before = _kube_proxy_syncs(plane)
            for size in sizes:
                if size > 1:
                    env.add_imports(size - 1, services=background)
                observer.all_ready(size, timeout=600)
                _settle(plane)
                mine, best = Recovery("operator", size), Recovery("floor", size)
                for _ in range(moves):
                    for row in (mine, best):
                        time.sleep(QUIET)
                        reached, sliced = move(row.contender)
                        row.seconds.append(reached)
                        row.slice_seconds.append(sliced)
                rows += [mine, best]
            polled = Recovery("baseline", sizes[-1])
            for _ in range(baseline_moves):
                time.sleep(QUIET)
                reached, sliced = move("baseline", timeout=baseline_every * 3 + 10)
                polled.seconds.append(reached)
                polled.slice_seconds.append(sliced)
            rows.append(polled)
            syncs_after = _kube_proxy_syncs(plane)
        finally:
            plane.stop_process(greeter)
            for process in (floor, baseline):
                stop_script(process)
            operator.stop()
            observer.stop()
    count = syncs_after[1] - syncs_before[1]
    mean = (syncs_after[0] - syncs_before[0]) / count * 1000 if count else 0.0
    return RecoveryResults(rows=rows, kube_proxy_syncs=int(count), kube_proxy_sync_mean_ms=mean)
