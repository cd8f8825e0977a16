"""``make demo``: the operator keeping a local Service on a remote VIP, end to end, in a minute.

A newcomer's first command, so it assumes nothing: it starts two fresh local control planes of
its own (not the ones ``make up`` keeps) and the workload cluster's data plane (kube-proxy and
CoreDNS in network namespaces, PostgreSQL servers at the supervisor's VIPs), plays both roles
(the platform team on the supervisor, the application team on the workload cluster), shows the
results with the same ``kubectl`` a user would type and with a real client, ``psql`` run as a
pod of the application's namespace calling ``db`` by its name. Then it moves the VIP to another
server and back a few times, and freezes the supervisor's API server, printing which server
the client reached and how quickly. Everything it started is stopped again, also on failure
and on Ctrl-C.

``run`` does the whole demo and returns what it measured, so a test can run it in-process and
check what a user would see.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

import yaml
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from harness import dataplane
from harness.allocator import LoadBalancerAllocator
from harness.binaries import ensure_binaries
from harness.cluster import Cluster, start_clusters
from harness.coredns import ensure_coredns
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from harness.servers import PostgresServer
from kit import GROUP, VERSION, install_crds

T = TypeVar("T")

REMOTE_NAMESPACE = "shared-db"
LOCAL_NAMESPACE = "web"
SERVICE = "db"
REMOTE_CLUSTER = "supervisor"
MANAGED = "app.kubernetes.io/managed-by=shared-services-operator"
# Where the VIP moves to: documentation addresses, outside the allocator's 192.0.2.0/24 pool,
# each used once (a client's failed attempt leaves a conntrack entry that would send a later
# attempt to an address that came back). db-b listens at every other one, db-a at the rest
# and at the VIP the load balancer first gives, so the VIP goes back and forth between them.
MOVES = tuple(f"198.51.100.{host}" for host in range(50, 56))
SERVERS = {vip: ("db-b", "db-a")[i % 2] for i, vip in enumerate(MOVES)}
STEPS = 9
WAIT_SECONDS = 30.0
FREEZE_SECONDS = 5
# The client: psql, as a pod of the application's namespace, asking which server it reached.
PSQL = ("env", "PGCONNECT_TIMEOUT=2", "psql", "-h", SERVICE, "-U", "postgres", "-w", "-At")


class DemoFailed(Exception):
    """The demo could not show what it meant to; the message says where and why."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo measured, for a test to check against what it printed."""

    cluster_seconds: float
    vip: str
    moves: tuple[str, ...]
    propagation_ms: tuple[float, ...]
    client_ms: tuple[float, ...]
    answers: tuple[str, ...]  # which server the client reached before the moves, then after each
    freeze_answers: tuple[str, ...]
    final_addresses: tuple[str, ...]
    pids: tuple[int, ...]
    namespaces: tuple[str, ...]


