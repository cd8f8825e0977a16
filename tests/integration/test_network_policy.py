"""The chart's NetworkPolicy lets through what the operator really connects to, and no more.

No network plugin enforces NetworkPolicies here, so the policy is checked against a run:
the operator runs with a RemoteCluster that signs in to the supervisor, an import from it,
a hostname import resolved by the loopback DNS server, and a scrape of its metrics and
probes. Every TCP and UDP destination it connects to is recorded twice over:

- by the kernel: the sockets of the operator's process (its file descriptors' inodes) in
  ``/proc/<pid>/net/{tcp,tcp6,udp,udp6}``, sampled while it runs;
- by the process itself: an audit hook (``socket.connect``, ``socket.sendto``) that a
  ``sitecustomize`` of the test's installs, which sees even a DNS query's socket, open for
  a millisecond, that sampling would miss. Whatever the kernel showed, the hook saw too.

Each destination is then judged by the policy that ``helm template`` renders from values
describing the test plane (loopback addresses, the servers' ports), with a small evaluator
of ipBlock and ports rules: every one is allowed, and each is refused once the value that
allows it is left out, as a central cluster missing from the values would be. The rendered
policy is also accepted by the workload cluster's API server (a dry run).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client as k8s

from deploykit import CHART, Helm, find, write_values
from dnsserver import LoopbackDNSServer
from harness.cluster import Cluster
from harness.helm import ensure_helm
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from harness.signin import SignInService, SsoUser
from kit import Kit
from support import eventually

# Installed in the operator's process ahead of everything else: one JSON line per
# connect() or sendto() of an IPv4 or IPv6 socket, with the protocol and the destination.
SITECUSTOMIZE = """
import json, os, socket, sys, threading

_path = os.environ.get("SSO_CONNECTIONS_LOG")
if _path:
    _lock = threading.Lock()
    _out = open(_path, "a", buffering=1)

    def _hook(event, args):
        if event not in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            return
        try:
            sock, address = args[0], args[1]
            if sock.family not in (socket.AF_INET, socket.AF_INET6) or address is None:
                return
            protocol = "UDP" if sock.type == socket.SOCK_DGRAM else "TCP"
            line = json.dumps({"protocol": protocol, "host": address[0], "port": address[1]})
            with _lock:
                _out.write(line + "\\n")
        except Exception:
            pass

    sys.addaudithook(_hook)
"""

_TCP_LISTEN = "0A"
# Sampling: often enough to see every pooled connection and watch, bounded in count.
_SAMPLE_INTERVAL = 0.02
_MAX_SAMPLES = 30_000


@dataclass(frozen=True, order=True)
class Destination:
    """Where a packet of the operator's goes: a protocol, an address and a port."""

    protocol: str  # TCP or UDP
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.protocol} {self.address}:{self.port}"


def _address(text: str) -> str:
    """An address as a NetworkPolicy sees it: an IPv4-mapped IPv6 one as the IPv4 address."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _proc_address(text: str) -> tuple[str, int]:
    """``0100007F:1F90`` of /proc/net/tcp: each 32-bit word of the address in host order."""
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return _address(str(ipaddress.ip_address(raw))), int(port, 16)


@dataclass
class SocketSampler:
    """The kernel's view of one process's sockets, sampled from /proc in a thread."""

    pid: int
    listening: set[int] = field(default_factory=set)  # TCP ports it listens on
    accepted: set[int] = field(default_factory=set)  # local ports of connections to it
    destinations: set[Destination] = field(default_factory=set)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SocketSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set() and self.samples < _MAX_SAMPLES:
            with contextlib.suppress(OSError):  # the process ended between two reads
                self.sample()
            self.samples += 1
            self._stop.wait(_SAMPLE_INTERVAL)

    def _inodes(self) -> set[str]:
        found = set()
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                found.add(target[len("socket:[") : -1])
        return found

    def sample(self) -> None:
        """Read the process's sockets once, as ``ss -tunp`` would show them."""
        inodes = self._inodes()
        connections: list[tuple[str, int, Destination]] = []
        for table in ("tcp", "tcp6", "udp", "udp6"):
            lines = Path(f"/proc/{self.pid}/net/{table}").read_text().splitlines()[1:]
            for line in lines:
                fields = line.split()
                if fields[9] not in inodes:
                    continue  # another process's socket in the same network namespace
                _, local_port = _proc_address(fields[1])
                remote, remote_port = _proc_address(fields[2])
                if table.startswith("tcp") and fields[3] == _TCP_LISTEN:
                    self.listening.add(local_port)
                elif remote_port:  # connected; an unconnected UDP socket names no peer
                    protocol = "TCP" if table.startswith("tcp") else "UDP"
                    connections.append(
                        (protocol, local_port, Destination(protocol, remote, remote_port))
                    )
        for protocol, local_port, destination in connections:
            if protocol == "TCP" and local_port in self.listening:
                self.accepted.add(local_port)  # a scrape or a probe, coming in
            else:
                self.destinations.add(destination)


