"""What the end-to-end scenarios share: real clients run as pods, and the probe's attempts.

Every client here runs through ``bin/pod``, as an application in a namespace of the workload
cluster would: its name lookups go to CoreDNS with the namespace's search path, its
connections through kube-proxy's rules. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterable

from kubernetes import watch as k8s_watch

from harness import probe
from harness.dataplane import DataPlane
from harness.probe import Attempt
from kit import Kit


def redis_cli(
    plane: DataPlane, namespace: str, host: str, *words: str, port: int = 6379
) -> subprocess.CompletedProcess[str]:
    """``redis-cli -h HOST WORDS...`` as a pod of ``namespace``."""
    return plane.run_in_pod(
        namespace, "redis-cli", "-h", host, "-p", str(port), "--no-raw", *words, timeout=30
    )


def whoami(plane: DataPlane, namespace: str, host: str, *, port: int = 6379) -> str:
    """Which Redis answers at ``host`` for a pod of ``namespace`` (its ``whoami`` key)."""
    result = plane.run_in_pod(
        namespace, "redis-cli", "-h", host, "-p", str(port), "GET", "whoami", timeout=30
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def wait_answered_by(
    plane: DataPlane,
    namespace: str,
    host: str,
    server: str,
    *,
    port: int = 6379,
    timeout: float = 30,
) -> float:
    """Ask every 0.2 s, for at most ``timeout`` s, until ``server`` answers; return how long."""
    started = time.monotonic()
    seen = ""
    while time.monotonic() - started < timeout:
        seen = whoami(plane, namespace, host, port=port)
        if seen == server:
            return time.monotonic() - started
        time.sleep(0.2)
    msg = f"{host} (port {port}) was not answered by {server} within {timeout} s; last: {seen!r}"
    raise AssertionError(msg)


def start_probe(
    plane: DataPlane,
    namespace: str,
    host: str,
    port: int,
    *,
    every: float = 0.05,
    seconds: float = 10.0,
    timeout: float = 1.0,
    protocol: str = "redis",
) -> subprocess.Popen[str]:
    """Start the probe as a pod: a new connection every ``every`` s, for ``seconds`` s."""
    return subprocess.Popen(
        plane.pod_command(
            namespace,
            *probe.command(
                host,
                port,
                f"--every={every}",
                f"--count={int(seconds / every) + 1}",
                f"--seconds={seconds}",
                f"--timeout={timeout}",
                f"--protocol={protocol}",
            ),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def finish_probe(process: subprocess.Popen[str], *, seconds: float) -> list[Attempt]:
    """Wait for the probe to stop by itself; its attempts."""
    out, err = process.communicate(timeout=seconds + 30)
    assert process.returncode == 0, f"the probe failed ({process.returncode}): {err}"
    found = probe.attempts(out)
    assert found, f"the probe made no attempt: {err}"
    return found


def servers(attempts: Iterable[Attempt]) -> list[str | None]:
    """Who answered each attempt (None: no answer)."""
    return [a.server if a.ok else None for a in attempts]


def errors(attempts: Iterable[Attempt]) -> dict[str, int]:
    """How often each error occurred."""
    counts: dict[str, int] = {}
    for attempt in attempts:
        if not attempt.ok:
            key = attempt.error or "?"
            counts[key] = counts.get(key, 0) + 1
    return counts


class SliceWatch:
    """When a Service's EndpointSlices came to hold an address, stamped as each event arrived.

    A watch of the workload cluster, opened before the change it is to time: what a
    kube-proxy sees, without the delay of polling.
    """

    def __init__(self, kit: Kit, service: str) -> None:
        self._kit = kit
        self._service = service
        self._watch = k8s_watch.Watch()
        self._seen: list[tuple[float, frozenset[str]]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="slice-watch", daemon=True)

    def __enter__(self) -> SliceWatch:
        self._thread.start()
        with self._changed:  # the first event replays the current state: the watch is live
            self._changed.wait_for(lambda: self._seen, timeout=30)
        return self

    def __exit__(self, *_: object) -> None:
        self._watch.stop()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # ended by stop(), or by the test's end
            for event in self._watch.stream(
                self._kit.discovery.list_namespaced_endpoint_slice,
                self._kit.namespace,
                label_selector=f"kubernetes.io/service-name={self._service}",
                timeout_seconds=120,
            ):
                addresses = frozenset(
                    a for e in event["object"].endpoints or [] for a in e.addresses
                )
                with self._changed:
                    self._seen.append((time.monotonic(), addresses))
                    self._changed.notify_all()

    def when(self, address: str, *, timeout: float = 20.0) -> float:
        """The monotonic time of the first event whose slice held ``address``."""

        def found() -> float | None:
            return next((t for t, seen in self._seen if address in seen), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None, timeout=timeout)
            moment = found()
        assert moment is not None, f"no slice of {self._service} held {address}"
        return moment
