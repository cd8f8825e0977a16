"""The workload cluster's data plane: kube-proxy and CoreDNS, in network namespaces of its own.

What an application on the workload cluster does, a client here does for real: it resolves
``db.web.svc.cluster.local`` through CoreDNS, connects to the ClusterIP, kube-proxy's
nftables rules send it to the endpoint the operator wrote, and the packet arrives at the
central cluster's load-balancer VIP, where a real server answers. Three namespaces:

- **node**: the workload cluster's one node. kube-proxy (nftables mode) programs every
  Service of the cluster here, and CoreDNS serves ``cluster.local`` from the API server,
  behind a ``kube-system/kube-dns`` Service as in any cluster. A Node object names its
  addresses, so kube-proxy starts at once.
- **pod**: where a command run "as a pod" lives; its only route is the node, so all its
  traffic passes kube-proxy's rules. ``bin/pod NS -- CMD`` gives it the DNS search path of a
  pod of namespace NS (a resolv.conf bind-mounted in a mount namespace of its own).
- **lb**: the central cluster's load-balancer network, joined to the node by a veth. Every
  address in any LoadBalancer Service's ``status.loadBalancer.ingress`` on the supervisor is
  present on an interface there (its loopback, as a load balancer holds VIPs), added when it
  appears and removed when it goes (a thread watches the supervisor), so a server bound
  there answers at the VIP.
  ``bin/lb -- CMD`` runs CMD there.

Every address is from the documentation ranges (or is the workload cluster's Service range,
API data that exists only in kube-proxy's rules) and exists only inside these namespaces.
None of them has a link to the host's namespace, so nothing can leave them. kube-proxy and
CoreDNS reach the workload API server through ``harness.forward``: a listening socket made
inside the node namespace, at the API server's own address ``127.0.0.1:<port>``, whose
connections are made from the host's namespace. No route, interface or address joins them.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import yaml
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from urllib3.exceptions import HTTPError

from harness import netns
from harness.cluster import Cluster, StaticUser, _die_with_parent

log = logging.getLogger(__name__)

TESTS_DIR = Path(__file__).resolve().parents[1]
PREFIX = "sso"
NODE_NAME = "dataplane"
CLUSTER_DOMAIN = "cluster.local"

# Point-to-point links, from the top of 203.0.113.0/24 and from 2001:db8:0:fe00::/56, so that
# the rest of the documentation ranges is free for VIPs.
NODE_TO_POD = ("203.0.113.241", "2001:db8:0:fe01::1")
POD_ADDRESS = ("203.0.113.242", "2001:db8:0:fe01::2")
NODE_TO_LB = ("203.0.113.245", "2001:db8:0:fe02::1")
LB_ADDRESS = ("203.0.113.246", "2001:db8:0:fe02::2")
POD_NETWORKS = ("203.0.113.240/30", "2001:db8:0:fe01::/64")

# What the data plane needs from the machine, with the Debian package that provides it.
PROGRAMS = {
    "ip": "iproute2",
    "nft": "nftables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "psql": "postgresql-client",
}
INSTALL_HINT = "`make packages` installs them (tests/tools/debian/install.sh, as root)"


class DataPlaneUnavailable(RuntimeError):
    """The machine lacks something the data plane needs; the message names it and the fix."""


def postgres_bin_dir() -> Path | None:
    """Where Debian's PostgreSQL server binaries are (the newest major version), if anywhere."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def missing_requirements(
    *, euid: int, which: Callable[[str], str | None], postgres: Path | None
) -> list[str]:
    """What a machine lacks for the data plane, one line each, saying how to get it.

    ``which`` finds a program as ``shutil.which`` does; ``postgres`` is where the PostgreSQL
    server's binaries are, if anywhere.
    """
    problems = []
    if euid != 0:
        problems.append(
            "root: the data plane creates network namespaces, veths and nftables rules "
            "(run as root)"
        )
    packages: dict[str, list[str]] = {}
    for program, package in PROGRAMS.items():
        if which(program) is None:
            packages.setdefault(package, []).append(program)
    if postgres is None:
        packages.setdefault("postgresql", []).append("postgres (in /usr/lib/postgresql/*/bin)")
    problems += [
        f"{', '.join(programs)}: Debian package {package}" for package, programs in packages.items()
    ]
    if packages:
        problems.append(INSTALL_HINT)
    if not Path("/proc/self/ns/net").exists():
        problems.append("network namespaces: this kernel has none (CONFIG_NET_NS)")
    return problems


