"""Malformed and hostile input: each case is refused at admission by the CRD schema, or
reported in a condition whose message says what to fix. None crashes the operator, makes it
loop, or disturbs the healthy imports next to them.

Admission reuses the tables of ``tests/specs.py``, proven field by field in
``tests/integration/test_admission.py``; here they are sent while the operator runs, to show
that they never reach it. The cases the schema cannot see come next, all at once in one
namespace: remote load-balancer status holding garbage, remote Services that are no load
balancer or have too many ports, hostnames that do not resolve or resolve to nothing usable,
kubeconfig Secrets that are missing, incomplete, invalid, insecure, or point at a server whose
certificate is not trusted, and imports that name a missing RemoteCluster, come from a denied
namespace, or collide with a Service they do not own.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client as k8s

from faults.toolkit import FaultEnv, alone, load_balancer, remote_condition, writes
from harness.cluster import free_port
from harness.operator import OPERATOR_NAMESPACE
from kit import GROUP, VERSION, Kit
from specs import BAD_IMPORT_SPECS, BAD_REMOTE_CLUSTER_SPECS, PYTHON_ONLY_IMPORTS
from suite import Row, Summary
from support import eventually


@dataclass(frozen=True)
class Case:
    """One bad input that the operator must report: where, and what it must say."""

    name: str
    kind: str  # "import" or "cluster": whose condition tells
    target: str  # the import's or the RemoteCluster's name
    condition: str
    status: str
    reason: str
    hint: str  # what the message must mention, for a person to act on


def _import_case(name: str, reason: str, hint: str, *, status: str = "False") -> Case:
    return Case(name, "import", name, "SourceResolved", status, reason, hint)


def _observed(kit: Kit, case: Case) -> dict[str, Any]:
    if case.kind == "cluster":
        return dict(remote_condition(kit, case.target))
    return kit.condition(case.target, case.condition) or {}


def _matches(observed: dict[str, Any], case: Case) -> bool:
    return (
        observed.get("status") == case.status
        and observed.get("reason") == case.reason
        and case.hint.lower() in str(observed.get("message", "")).lower()
    )


class Bench:
    """Creates the bad inputs in the scenario's namespace and remembers what to expect."""

    def __init__(self, kit: Kit, env: FaultEnv) -> None:
        self.kit = kit
        self.env = env
        self.cases: list[Case] = []
        self.main = kit.remote_cluster()

    # -- remote Services with a bad status or shape ------------------------------------------

    def remote(self, name: str, ingress: list[dict[str, Any]], reason: str, hint: str) -> None:
        """An import of a LoadBalancer whose ingress is ``ingress``."""
        load_balancer(self.kit, name, [])
        self.kit.set_ingress(name, ingress)
        self.kit.import_remote(name, name)
        self.cases.append(_import_case(name, reason, hint))

    def remote_service(self, name: str, spec: dict[str, Any], reason: str, hint: str) -> None:
        """An import of a remote Service that is not a usable load balancer."""
        self.kit.remote.create_namespaced_service(
            self.kit.namespace, {"metadata": {"name": name}, "spec": spec}
        )
        self.kit.import_remote(name, name)
        self.cases.append(_import_case(name, reason, hint))

    # -- RemoteClusters with bad credentials -------------------------------------------------

    def cluster(
        self,
        case: str,
        data: dict[str, bytes] | None,
        reason: str,
        hint: str,
        **spec: Any,
    ) -> str:
        """A RemoteCluster whose kubeconfig Secret holds ``data`` (None: no Secret at all)."""
        name = f"{self.kit.namespace}-{case}"
        if data is not None:
            for value in data.values():
                self.env.credentials.add(value.decode(errors="replace"), f"Secret of {name}")
            self.kit.core.create_namespaced_secret(
                OPERATOR_NAMESPACE,
                {
                    "metadata": {"name": f"{name}-kubeconfig"},
                    "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
                },
            )
        self.kit.custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "remoteclusters",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "RemoteCluster",
                "metadata": {"name": name},
                "spec": {"kubeconfigSecretRef": {"name": f"{name}-kubeconfig"}, **spec},
            },
        )
        self.kit.created_clusters.append(name)
        self.cases.append(Case(case, "cluster", name, "Connected", "False", reason, hint))
        return name

    def kubeconfig(self, change: Callable[[dict[str, Any]], None]) -> dict[str, bytes]:
        """The supervisor's admin kubeconfig, changed by ``change``, as Secret data."""
        config = self.kit.supervisor.kubeconfig()
        change(config)
        return {"kubeconfig": yaml.safe_dump(config).encode()}

    def via(self, case: str, cluster: str, reason: str, hint: str) -> None:
        """An import reading through RemoteCluster ``cluster``."""
        self.kit.create_import(
            case,
            {
                "source": {
                    "remoteService": {
                        "cluster": cluster,
                        "namespace": self.kit.namespace,
                        "name": "canary",
                    }
                }
            },
        )
        self.cases.append(_import_case(case, reason, hint))