def hooked_destinations(path: Path) -> set[Destination]:
    """What the audit hook in the operator's process recorded."""
    found = set()
    for line in path.read_text().splitlines():
        event = json.loads(line)
        found.add(Destination(event["protocol"], _address(event["host"]), int(event["port"])))
    return found


# -- a NetworkPolicy's rules, for addresses outside the cluster's Pods --------------------


def _peer_allows(peer: Mapping[str, Any], address: str) -> bool:
    """Whether one peer of a rule takes in ``address``, which is no Pod's.

    A namespaceSelector or podSelector selects Pods only, so only an ipBlock can match.
    """
    block = peer.get("ipBlock")
    if block is None:
        return False
    ip = ipaddress.ip_address(address)
    if ip not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))


def _port_allows(entry: Mapping[str, Any], protocol: str, port: int) -> bool:
    """Whether one entry of a rule's ports takes in ``port`` of ``protocol``."""
    if entry.get("protocol", "TCP") != protocol:
        return False
    if "port" not in entry:
        return True  # every port of the protocol
    first = entry["port"]
    if not isinstance(first, int):
        return False  # a named port is a Pod's; no destination here is a Pod
    last = entry.get("endPort", first)
    return bool(first <= port <= last)


def allows_egress(policy: Mapping[str, Any], destination: Destination) -> bool:
    """Whether the NetworkPolicy lets its Pods send to ``destination``."""
    spec = policy["spec"]
    if "Egress" not in spec.get("policyTypes", []):
        return True
    for rule in spec.get("egress") or []:
        peers, ports = rule.get("to") or [], rule.get("ports") or []
        if peers and not any(_peer_allows(p, destination.address) for p in peers):
            continue
        if ports and not any(
            _port_allows(e, destination.protocol, destination.port) for e in ports
        ):
            continue
        return True
    return False


def allows_ingress_port(policy: Mapping[str, Any], port: int) -> bool:
    """Whether some peer may reach TCP ``port`` of its Pods (who, selectors say)."""
    spec = policy["spec"]
    if "Ingress" not in spec.get("policyTypes", []):
        return True
    for rule in spec.get("ingress") or []:
        ports = rule.get("ports") or []
        if not ports or any(_port_allows(e, "TCP", port) for e in ports):
            return True
    return False