def check_requirements() -> None:
    """Raise DataPlaneUnavailable naming everything this machine lacks, and how to get it."""
    problems = missing_requirements(
        euid=os.geteuid(), which=shutil.which, postgres=postgres_bin_dir()
    )
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        msg = f"the data plane cannot run here; missing:\n{lines}"
        raise DataPlaneUnavailable(msg)


def owner_alive(name: str) -> bool:
    """Whether the process that made namespace ``name`` (its pid is in the name) still runs."""
    parts = name.split("-")
    if len(parts) < 3 or parts[0] != PREFIX or not parts[1].isdigit():
        return True  # not ours: never touched
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    return True


def remove_orphans() -> list[str]:
    """Delete namespaces left by data planes whose process died without cleaning up.

    Processes die with their harness (parent-death signal), but a namespace is a mount
    under /run/netns and outlives it. Namespaces of live owners are never touched, so
    concurrent runs on the same machine leave each other alone.
    """
    removed = []
    for name in netns.names():
        if name.startswith(f"{PREFIX}-") and not owner_alive(name):
            with contextlib.suppress(RuntimeError):
                netns.delete(name)
                removed.append(name)
    return removed


def _family(address: str) -> int:
    return ipaddress.ip_address(address).version


def _host_prefix(address: str) -> str:
    return f"{address}/32" if _family(address) == 4 else f"{address}/128"


def socket_in(
    name: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
) -> socket.socket:
    """A socket that lives in network namespace ``name``."""
    with netns.entered(name):
        return socket.socket(family, kind)


def listening(name: str, address: str, port: int) -> bool:
    """Whether a TCP socket in namespace ``name`` listens on ``address``:``port``.

    Read from the namespace's /proc/net/tcp, so it works for an address that is not (yet)
    on any interface, where connecting to find out would fail.
    """
    ip = ipaddress.ip_address(address)
    table = "tcp" if ip.version == 4 else "tcp6"
    # The kernel prints each 32-bit word of the address in host (little-endian) order.
    packed = ip.packed
    words = [packed[i : i + 4][::-1].hex().upper() for i in range(0, len(packed), 4)]
    wanted = f"{''.join(words)}:{port:04X}"
    with netns.entered(name):
        text = Path("/proc/thread-self/net", table).read_text()
    listen = "0A"
    return any(
        fields[1] == wanted and fields[3] == listen
        for fields in (line.split() for line in text.splitlines()[1:])
    )


def http_get(name: str, port: int, path: str, *, timeout: float = 2.0) -> tuple[int, str]:
    """GET http://127.0.0.1:``port````path`` inside namespace ``name``; status and body."""
    sock = socket_in(name)
    sock.settimeout(timeout)
    try:
        sock.connect(("127.0.0.1", port))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.sock = sock
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        sock.close()


# --- the load-balancer network -----------------------------------------------------------------


def _key(service: Any) -> tuple[str, str]:
    return (str(service.metadata.namespace), str(service.metadata.name))


def _ingress_ips(service: Any) -> set[str]:
    balancer = service.status.load_balancer if service.status else None
    return {i.ip for i in (balancer.ingress if balancer else None) or [] if i.ip}


