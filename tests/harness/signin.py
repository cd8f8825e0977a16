"""The supervisor's sign-in service: what vSphere with Tanzu serves at ``POST /wcp/login``.

On a Supervisor, an SSO user (``devops@vsphere.local``) signs in with HTTP Basic and gets
``{"session_id": "<JWT>"}``, a bearer token for the Supervisor's API server that expires (10
hours there; here what the test sets). The API server trusts those tokens through a JWT
authenticator, which reads this service's OIDC discovery document and its JWKS: no webhook,
no shared secret, as in production.

The service runs as a child process (``python -m harness.signin serve``) rather than a thread,
so that a test can stop it and start it again on the same port with the same signing key
(a sign-in service that is down when a client renews its token), the same code serves the
pytest session and ``make up``, and a harness killed outright cannot leave it behind: it asks
Linux to kill it when its parent dies, and it checks its parent as it serves.

The parent changes the service's state through files in its directory, never over the network,
so that a test can change a password or lock a user while the service is stopped:

- ``users.json`` (users with salted password hashes, whether locked, token lifetimes), which
  the parent replaces atomically and the service reads at each sign-in;
- ``requests.jsonl``, one line per request the service answered: its path, whether it carried
  Basic credentials or a bearer token, the Basic user's name, the answer. A test counts sign-ins
  from it, and proves where credentials went and where they did not. No password is ever
  written anywhere, nor returned in any answer.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from harness.pki import Pki, issue_serving_certificate

# The audience vSphere's session tokens carry for a Supervisor's API server.
AUDIENCE = "vmware-tes:vc:vns:k8s"
# How the API server names a signed-in user: vSphere shows SSO users as "sso:<user>".
USERNAME_PREFIX = "sso:"
SSO_DOMAIN = "vsphere.local"
LOGIN_PATH = "/wcp/login"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openidconnect/jwks"
# A default a test notices if it forgets to set one, yet no session outlives.
DEFAULT_TOKEN_LIFETIME = 600

_PR_SET_PDEATHSIG = 1
_HASH_ITERATIONS = 20_000
_MAX_BODY = 64 * 1024
_CONNECTION_TIMEOUT = 10.0
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class SsoUser:
    """An SSO user's credentials; the password is kept out of ``repr`` (and so of test output)."""

    name: str
    password: str = field(repr=False)

    @property
    def username(self) -> str:
        """The name the API server gives this user once signed in (what RBAC subjects name)."""
        return USERNAME_PREFIX + self.name


@dataclass(frozen=True)
class SignInAnswer:
    """What ``POST /wcp/login`` answered."""

    status: int
    body: dict[str, Any]

    @property
    def token(self) -> str | None:
        """The session token, when the sign-in succeeded."""
        token = self.body.get("session_id") if self.status == 200 else None
        return token if isinstance(token, str) else None


@dataclass(frozen=True)
class SignInRequest:
    """One request the service answered, as it recorded it (never with a credential)."""

    method: str
    path: str
    basic: bool  # carried an "Authorization: Basic" header
    bearer: bool  # carried an "Authorization: Bearer" header
    user: str  # the Basic user's name, "" without Basic credentials
    status: int
    reason: str  # why a sign-in was refused: no-credentials, unknown-user, wrong-password, locked
    received: float  # the service's wall clock (time.time())
    user_agent: str = ""  # who the request said sent it


@dataclass(frozen=True)
class SignIns:
    """How often one user's sign-ins succeeded and were refused."""

    succeeded: int
    refused: int


# -- tokens ---------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_b64(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The public half of a P-256 key as a JWK, named by its RFC 7638 thumbprint.

    A thumbprint as ``kid`` changes only with the key: a service started again with the same
    key names it the same, so the API server's cached key set still verifies its tokens.
    """
    numbers = key.public_key().public_numbers()
    x, y = (_b64url(n.to_bytes(32, "big")) for n in (numbers.x, numbers.y))
    canonical = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid}


def mint(
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    lifetime: int,
) -> str:
    """A JWT signed ES256, valid from now (the real clock, which the API server checks)."""
    now = int(time.time())
    header = {"alg": "ES256", "typ": "JWT", "kid": public_jwk(key)["kid"]}
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified: for tests that look at what a token says."""
    payload: dict[str, Any] = json.loads(_b64url_decode(token.split(".")[1]))
    return payload