def _wait_for(what: str, check: Callable[[], T | None], *, timeout: float = WAIT_SECONDS) -> T:
    """Poll ``check`` until it returns something; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f} s waiting for {what}"
            raise DemoFailed(msg)
        time.sleep(0.05)


def _slice_addresses(slice_: Any) -> list[str]:
    return sorted(a for e in slice_.endpoints or [] for a in e.addresses)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Let the teardown finish even if Ctrl-C is pressed again while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Demo:
    """The demo's state, so that the teardown can stop whatever had been started."""

    def __init__(self, *, out: TextIO, workdir: Path, bin_dir: Path) -> None:
        self.out = out
        self.workdir = workdir
        self.step = "preparing"
        self.bin_dir = bin_dir
        self.kubeconfig = workdir / "workload.kubeconfig"
        self.clusters: list[Cluster] = []
        self.clients: list[k8s.ApiClient] = []
        self.allocator: LoadBalancerAllocator | None = None
        self.operator: OperatorProcess | None = None
        self.plane: dataplane.DataPlane | None = None
        self.servers: list[PostgresServer] = []
        self.pids: list[int] = []
        self.answers: list[str] = []
        self.client_ms: list[float] = []
        # Admin clients of the two clusters, made once they are up.
        self.supervisor_api: k8s.ApiClient
        self.workload_api: k8s.ApiClient

    # -- output -------------------------------------------------------------------------

    def heading(self, number: int, title: str) -> None:
        self.step = f"{number}. {title}"
        self.out.write(f"\n==> {number}/{STEPS} {title}\n")
        self.out.flush()

    def say(self, text: str = "") -> None:
        for line in text.splitlines() or [""]:
            self.out.write(f"    {line}\n" if line else "\n")
        self.out.flush()

    def kubectl(self, *args: str) -> str:
        """Run the built kubectl against the workload cluster and show what a user would see."""
        self.say(f"\n$ kubectl {' '.join(args)}")
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            msg = f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            raise DemoFailed(msg)
        self.say(result.stdout.rstrip())
        return result.stdout

    # -- the story ----------------------------------------------------------------------

    def play(self) -> DemoResult:
        self.out.write(
            "shared-services-operator: a Service on a workload cluster that keeps pointing at\n"
            "a LoadBalancer VIP on a central (supervisor) cluster, whatever happens to the VIP.\n"
        )
        cluster_seconds = self.start_clusters()
        vip = self.share_service()
        self.import_service()
        self.start_operator(vip)
        self.show_results()
        self.answers.append(self.show_client(expect=SERVERS[MOVES[1]]))
        first = self.move_vip(previous=vip, new=MOVES[0])
        # The status follows the slice a moment later (the slice goes first, for kube-proxy).
        _wait_for("the import's status to show the new VIP", lambda: self.ready_with(MOVES[0]))
        self.kubectl("get", "ssi", "-n", LOCAL_NAMESPACE)
        self.show_event(f"{vip} -> {MOVES[0]}")
        frozen = self.freeze()
        timings = [first, *self.move_repeatedly(first)]
        final = self.final_addresses()
        assert self.plane is not None
        return DemoResult(
            cluster_seconds=cluster_seconds,
            vip=vip,
            moves=MOVES,
            propagation_ms=tuple(timings),
            client_ms=tuple(self.client_ms),
            answers=tuple(self.answers),
            freeze_answers=tuple(frozen),
            final_addresses=tuple(final),
            pids=tuple(self.pids),
            namespaces=self.plane.namespaces,
        )

    def start_clusters(self) -> float:
        self.heading(1, "Start two local Kubernetes clusters: `supervisor` and `workload`")
        self.say(
            "Each is a real etcd + kube-apiserver + kube-controller-manager on loopback.\n"
            "A small allocator stands in for NSX on the supervisor: it gives every\n"
            "`type: LoadBalancer` Service an ingress VIP, as the cloud controller would."
        )
        started = time.monotonic()
        self.clusters = start_clusters(
            [REMOTE_CLUSTER, "workload"], bin_dir=self.bin_dir, base_dir=self.workdir / "clusters"
        )
        elapsed = time.monotonic() - started
        for cluster in self.clusters:
            self.pids.extend(cluster.pids().values())
        supervisor, workload = self.clusters
        allocator_client = supervisor.api_client()
        self.clients.append(allocator_client)
        self.allocator = LoadBalancerAllocator(allocator_client).start()
        self.supervisor_api = self._client(supervisor)
        self.workload_api = self._client(workload)
        workload.write_kubeconfig(self.kubeconfig)
        self.say(f"both clusters ready in {elapsed:.1f} s")
        for cluster in self.clusters:
            self.say(f"  {cluster.name:<10} {cluster.url}")
        self.say(
            "\nThe workload cluster's data plane, in network namespaces of its own: kube-proxy\n"
            "(nftables) and CoreDNS on a node, a pod network behind it, and the supervisor's\n"
            "load-balancer network, where every LoadBalancer VIP is an address."
        )
        started = time.monotonic()
        self.plane = dataplane.DataPlane(
            workload=workload,
            supervisor=supervisor,
            directory=self.workdir / "dataplane",
            kube_proxy=self.bin_dir / "kube-proxy",
            coredns=ensure_coredns(),
        ).start()
        self.pids.extend(self.plane.pids().values())
        self.say(f"data plane ready in {time.monotonic() - started:.1f} s")
        return elapsed

    def share_service(self) -> str:
        self.heading(2, "Platform team, on the supervisor: expose the database as LoadBalancer")
        install_crds(self.workload_api)
        self.say("installed the CRDs (SharedServiceImport, RemoteCluster) on the workload cluster")
        remote = k8s.CoreV1Api(self.supervisor_api)
        remote.create_namespace(_namespace(REMOTE_NAMESPACE))
        remote.create_namespaced_service(
            REMOTE_NAMESPACE,
            k8s.V1Service(
                metadata=k8s.V1ObjectMeta(name=SERVICE),
                spec=k8s.V1ServiceSpec(
                    type="LoadBalancer",
                    ports=[k8s.V1ServicePort(name="postgres", port=5432)],
                ),
            ),
        )
        self.say(
            f"created Service {REMOTE_NAMESPACE}/{SERVICE} (type LoadBalancer, port 5432 postgres)"
        )
        vip = _wait_for("the load balancer to give the Service a VIP", self.remote_vip)
        self.say(f"the load balancer gave it the VIP {vip}")
        assert self.plane is not None
        for name, address, also in (("db-a", vip, MOVES[1::2]), ("db-b", MOVES[0], MOVES[2::2])):
            server = PostgresServer(self.plane, name=name, address=address, also=also)
            self.servers.append(server)
            server.start()
            if server.process is not None:
                self.pids.append(server.process.popen.pid)
        self.say(
            f"PostgreSQL on the load-balancer network: db-a at {vip}, db-b at {MOVES[0]},\n"
            "where the VIP will move (and each at every other address it moves to after that)"
        )
        return vip

    def remote_vip(self) -> str | None:
        service = k8s.CoreV1Api(self.supervisor_api).read_namespaced_service_status(
            SERVICE, REMOTE_NAMESPACE
        )
        balancer = service.status.load_balancer if service.status else None
        ingress = (balancer.ingress if balancer else None) or []
        return ingress[0].ip if ingress else None

    def import_service(self) -> None:
        self.heading(3, "On the workload cluster: point the operator at the supervisor, import db")
        core = k8s.CoreV1Api(self.workload_api)
        custom = k8s.CustomObjectsApi(self.workload_api)
        core.create_namespace(_namespace(OPERATOR_NAMESPACE))
        # As on vSphere with Tanzu: an SSO user with Can View on the shared namespace (a
        # RoleBinding to view, as vSphere makes it) signs in at /wcp/login; the kubeconfig
        # says only where the Supervisor is and which CA to trust.
        supervisor = self.clusters[0]
        user = supervisor.signin.fresh_user("devops")
        supervisor.bind_sso_user(user.name, REMOTE_NAMESPACE)
        self.say(
            f"On the supervisor, SSO user {user.name} has Can View on {REMOTE_NAMESPACE}\n"
            "(a RoleBinding to the view ClusterRole, as vSphere makes it); nothing else"
        )
        secret = f"{REMOTE_CLUSTER}-kubeconfig"
        config = supervisor.kubeconfig()
        config.pop("users", None)
        for context in config["contexts"]:
            context["context"].pop("user", None)
        kubeconfig = yaml.safe_dump(config, sort_keys=False)
        core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            k8s.V1Secret(
                metadata=k8s.V1ObjectMeta(name=secret),
                data={"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
            ),
        )
        sso_secret = f"{REMOTE_CLUSTER}-sso"
        core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            k8s.V1Secret(
                metadata=k8s.V1ObjectMeta(name=sso_secret),
                type="kubernetes.io/basic-auth",
                string_data={"username": user.name, "password": user.password},
            ),
        )
        self.say(
            f"Secret {OPERATOR_NAMESPACE}/{secret}: the supervisor's server and CA, no user\n"
            f"Secret {OPERATOR_NAMESPACE}/{sso_secret} (kubernetes.io/basic-auth): the SSO user\n"
            "(the operator reads Secrets in its own namespace and nowhere else)"
        )
        self.say()
        remote_cluster = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RemoteCluster",
            "metadata": {"name": REMOTE_CLUSTER},
            "spec": {
                "kubeconfigSecretRef": {"name": secret, "key": "kubeconfig"},
                "vsphereSignIn": {
                    "credentialsSecretRef": {"name": sso_secret},
                    "url": supervisor.signin.login_url,
                },
            },
        }
        custom.create_cluster_custom_object(GROUP, VERSION, "remoteclusters", remote_cluster)
        self.say("RemoteCluster (once per central cluster, usually set up by the Helm chart):")
        self.say(yaml.safe_dump(remote_cluster, sort_keys=False))
        core.create_namespace(_namespace(LOCAL_NAMESPACE))
        ssi = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceImport",
            "metadata": {"name": SERVICE, "namespace": LOCAL_NAMESPACE},
            "spec": {
                "source": {
                    "remoteService": {
                        "cluster": REMOTE_CLUSTER,
                        "namespace": REMOTE_NAMESPACE,
                        "name": SERVICE,
                    }
                }
            },
        }
        custom.create_namespaced_custom_object(
            GROUP, VERSION, LOCAL_NAMESPACE, "sharedserviceimports", ssi
        )
        self.say("\nSharedServiceImport, what an application team writes (or keeps in Git):")
        self.say(yaml.safe_dump(ssi, sort_keys=False))

    def start_operator(self, vip: str) -> None:
        self.heading(4, "Start the operator against the workload cluster")
        self.operator = OperatorProcess(
            kubeconfig=self.kubeconfig, log_path=self.workdir / "operator.log"
        )
        started = time.monotonic()
        self.operator.start(wait=False)
        if self.operator.process is not None:
            self.pids.append(self.operator.process.pid)
        self.operator.wait_live(timeout=WAIT_SECONDS)
        self.say(f"operator live (log: {self.operator.log_path})")
        _wait_for("the import to become Ready with the VIP", lambda: self.ready_with(vip))
        self.say(
            f"import web/db Ready {time.monotonic() - started:.1f} s after the operator started"
        )

    def ready_with(self, vip: str) -> bool | None:
        ssi = cast(
            "dict[str, Any]",
            k8s.CustomObjectsApi(self.workload_api).get_namespaced_custom_object(
                GROUP, VERSION, LOCAL_NAMESPACE, "sharedserviceimports", SERVICE
            ),
        )
        status = ssi.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        return True if ready and status.get("addresses") == [vip] else None

    def show_results(self) -> None:
        self.heading(5, "What the operator made: look with kubectl, as a user would")
        self.kubectl("get", "ssi", "-n", LOCAL_NAMESPACE)
        self.kubectl("get", "remoteclusters")
        self.say(
            "\nA Service without a selector named db, and an EndpointSlice holding the VIP,\n"
            "so pods in `web` keep calling db.web.svc.cluster.local:5432:"
        )
        self.kubectl("get", "svc,endpointslices", "-n", LOCAL_NAMESPACE, "-l", MANAGED)
        slices = k8s.DiscoveryV1Api(self.workload_api).list_namespaced_endpoint_slice(
            LOCAL_NAMESPACE, label_selector=f"kubernetes.io/service-name={SERVICE}"
        )
        for slice_ in slices.items:
            name = slice_.metadata.name if slice_.metadata else None
            self.kubectl("get", "endpointslice", str(name), "-n", LOCAL_NAMESPACE, "-o", "yaml")

    def client(self) -> str | None:
        """Which server psql reaches at ``db``, as a pod of ``web``; None when it fails."""
        assert self.plane is not None
        result = self.plane.run_in_pod(
            LOCAL_NAMESPACE, *PSQL, "-c", "SHOW cluster_name", timeout=10
        )
        return (result.stdout.strip() or None) if result.returncode == 0 else None

    def show_client(self, *, expect: str) -> str:
        self.say(
            "\nAnd what the application sees: psql run as a pod of `web` would run it (DNS\n"
            "through CoreDNS with web's search path, the connection through kube-proxy):"
        )
        self.say(
            f"\n$ pod {LOCAL_NAMESPACE} -- psql -h {SERVICE} -U postgres -Atc 'SHOW cluster_name'"
        )
        answer = _wait_for(f"psql to reach {expect}", lambda: _if_equal(self.client(), expect))
        self.say(answer)
        return answer

    def move_vip(self, *, previous: str, new: str) -> float:
        self.heading(6, f"Move the VIP {previous} -> {new}, as a re-provisioned LB would")
        time.sleep(1.0)  # see move_repeatedly
        sliced, reached = self._timed_move(previous=previous, new=new)
        self.say(
            f"the workload cluster's EndpointSlice followed in {sliced:.0f} ms;\n"
            f"psql from the pod reached {SERVERS[new]}, the server at the new VIP, "
            f"{reached:.0f} ms after the move"
        )
        return sliced

    def _timed_move(self, *, previous: str, new: str) -> tuple[float, float]:
        """Move the VIP on the supervisor; the ms until the workload's slice shows it, and
        until psql, asking about every 0.1 s, reaches the server at the new VIP.

        The watch is opened before the patch, and its replay of the current slice (the old
        address) proves that it is live, so what is timed is the operator, not the watch.
        """
        discovery = k8s.DiscoveryV1Api(self.workload_api)
        watch = k8s_watch.Watch()
        stream = watch.stream(
            discovery.list_namespaced_endpoint_slice,
            LOCAL_NAMESPACE,
            label_selector=f"kubernetes.io/service-name={SERVICE}",
            timeout_seconds=int(WAIT_SECONDS),
        )
        try:
            for event in stream:
                if _slice_addresses(event["object"]) == [previous]:
                    break
            else:
                msg = f"the EndpointSlice watch never showed the current address {previous}"
                raise DemoFailed(msg)
            started = time.perf_counter()
            k8s.CoreV1Api(self.supervisor_api).patch_namespaced_service_status(
                SERVICE,
                REMOTE_NAMESPACE,
                {"status": {"loadBalancer": {"ingress": [{"ip": new, "ipMode": "VIP"}]}}},
            )
            for event in stream:
                if new in _slice_addresses(event["object"]):
                    sliced = (time.perf_counter() - started) * 1000
                    break
            else:
                msg = f"the workload EndpointSlice did not show {new} within {WAIT_SECONDS:.0f} s"
                raise DemoFailed(msg)
        finally:
            watch.stop()
            stream.close()
        server = SERVERS[new]
        _wait_for(f"psql to reach {server}", lambda: _if_equal(self.client(), server))
        reached = (time.perf_counter() - started) * 1000
        self.client_ms.append(reached)
        self.answers.append(server)
        return sliced, reached

    def freeze(self) -> list[str]:
        self.heading(7, f"Freeze the supervisor's API server for {FREEZE_SECONDS} s (SIGSTOP)")
        self.say(
            "The central cluster answers nothing meanwhile; the operator keeps the last known\n"
            "address, and the client, once a second, keeps reaching the database:"
        )
        supervisor = self.clusters[0]
        answers = []
        supervisor.signal_apiserver(signal.SIGSTOP)
        try:
            for second in range(FREEZE_SECONDS):
                began = time.monotonic()
                answer = self.client() or "no answer"
                self.say(f"  frozen for {second} s: psql answered by {answer}")
                answers.append(answer)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
        finally:
            supervisor.signal_apiserver(signal.SIGCONT)
        self.say("thawed")
        return answers

    def show_event(self, message: str) -> None:
        def recorded() -> bool | None:
            events = k8s.CoreV1Api(self.workload_api).list_namespaced_event(
                LOCAL_NAMESPACE, field_selector="reason=AddressesChanged"
            )
            return True if any(e.message == message for e in events.items) else None

        _wait_for(f"the AddressesChanged Event {message!r}", recorded)
        self.say("\nand the import recorded the change as an Event:")
        self.kubectl(
            "get", "events", "-n", LOCAL_NAMESPACE, "--field-selector", "reason=AddressesChanged"
        )

    def move_repeatedly(self, first: float) -> list[float]:
        self.heading(8, f"Move it {len(MOVES) - 1} more times, between the two servers")
        self.say(f"{'move':<33} {'EndpointSlice':>13} {'psql reached':>12}  server")
        timings = []
        for previous, new in itertools.pairwise(MOVES):
            # A second apart, as moves are in life: kube-proxy applies a change at once
            # after a quiet second, and batches changes closer together than that.
            time.sleep(1.0)
            sliced, reached = self._timed_move(previous=previous, new=new)
            move = f"{previous} -> {new}"
            self.say(f"{move:<33} {sliced:10.0f} ms {reached:9.0f} ms  {SERVERS[new]}")
            timings.append(sliced)
        every = [first, *timings]
        self.say(
            f"propagation over these {len(every)} moves: min {min(every):.0f} ms, "
            f"median {statistics.median(every):.0f} ms, max {max(every):.0f} ms;\n"
            f"the client followed in a median {statistics.median(self.client_ms):.0f} ms"
        )
        return timings

    def final_addresses(self) -> list[str]:
        slices = k8s.DiscoveryV1Api(self.workload_api).list_namespaced_endpoint_slice(
            LOCAL_NAMESPACE, label_selector=f"kubernetes.io/service-name={SERVICE}"
        )
        return sorted(a for s in slices.items for a in _slice_addresses(s))

    # -- teardown -----------------------------------------------------------------------

    def operator_log_tail(self) -> str:
        if self.operator is None:
            return ""
        return self.operator.log_tail(30)

    def close(self, *, keep: bool) -> None:
        """Stop the operator, the allocator and the clusters; remove the state unless kept.

        Output comes second: a closed or broken ``out`` (``| head``) must not stop the
        teardown.
        """
        with contextlib.suppress(OSError, ValueError):
            self.heading(9, "Stop everything")
        with _sigint_ignored():
            self._stop_all(keep=keep)
        alive = [pid for pid in self.pids if _alive(pid)]
        with contextlib.suppress(OSError, ValueError):
            if alive:
                self.say(f"still running, although asked to stop: {alive}")
            elif self.pids:
                self.say(
                    f"stopped the operator, the servers, the data plane and both clusters "
                    f"({len(self.pids)} processes)\nand removed the network namespaces; "
                    "nothing is left running"
                )
            else:
                self.say("nothing is left running")
            self.say(
                f"logs kept in {self.workdir}"
                if keep
                else f"removed the demo's state in {self.workdir}"
            )

    def _stop_all(self, *, keep: bool) -> None:
        if self.operator is not None:
            self.operator.stop()
        for server in self.servers:
            server.stop()
        PostgresServer.remove_template()
        if self.plane is not None:
            self.plane.stop()
        # The allocator's watch notices a stop only when an event or the end of its
        # connection arrives: ask it to stop first, and let the API server's exit end it.
        stopper = None
        if self.allocator is not None:
            stopper = threading.Thread(target=self.allocator.stop, name="stop-allocator")
            stopper.start()
        for api in self.clients:
            api.close()
        for cluster in self.clusters:
            cluster.stop(remove=not keep)
        if stopper is not None:
            stopper.join()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _client(self, cluster: Cluster) -> k8s.ApiClient:
        api = cluster.api_client()
        self.clients.append(api)
        return api


