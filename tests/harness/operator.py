"""Run the operator as its own process, the way ``kopf run`` runs in a pod.

Tests, the demo and the benchmark start it with a kubeconfig of the workload cluster, read
its Prometheus metrics over HTTP, and can kill and restart it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness.cluster import _die_with_parent, free_port

OPERATOR_NAMESPACE = "shared-services-system"


def scrape(port: int) -> str:
    """The metrics page served on ``port`` of loopback: the one way the tests read metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a metrics page: its name, its labels, its value."""
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` on a metrics page whose labels include ``labels``.

    The one way the tests and the benchmark read a metric, of the operator, an API server
    or kube-proxy alike. Only the lines of ``name`` are parsed: an API server's page is
    megabytes of histograms.
    """
    lines = "\n".join(line for line in text.splitlines() if line.startswith(name))
    return sum(
        value
        for sample, given, value in samples(lines + "\n")
        if sample == name and labels.items() <= given.items()
    )


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


class OperatorProcess:
    """One operator process against one cluster."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        log_path: Path,
        operator_namespace: str = OPERATOR_NAMESPACE,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.operator_namespace = operator_namespace
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> OperatorProcess:
        """Start the process; by default wait until it is ready (its caches are filled)."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "OPERATOR_NAMESPACE": self.operator_namespace,
            "PYTHONUNBUFFERED": "1",
            # The test plane's central cluster listens on loopback, where no remote server
            # may be by default; a test of that rule sets this to "" or to other ranges.
            "REMOTE_SERVER_CIDRS": "127.0.0.0/8",
            **self.env,
        }
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared_services",
                f"--metrics-port={self.metrics_port}",
                f"--health-port={self.health_port}",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def probe(self, path: str, *, timeout: float = 2) -> tuple[int, str]:
        """The HTTP status and body of a probe (``/healthz``, ``/readyz``); 0 if none answers."""
        url = f"http://127.0.0.1:{self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()
        except (urllib.error.URLError, OSError) as error:
            return 0, str(error)

    def wait_live(self, timeout: float = 60.0) -> None:
        """Block until /healthz answers 200."""
        self._wait_probe("/healthz", "live", timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until /readyz answers 200: every local cache is filled."""
        self._wait_probe("/readyz", "ready", timeout)

    def _wait_probe(self, path: str, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                msg = f"the operator exited:\n{self.log_tail()}"
                raise RuntimeError(msg)
            status, body = self.probe(path)
            if status == 200:
                return
            if time.monotonic() > deadline:
                msg = f"the operator did not become {what} ({status} {body}):\n{self.log_tail()}"
                raise TimeoutError(msg)
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the process (SIGKILL to simulate a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def metrics_text(self) -> str:
        """The metrics page exactly as Prometheus scrapes it."""
        return scrape(self.metrics_port)

    def metrics(self) -> dict[str, float]:
        """Current samples as ``name{label="value",...}`` → value."""
        return {
            f"{name}{{{_labels(labels)}}}" if labels else name: value
            for name, labels, value in samples(self.metrics_text())
        }

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value, exactly these labels; 0 when absent."""
        return self.metrics().get(f"{name}{{{_labels(labels)}}}" if labels else name, 0.0)

    def metric_sum(self, name: str, **labels: str) -> float:
        """The sum of every sample of ``name`` whose labels include ``labels``."""
        return total(self.metrics_text(), name, **labels)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the operator logged."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