@pytest.mark.parametrize(
    ("rule", "destination", "allowed"),
    [
        ({"to": [{"ipBlock": {"cidr": "127.0.0.0/8"}}]}, Destination("UDP", "127.0.0.1", 53), True),
        (
            {"to": [{"ipBlock": {"cidr": "127.0.0.0/8", "except": ["127.0.0.1/32"]}}]},
            Destination("TCP", "127.0.0.1", 443),
            False,
        ),
        ({"ports": [{"port": 443}]}, Destination("TCP", "192.0.2.1", 443), True),
        ({"ports": [{"port": 443}]}, Destination("UDP", "192.0.2.1", 443), False),
        ({"ports": [{"port": 6440, "endPort": 6450}]}, Destination("TCP", "192.0.2.1", 6443), True),
        ({"ports": [{"port": "https"}]}, Destination("TCP", "192.0.2.1", 443), False),
        (
            {"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]},
            Destination("UDP", "192.0.2.53", 53),
            False,
        ),
        (
            {"to": [{"ipBlock": {"cidr": "2001:db8::/64"}}], "ports": [{"port": 6443}]},
            Destination("TCP", "2001:db8::10", 6443),
            True,
        ),
    ],
)
def test_the_evaluator_reads_rules_as_network_plugins_do(
    rule: dict[str, Any], destination: Destination, allowed: bool
) -> None:
    policy = {"spec": {"policyTypes": ["Egress"], "egress": [rule]}}
    assert allows_egress(policy, destination) is allowed
    assert not allows_egress({"spec": {"policyTypes": ["Egress"]}}, destination)


# -- the chart ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(ensure_helm(), home=tmp_path_factory.mktemp("helm"))


def _rendered(helm: Helm, values: dict[str, Any], path: Path, namespace: str = "sso") -> Any:
    objects = helm.template("-f", str(write_values(path, values)), namespace=namespace)
    return find(objects, "NetworkPolicy")


API_SERVER = [{"cidr": "192.0.2.10/32", "ports": [6443]}]


def test_there_is_none_unless_enabled(helm: Helm) -> None:
    assert not [o for o in helm.template() if o["kind"] == "NetworkPolicy"]


def test_enabled_it_needs_the_api_servers_endpoints(helm: Helm, tmp_path: Path) -> None:
    values = write_values(tmp_path / "values.yaml", {"networkPolicy": {"enabled": True}})
    for extra in ((), ("--skip-schema-validation",)):
        result = helm.run("template", "t", str(CHART), "-f", str(values), *extra, check=False)
        assert result.returncode != 0
        assert "apiServer" in result.stderr, result.stderr
    # The schema checks each destination, as it checks the address policy's ranges.
    enabled = "networkPolicy.enabled=true,networkPolicy.egress.apiServer[0].cidr=192.0.2.10/32,"
    refused = {
        "networkPolicy.egress.apiServer[0].ports={0}": "/networkPolicy/egress/apiServer/0/ports/0",
        "networkPolicy.egress.apiServer[0].ports={6443},"
        "networkPolicy.egress.remoteClusters[0].cidr=banana,"
        "networkPolicy.egress.remoteClusters[0].ports={443}": "/remoteClusters/0/cidr",
        "networkPolicy.egress.apiServer[0].ports={6443},"
        "networkPolicy.egress.remoteClusters[0].cidr=192.0.2.0/28": "/remoteClusters/0",
        "networkPolicy.egress.apiServer[0].ports={6443},"
        "networkPolicy.egress.dns.podSelector.app=x": "/networkPolicy/egress/dns/podSelector",
    }
    for setting, complaint in refused.items():
        result = helm.run("template", "t", str(CHART), "--set", enabled + setting, check=False)
        assert result.returncode != 0, setting
        assert complaint in result.stderr, result.stderr


def test_its_rules_follow_the_values(helm: Helm, tmp_path: Path) -> None:
    policy = _rendered(
        helm,
        {
            "operator": {"metricsPort": 9100, "healthPort": 8081},
            "networkPolicy": {
                "enabled": True,
                "egress": {
                    "apiServer": API_SERVER,
                    "remoteClusters": [{"cidr": "198.51.100.0/28", "ports": [6443, 443]}],
                },
            },
        },
        tmp_path / "values.yaml",
    )
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "t"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    # The cluster DNS by default: kube-dns's pods in kube-system, over UDP and TCP.
    dns = [r for r in spec["egress"] if "namespaceSelector" in r["to"][0]]
    assert dns == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    allowed = {
        Destination("TCP", "192.0.2.10", 6443),
        Destination("TCP", "198.51.100.1", 6443),
        Destination("TCP", "198.51.100.14", 443),
    }
    refused = {
        Destination("TCP", "10.96.0.1", 443),  # the kubernetes Service's ClusterIP
        Destination("TCP", "192.0.2.10", 443),
        Destination("TCP", "198.51.100.16", 6443),
        Destination("UDP", "198.51.100.1", 443),
        Destination("UDP", "203.0.113.53", 53),
    }
    assert {d for d in allowed | refused if allows_egress(policy, d)} == allowed
    # Scrapes and probes on the operator's ports, from the peers of the values.
    assert [r["ports"] for r in spec["ingress"]] == [
        [{"protocol": "TCP", "port": 9100}, {"protocol": "TCP", "port": 8081}]
    ]
    assert spec["ingress"][0]["from"][0]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "prometheus"}
    }

    # No DNS, nobody in: neither rule is there.
    policy = _rendered(
        helm,
        {
            "networkPolicy": {
                "enabled": True,
                "egress": {"apiServer": API_SERVER, "dns": {"enabled": False}},
                "ingress": {"from": []},
            }
        },
        tmp_path / "closed.yaml",
    )
    assert policy["spec"]["ingress"] == []
    assert not allows_ingress_port(policy, 9090)
    assert [r["to"] for r in policy["spec"]["egress"]] == [[{"ipBlock": {"cidr": "192.0.2.10/32"}}]]


