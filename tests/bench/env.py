"""A pair of fresh local clusters populated with remote Services and imports, at any scale."""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.allocator import LoadBalancerAllocator
from harness.binaries import ensure_binaries
from harness.cluster import Cluster, start_clusters
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess, total
from kit import GROUP, VERSION, install_crds
from shared_services.kube import Conflict, Kube

HERE = Path(__file__).resolve().parent
# RFC 2544's benchmarking range: room for thousands of VIPs.
BENCH_POOL = "198.18.0.0/15"
REMOTE_NAMESPACES = 20
LOCAL_NAMESPACES = 100
CLUSTER = "supervisor"


def remote_ref(index: int) -> tuple[str, str]:
    """Namespace and name of remote Service ``index``."""
    return f"shared-{index % REMOTE_NAMESPACES:02d}", f"svc-{index:05d}"


def import_ref(index: int) -> tuple[str, str]:
    """Namespace and name of import ``index``."""
    return f"app-{index % LOCAL_NAMESPACES:03d}", f"imp-{index:05d}"


@dataclass
class Env:
    """Running clusters, clients and the files the operator and scripts need."""

    directory: Path
    supervisor: Cluster
    workload: Cluster
    remote: Kube
    local: Kube
    allocator: LoadBalancerAllocator
    remote_kubeconfig: Path
    local_kubeconfig: Path
    remote_services: int = 0
    imports: int = 0

    def operator(self, name: str = "operator", *extra: str) -> OperatorProcess:
        """An operator process for the workload cluster (not started)."""
        return OperatorProcess(
            kubeconfig=self.local_kubeconfig,
            log_path=self.directory / f"{name}.log",
            extra_args=list(extra),
        )

    def add_remote_services(self, count: int, *, workers: int = 16) -> None:
        """Grow to ``count`` LoadBalancer Services on the supervisor, each with a VIP."""
        start = self.remote_services
        for ns in {remote_ref(i)[0] for i in range(start, count)}:
            _create(self.remote, "/api/v1/namespaces", {"metadata": {"name": ns}})

        def create(index: int) -> None:
            ns, name = remote_ref(index)
            body = {
                "metadata": {"name": name},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "pg", "port": 5432}]},
            }
            _create(self.remote, f"/api/v1/namespaces/{ns}/services", body)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, range(start, count)))
        self.remote_services = count
        self.wait_allocated(count, timeout=300)

    def wait_allocated(self, count: int, *, timeout: float) -> None:
        """Wait until ``count`` remote Services have an ingress address."""
        deadline = time.monotonic() + timeout
        while self.allocated() < count:
            if time.monotonic() > deadline:
                msg = "the allocator did not give every Service a VIP"
                raise TimeoutError(msg)
            time.sleep(0.5)

    def allocated(self) -> int:
        """How many remote Services have an ingress address."""
        listing = self.remote.request("GET", "/api/v1/services")
        return sum(
            1
            for s in listing.get("items", [])
            if ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        )

    def add_imports(self, count: int, *, services: int, workers: int = 16) -> None:
        """Grow to ``count`` imports, import ``i`` reading remote Service ``i % services``."""
        start = self.imports
        for ns in {import_ref(i)[0] for i in range(start, count)}:
            _create(self.local, "/api/v1/namespaces", {"metadata": {"name": ns}})

        def create(index: int) -> None:
            ns, name = import_ref(index)
            remote_ns, remote_name = remote_ref(index % services)
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "SharedServiceImport",
                "metadata": {"name": name},
                "spec": {
                    "source": {
                        "remoteService": {
                            "cluster": CLUSTER,
                            "namespace": remote_ns,
                            "name": remote_name,
                        }
                    }
                },
            }
            _create(
                self.local, f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/sharedserviceimports", body
            )

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, range(start, count)))
        self.imports = count

    def move_vip(self, index: int, address: str) -> None:
        """Set remote Service ``index``'s ingress, as a re-provisioned load balancer would."""
        ns, name = remote_ref(index)
        self.remote.patch(
            f"/api/v1/namespaces/{ns}/services/{name}/status",
            {"status": {"loadBalancer": {"ingress": [{"ip": address}]}}},
        )


def start_script(
    env: Env,
    name: str,
    *args: str,
    remote_kubeconfig: Path | None = None,
    log_name: str | None = None,
) -> subprocess.Popen[str]:
    """Start one of the benchmark's scripts (``floor``, ``baseline``, ...); wait until ready.

    ``remote_kubeconfig`` replaces the supervisor's admin kubeconfig (another identity).
    """
    log_path = env.directory / f"{log_name or name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / f"{name}.py"),
                f"--remote-kubeconfig={remote_kubeconfig or env.remote_kubeconfig}",
                f"--local-kubeconfig={env.local_kubeconfig}",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    if process.stdout.readline() != "ready\n":  # it failed to start, and its log says why
        stop_script(process)
        msg = f"{name} did not start: {log_path.read_text()[-2000:]}"
        raise RuntimeError(msg)
    return process


def stop_script(process: subprocess.Popen[str]) -> None:
    """Stop a script started with :func:`start_script`."""
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process has used, user and system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def apiserver_metric(cluster: Cluster, name: str, **labels: str) -> float:
    """Sum of an API server metric's samples matching ``labels``."""
    request = urllib.request.Request(
        f"{cluster.url}/metrics", headers={"Authorization": f"Bearer {cluster.admin.token}"}
    )
    context = ssl.create_default_context(cadata=cluster.pki.ca_pem.decode())
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        text = response.read().decode()
    return total(text, name, **labels)


def _create(kube: Kube, path: str, body: dict[str, Any]) -> None:
    with contextlib.suppress(Conflict):
        kube.create(path, body)


@contextlib.contextmanager
def environment(*, pool: str = BENCH_POOL) -> Iterator[Env]:
    """Fresh clusters with the CRDs, the operator's namespace, and a RemoteCluster.

    ``pool`` is where the load-balancer allocator takes VIPs from.
    """
    with tempfile.TemporaryDirectory(prefix="shared-services-bench-") as tmp:
        directory = Path(tmp)
        supervisor, workload = start_clusters(
            ["supervisor", "workload"], bin_dir=ensure_binaries(), base_dir=directory
        )
        allocator = LoadBalancerAllocator(supervisor.api_client(), cidr=pool).start()
        try:
            local = Kube(workload.api_client())
            install_crds(workload.api_client())
            _create(local, "/api/v1/namespaces", {"metadata": {"name": OPERATOR_NAMESPACE}})
            kubeconfig = supervisor.kubeconfig_yaml().encode()
            _create(
                local,
                f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets",
                {
                    "metadata": {"name": "supervisor-kubeconfig"},
                    "data": {"kubeconfig": base64.b64encode(kubeconfig).decode()},
                },
            )
            _create(
                local,
                f"/apis/{GROUP}/{VERSION}/remoteclusters",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "RemoteCluster",
                    "metadata": {"name": CLUSTER},
                    "spec": {"kubeconfigSecretRef": {"name": "supervisor-kubeconfig"}},
                },
            )
            yield Env(
                directory=directory,
                supervisor=supervisor,
                workload=workload,
                remote=Kube(supervisor.api_client()),
                local=local,
                allocator=allocator,
                remote_kubeconfig=supervisor.write_kubeconfig(directory / "supervisor.kubeconfig"),
                local_kubeconfig=workload.write_kubeconfig(directory / "workload.kubeconfig"),
            )
        finally:
            allocator.stop()
            for cluster in (supervisor, workload):
                cluster.stop()
