"""One local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

Each cluster gets free loopback ports and a directory of its own, so several run side by
side (the tests use a ``supervisor`` and a ``workload``). Child processes are started in
their own process group, so a Ctrl-C meant for pytest reaches them only through the orderly
teardown, and with a parent-death signal, so they cannot outlive a harness that is killed
outright. The admin kubeconfig embeds the CA and a token and names no files: it can be stored
in a Secret and used from the other cluster, as the operator does in production.

A cluster started with ``sso`` (the supervisor) also signs SSO users in as a vSphere Supervisor
does: a sign-in service (:mod:`harness.signin`) mints JWTs at ``/wcp/login``, and the API
server trusts them through a JWT authenticator; its audit log then records what those users
sent and every request it refused to authenticate.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from harness.pki import Pki, write_pki
from harness.signin import USERNAME_PREFIX, SignInService

SERVICE_CIDR = "10.96.0.0/16"
# For a workload cluster with a data plane: IPv4 first, so Services stay IPv4 unless they ask,
# and an IPv6 range from the documentation prefix.
DUAL_STACK_SERVICE_CIDR = f"{SERVICE_CIDR},2001:db8:96::/112"
_PR_SET_PDEATHSIG = 1
# The subject of the token that proves the API server trusts the sign-in service's key.
_READINESS_SUBJECT = "readiness@harness.local"
# Who an SSO cluster's audit log leaves out: administrators and the control plane (whose
# group is system:masters), ServiceAccounts, nodes, and anonymous probes of /readyz.
_UNAUDITED_GROUPS = (
    "system:masters",
    "system:serviceaccounts",
    "system:nodes",
    "system:unauthenticated",
)


# Ports handed out by this process: a port is free again once its probe socket closes, so
# two servers asked for in a row must not be given the same one.
_HANDED_OUT: set[int] = set()
_PORT_TRIES = 500


def free_port() -> int:
    """A loopback TCP port that nothing listens on, from outside the kernel's ephemeral range.

    A port the kernel picks (a bind to port 0) comes from the range that it also gives every
    outgoing connection, so between this check and the server's own bind a client socket of
    another process can take it, and the server fails with "Address already in use": seen
    once for an operator's health port while the API servers were busy. Below that range,
    only a listener takes a port, and the check here sees listeners.
    """
    low, high = _ephemeral_range()
    candidates = range(low - 12000, low) if low >= 13024 else range(high + 1, 65536)
    for _ in range(_PORT_TRIES):
        port = secrets.choice(candidates)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    msg = f"no free loopback port in {candidates.start}-{candidates.stop - 1}"
    raise RuntimeError(msg)


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux's default when unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def wait_readyz(
    url: str, *, ca_pem: bytes, deadline: float, check: Callable[[], None] = lambda: None
) -> bool:
    """Poll an API server's /readyz until it answers 200 (True) or ``deadline`` passes.

    ``check`` runs before each attempt, to fail early when the server's process died.
    """
    context = ssl.create_default_context(cadata=ca_pem.decode())
    while True:
        check()
        try:
            with urllib.request.urlopen(f"{url}/readyz", context=context, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _die_with_parent() -> None:
    """Ask Linux to kill this child when the harness process dies, however it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class StaticUser:
    """A user from the API server's static token file."""

    name: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditedRequest:
    """One request as the API server recorded it in its audit log."""

    user: str
    verb: str
    uri: str
    code: int
    received: float  # the API server's wall clock (time.time()), when the request came in
    user_agent: str = ""  # the User-Agent header the request came with