# -- a run ----------------------------------------------------------------------------------


@dataclass
class Run:
    """What one run of the operator connected to, and what it served."""

    operator: OperatorProcess
    kernel: SocketSampler
    hooked: set[Destination]
    workload_api_server: Destination
    supervisor_api_server: Destination
    sign_in: Destination
    nameserver: Destination


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def _delete_secret(kit: Kit, name: str) -> None:
    try:
        kit.core.delete_namespaced_secret(name, OPERATOR_NAMESPACE)
    except k8s.ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def run(
    crds: None,
    namespace: str,
    supervisor: Cluster,
    supervisor_api: k8s.ApiClient,
    workload: Cluster,
    workload_api: k8s.ApiClient,
    operator: OperatorProcess,
    dns_server: LoopbackDNSServer,
    signin: SignInService,
    sso_user: SsoUser,
    tmp_path: Path,
) -> Iterator[Run]:
    """One run of an operator of its own, watched from the kernel and from within.

    The session's operator is stopped meanwhile, so that it does no work of this run's.
    """
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    connections = tmp_path / "connections.jsonl"
    connections.touch()
    process = OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / "workload.kubeconfig"),
        log_path=tmp_path / "operator.log",
        extra_args=[f"--namespace={namespace}", f"--dns-servers={dns_server.nameserver}"],
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
            "SSO_CONNECTIONS_LOG": str(connections),
        },
    )
    kit = Kit(
        namespace=namespace,
        supervisor=supervisor,
        supervisor_api=supervisor_api,
        workload_api=workload_api,
        operator=process,
    )
    supervisor.bind_sso_user(sso_user.name, namespace)
    hostname = f"web.{namespace}.example.test"
    dns_server.set(hostname, ["203.0.113.60"], ttl=60)
    operator.stop()
    try:
        process.start(wait=False)
        assert process.process is not None
        with SocketSampler(process.process.pid) as kernel:
            process.wait_ready()
            cluster = kit.sso_remote_cluster(signin, sso_user)
            vip = kit.load_balancer("db")
            kit.create_import(
                "db",
                {
                    "source": {
                        "remoteService": {"cluster": cluster, "namespace": namespace, "name": "db"}
                    }
                },
            )
            kit.create_import("web", {"source": {"hostname": hostname}, "ports": [{"port": 80}]})
            kit.wait_addresses("db", {"IPv4": [vip]}, timeout=30)
            kit.wait_addresses("web", {"IPv4": ["203.0.113.60"]}, timeout=30)
            assert dns_server.count(hostname) > 0
            # A scrape, and the probes a kubelet would make; each answered connection lasts
            # a millisecond, so one is held open on each port until the sampler sees it.
            assert process.metrics()
            assert process.probe("/healthz")[0] == 200
            assert process.probe("/readyz")[0] == 200
            ports = {process.metrics_port, process.health_port}
            held = [socket.create_connection(("127.0.0.1", port), timeout=5) for port in ports]
            try:
                eventually(lambda: kernel.accepted >= ports)
            finally:
                for connection in held:
                    connection.close()
            # Pooled connections and watches outlive many samples; a few more are taken.
            samples = kernel.samples
            eventually(lambda: kernel.samples > samples + 5)
            process.stop()
        yield Run(
            operator=process,
            kernel=kernel,
            hooked=hooked_destinations(connections),
            workload_api_server=Destination("TCP", "127.0.0.1", workload.apiserver_port),
            supervisor_api_server=Destination("TCP", "127.0.0.1", supervisor.apiserver_port),
            sign_in=Destination("TCP", "127.0.0.1", _port(signin.url)),
            nameserver=Destination("UDP", "127.0.0.1", dns_server.port),
        )
    finally:
        process.stop()
        kit.cleanup()
        _delete_secret(kit, f"{namespace}-sso-sso")
        dns_server.remove(hostname)
        operator.start()