class LoadBalancerNetwork:
    """Keeps the lb namespace's loopback holding exactly the supervisor's VIPs.

    A thread lists and watches every Service of the supervisor, as a load balancer's data
    plane would follow its control plane, plus the static addresses a test asks for (the
    targets of ``hostname`` and ``addresses`` sources, which no Service announces).
    ``history`` records when each address came and went, for the benchmark.
    """

    def __init__(self, api_client: k8s.ApiClient, *, netns_name: str) -> None:
        self._api = k8s.CoreV1Api(api_client)
        self._netns = netns_name
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._by_service: dict[tuple[str, str], set[str]] = {}
        self._static: set[str] = set()
        self._present: set[str] = set()
        self._watch: k8s_watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name="lb-network", daemon=True)
        self.synced = threading.Event()
        self.history: list[tuple[float, str, str]] = []  # (monotonic, "add"|"del", address)

    def start(self) -> LoadBalancerNetwork:
        """Start following the supervisor."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (the addresses stay until the namespace goes)."""
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=10)

    @property
    def addresses(self) -> set[str]:
        """The addresses on the interface now."""
        with self._lock:
            return set(self._present)

    def add_static(self, *addresses: str) -> None:
        """Put addresses on the network that no Service announces."""
        with self._lock:
            self._static.update(addresses)
            self._apply()

    def remove_static(self, *addresses: str) -> None:
        """Take static addresses away again."""
        with self._lock:
            self._static.difference_update(addresses)
            self._apply()

    def wait_for(
        self, *, present: Iterable[str] = (), absent: Iterable[str] = (), timeout: float = 30.0
    ) -> None:
        """Block until the given addresses are (and are not) on the interface."""
        wanted, unwanted = set(present), set(absent)
        deadline = time.monotonic() + timeout
        with self._lock:
            while not (wanted <= self._present and not unwanted & self._present):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = (
                        f"the load-balancer network holds {sorted(self._present)}; wanted "
                        f"{sorted(wanted)} present and {sorted(unwanted)} absent"
                    )
                    raise TimeoutError(msg)
                self._lock.wait(remaining)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except (k8s.ApiException, HTTPError, OSError) as error:
                # The supervisor's API server may be frozen or restarted by a test; the
                # addresses stay as they are meanwhile, as a real load balancer's would.
                log.debug("load-balancer network watch ended: %s", error)
                self._stop.wait(0.5)

    def _follow(self) -> None:
        listing = self._api.list_service_for_all_namespaces()
        with self._lock:
            self._by_service = {_key(s): _ingress_ips(s) for s in listing.items}
            self._apply()
        self.synced.set()
        version = listing.metadata.resource_version if listing.metadata else None
        while not self._stop.is_set():
            self._watch = k8s_watch.Watch()
            for event in self._watch.stream(
                self._api.list_service_for_all_namespaces,
                resource_version=version,
                timeout_seconds=5,
            ):
                service = event["object"]
                version = service.metadata.resource_version
                key = _key(service)
                with self._lock:
                    if event["type"] == "DELETED":
                        self._by_service.pop(key, None)
                    else:
                        self._by_service[key] = _ingress_ips(service)
                    self._apply()

    def _apply(self) -> None:
        """Make the interface hold what is wanted (called with the lock held)."""
        wanted = set().union(self._static, *self._by_service.values())
        added, removed = wanted - self._present, self._present - wanted
        if not added and not removed:
            return
        # Removals first: a VIP that moved is gone before its successor answers.
        lines = [f"address del {_host_prefix(a)} dev lo" for a in sorted(removed)]
        lines += [
            f"address add {_host_prefix(a)} dev lo" + (" nodad" if _family(a) == 6 else "")
            for a in sorted(added)
        ]
        try:
            netns.ip_batch(lines, netns=self._netns)
        except RuntimeError as error:
            log.warning("could not change the load-balancer network: %s", error)
            self._present = self._read()
        else:
            self._present = (self._present - removed) | added
        now = time.monotonic()
        self.history += [(now, "del", a) for a in removed] + [(now, "add", a) for a in added]
        self._lock.notify_all()

    def _read(self) -> set[str]:
        text = netns.ip("-j", "address", "show", "dev", "lo", netns=self._netns)
        return {
            info["local"]
            for link in json.loads(text)
            for info in link.get("addr_info", [])
            if not ipaddress.ip_address(info["local"]).is_loopback
        }


# --- the data plane --------------------------------------------------------------------------