@dataclass(frozen=True)
class AuditLog:
    """An API server's record of every request that the given users made.

    What a process really sent, counted by the server rather than by the process itself:
    a client's own metrics cannot show a write that it believes it never made.

    With ``people`` set, it also records every request of a person (a user who is neither an
    administrator, a ServiceAccount, a node nor anonymous: the SSO users, alice and bob) and
    every request the server refused to authenticate (401): what a client sent with an
    expired or forged token shows here, although the server cannot say who sent it.
    """

    path: Path
    users: tuple[str, ...]
    people: bool = False

    def flags(self) -> list[str]:
        """The kube-apiserver flags that write this log (and its policy, next to it)."""
        policy = self.path.with_name(f"{self.path.stem}-policy.yaml")
        policy.parent.mkdir(parents=True, exist_ok=True)
        # The first rule that matches decides. A request refused authentication has no user,
        # so only a rule that names no users or groups matches it.
        rules: list[dict[str, Any]] = []
        if self.users:
            rules.append({"level": "Metadata", "users": list(self.users)})
        if self.people:
            rules.append({"level": "None", "userGroups": list(_UNAUDITED_GROUPS)})
            rules.append({"level": "Metadata"})
        rules.append({"level": "None"})
        policy.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived"],
                    "rules": rules,
                }
            )
        )
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.path}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",  # written before the response: none is missing
        ]

    def requests(self) -> list[AuditedRequest]:
        """Every finished request logged so far (a watch counts once, when it ends).

        A request refused authentication has the user "": the server did not know who sent
        it, only that its credentials were refused.
        """
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the line being written right now
            user = str(event.get("user", {}).get("username", ""))
            # A request refused authentication (user "", code 401) is logged once, when its
            # answer starts: the server writes no ResponseComplete stage for it.
            refused = event.get("stage") == "ResponseStarted" and not user
            if event.get("stage") != "ResponseComplete" and not refused:
                continue
            received = event.get("requestReceivedTimestamp", "")
            found.append(
                AuditedRequest(
                    user=user,
                    verb=str(event.get("verb", "")),
                    uri=str(event.get("requestURI", "")),
                    code=int(event.get("responseStatus", {}).get("code", 0)),
                    received=datetime.fromisoformat(received).timestamp(),
                    user_agent=str(event.get("userAgent", "")),
                )
            )
        return found

    def answered(self, code: int) -> list[AuditedRequest]:
        """The logged requests answered with ``code`` (401: refused authentication)."""
        return [request for request in self.requests() if request.code == code]