def _test_plane_values(run: Run) -> dict[str, Any]:
    """The NetworkPolicy values of the test plane: its servers, all on loopback."""

    def one(destination: Destination) -> dict[str, Any]:
        return {"cidr": f"{destination.address}/32", "ports": [destination.port]}

    return {
        "operator": {
            "metricsPort": run.operator.metrics_port,
            "healthPort": run.operator.health_port,
        },
        "networkPolicy": {
            "enabled": True,
            "egress": {
                "apiServer": [one(run.workload_api_server)],
                "remoteClusters": [one(run.supervisor_api_server), one(run.sign_in)],
                "dns": {"nameservers": [one(run.nameserver)]},
            },
        },
    }


def _left_out(values: dict[str, Any], path: Sequence[str], index: int) -> dict[str, Any]:
    """``values`` with entry ``index`` of the list at ``path`` under networkPolicy.egress gone."""
    changed: dict[str, Any] = json.loads(json.dumps(values))
    entries = changed["networkPolicy"]["egress"]
    for key in path[:-1]:
        entries = entries[key]
    del entries[path[-1]][index]
    return changed


def test_the_policy_allows_what_the_operator_connects_to_and_nothing_left_out(
    run: Run, helm: Helm, namespace: str, workload_api: k8s.ApiClient, tmp_path: Path
) -> None:
    observed = run.kernel.destinations | run.hooked
    print(  # the figures of this run, shown with -s
        f"{run.kernel.samples} samples; kernel: {sorted(map(str, run.kernel.destinations))}; "
        f"hook: {sorted(map(str, run.hooked))}; listening: {sorted(run.kernel.listening)}; "
        f"scraped on: {sorted(run.kernel.accepted)}"
    )
    # The run went everywhere it should have, and the hook missed nothing the kernel saw.
    expected = {run.workload_api_server, run.supervisor_api_server, run.sign_in, run.nameserver}
    assert expected <= observed, sorted(map(str, observed))
    assert run.kernel.destinations <= run.hooked, sorted(
        map(str, run.kernel.destinations - run.hooked)
    )
    assert run.kernel.listening == {run.operator.metrics_port, run.operator.health_port}

    values = _test_plane_values(run)
    policy = _rendered(helm, values, tmp_path / "values.yaml", namespace=namespace)
    refused = sorted(str(d) for d in observed if not allows_egress(policy, d))
    assert not refused, f"the NetworkPolicy would refuse {refused}"
    closed = sorted(p for p in run.kernel.listening if not allows_ingress_port(policy, p))
    assert not closed, f"the NetworkPolicy would refuse scrapes and probes on {closed}"

    # Each value allows what it names and nothing else does: left out, its server is cut off.
    covered = {
        ("apiServer",): [run.workload_api_server],
        ("remoteClusters",): [run.supervisor_api_server, run.sign_in],
        ("dns", "nameservers"): [run.nameserver],
    }
    for path, destinations in covered.items():
        for index, destination in enumerate(destinations):
            if path == ("apiServer",):
                # Required: in its place, the kubernetes Service's ClusterIP, which packets
                # never reach with that address once it was translated.
                changed = json.loads(json.dumps(values))
                changed["networkPolicy"]["egress"]["apiServer"] = [
                    {"cidr": "10.96.0.1/32", "ports": [443]}
                ]
            else:
                changed = _left_out(values, path, index)
            narrower = _rendered(helm, changed, tmp_path / "narrower.yaml", namespace=namespace)
            cut = {d for d in observed if not allows_egress(narrower, d)}
            assert cut == {destination}, (path, index, sorted(map(str, cut)))

    # The API server takes the policy as rendered.
    body = json.loads(json.dumps(policy))
    k8s.NetworkingV1Api(workload_api).create_namespaced_network_policy(
        namespace, body, dry_run="All"
    )