@dataclass
class Process:
    """A child process of the data plane and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 20) -> str:
        """The last lines it wrote."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class DataPlane:
    """Namespaces, kube-proxy, CoreDNS and the load-balancer network of one workload cluster."""

    workload: Cluster
    supervisor: Cluster
    directory: Path
    kube_proxy: Path
    coredns: Path
    # Where the pod and lb commands go; default ``directory / "bin"``.
    commands_dir: Path | None = None
    # The owner's pid is part of every name, so that leftovers of a dead owner can be told
    # from the namespaces of a data plane still running (see remove_orphans).
    ident: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(2)}")
    processes: dict[str, Process] = field(default_factory=dict)
    lb_network: LoadBalancerNetwork | None = None
    dns_ip: str = ""
    _clients: list[k8s.ApiClient] = field(default_factory=list)
    _made: list[str] = field(default_factory=list)

    # -- names ----------------------------------------------------------------------------

    def _name(self, role: str) -> str:
        return f"{PREFIX}-{self.ident}-{role}"

    @property
    def node(self) -> str:
        """The node namespace: kube-proxy's rules and CoreDNS."""
        return self._name("node")

    @property
    def pod(self) -> str:
        """The namespace of commands run as pods."""
        return self._name("pod")

    @property
    def lb(self) -> str:
        """The central cluster's load-balancer network."""
        return self._name("lb")

    @property
    def namespaces(self) -> tuple[str, str, str]:
        """All three, in the order they are made."""
        return (self.node, self.pod, self.lb)

    @property
    def bin_dir(self) -> Path:
        """Where the ``pod`` and ``lb`` commands are."""
        return self.commands_dir or self.directory / "bin"

    @property
    def dual_stack(self) -> bool:
        """Whether the workload cluster has an IPv6 Service range too."""
        return "," in self.workload.service_cidr

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, *, timeout: float = 60.0) -> DataPlane:
        """Make the namespaces and start everything; return once a pod resolves a Service."""
        check_requirements()
        remove_orphans()
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        try:
            self._make_network()
            self._spawn(
                "forwarder",
                [
                    sys.executable,
                    "-m",
                    "harness.forward",
                    f"--netns={self.node}",
                    f"--port={self.workload.apiserver_port}",
                ],
                env={"PYTHONPATH": str(TESTS_DIR)},
                ready_line=True,
            )
            api = self._client(self.workload)
            kubeconfigs = self._identities(api)
            self._create_node(api)
            self.dns_ip = self._create_kube_dns(api)
            self._start_kube_proxy(kubeconfigs["kube-proxy"])
            self._start_coredns(kubeconfigs["coredns"])
            self.lb_network = LoadBalancerNetwork(
                self._client(self.supervisor), netns_name=self.lb
            ).start()
            self._write_commands()
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process and remove the namespaces, the commands and the state."""
        if self.lb_network is not None:
            self.lb_network.stop()
        for process in reversed(list(self.processes.values())):
            _terminate(process.popen)
        for api in self._clients:
            api.close()
        self._clients.clear()
        for name in reversed(self._made):
            with contextlib.suppress(RuntimeError):
                netns.delete(name)
        self._made.clear()
        shutil.rmtree(self.bin_dir, ignore_errors=True)
        shutil.rmtree(self.directory / "resolv", ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What is still there after :meth:`stop`: should be nothing."""
        found = [f"network namespace {n}" for n in self.namespaces if netns.exists(n)]
        found += [f"/etc/netns/{n}" for n in self.namespaces if Path("/etc/netns", n).exists()]
        found += [
            f"process {p.name} ({p.popen.pid})"
            for p in self.processes.values()
            if p.popen.poll() is None
        ]
        found += [f"file {p}" for p in (self.bin_dir, self.directory / "resolv") if p.exists()]
        return found

    def pids(self) -> dict[str, int]:
        """The running processes of the data plane."""
        return {n: p.popen.pid for n, p in self.processes.items() if p.popen.poll() is None}

    # -- running commands -----------------------------------------------------------------

    def pod_command(self, namespace: str, *command: str) -> list[str]:
        """The argv that runs ``command`` as a pod of ``namespace`` would run."""
        return [str(self.bin_dir / "pod"), namespace, "--", *command]

    def lb_command(self, *command: str) -> list[str]:
        """The argv that runs ``command`` on the load-balancer network."""
        return [str(self.bin_dir / "lb"), "--", *command]

    def run_in_pod(
        self, namespace: str, *command: str, timeout: float = 30.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` as a pod of ``namespace``; its status and output."""
        return subprocess.run(
            self.pod_command(namespace, *command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            stdin=subprocess.DEVNULL,
        )

    def spawn_on_lb(
        self,
        name: str,
        command: list[str],
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        ready_line: bool = False,
    ) -> Process:
        """Start a long-running process (a server) on the load-balancer network.

        With ``ready_line``, wait until it prints ``ready``.
        """
        prefix = ["nsenter", f"--net={netns.NETNS_DIR / self.lb}"]
        if user is not None:
            import pwd  # noqa: PLC0415

            entry = pwd.getpwnam(user)
            prefix += [f"--setuid={entry.pw_uid}", f"--setgid={entry.pw_gid}"]
        return self._spawn(name, [*prefix, "--", *command], env=env, ready_line=ready_line)

    def stop_process(self, process: Process) -> None:
        """Stop one process started with :meth:`spawn_on_lb`."""
        _terminate(process.popen)
        if self.processes.get(process.name) is process:
            del self.processes[process.name]

    # -- internals: the network -------------------------------------------------------------

    def _make_network(self) -> None:
        for name in self.namespaces:
            netns.add(name)
            self._made.append(name)
        node, pod, lb = self.namespaces
        v6 = self.dual_stack
        netns.ip(
            "link",
            "add",
            "to-pod",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            pod,
            netns=node,
        )
        netns.ip(
            "link", "add", "to-lb", "type", "veth", "peer", "name", "eth0", "netns", lb, netns=node
        )
        lines: dict[str, list[str]] = {node: [], pod: [], lb: []}
        for family in (0, 1) if v6 else (0,):
            plen = "/30" if family == 0 else "/64"
            extra = "" if family == 0 else " nodad"
            lines[node] += [
                f"address add {NODE_TO_POD[family]}{plen} dev to-pod{extra}",
                f"address add {NODE_TO_LB[family]}{plen} dev to-lb{extra}",
            ]
            lines[pod].append(f"address add {POD_ADDRESS[family]}{plen} dev eth0{extra}")
            lines[lb].append(f"address add {LB_ADDRESS[family]}{plen} dev eth0{extra}")
        for name, devices in ((node, ("to-pod", "to-lb")), (pod, ("eth0",)), (lb, ("eth0",))):
            lines[name] += [f"link set {d} up" for d in devices]
        for family in (0, 1) if v6 else (0,):
            # The pod reaches everything through the node; the node sends what is not its
            # own to the load-balancer network, which sends it back (its only link) but
            # never gets to: its forward hook rejects everything (below).
            lines[pod].append(f"route add default via {NODE_TO_POD[family]}")
            lines[node].append(f"route add default via {LB_ADDRESS[family]}")
            lines[lb].append(f"route add default via {NODE_TO_LB[family]}")
        for name in self.namespaces:
            netns.ip_batch(lines[name], netns=name)
        # A packet for an address that is nowhere on the load-balancer network (a VIP that
        # went away) is answered "host unreachable", as a router would, and routed no
        # further. The answer comes from a rule in the forward hook, because the kernel's
        # own for unroutable packets is limited to one a second per client, by a setting
        # only the host's namespace has; this one's limit is switched off here, so every
        # client attempt gets its answer.
        nft = (
            "table inet lb {\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter; policy drop;\n"
            "    reject with icmpx host-unreachable\n"
            "  }\n"
            "}\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", lb, "nft", "-f", "-"], input=nft, text=True, check=True
        )
        for name in (node, lb):
            netns.sysctl(name, "net.ipv4.ip_forward", "1")
        netns.sysctl(lb, "net.ipv4.ip_nonlocal_bind", "1")
        netns.sysctl(lb, "net.ipv4.icmp_ratelimit", "0")
        if v6:
            for name in (node, lb):
                netns.sysctl(name, "net.ipv6.conf.all.forwarding", "1")
            netns.sysctl(lb, "net.ipv6.ip_nonlocal_bind", "1")
            netns.sysctl(lb, "net.ipv6.icmp.ratelimit", "0")

    # -- internals: identities and objects ------------------------------------------------

    def _client(self, cluster: Cluster) -> k8s.ApiClient:
        api = cluster.api_client()
        self._clients.append(api)
        return api

    def _identities(self, api: k8s.ApiClient) -> dict[str, Path]:
        """ServiceAccounts for kube-proxy and CoreDNS with the roles they have in kubeadm."""
        core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
        _ensure(
            rbac.create_cluster_role,
            {
                "metadata": {"name": "system:coredns"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
        )
        kubeconfigs = {}
        for account, role in (("kube-proxy", "system:node-proxier"), ("coredns", "system:coredns")):
            _ensure(
                core.create_namespaced_service_account,
                "kube-system",
                {"metadata": {"name": account}},
            )
            _ensure(
                rbac.create_cluster_role_binding,
                {
                    "metadata": {"name": f"dataplane:{account}"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": role,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": account, "namespace": "kube-system"}
                    ],
                },
            )
            # A token Secret rather than a TokenRequest: it does not expire, and `make up`
            # may keep the data plane running for days.
            _ensure(
                core.create_namespaced_secret,
                "kube-system",
                {
                    "metadata": {
                        "name": f"{account}-token",
                        "annotations": {"kubernetes.io/service-account.name": account},
                    },
                    "type": "kubernetes.io/service-account-token",
                },
            )
            token = _wait_token(core, f"{account}-token")
            path = self.directory / f"{account}.kubeconfig"
            path.write_text(yaml.safe_dump(self.workload.kubeconfig(StaticUser(account, token))))
            path.chmod(0o600)
            kubeconfigs[account] = path
        return kubeconfigs

    def _create_node(self, api: k8s.ApiClient) -> None:
        core = k8s.CoreV1Api(api)
        addresses = [{"type": "InternalIP", "address": NODE_TO_POD[0]}]
        if self.dual_stack:
            addresses.append({"type": "InternalIP", "address": NODE_TO_POD[1]})
        addresses.append({"type": "Hostname", "address": NODE_NAME})
        _ensure(
            core.create_node,
            {
                "metadata": {
                    "name": NODE_NAME,
                    "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux"},
                },
                "spec": {"podCIDRs": list(POD_NETWORKS if self.dual_stack else POD_NETWORKS[:1])},
            },
        )
        core.patch_node_status(
            NODE_NAME,
            {
                "status": {
                    "addresses": addresses,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "DataPlane",
                            "message": "kube-proxy runs in a network namespace",
                        }
                    ],
                }
            },
        )

    def _create_kube_dns(self, api: k8s.ApiClient) -> str:
        """The kube-dns Service, with CoreDNS's address in its EndpointSlices; its ClusterIP."""
        core, discovery = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)
        spec: dict[str, Any] = {
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ]
        }
        if self.dual_stack:
            spec["ipFamilyPolicy"] = "PreferDualStack"
        _ensure(
            core.create_namespaced_service,
            "kube-system",
            {"metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}}, "spec": spec},
        )
        families = [("IPv4", NODE_TO_POD[0])] + (
            [("IPv6", NODE_TO_POD[1])] if self.dual_stack else []
        )
        for address_type, address in families:
            _ensure(
                discovery.create_namespaced_endpoint_slice,
                "kube-system",
                {
                    "metadata": {
                        "name": f"kube-dns-{address_type.lower()}",
                        "labels": {
                            "kubernetes.io/service-name": "kube-dns",
                            "endpointslice.kubernetes.io/managed-by": "dataplane.harness",
                        },
                    },
                    "addressType": address_type,
                    "endpoints": [
                        {
                            "addresses": [address],
                            "conditions": {"ready": True},
                            "nodeName": NODE_NAME,
                        }
                    ],
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    ],
                },
            )
        created = core.read_namespaced_service("kube-dns", "kube-system").spec
        assert created is not None
        return str(created.cluster_ip)

    # -- internals: processes ---------------------------------------------------------------

    def _spawn(
        self,
        name: str,
        command: list[str],
        *,
        env: dict[str, str] | None = None,
        ready_line: bool = False,
    ) -> Process:
        log_path = self.directory / f"{name}.log"
        with log_path.open("ab") as log_file:
            popen = subprocess.Popen(
                command,
                stdout=subprocess.PIPE if ready_line else log_file,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                process_group=0,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )
        process = Process(name=name, popen=popen, log_path=log_path)
        self.processes[name] = process
        if ready_line:
            assert popen.stdout is not None
            line = popen.stdout.readline()
            if line.strip() != b"ready":
                msg = f"{name} did not start:\n{process.tail()}"
                raise RuntimeError(msg)
        return process

    def _in_node(self, *command: str) -> list[str]:
        # `ip netns exec` also mounts a /sys of the namespace, which kube-proxy reads.
        return ["ip", "netns", "exec", self.node, *command]

    def _start_kube_proxy(self, kubeconfig: Path) -> None:
        cluster_cidrs = POD_NETWORKS if self.dual_stack else POD_NETWORKS[:1]
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "nftables",
            "hostnameOverride": NODE_NAME,
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "detectLocalMode": "ClusterCIDR",
            "clusterCIDR": ",".join(cluster_cidrs),
            "nodePortAddresses": ["primary"],
            # Zero leaves the conntrack table's size alone: it is the host's, not ours.
            "conntrack": {"maxPerCore": 0, "min": 0},
            # Not shielded from the OOM killer, as a real node's kube-proxy is: on a
            # developer's machine it is the first thing that may go.
            "oomScoreAdj": 0,
        }
        path = self.directory / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        self._spawn("kube-proxy", self._in_node(str(self.kube_proxy), f"--config={path}", "--v=2"))

    def _start_coredns(self, kubeconfig: Path) -> None:
        listen = " ".join(NODE_TO_POD if self.dual_stack else NODE_TO_POD[:1])
        corefile = self.directory / "Corefile"
        corefile.write_text(
            f"{CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
            f"    bind {listen}\n"
            "    ready 127.0.0.1:8181\n"
            "    errors\n"
            f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
            f"        kubeconfig {kubeconfig}\n"
            "        fallthrough in-addr.arpa ip6.arpa\n"
            "    }\n"
            "}\n"
        )
        self._spawn("coredns", self._in_node(str(self.coredns), "-conf", str(corefile)))

    def _write_commands(self) -> None:
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        resolv = self.directory / "resolv"
        pod = self.bin_dir / "pod"
        pod.write_text(
            POD_SCRIPT.replace("@NETNS@", str(netns.NETNS_DIR / self.pod))
            .replace("@RESOLV@", str(resolv))
            .replace("@DNS@", self.dns_ip)
            .replace("@DOMAIN@", CLUSTER_DOMAIN)
        )
        lb = self.bin_dir / "lb"
        lb.write_text(LB_SCRIPT.replace("@NETNS@", str(netns.NETNS_DIR / self.lb)))
        for script in (pod, lb):
            script.chmod(0o755)

    def _check_alive(self) -> None:
        for process in self.processes.values():
            if process.popen.poll() is not None:
                msg = f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                raise RuntimeError(msg)

    def _wait_ready(self, deadline: float) -> None:
        """kube-proxy synced, CoreDNS synced, and a pod resolving a name through kube-dns."""
        assert self.lb_network is not None
        checks: dict[str, Callable[[], bool]] = {
            "kube-proxy's health": lambda: http_get(self.node, 10256, "/healthz")[0] == 200,
            "CoreDNS's readiness": lambda: http_get(self.node, 8181, "/ready")[0] == 200,
            "the load-balancer network's first list": self.lb_network.synced.is_set,
            "kubernetes.default resolved by a pod": lambda: (
                self.resolve(f"kubernetes.default.svc.{CLUSTER_DOMAIN}") != []
            ),
        }
        for what, check in checks.items():
            while True:
                self._check_alive()
                with contextlib.suppress(
                    OSError, http.client.HTTPException, dns.exception.DNSException
                ):
                    if check():
                        break
                if time.monotonic() > deadline:
                    tails = "\n".join(f"--- {p.name}\n{p.tail(8)}" for p in self.processes.values())
                    msg = f"the data plane did not become ready: waiting for {what}\n{tails}"
                    raise TimeoutError(msg)
                time.sleep(0.1)

    def resolve(self, name: str, rdtype: str = "A") -> list[str]:
        """Ask CoreDNS through the kube-dns ClusterIP, from the pod namespace."""
        query = dns.message.make_query(name, rdtype)
        sock = socket_in(self.pod, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            answer = dns.query.udp(query, self.dns_ip, timeout=2, sock=sock)
        finally:
            sock.close()
        wanted = dns.rdatatype.from_text(rdtype)
        return sorted(str(r) for rrset in answer.answer if rrset.rdtype == wanted for r in rrset)

    def describe(self) -> dict[str, Any]:
        """What `make up` records and prints about the data plane."""
        return {
            "namespaces": {"node": self.node, "pod": self.pod, "lb": self.lb},
            "dns": self.dns_ip,
            "commands": {"pod": str(self.bin_dir / "pod"), "lb": str(self.bin_dir / "lb")},
            "pids": self.pids(),
        }


def _terminate(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGCONT)
    popen.terminate()
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()
    if popen.stdout is not None:
        popen.stdout.close()


def _ensure(create: Any, *args: Any) -> None:
    """Create an object; one that already exists (a data plane started again) is fine."""
    try:
        create(*args)
    except k8s.ApiException as error:
        if error.status != 409:
            raise


def _wait_token(core: k8s.CoreV1Api, secret: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        data = core.read_namespaced_secret(secret, "kube-system").data or {}
        if data.get("token"):
            return base64.b64decode(data["token"]).decode()
        if time.monotonic() > deadline:
            msg = f"the token controller did not fill kube-system/{secret}"
            raise TimeoutError(msg)
        time.sleep(0.1)


# The commands, written into the data plane's bin/ directory with its names filled in. POSIX
# sh, so that they start in milliseconds and need nothing but util-linux.
POD_SCRIPT = r"""#!/bin/sh
# pod NAMESPACE -- COMMAND [ARG...]: run COMMAND as a pod of NAMESPACE on the workload
# cluster would: in the data plane's pod network namespace, whose traffic to ClusterIPs goes
# through kube-proxy's rules, resolving names with CoreDNS and the search path of NAMESPACE.
# Exits with COMMAND's status. Written by the test harness; removed when the data plane stops.
set -eu
if [ $# -lt 3 ] || [ "$2" != "--" ]; then
  echo "usage: $0 NAMESPACE -- COMMAND [ARG...]" >&2
  exit 2
fi
namespace=$1
shift 2
case $namespace in
  "" | -* | *[!a-z0-9-]*)
    echo "$0: '$namespace' is not a Kubernetes namespace name" >&2
    exit 2 ;;
esac
if [ ! -e '@NETNS@' ]; then
  echo "$0: the data plane is not running (\`make up\` starts it)" >&2
  exit 1
fi
resolv='@RESOLV@'/$namespace.conf
if [ ! -e "$resolv" ]; then
  mkdir -p '@RESOLV@'
  printf 'search %s.svc.@DOMAIN@ svc.@DOMAIN@ @DOMAIN@\nnameserver @DNS@\noptions ndots:5\n' \
    "$namespace" >"$resolv.$$"
  mv "$resolv.$$" "$resolv"
fi
# A mount namespace of its own, so that the pod's resolv.conf is seen by COMMAND alone.
exec unshare --mount --propagation private -- sh -c \
  'mount --bind "$0" /etc/resolv.conf && net=$1 && shift && exec nsenter --net="$net" -- "$@"' \
  "$resolv" '@NETNS@' "$@"
"""

LB_SCRIPT = r"""#!/bin/sh
# lb -- COMMAND [ARG...]: run COMMAND on the central cluster's load-balancer network, where
# every LoadBalancer VIP of the supervisor is an address. Exits with COMMAND's status.
# Written by the test harness; removed when the data plane stops.
set -eu
if [ $# -lt 2 ] || [ "$1" != "--" ]; then
  echo "usage: $0 -- COMMAND [ARG...]" >&2
  exit 2
fi
shift
if [ ! -e '@NETNS@' ]; then
  echo "$0: the data plane is not running (\`make up\` starts it)" >&2
  exit 1
fi
exec nsenter --net='@NETNS@' -- "$@"
"""