def _if_equal(value: str | None, expected: str) -> str | None:
    return value if value == expected else None


def _namespace(name: str) -> k8s.V1Namespace:
    return k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run(out: TextIO) -> DemoResult:
    """Play the whole demo, writing it to ``out``; raise DemoFailed if any step fails.

    Whatever happens, Ctrl-C included, the operator and both clusters are stopped before this
    returns; their logs are kept (and named in the output) only when a step failed.
    """
    try:
        dataplane.check_requirements()
    except dataplane.DataPlaneUnavailable as error:
        raise DemoFailed(str(error)) from error
    try:
        bin_dir = ensure_binaries()
        ensure_coredns()
    except subprocess.CalledProcessError as error:
        msg = f"the binaries could not be built ({error}); try `make controlplane coredns`"
        raise DemoFailed(msg) from error
    workdir = Path(tempfile.mkdtemp(prefix="shared-services-demo-"))
    demo = _Demo(out=out, workdir=workdir, bin_dir=bin_dir)
    failed = False
    try:
        result = demo.play()
    except DemoFailed as error:
        failed = True
        msg = f"step {demo.step!r} failed: {error}{_tail(demo)}"
        raise DemoFailed(msg) from error
    except Exception as error:
        failed = True
        msg = f"step {demo.step!r} failed: {type(error).__name__}: {error}{_tail(demo)}"
        raise DemoFailed(msg) from error
    finally:
        demo.close(keep=failed)
    if not all(ms > 0 for ms in result.propagation_ms):
        msg = f"implausible propagation times: {result.propagation_ms}"
        raise DemoFailed(msg)
    return result


def _tail(demo: _Demo) -> str:
    tail = demo.operator_log_tail()
    return f"\n--- last lines of the operator log:\n{tail}" if tail else ""


def main() -> int:
    """Run the demo on stdout; report a failure on stderr with a non-zero exit."""
    try:
        result = run(sys.stdout)
    except DemoFailed as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    timings = result.propagation_ms
    print(
        f"\nDone: {len(timings)} VIP moves reached the workload cluster in "
        f"{min(timings):.0f}-{max(timings):.0f} ms (median {statistics.median(timings):.0f} ms),\n"
        f"and a client calling db by its name followed each in a median "
        f"{statistics.median(result.client_ms):.0f} ms\nand kept working through a "
        f"{FREEZE_SECONDS} s supervisor freeze.\n"
        "To explore on your own: `make up`, then the kubectl, pod and lb commands it prints; "
        "`make down`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