@dataclass
class Cluster:
    """A running (or startable) local control plane.

    With ``audit`` set, its API server writes an audit log of the requests of those users.
    With ``sso`` set, it signs SSO users in (see :attr:`signin`), and unless ``audit`` says
    otherwise its audit log records those users' requests and every 401.
    """

    name: str
    directory: Path
    bin_dir: Path
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    apiserver_port: int = field(default_factory=free_port)
    # Comma-separated for a dual-stack cluster, IPv4 first: its Services are IPv4 by default.
    service_cidr: str = SERVICE_CIDR
    users: dict[str, StaticUser] = field(default_factory=dict)
    audit: AuditLog | None = None
    sso: bool = False
    _pki: Pki | None = None
    _signin: SignInService | None = None
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[TextIO] = field(default_factory=list)

    # -- identity -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API server's address."""
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def pki(self) -> Pki:
        """The cluster's certificates; created by :meth:`start`."""
        if self._pki is None:
            msg = f"cluster {self.name} has not been started"
            raise RuntimeError(msg)
        return self._pki

    @property
    def signin(self) -> SignInService:
        """The sign-in service whose tokens the API server trusts; created by :meth:`start`."""
        if self._signin is None:
            msg = f"cluster {self.name} signs no SSO users in (start it with sso=True)"
            raise RuntimeError(msg)
        return self._signin

    @property
    def admin(self) -> StaticUser:
        """The cluster-admin identity (group system:masters)."""
        return self.users["admin"]

    def kubeconfig(
        self, user: StaticUser | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """A self-contained kubeconfig: CA data and token inline, no file paths."""
        who = user or self.admin
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": b64encode(self.pki.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": who.name, "user": {"token": token or who.token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": who.name}}],
            "current-context": self.name,
        }

    def kubeconfig_yaml(self, user: StaticUser | None = None, *, token: str | None = None) -> str:
        """The kubeconfig as YAML text, as it would sit in a Secret."""
        return yaml.safe_dump(self.kubeconfig(user, token=token), sort_keys=False)

    def write_kubeconfig(self, path: Path) -> Path:
        """Write the admin kubeconfig to ``path`` (mode 0600) and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.kubeconfig_yaml())
        path.chmod(0o600)
        return path

    def api_client(
        self, user: StaticUser | None = None, *, token: str | None = None
    ) -> k8s.ApiClient:
        """A kubernetes client for this cluster, as the admin unless told otherwise."""
        api: k8s.ApiClient = k8s_config.new_client_from_config_dict(
            self.kubeconfig(user, token=token)
        )
        return api

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Launch etcd and kube-apiserver; do not wait.

        kube-controller-manager comes later, from :meth:`wait_ready`, once the API server
        answers: started earlier, it exits on its first "connection refused" (it reads the
        request-header CA from a ConfigMap at start and does not retry).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pki = write_pki(self.directory / "pki", cluster_name=self.name)
        self._write_tokens()
        self._spawn("etcd", self._etcd_args())
        if self.sso:
            self._start_signin()
        self.start_apiserver()

    def start_apiserver(self) -> None:
        """(Re)launch the API server on the same port, e.g. after :meth:`stop_apiserver`."""
        self._spawn("kube-apiserver", self._apiserver_args())

    def stop_apiserver(self) -> None:
        """Stop only the API server, to simulate an outage of the cluster's API."""
        self._terminate("kube-apiserver")

    def stop_controller_manager(self) -> None:
        """Stop the controller manager (its garbage collector too); wait_ready() restarts it."""
        self._terminate("kube-controller-manager")

    def signal_apiserver(self, sig: signal.Signals) -> None:
        """Send a signal to the API server (SIGSTOP/SIGCONT freeze and thaw it)."""
        self._processes["kube-apiserver"].send_signal(sig)

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until /readyz answers ok and the controller manager works; return seconds.

        Starts the controller manager once the API server is ready, if it is not running.
        """
        started = time.monotonic()
        deadline = started + timeout
        self.wait_apiserver(deadline=deadline)
        if "kube-controller-manager" not in self.pids():
            self._spawn("kube-controller-manager", self._controller_manager_args())
        # The serviceaccount controller creating "default" proves the controller manager is up.
        api = k8s.CoreV1Api(self.api_client())
        while True:
            self._check_alive()
            with contextlib.suppress(k8s.ApiException):
                api.read_namespaced_service_account("default", "default")
                break
            if time.monotonic() > deadline:
                raise TimeoutError(self._timeout_message("the default ServiceAccount"))
            time.sleep(0.1)
        api.api_client.close()
        if self._signin is not None and self._signin.running:
            self._wait_signin_trusted(deadline=deadline)
        return time.monotonic() - started

    def wait_apiserver(self, *, deadline: float) -> None:
        """Block until the API server's /readyz answers ok (every post-start hook has run).

        /version, or an open port, comes earlier: RBAC's bootstrap roles and the default
        ServiceCIDR may not exist yet, and a client started then sees 403s or no Service IPs.
        """
        if not wait_readyz(
            self.url, ca_pem=self.pki.ca_pem, deadline=deadline, check=self._check_alive
        ):
            raise TimeoutError(self._timeout_message("/readyz"))

    def stop(self, *, remove: bool = True) -> None:
        """Stop every process (controller manager first, etcd last) and remove the state."""
        for component in ("kube-controller-manager", "kube-apiserver", "etcd"):
            self._terminate(component)
        if self._signin is not None:
            self._signin.stop()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        """The process ids of the running components (and of the sign-in service)."""
        pids = {name: p.pid for name, p in self._processes.items() if p.poll() is None}
        signin_pid = self._signin.pid if self._signin is not None else None
        if signin_pid is not None:
            pids["signin"] = signin_pid
        return pids

    def bind_sso_user(
        self, user: str, namespace: str, *, role: str = "view", timeout: float = 15.0
    ) -> str:
        """Bind SSO user ``user`` to a stock ClusterRole in ``namespace``, as vSphere does.

        A vSphere Namespace's permissions (Can View, Can Edit) are RoleBindings of its SSO
        users to the aggregated ``view`` and ``edit`` ClusterRoles. Returns once the API
        server's authorizer lets the user list Services there: that proves both that the
        binding reached RBAC's cache and that the clusterrole-aggregation-controller filled
        the role, which a test started earlier would see only as 403s that say nothing.
        """
        username = f"{USERNAME_PREFIX}{user}"
        name = f"wcp:{namespace}:user:{user}:{role}".lower()
        binding = k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name=name),
            role_ref=k8s.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role
            ),
            subjects=[
                k8s.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User", name=username)
            ],
        )
        review = k8s.V1SubjectAccessReview(
            spec=k8s.V1SubjectAccessReviewSpec(
                user=username,
                groups=["system:authenticated"],
                resource_attributes=k8s.V1ResourceAttributes(
                    namespace=namespace, verb="list", resource="services"
                ),
            )
        )
        api = self.api_client()
        try:
            try:
                k8s.RbacAuthorizationV1Api(api).create_namespaced_role_binding(namespace, binding)
            except k8s.ApiException as error:
                if error.status != 409:
                    raise
            authorization = k8s.AuthorizationV1Api(api)
            deadline = time.monotonic() + timeout
            while True:
                answer = authorization.create_subject_access_review(review).status
                if answer is not None and answer.allowed:
                    break
                if time.monotonic() > deadline:
                    msg = f"{username} may still not list Services in {namespace} as {role}"
                    raise TimeoutError(msg)
                time.sleep(0.1)
        finally:
            api.close()
        return name

    def log_tail(self, component: str, lines: int = 30) -> str:
        """The last lines a component wrote, for error messages."""
        path = self.directory / f"{component}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- internals ------------------------------------------------------------------------

    def _write_tokens(self) -> None:
        # A static token file lets a test act as a plain user without certificates;
        # ServiceAccounts get real tokens through TokenRequest instead.
        for user in (
            StaticUser("admin", secrets.token_hex(16), ("system:masters",)),
            StaticUser(
                "system:kube-controller-manager", secrets.token_hex(16), ("system:masters",)
            ),
            StaticUser("alice", secrets.token_hex(16)),
            StaticUser("bob", secrets.token_hex(16)),
        ):
            self.users[user.name] = user
        lines = [f'{u.token},{u.name},{u.name},"{",".join(u.groups)}"' for u in self.users.values()]
        path = self.directory / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        controller_manager = self.users["system:kube-controller-manager"]
        kubeconfig = self.directory / "controller-manager.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(self.kubeconfig(controller_manager)))
        kubeconfig.chmod(0o600)

    def _start_signin(self) -> None:
        """Start the sign-in service before the API server, and write what makes it trusted.

        The API server's JWT authenticator fetches the issuer's discovery document as it
        starts, and after a failure tries again only 10 s later: started first, the service
        answers that first fetch.
        """
        if self._signin is None:
            self._signin = SignInService.create(
                self.directory / "signin", port=free_port(), pki=self.pki
            )
            if self.audit is None:
                self.audit = AuditLog(path=self.directory / "audit.log", users=(), people=True)
        self._signin.start()
        path = self.directory / "authentication-config.yaml"
        path.write_text(yaml.safe_dump(self._signin.authentication_config(), sort_keys=False))

    def _wait_signin_trusted(self, *, deadline: float) -> None:
        """Block until the API server accepts a token signed with the sign-in service's key.

        /readyz does not wait for the JWT authenticator, and until it has read the issuer's
        discovery document and key set it answers 401 to every SSO token. Checked with a token
        minted directly, so that no sign-in is counted; its key set is then cached, so tokens
        stay accepted while a test has the service stopped.
        """
        api = self.api_client(token=self.signin.mint_token(_READINESS_SUBJECT, lifetime=120))
        try:
            while True:
                self._check_alive()
                with contextlib.suppress(k8s.ApiException):
                    review = k8s.AuthenticationV1Api(api).create_self_subject_review(
                        k8s.V1SelfSubjectReview()
                    )
                    user = review.status.user_info if review.status else None
                    if user is not None and user.username == USERNAME_PREFIX + _READINESS_SUBJECT:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(self._timeout_message("the JWT authenticator"))
                time.sleep(0.2)
        finally:
            api.close()

    def _etcd_args(self) -> list[str]:
        return [
            f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{self.etcd_peer_port}",
        ]

    def _apiserver_args(self) -> list[str]:
        pki = self.pki
        return [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={self.directory / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://kubernetes.default.svc.{self.name}",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={self.service_cidr}",
            # The "kubernetes" Service would point at 127.0.0.1, which Endpoints reject.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            *(self.audit.flags() if self.audit else []),
            *(
                [f"--authentication-config={self.directory / 'authentication-config.yaml'}"]
                if self._signin is not None
                else []
            ),
        ]

    def _controller_manager_args(self) -> list[str]:
        kubeconfig = self.directory / "controller-manager.kubeconfig"
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            f"--root-ca-file={self.pki.ca_cert}",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            # What a workload cluster runs that matters to Services and their endpoints, plus
            # garbage collection, namespace deletion and the aggregation of ClusterRoles into
            # the stock view, edit and admin roles; nothing that schedules pods.
            "--controllers=garbage-collector-controller,namespace-controller,"
            "serviceaccount-controller,serviceaccount-token-controller,"
            "root-ca-certificate-publisher-controller,endpoints-controller,"
            "endpointslice-controller,endpointslice-mirroring-controller,"
            "clusterrole-aggregation-controller",
            "--profiling=false",
        ]

    def _spawn(self, component: str, args: list[str]) -> None:
        log = (self.directory / f"{component}.log").open("a")
        self._logs.append(log)
        self._processes[component] = subprocess.Popen(
            [str(self.bin_dir / component), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
        )

    def _terminate(self, component: str) -> None:
        process = self._processes.pop(component, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _check_alive(self) -> None:
        if self._signin is not None:
            self._signin.check()
        for component, process in self._processes.items():
            if process.poll() is not None:
                msg = (
                    f"{self.name}: {component} exited with {process.returncode}:\n"
                    f"{self.log_tail(component)}"
                )
                raise RuntimeError(msg)

    def _timeout_message(self, what: str) -> str:
        tails = "\n".join(f"--- {c}\n{self.log_tail(c, 10)}" for c in ("etcd", "kube-apiserver"))
        return f"{self.name}: timed out waiting for {what}\n{tails}"

    def describe(self) -> dict[str, Any]:
        """What ``make up`` records about a running cluster."""
        described: dict[str, Any] = {
            "name": self.name,
            "url": self.url,
            "directory": str(self.directory),
            "pids": self.pids(),
        }
        if self._signin is not None:
            described["signin"] = self._signin.describe()
        return described


def start_clusters(
    names: list[str],
    *,
    bin_dir: Path,
    base_dir: Path,
    timeout: float = 90.0,
    service_cidrs: dict[str, str] | None = None,
    bin_dirs: dict[str, Path] | None = None,
    sso: tuple[str, ...] = ("supervisor",),
) -> list[Cluster]:
    """Start clusters side by side and wait until all are ready.

    All processes are launched before any wait, so the clusters boot in parallel; a failure
    stops the ones already started. ``service_cidrs`` gives a cluster another Service range
    than ``SERVICE_CIDR`` (a dual-stack one, say), ``bin_dirs`` another Kubernetes release
    than ``bin_dir``'s. The clusters named in ``sso`` sign SSO users in, as the Supervisor
    does: by default the one named ``supervisor``, wherever it is started.
    """
    ranges = service_cidrs or {}
    releases = bin_dirs or {}
    clusters = [
        Cluster(
            name=n,
            directory=base_dir / n,
            bin_dir=releases.get(n, bin_dir),
            service_cidr=ranges.get(n, SERVICE_CIDR),
            sso=n in sso,
        )
        for n in names
    ]
    try:
        for cluster in clusters:
            cluster.start()
        for cluster in clusters:
            cluster.wait_ready(timeout)
    except BaseException:
        for cluster in clusters:
            cluster.stop(remove=False)
        raise
    return clusters


def dump_state(clusters: list[Cluster], path: Path) -> None:
    """Record running clusters so ``make down`` can find them."""
    path.write_text(json.dumps([c.describe() for c in clusters], indent=2))
