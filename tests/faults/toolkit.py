"""What the fault scenarios share: a spare API server, samplers, the summary and the secrets.

The scenarios prove properties over time ("the endpoints were never dropped"), so they
sample the clusters from a thread while a fault is injected, and assert on every sample
afterwards. What each scenario injected and measured goes into one row of a summary table,
printed at the end of the session and written to ``.local/faults-summary.md`` (the table,
and what the suites share, are in ``suite``).
"""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from dnsserver import LoopbackDNSServer
from harness.cluster import Cluster, _die_with_parent, free_port, wait_readyz
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from kit import GROUP, VERSION, Kit
from suite import Clusters
from support import eventually

T = TypeVar("T")


@dataclass(frozen=True)
class FaultEnv:
    """The suite's own clusters, clients, DNS server and log directory."""

    supervisor: Cluster
    workload: Cluster
    supervisor_api: k8s.ApiClient
    workload_api: k8s.ApiClient
    workload_kubeconfig: Path
    dns: LoopbackDNSServer
    logs: Path
    credentials: Credentials
    clusters: Clusters


# --- sampling while a fault is on ---------------------------------------------------------------


class Sampler(Generic[T]):
    """Calls ``probe`` every ``interval`` seconds in a thread and keeps what it returned.

    A probe that raises (the API server it reads is the one being restarted) is counted in
    ``failures`` instead of recorded: a sample must be a real observation.
    """

    def __init__(self, probe: Callable[[], T], *, interval: float = 0.2) -> None:
        self._probe = probe
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.samples: list[tuple[float, T]] = []
        self.failures = 0

    def __enter__(self) -> Sampler[T]:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sampling (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self._probe()
            except Exception:  # a failed observation is counted, not fatal
                self.failures += 1
            else:
                self.samples.append((time.monotonic(), value))
            self._stop.wait(self._interval)

    def between(self, start: float, end: float) -> list[T]:
        """The values sampled in the interval [start, end] of time.monotonic()."""
        return [value for moment, value in self.samples if start <= moment <= end]


# --- a second API server over the same etcd -----------------------------------------------------


class SpareApiServer:
    """Another kube-apiserver of the same cluster, on a port of its own.

    A control plane with several API servers is how production runs; here it is what lets a
    scenario change the supervisor's state (move a VIP) while the API server the operator
    talks to is stopped or frozen.
    """

    def __init__(self, cluster: Cluster, *, log_path: Path) -> None:
        self.cluster = cluster
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> SpareApiServer:
        """Launch it with the cluster's own flags but another port, and wait until it serves."""
        # The cluster's flags are reused as they are, so both servers share etcd, the CA,
        # the serving certificate (valid for 127.0.0.1 on any port) and the token file.
        args = [
            f"--secure-port={self.port}" if arg.startswith("--secure-port=") else arg
            for arg in self.cluster._apiserver_args()
        ]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [str(self.cluster.bin_dir / "kube-apiserver"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )
        # Ready, not merely answering: until its post-start hooks ran, it may refuse what
        # the first one allows.
        if not wait_readyz(
            self.url, ca_pem=self.cluster.pki.ca_pem, deadline=time.monotonic() + 60
        ):
            msg = f"the spare API server did not become ready; see {self.log_path}"
            raise TimeoutError(msg)
        return self

    def stop(self) -> None:
        """Terminate it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kubeconfig(self) -> dict[str, Any]:
        """The cluster's admin kubeconfig, pointed at this server."""
        config = self.cluster.kubeconfig()
        config["clusters"][0]["cluster"]["server"] = self.url
        return config

    def api_client(self) -> k8s.ApiClient:
        """An admin client of this server."""
        api: k8s.ApiClient = k8s_config.new_client_from_config_dict(self.kubeconfig())
        return api


# --- credentials the operator must never log ----------------------------------------------------


@dataclass
class Credentials:
    """Every token and kubeconfig the suite created, to scan the operators' logs for."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, value: str, what: str) -> str:
        """Remember ``value`` (and its base64 form, as it sits in a Secret); returns it."""
        if len(value) >= 8:  # shorter strings would match by chance
            self.values[value] = what
            self.values[base64.b64encode(value.encode()).decode()] = f"{what} (base64)"
        return value

    def add_cluster(self, cluster: Cluster) -> None:
        """The static users' tokens of a cluster."""
        for user in cluster.users.values():
            self.add(user.token, f"token of {user.name} on {cluster.name}")

    def leaks(self, paths: Iterable[Path]) -> list[str]:
        """Where any remembered credential appears in the given files."""
        found = []
        for path in paths:
            text = path.read_text(errors="replace")
            found += [
                f"{what} in {path.name}" for value, what in self.values.items() if value in text
            ]
        return found


# --- small shortcuts ----------------------------------------------------------------------------


def writes(operator: OperatorProcess) -> float:
    """Every write the operator made: objects and statuses."""
    return operator.metric_sum("shared_services_writes_total") + operator.metric_sum(
        "shared_services_status_writes_total"
    )


def alone(kit: Kit) -> None:
    """Wait until the namespaces of earlier scenarios are gone.

    The operator's counters are the whole process's: while an earlier scenario's namespace
    is being deleted, the operator removes that scenario's objects, and those writes would
    be counted against this one.
    """

    def others() -> list[str]:
        return [
            str(n.metadata.name)
            for n in kit.core.list_namespace().items
            if n.metadata
            and str(n.metadata.name).startswith("f-")
            and n.metadata.name != kit.namespace
        ]

    eventually(lambda: not others(), timeout=120, interval=0.5)


def load_balancer(
    kit: Kit, name: str, ips: list[str], *, ports: list[dict[str, Any]] | None = None
) -> None:
    """A LoadBalancer Service on the supervisor with the given ingress, as NSX would set it."""
    service = k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1ServiceSpec(
            type="LoadBalancer",
            ports=[k8s.V1ServicePort(**p) for p in ports or [{"name": "tcp", "port": 5432}]],
        ),
    )
    kit.remote.create_namespaced_service(kit.namespace, service)
    kit.set_ingress(name, [{"ip": ip} for ip in ips])


def remote_condition(kit: Kit, cluster: str) -> Mapping[str, Any]:
    """The Connected condition of a RemoteCluster, empty when it has none yet."""
    body = kit.custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", cluster)
    assert isinstance(body, dict)
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Connected"), {})


def put_kubeconfig(kit: Kit, secret: str, text: str | bytes, *, key: str = "kubeconfig") -> None:
    """Replace what the kubeconfig Secret holds under ``key``."""
    raw = text.encode() if isinstance(text, str) else text
    kit.core.patch_namespaced_secret(
        secret, OPERATOR_NAMESPACE, {"data": {key: base64.b64encode(raw).decode()}}
    )


def slice_state(kit: Kit) -> dict[str, dict[str, list[str]]]:
    """Per local Service name, its EndpointSlices' addresses by address type."""
    state: dict[str, dict[str, list[str]]] = {}
    for item in kit.discovery.list_namespaced_endpoint_slice(kit.namespace).items:
        labels = (item.metadata.labels if item.metadata else None) or {}
        service = labels.get("kubernetes.io/service-name")
        if service:
            addresses = sorted(a for e in item.endpoints or [] for a in e.addresses)
            state.setdefault(service, {})[item.address_type] = addresses
    return state


def wait_for(check: Callable[[], T], *, timeout: float, what: str, log: str = "") -> float:
    """Wait until ``check()`` is truthy; return how long that took, in seconds."""
    started = time.monotonic()
    try:
        eventually(check, timeout=timeout, interval=0.05)
    except AssertionError as error:
        raise AssertionError(f"{what}: not within {timeout} s\n{log}") from error
    return time.monotonic() - started