def _cluster_field(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config["clusters"][0]["cluster"][field] = value

    return change


def _user_field(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config["users"][0]["user"] = {field: value}

    return change


def _admission(kit: Kit) -> tuple[int, list[str]]:
    """Send every bad spec of the tables; return how many were sent and which got through."""
    through = []
    sent = 0
    for case, spec, _ in BAD_IMPORT_SPECS:
        sent += 1
        try:
            kit.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "SharedServiceImport",
                    "metadata": {"name": case},
                    "spec": spec,
                },
            )
            through.append(case)
        except k8s.ApiException as error:
            if error.status != 422:
                through.append(f"{case}: {error.status}")
    for case, spec, _ in BAD_REMOTE_CLUSTER_SPECS:
        sent += 1
        name = f"{kit.namespace}-{case}"
        try:
            kit.custom.create_cluster_custom_object(
                GROUP,
                VERSION,
                "remoteclusters",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "RemoteCluster",
                    "metadata": {"name": name},
                    "spec": spec,
                },
            )
            kit.created_clusters.append(name)
            through.append(case)
        except k8s.ApiException as error:
            if error.status != 422:
                through.append(f"{case}: {error.status}")
    return sent, through


def test_bad_input_is_refused_or_reported(
    kit: Kit, row: Row, fault_env: FaultEnv, summary: Summary
) -> None:
    operator = kit.operator
    assert operator.process is not None
    pid = operator.process.pid
    bench = Bench(kit, fault_env)
    dns = fault_env.dns
    ns = kit.namespace

    # The healthy imports that nothing below may disturb.
    load_balancer(kit, "canary", ["192.0.2.95"])
    kit.import_remote("canary", "canary")
    kit.create_import(
        "canary-fixed", {"source": {"addresses": ["203.0.113.95"]}, "ports": [{"port": 80}]}
    )
    kit.wait_addresses("canary", {"IPv4": ["192.0.2.95"]})
    kit.wait_condition("canary-fixed", "Ready", "True", "Synced")

    def canary_versions() -> list[str]:
        return sorted(
            f"{s.metadata.name}@{s.metadata.resource_version}"
            for s in kit.discovery.list_namespaced_endpoint_slice(ns).items
            if s.metadata.name.startswith("canary")
        )

    before = canary_versions()
    errors = operator.metric("shared_services_sync_errors_total")
    alone(kit)
    written = writes(operator)

    sent, through = _admission(kit)

    # Remote load-balancer status holding garbage, and remote Services of the wrong shape.
    bench.remote("ingress-loopback", [{"ip": "127.0.0.1"}], "IngressInvalid", "loopback")
    bench.remote("ingress-link-local", [{"ip": "169.254.10.10"}], "IngressInvalid", "link-local")
    bench.remote("ingress-multicast", [{"ip": "224.0.0.10"}], "IngressInvalid", "multicast")
    bench.remote("ingress-unspecified", [{"ip": "0.0.0.0"}], "IngressInvalid", "unspecified")
    bench.remote("ingress-v6-link-local", [{"ip": "fe80::10"}], "IngressInvalid", "link-local")
    bench.remote("ingress-empty-entry", [{}], "IngressInvalid", "neither ip nor hostname")
    dns.remove("gone.example.test")
    bench.remote(
        "ingress-hostname-nxdomain",
        [{"hostname": "gone.example.test"}],
        "HostnameUnresolved",
        "gone.example.test",
    )
    dns.set("empty.example.test", [])
    bench.remote(
        "ingress-hostname-no-address",
        [{"hostname": "empty.example.test"}],
        "HostnameUnresolved",
        "empty.example.test",
    )
    dns.set("local.example.test", ["127.0.0.1"])
    bench.remote(
        "ingress-hostname-loopback",
        [{"hostname": "local.example.test"}],
        "HostnameUnresolved",
        "loopback",
    )
    dns.fail("broken.example.test", "A")
    dns.fail("broken.example.test", "AAAA")
    bench.remote(
        "ingress-hostname-servfail",
        [{"hostname": "broken.example.test"}],
        "HostnameUnresolved",
        "broken.example.test",
    )
    bench.remote("no-ingress-yet", [], "NoIngress", "no load-balancer ingress")
    bench.remote_service(
        "remote-cluster-ip", {"ports": [{"port": 80}]}, "NotLoadBalancer", "ClusterIP"
    )
    bench.remote_service(
        "remote-node-port",
        {"type": "NodePort", "ports": [{"port": 80}]},
        "NotLoadBalancer",
        "NodePort",
    )
    bench.remote_service(
        "remote-external-name",
        {"type": "ExternalName", "externalName": "db.example.test"},
        "NotLoadBalancer",
        "ExternalName",
    )
    kit.import_remote("remote-missing", "does-not-exist")
    bench.cases.append(_import_case("remote-missing", "RemoteServiceNotFound", "not found"))
    thousands = [{"name": f"p{i}", "port": 1000 + i} for i in range(2000)]
    load_balancer(kit, "remote-2000-ports", ["192.0.2.96"], ports=thousands)
    kit.import_remote("remote-2000-ports", "remote-2000-ports")
    bench.cases.append(
        Case(
            "remote-2000-ports",
            "import",
            "remote-2000-ports",
            "Ready",
            "False",
            "TooManyPorts",
            "spec.ports",
        )
    )
    many = [{"ip": f"198.18.{i // 250}.{i % 250 + 1}"} for i in range(1001)]
    load_balancer(kit, "ingress-1001-addresses", [])
    kit.set_ingress("ingress-1001-addresses", many)
    kit.import_remote("ingress-1001-addresses", "ingress-1001-addresses")
    bench.cases.append(
        Case(
            "ingress-1001-addresses",
            "import",
            "ingress-1001-addresses",
            "Ready",
            "False",
            "TooManyAddresses",
            "1000",
        )
    )

    # Hostname sources that resolve to nothing usable.
    for case, hostname, hint in (
        ("hostname-nxdomain", "missing.example.test", "missing.example.test"),
        ("hostname-loopback", "local.example.test", "loopback"),
    ):
        kit.create_import(case, {"source": {"hostname": hostname}, "ports": [{"port": 5432}]})
        bench.cases.append(Case(case, "import", case, "Ready", "False", "HostnameUnresolved", hint))

    # Imports that name what does not exist, may not be used, or is somebody else's.
    kit.create_import(
        "no-such-cluster",
        {"source": {"remoteService": {"cluster": f"{ns}-nope", "namespace": ns, "name": "x"}}},
    )
    bench.cases.append(_import_case("no-such-cluster", "RemoteClusterNotFound", f"{ns}-nope"))
    denied = f"{ns}-denied"
    kit.remote_cluster(name=denied, allowedNamespaces=["somewhere-else"])
    bench.via("namespace-denied", denied, "NamespaceDenied", "allowedNamespaces")
    remote_denied = f"{ns}-remote-denied"
    kit.remote_cluster(name=remote_denied, allowedRemoteNamespaces=["somewhere-else"])
    bench.via("remote-namespace-denied", remote_denied, "RemoteNamespaceDenied", "allowedRemote")
    kit.core.create_namespaced_service(
        ns, {"metadata": {"name": "taken"}, "spec": {"ports": [{"port": 80}]}}
    )
    for case, service, hint in (
        ("collides-with-unmanaged", "taken", "not managed by shared-services-operator"),
        ("collides-with-import", "canary-fixed", "belongs to SharedServiceImport"),
    ):
        kit.create_import(
            case,
            {
                "source": {"addresses": ["203.0.113.96"]},
                "ports": [{"port": 80}],
                "serviceName": service,
            },
        )
        bench.cases.append(Case(case, "import", case, "Ready", "False", "Conflict", hint))
    canary = {"cluster": bench.main, "namespace": ns, "name": "canary"}
    for case, name, table_spec, hint in PYTHON_ONLY_IMPORTS:
        spec = {**table_spec}
        if "remoteService" in spec.get("source", {}):
            spec["source"] = {"remoteService": canary}
        kit.create_import(name, spec)
        bench.cases.append(Case(case, "import", name, "Ready", "False", "InvalidSpec", hint))

    # kubeconfig Secrets that are missing, incomplete, invalid or insecure.
    supervisor, workload = fault_env.supervisor, fault_env.workload
    good = supervisor.kubeconfig_yaml().encode()
    bench.cluster("secret-missing", None, "SecretNotFound", "not found")
    bench.cluster("secret-key-missing", {"config": good}, "SecretKeyMissing", "kubeconfig")
    bench.cluster("kubeconfig-not-yaml", {"kubeconfig": b"{{{: ["}, "KubeconfigInvalid", "YAML")
    bench.cluster(
        "kubeconfig-no-clusters",
        {"kubeconfig": b"apiVersion: v1\nkind: Config\n"},
        "KubeconfigInvalid",
        "no clusters",
    )
    bench.cluster(
        "kubeconfig-binary",
        {"kubeconfig": secrets.token_bytes(512)},
        "KubeconfigInvalid",
        "kubeconfig",
    )
    insecure = bench.cluster(
        "kubeconfig-insecure",
        bench.kubeconfig(_cluster_field("insecure-skip-tls-verify", True)),
        "InsecureKubeconfig",
        "insecure-skip-tls-verify",
    )
    bench.via("via-insecure-cluster", insecure, "RemoteUnavailable", "insecure-skip-tls-verify")
    bench.cluster(
        "kubeconfig-ca-file",
        bench.kubeconfig(_cluster_field("certificate-authority", "/etc/ssl/certs/ca.pem")),
        "InsecureKubeconfig",
        "CA file",
    )
    bench.cluster(
        "kubeconfig-exec-plugin",
        bench.kubeconfig(
            _user_field("exec", {"command": "/bin/sh", "args": ["-c", "id"], "apiVersion": "x"})
        ),
        "InsecureKubeconfig",
        "exec",
    )
    bench.cluster(
        "kubeconfig-token-file",
        bench.kubeconfig(_user_field("tokenFile", "/var/run/secrets/token")),
        "InsecureKubeconfig",
        "tokenFile",
    )
    untrusted_ca = base64.b64encode(workload.pki.ca_pem).decode()
    bench.cluster(
        "server-not-trusted",
        bench.kubeconfig(_cluster_field("certificate-authority-data", untrusted_ca)),
        "TLSUntrusted",
        "not trusted",
    )
    bench.cluster(
        "context-missing",
        {"kubeconfig": good},
        "KubeconfigInvalid",
        "context",
        context="no-such-context",
    )
    bench.cluster(
        "server-unreachable",
        bench.kubeconfig(_cluster_field("server", f"https://127.0.0.1:{free_port()}")),
        "Unreachable",
        "127.0.0.1",
    )
    bench.cluster(
        "token-rejected",
        {"kubeconfig": supervisor.kubeconfig_yaml(token="rejected-0123456789abcdef").encode()},
        "Unauthorized",
        "401",
    )
    # Authenticated but without any permission on the supervisor: connected, yet the watch
    # of Services is refused, which the import says.
    unprivileged = f"{ns}-unprivileged"
    kit.core.create_namespaced_secret(
        OPERATOR_NAMESPACE,
        {
            "metadata": {"name": f"{unprivileged}-kubeconfig"},
            "data": {
                "kubeconfig": base64.b64encode(
                    supervisor.kubeconfig_yaml(supervisor.users["alice"]).encode()
                ).decode()
            },
        },
    )
    kit.custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "remoteclusters",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RemoteCluster",
            "metadata": {"name": unprivileged},
            "spec": {"kubeconfigSecretRef": {"name": f"{unprivileged}-kubeconfig"}},
        },
    )
    kit.created_clusters.append(unprivileged)
    bench.via("credentials-without-permission", unprivileged, "RemoteUnavailable", "forbidden")

    cases = bench.cases
    row.injected = (
        f"{sent} malformed specs at admission; {len(cases)} bad specs and hostile remote states "
        "the schema cannot see, next to 2 healthy imports"
    )
    seen: dict[str, dict[str, Any]] = {}

    def all_reported() -> bool:
        for case in cases:
            if case.name not in seen or not _matches(seen[case.name], case):
                seen[case.name] = _observed(kit, case)
        return all(_matches(seen[c.name], c) for c in cases)

    # Whatever is still missing after the wait is listed in the failure below.
    with contextlib.suppress(AssertionError):
        eventually(all_reported, timeout=60, interval=0.5)
    summary.detail(
        "Bad input the schema cannot refuse: what the operator said",
        ("case", "expected", "observed", "message"),
        [
            (
                c.name,
                f"{c.condition}={c.status}/{c.reason}",
                f"{seen[c.name].get('status')}/{seen[c.name].get('reason')}",
                str(seen[c.name].get("message", ""))[:160],
            )
            for c in cases
        ],
    )
    wrong = {
        c.name: (seen[c.name].get("reason"), seen[c.name].get("message"))
        for c in cases
        if not _matches(seen[c.name], c)
    }
    quiet = kit.settled(lambda: writes(operator), quiet=2.0, timeout=60)
    row.figure("admission cases", sent)
    row.figure("refused at admission", sent - len(through))
    row.figure("reported in a condition", f"{len(cases) - len(wrong)}/{len(cases)}")
    row.figure("sync errors", operator.metric("shared_services_sync_errors_total") - errors)
    row.figure("writes until settled", quiet - written)
    assert not through, f"accepted at admission: {through}"
    assert not wrong, f"not reported as expected: {wrong}"
    assert operator.process.pid == pid
    assert operator.process.poll() is None, "the operator exited"
    kit.wait_condition("canary", "Ready", "True", "Synced")
    kit.wait_condition("canary-fixed", "Ready", "True", "Synced")
    assert canary_versions() == before, "a healthy import's endpoints were rewritten"
    row.happened = "all refused or reported with an actionable message; canaries untouched"