def header(token: str) -> dict[str, Any]:
    """A JWT's header, unverified (its ``alg`` and ``kid``)."""
    value: dict[str, Any] = json.loads(_b64url_decode(token.partition(".")[0]))
    return value


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        msg = f"{path}: not an elliptic curve key"
        raise TypeError(msg)
    return key


def _password_hash(password: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _HASH_ITERATIONS).hex()


# -- the parent's handle ----------------------------------------------------------------------


class SignInService:
    """The sign-in service of one cluster: its files, its process, and the test's controls.

    :meth:`create` makes a new one in a directory; ``SignInService(directory)`` attaches to one
    made earlier (``python -m harness.signin add-user`` does, beside ``make up``).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        config = json.loads((directory / "config.json").read_text())
        self.port: int = config["port"]
        self.audience: str = config["audience"]
        self._process: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        port: int,
        pki: Pki,
        audience: str = AUDIENCE,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
    ) -> SignInService:
        """Write a new service's key, serving certificate (from the cluster's CA) and state."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        signing_key = directory / "signing.key"
        signing_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        signing_key.chmod(0o600)
        issue_serving_certificate(
            pki, common_name="signin", cert=directory / "tls.crt", key=directory / "tls.key"
        )
        (directory / "ca.crt").write_bytes(pki.ca_pem)
        (directory / "config.json").write_text(
            json.dumps({"port": port, "audience": audience}, indent=2)
        )
        service = cls(directory)
        service._write_state({"token_lifetime": token_lifetime, "users": {}})
        return service

    # -- where it is ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where it listens; also the issuer its tokens name."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        """The ``iss`` of its tokens, which the API server's authenticator expects."""
        return self.url

    @property
    def login_url(self) -> str:
        """Where a client signs in: ``https://127.0.0.1:<port>/wcp/login``."""
        return self.url + LOGIN_PATH

    @property
    def ca_pem(self) -> bytes:
        """The CA of its serving certificate: the cluster's own CA."""
        return (self.directory / "ca.crt").read_bytes()

    def jwk(self) -> dict[str, str]:
        """The public key its tokens are signed with, as its JWKS serves it."""
        return public_jwk(_load_key(self.directory / "signing.key"))

    def authentication_config(self) -> dict[str, Any]:
        """The API server's structured authentication configuration that trusts its tokens.

        Version v1, which Kubernetes serves from 1.34 on (earlier releases only v1beta1): the
        supervisor always runs the newest release. It sits beside --token-auth-file, whose
        static users keep working; only the --oidc-* flags would conflict with it.
        """
        return {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AuthenticationConfiguration",
            "jwt": [
                {
                    "issuer": {
                        "url": self.issuer,
                        "audiences": [self.audience],
                        "certificateAuthority": self.ca_pem.decode(),
                    },
                    "claimMappings": {"username": {"claim": "sub", "prefix": USERNAME_PREFIX}},
                }
            ],
        }

    # -- process -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The service's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether its process runs (it listens from the moment :meth:`start` returns)."""
        return self.pid is not None

    def start(self, timeout: float = _START_TIMEOUT) -> SignInService:
        """Start it on its port with its key, and return once it listens.

        The process is in a process group of its own, so a Ctrl-C meant for pytest reaches
        it only through the orderly teardown.
        """
        if self.running:
            return self
        ready = self.directory / "ready"
        ready.unlink(missing_ok=True)
        self._log = (self.directory / "signin.log").open("a")
        tests_dir = str(Path(__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH", "")
        self._process = process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.signin",
                "serve",
                f"--directory={self.directory}",
                f"--parent={os.getpid()}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, path]))},
        )
        deadline = time.monotonic() + timeout
        while not (ready.exists() and ready.read_text().strip() == str(process.pid)):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                msg = f"the sign-in service did not start:\n{self.log_tail()}"
                raise RuntimeError(msg)
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop it: from now on, a connection to its port is refused."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def check(self) -> None:
        """Raise if its process died without :meth:`stop`."""
        process = self._process
        if process is not None and process.poll() is not None:
            msg = f"the sign-in service exited with {process.returncode}:\n{self.log_tail()}"
            raise RuntimeError(msg)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines it wrote (errors only: requests go to requests.jsonl)."""
        path = self.directory / "signin.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def describe(self) -> dict[str, Any]:
        """What ``make up`` records about it."""
        return {"login_url": self.login_url, "directory": str(self.directory), "pid": self.pid}

    # -- users and tokens ----------------------------------------------------------------

    def add_user(self, name: str, password: str, *, locked: bool = False) -> SsoUser:
        """Add an SSO user (or replace one of that name), unlocked unless told otherwise."""
        if ":" in name or not name:
            msg = f"{name!r}: an SSO user name is not empty and has no colon (HTTP Basic)"
            raise ValueError(msg)
        salt = secrets.token_bytes(16)
        record = {"salt": salt.hex(), "hash": _password_hash(password, salt), "locked": locked}
        with self._state() as state:
            state["users"][name] = record
        return SsoUser(name=name, password=password)

    def fresh_user(self, prefix: str = "dev") -> SsoUser:
        """A new user of a unique name (``<prefix>-<hex>@vsphere.local``) and random password."""
        name = f"{prefix}-{secrets.token_hex(4)}@{SSO_DOMAIN}"
        return self.add_user(name, secrets.token_urlsafe(18))

    def set_password(self, name: str, password: str) -> SsoUser:
        """Change a user's password; the old one is refused from the next sign-in on."""
        salt = secrets.token_bytes(16)
        with self._state() as state:
            user = self._user(state, name)
            user["salt"], user["hash"] = salt.hex(), _password_hash(password, salt)
        return SsoUser(name=name, password=password)

    def lock(self, name: str) -> None:
        """Lock a user: its sign-ins are refused, whatever the password."""
        with self._state() as state:
            self._user(state, name)["locked"] = True

    def unlock(self, name: str) -> None:
        """Unlock a user."""
        with self._state() as state:
            self._user(state, name)["locked"] = False

    def remove_user(self, name: str) -> None:
        """Remove a user (and its token lifetime); removing an unknown user does nothing."""
        with self._state() as state:
            state["users"].pop(name, None)

    def set_token_lifetime(self, seconds: int, *, user: str | None = None) -> None:
        """Set the lifetime of the tokens of the sign-ins to come: one user's, or everyone's.

        A user's own lifetime wins over everyone's, so that a test can give its user short
        tokens without shortening those of tests that run beside it.
        """
        if seconds < 1:
            msg = f"a token lifetime is at least one second, not {seconds}"
            raise ValueError(msg)
        with self._state() as state:
            if user is None:
                state["token_lifetime"] = seconds
            else:
                self._user(state, user)["token_lifetime"] = seconds

    def mint_token(
        self,
        subject: str,
        *,
        lifetime: int = DEFAULT_TOKEN_LIFETIME,
        audience: str | None = None,
    ) -> str:
        """A token for ``subject`` signed with the service's key, without a sign-in.

        For the harness's own check that the API server trusts the key, and for tests of
        tokens that /wcp/login never gives (another ``audience``); it bypasses /wcp/login,
        so no sign-in is counted and no request recorded.
        """
        return mint(
            _load_key(self.directory / "signing.key"),
            issuer=self.issuer,
            audience=audience or self.audience,
            subject=subject,
            lifetime=lifetime,
        )

    # -- as a client -----------------------------------------------------------------------

    def sign_in(self, name: str, password: str, *, timeout: float = 10.0) -> SignInAnswer:
        """Sign in as a client does: ``POST /wcp/login`` with Basic, TLS verified by the CA.

        Raises ``ConnectionRefusedError`` while the service is stopped.
        """
        credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=context, timeout=timeout
        )
        try:
            connection.request(
                "POST",
                LOGIN_PATH,
                headers={"Authorization": f"Basic {credentials}", "Content-Length": "0"},
            )
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        return SignInAnswer(status=response.status, body=body if isinstance(body, dict) else {})

    def session_token(self, user: SsoUser) -> str:
        """Sign ``user`` in and return the session token; fail loudly if refused."""
        answer = self.sign_in(user.name, user.password)
        if answer.token is None:
            msg = f"sign-in of {user.name} answered {answer.status}: {answer.body}"
            raise RuntimeError(msg)
        return answer.token

    # -- what it saw ---------------------------------------------------------------------

    def requests(self) -> list[SignInRequest]:
        """Every request the service answered so far, in order, across restarts."""
        path = self.directory / "requests.jsonl"
        if not path.exists():
            return []
        found = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                found.append(SignInRequest(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # the line being written right now
        return found

    def sign_ins(self, name: str) -> SignIns:
        """How many of ``name``'s sign-ins succeeded and were refused, across restarts."""
        answers = [r.status for r in self.requests() if r.path == LOGIN_PATH and r.user == name]
        return SignIns(
            succeeded=sum(status == 200 for status in answers),
            refused=sum(status == 401 for status in answers),
        )

    # -- state file ----------------------------------------------------------------------

    @staticmethod
    def _user(state: dict[str, Any], name: str) -> dict[str, Any]:
        try:
            user: dict[str, Any] = state["users"][name]
        except KeyError:
            msg = f"no SSO user {name!r}"
            raise KeyError(msg) from None
        return user

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """The state to change, written back atomically when the block ends without error.

        A lock file serializes changes from several processes (the harness and the command
        line); the service only reads, and sees the old state or the new, never a mix.
        """
        with (self.directory / "users.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = _read_state(self.directory)
            yield state
            self._write_state(state)

    def _write_state(self, state: dict[str, Any]) -> None:
        staged = self.directory / "users.json.new"
        staged.write_text(json.dumps(state, indent=2))
        staged.chmod(0o600)
        staged.replace(self.directory / "users.json")


def _read_state(directory: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((directory / "users.json").read_text())
    return state


# -- the service process ----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """HTTPS on loopback; each connection's TLS handshake runs in its own thread.

    Wrapping the listening socket instead would run every handshake in the accept loop,
    where one client that never finishes it would stall all others.
    """

    daemon_threads = True

    def __init__(self, directory: Path, *, parent: int) -> None:
        config = json.loads((directory / "config.json").read_text())
        self.directory = directory
        self.parent = parent
        self.key = _load_key(directory / "signing.key")
        self.jwk = public_jwk(self.key)
        self.issuer = f"https://127.0.0.1:{config['port']}"
        self.audience: str = config["audience"]
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        self.record_lock = threading.Lock()
        self.orphaned = False
        self.records = (directory / "requests.jsonl").open("a")
        super().__init__(("127.0.0.1", config["port"]), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if not isinstance(request, socket.socket):
            return
        request.settimeout(_CONNECTION_TIMEOUT)
        try:
            connection = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that gave up, or that does not speak TLS
        try:
            _Handler(connection, client_address, self)
        except OSError:
            pass  # the client went away mid-answer
        finally:
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        print(f"error answering {client_address}", file=sys.stderr, flush=True)

    def service_actions(self) -> None:
        # The parent-death signal covers an orderly exit and a kill alike; this covers the
        # one case it misses: a parent that died before the signal was asked for.
        if os.getppid() != self.parent and not self.orphaned:
            self.orphaned = True
            threading.Thread(target=self.shutdown, daemon=True).start()

    def record(self, entry: SignInRequest) -> None:
        line = json.dumps(entry.__dict__, separators=(",", ":"))
        with self.record_lock:
            self.records.write(line + "\n")
            self.records.flush()


class _Handler(BaseHTTPRequestHandler):
    """Answers /wcp/login, the OIDC discovery document and the JWKS; nothing else."""

    server: _Server
    server_version = "signin"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path == DISCOVERY_PATH:
            self._answer(
                200,
                {
                    "issuer": self.server.issuer,
                    "jwks_uri": self.server.issuer + JWKS_PATH,
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256"],
                },
            )
        elif self.path == JWKS_PATH:
            self._answer(200, {"keys": [self.server.jwk]})
        elif self.path == LOGIN_PATH:
            self._answer(405, {"message": "sign in with POST"}, extra={"Allow": "POST"})
        else:
            self._answer(404, {"message": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._answer(413, {"message": "request body too large"})
            return
        self.rfile.read(length)
        if self.path != LOGIN_PATH:
            self._answer(404, {"message": "not found"})
            return
        user, password = self._basic()
        reason = self._refusal(user, password)
        if reason:
            message = {
                "no-credentials": "sign in with HTTP Basic credentials",
                "locked": "the account is locked",
            }.get(reason, "invalid user name or password")
            extra = {"WWW-Authenticate": f'Basic realm="{SSO_DOMAIN}"'}
            self._answer(401, {"message": message}, user=user, reason=reason, extra=extra)
            return
        state = _read_state(self.server.directory)
        # Read again: a user removed since the check still gets the token it signed in for.
        lifetime = state["users"].get(user, {}).get("token_lifetime", state["token_lifetime"])
        token = mint(
            self.server.key,
            issuer=self.server.issuer,
            audience=self.server.audience,
            subject=user,
            lifetime=int(lifetime),
        )
        self._answer(200, {"session_id": token}, user=user)

    def _basic(self) -> tuple[str, str | None]:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return "", None
        try:
            user, colon, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:
            return "", None
        return (user, password) if colon else ("", None)

    def _refusal(self, user: str, password: str | None) -> str:
        """Why the sign-in is refused, or "" when it succeeds."""
        if password is None:
            return "no-credentials"
        known = _read_state(self.server.directory)["users"].get(user)
        if known is None:
            return "unknown-user"
        expected = known["hash"]
        if not hmac.compare_digest(
            _password_hash(password, bytes.fromhex(known["salt"])), expected
        ):
            return "wrong-password"
        return "locked" if known["locked"] else ""

    def _answer(
        self,
        status: int,
        body: dict[str, Any],
        *,
        user: str = "",
        reason: str = "",
        extra: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        scheme = self.headers.get("Authorization", "").partition(" ")[0].lower()
        self.server.record(
            SignInRequest(
                method=self.command,
                path=self.path,
                basic=scheme == "basic",
                bearer=scheme == "bearer",
                user=user,
                status=status,
                reason=reason,
                received=time.time(),
                user_agent=self.headers.get("User-Agent", ""),
            )
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: requests.jsonl records every request, without the noise."""


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when the harness dies; exit if it already has."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(0)


def serve(directory: Path, *, parent: int) -> int:
    """Serve until the parent stops it (SIGTERM) or dies."""
    _die_with_parent(parent)
    server = _Server(directory, parent=parent)
    # Listening from here on: connections queue until the loop takes them.
    staged = directory / "ready.new"
    staged.write_text(str(os.getpid()))
    staged.replace(directory / "ready")
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    return 0


def main() -> int:
    """``serve`` (run by :meth:`SignInService.start`), and a person's controls for ``make up``."""
    parser = argparse.ArgumentParser(prog="python -m harness.signin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the service (the harness starts it)")
    run.add_argument("--parent", type=int, required=True)
    for name, help_text in (
        ("add-user", "add an SSO user and print its generated password"),
        ("remove-user", "remove an SSO user"),
        ("lock", "lock an SSO user"),
        ("unlock", "unlock an SSO user"),
    ):
        commands.add_parser(name, help=help_text).add_argument("user")
    lifetime = commands.add_parser("lifetime", help="set everyone's token lifetime")
    lifetime.add_argument("seconds", type=int)
    for command in commands.choices.values():
        command.add_argument("--directory", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "serve":
        return serve(args.directory, parent=args.parent)
    service = SignInService(args.directory)
    if args.command == "add-user":
        print(service.add_user(args.user, secrets.token_urlsafe(18)).password)
    elif args.command == "remove-user":
        service.remove_user(args.user)
    elif args.command == "lock":
        service.lock(args.user)
    elif args.command == "unlock":
        service.unlock(args.user)
    else:
        service.set_token_lifetime(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
