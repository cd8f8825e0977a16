"""A kubeconfig from a Secret is data: the shapes the operator accepts, every field it
refuses (named by its path), and that no message about a malformed one holds a byte of it.

Everything goes through ``remote.build_client``, the one way the operator turns a Secret into
a client, so that the same tests judge any implementation of it. The malformed kubeconfigs
each carry a canary token; neither the canary, nor any 6-character piece of it, nor its
base64 form may appear in the message, or anywhere in the traceback a log would print. The
TLS tests run a small HTTPS server on 127.0.0.1 and check what a client built from the
kubeconfig presents to it and how it verifies it.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import http.server
import ipaddress
import json
import ssl
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes.config import kube_config

from shared_services import remote
from shared_services.kube import KubeError

CANARY = "QZ7K4XW9M2VRJ8TPL5HD"
SERVER = "https://127.0.0.1:6443"


# --- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A certificate and its key, in PEM."""

    cert: bytes
    key: bytes

    @property
    def cert_data(self) -> str:
        return base64.b64encode(self.cert).decode()

    @property
    def key_data(self) -> str:
        return base64.b64encode(self.key).decode()


@dataclass(frozen=True)
class Authority:
    """A CA that issues certificates for the tests."""

    name: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def _builder(
        self, common_name: str, key: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    @functools.cached_property
    def pem(self) -> bytes:
        cert = (
            self._builder(self.name, self.key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    @property
    def data(self) -> str:
        return base64.b64encode(self.pem).decode()

    def issue(
        self, common_name: str, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()
    ) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = self._builder(common_name, key)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Pair(
            cert=cert.public_bytes(serialization.Encoding.PEM),
            key=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority("test-ca")


@pytest.fixture(scope="module")
def client_pair(authority: Authority) -> Pair:
    return authority.issue("operator")


# --- kubeconfigs ----------------------------------------------------------------------------------


def _config(ca_data: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "sup", "cluster": {"server": SERVER, "certificate-authority-data": ca_data}}
        ],
        "users": [{"name": "reader", "user": user or {"token": "good-token-0123456789"}}],
        "contexts": [{"name": "sup", "context": {"cluster": "sup", "user": "reader"}}],
        "current-context": "sup",
    }


def _build(config: dict[str, Any] | str, *, context: str | None = None) -> remote.Kube:
    text = config if isinstance(config, str) else yaml.safe_dump(config)
    return remote.build_client(text, context=context)


def _refusal(config: dict[str, Any] | str, *, context: str | None = None) -> Exception:
    with pytest.raises(remote.CredentialsError) as caught:
        _build(config, context=context).api_client.close()
    return caught.value


@pytest.fixture
def kubeconfig() -> ModuleType:
    """The pure module, imported here so that the other tests run without it too."""
    from shared_services import kubeconfig  # noqa: PLC0415

    return kubeconfig


# --- accepted shapes ------------------------------------------------------------------------------


def test_a_token(authority: Authority, kubeconfig: ModuleType) -> None:
    config = _config(authority.data)
    kube = _build(config)
    assert kube.host == SERVER
    kube.api_client.close()
    parsed = kubeconfig.parse(yaml.safe_dump(config))
    assert parsed.server == SERVER
    assert parsed.credentials == kubeconfig.BearerToken("good-token-0123456789")
    assert parsed.ca_pem == authority.pem
    assert "good-token" not in repr(parsed)


def test_a_client_certificate_and_key(
    authority: Authority, client_pair: Pair, kubeconfig: ModuleType
) -> None:
    user = {
        "client-certificate-data": client_pair.cert_data,
        "client-key-data": client_pair.key_data,
    }
    config = _config(authority.data, user)
    _build(config).api_client.close()
    parsed = kubeconfig.parse(yaml.safe_dump(config))
    assert parsed.credentials == kubeconfig.ClientCertificate(
        certificate_pem=client_pair.cert, key_pem=client_pair.key
    )
    assert "PRIVATE" not in repr(parsed)


def test_two_contexts_and_spec_context_chooses(
    authority: Authority, kubeconfig: ModuleType
) -> None:
    config = _config(authority.data)
    config["clusters"].append(
        {
            "name": "other",
            "cluster": {
                "server": "https://127.0.0.2:8443/prefix/",
                "certificate-authority-data": authority.data,
            },
        }
    )
    config["users"].append({"name": "other", "user": {"token": "other-token-0123456789"}})
    config["contexts"].append(
        {"name": "other", "context": {"cluster": "other", "user": "other", "namespace": "x"}}
    )
    text = yaml.safe_dump(config)
    chosen = kubeconfig.parse(text, context="other")
    assert chosen.server == "https://127.0.0.2:8443/prefix"
    assert chosen.credentials == kubeconfig.BearerToken("other-token-0123456789")
    assert chosen.cluster_path == "clusters[1].cluster"
    current = kubeconfig.parse(text)
    assert current.credentials == kubeconfig.BearerToken("good-token-0123456789")
    kube = _build(text, context="other")
    assert kube.host == "https://127.0.0.2:8443/prefix"
    kube.api_client.close()
    # Without current-context, two contexts leave the choice open: a person must make it.
    del config["current-context"]
    error = _refusal(config)
    assert error.reason == "KubeconfigInvalid"
    assert "spec.context" in error.message


def test_what_kubectl_and_other_tools_write_besides(
    authority: Authority, kubeconfig: ModuleType
) -> None:
    config = _config(authority.data)
    del config["current-context"]  # the only context is the one
    config["preferences"] = {}
    config["extensions"] = [{"name": "tool", "extension": {"anything": ["at", "all"]}}]
    cluster = config["clusters"][0]["cluster"]
    cluster.update(
        {
            "tls-server-name": "supervisor.internal",
            "insecure-skip-tls-verify": False,
            "disable-compression": True,
            "extensions": [{"name": "cluster_info", "extension": {"provider": "minikube"}}],
        }
    )
    config["contexts"][0]["context"]["namespace"] = "shared-db"
    parsed = kubeconfig.parse(yaml.safe_dump(config))
    assert parsed.tls_server_name == "supervisor.internal"
    _build(config).api_client.close()


def test_without_a_ca_the_system_trust_store_verifies(kubeconfig: ModuleType) -> None:
    config = _config("")
    del config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert kubeconfig.parse(yaml.safe_dump(config)).ca_pem is None
    kube = _build(config)
    assert kube.api_client.configuration.verify_ssl
    kube.api_client.close()


# --- refused fields -------------------------------------------------------------------------------

_CMD = {"cmd-path": "/usr/bin/touch", "cmd-args": "/nonexistent/never"}
REFUSED = [
    ("clusters", "insecure-skip-tls-verify", True),
    ("clusters", "certificate-authority", "/etc/ssl/certs/ca.pem"),
    ("clusters", "proxy-url", "http://127.0.0.1:3128"),
    ("users", "auth-provider", {"name": "gcp", "config": _CMD}),
    (
        "users",
        "auth-provider",
        {"name": "oidc", "config": {"idp-issuer-url": "https://127.0.0.1:1"}},
    ),
    ("users", "exec", {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/true"}),
    ("users", "tokenFile", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
    ("users", "token-file", "/var/run/secrets/token"),
    ("users", "client-certificate", "/etc/kubernetes/pki/admin.crt"),
    ("users", "client-key", "/etc/kubernetes/pki/admin.key"),
    ("users", "username", "admin"),
    ("users", "password", "hunter2-password"),
    ("users", "as", "system:admin"),
    ("users", "as-uid", "1234"),
    ("users", "as-groups", ["system:masters"]),
    ("users", "as-user-extra", {"scopes": ["all"]}),
]


@pytest.mark.parametrize(
    ("where", "key", "value"), REFUSED, ids=[f"{w}-{k}" for w, k, _ in REFUSED]
)
def test_a_field_that_runs_reads_or_weakens_is_refused_by_its_path(
    authority: Authority, where: str, key: str, value: Any
) -> None:
    config = _config(authority.data)
    item = config[where][0][where.rstrip("s")]
    item[key] = value
    error = _refusal(config)
    assert error.reason == "InsecureKubeconfig"
    assert f"{where}[0].{where.rstrip('s')}.{key} " in error.message
    advice = error.message.split("; ", 1)[1]  # what to do instead
    assert any(word in advice for word in ("-data", "token", "directly"))


def test_a_refused_field_in_an_unused_entry_is_refused_too(authority: Authority) -> None:
    config = _config(authority.data)
    config["users"].append({"name": "admin", "user": {"exec": {"command": "/bin/true"}}})
    error = _refusal(config)
    assert error.reason == "InsecureKubeconfig"
    assert "users[1].user.exec" in error.message


def test_an_auth_provider_runs_nothing(authority: Authority, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = _config(
        authority.data,
        {
            "auth-provider": {
                "name": "gcp",
                "config": {"cmd-path": "/usr/bin/touch", "cmd-args": str(marker)},
            }
        },
    )
    with pytest.raises(remote.CredentialsError) as caught:
        _build(config).api_client.close()
    assert not marker.exists(), "the kubeconfig's program ran"
    assert caught.value.reason == "InsecureKubeconfig"
    assert "users[0].user.auth-provider" in caught.value.message


@pytest.mark.parametrize(
    ("path", "section"),
    [
        (("surprise",), "the top level"),
        (("clusters", 0, "cluster", "surprise"), "clusters[0].cluster"),
        (("users", 0, "user", "surprise"), "users[0].user"),
        (("contexts", 0, "context", "surprise"), "contexts[0].context"),
        (("clusters", 0, "surprise"), "clusters[0]"),
        (("preferences", "surprise"), "preferences"),
    ],
)
def test_an_unknown_field_is_refused_without_naming_it(
    authority: Authority, path: tuple[Any, ...], section: str
) -> None:
    config = _config(authority.data)
    config.setdefault("preferences", {})
    target: Any = config
    for step in path[:-1]:
        target = target[step]
    target[f"{path[-1]}-{CANARY}"] = "x"
    error = _refusal(config)
    assert error.reason == "KubeconfigInvalid"
    assert f"of {section} is not one" in error.message
    assert "surprise" not in error.message
    _no_canary(error)


# --- malformed kubeconfigs carrying a canary ------------------------------------------------------

TEMPLATE = """apiVersion: v1
kind: Config
clusters:
- name: sup
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: reader
  user:
{user}
contexts:
- name: sup
  context:
    cluster: sup
    user: reader
current-context: {current}
"""


@dataclass(frozen=True)
class Malformed:
    """A kubeconfig that carries the canary, and what its refusal must say."""

    name: str
    user: str = f"    token: {CANARY}"
    server: str = SERVER
    ca: str | None = None  # None: the test CA
    current: str = "sup"
    text: str | None = None  # the whole document, instead of the template
    says: str = ""
    reason: str = "KubeconfigInvalid"


_B64 = base64.b64encode(CANARY.encode()).decode()
MALFORMED = [
    Malformed(
        "yaml-broken-at-the-token-line", user=f"    token: {CANARY}: x", says="line 11, column"
    ),
    Malformed(
        "unclosed-quote-around-the-token", user=f'    token: "{CANARY}', says="quote not closed"
    ),
    Malformed("tab-before-the-token", user=f"\ttoken: {CANARY}", says="line 11, column 1: "),
    Malformed(
        "token-a-mapping",
        user=f"    token: {{{CANARY}: 1}}",
        says="users[0].user.token must be a string",
    ),
    Malformed(
        "token-a-list", user=f"    token: [{CANARY}]", says="users[0].user.token must be a string"
    ),
    Malformed("token-a-date", user="    token: 2026-13-45", says="line 11, column 12: a date"),
    Malformed(
        "ca-data-not-base64",
        ca=f"{CANARY}-_",
        says="clusters[0].cluster.certificate-authority-data is not base64",
    ),
    Malformed(
        "ca-data-base64-but-not-pem",
        ca=_B64,
        says="clusters[0].cluster.certificate-authority-data is base64, but not of PEM",
    ),
    Malformed(
        "ca-data-pem-but-no-certificate",
        ca=base64.b64encode(
            f"-----BEGIN CERTIFICATE-----\n{_B64}\n-----END CERTIFICATE-----\n".encode()
        ).decode(),
        says="clusters[0].cluster.certificate-authority-data holds no certificate",
    ),
    Malformed(
        "key-data-not-base64",
        user=f"    client-certificate-data: {_B64}\n    client-key-data: {CANARY}%%",
        says="users[0].user.client-key-data is not base64",
    ),
    Malformed(
        "token-with-a-newline",
        user=f'    token: "{CANARY}\\nmore"',
        says="users[0].user.token holds",
    ),
    Malformed(
        "token-ending-in-a-newline", user=f'    token: "{CANARY}\\n"', says="ends with a line break"
    ),
    Malformed(
        "token-with-a-space",
        user=f'    token: "{CANARY} {CANARY}"',
        says="users[0].user.token holds",
    ),
    Malformed(
        "token-with-a-nul", user=f'    token: "{CANARY}\\0"', says="users[0].user.token holds"
    ),
    Malformed(
        "token-not-ascii", user=f'    token: "{CANARY}\u20ac"', says="users[0].user.token holds"
    ),
    Malformed(
        "token-huge", user=f"    token: {CANARY * 1000}", says="users[0].user.token is longer than"
    ),
    Malformed("document-huge", user=f"    token: {CANARY * 15000}", says="bytes, more than the"),
    Malformed("token-an-alias", user=f"    token: *{CANARY}", says="line 11, column 12: an anchor"),
    Malformed(
        "token-an-anchor",
        user=f"    token: &{CANARY} x\n    extensions: [*{CANARY}]",
        says="line 11, column 12: an anchor",
    ),
    Malformed(
        "duplicate-token-key",
        user=f"    token: {CANARY}\n    token: {CANARY}x",
        says="line 12, column 5: a key that appears twice",
    ),
    Malformed(
        "tag-named-by-the-token", user=f"    token: !{CANARY} x", says="line 11, column 12: a tag"
    ),
    Malformed(
        "bad-escape-in-the-token", user=f'    token: "{CANARY}\\q"', says="unknown escape sequence"
    ),
    Malformed(
        "control-character-in-the-token",
        user=f"    token: {CANARY}\x07",
        says="line 11, column 32: a control character",
    ),
    Malformed("unclosed-bracket", user=f"    token: [{CANARY}", says="not closed"),
    Malformed(
        "unknown-field-named-by-the-token",
        user=f"    {CANARY}: x",
        says="the 1st field of users[0].user",
    ),
    Malformed(
        "current-context-named-by-the-token", current=CANARY, says="current-context names none"
    ),
    Malformed(
        "server-with-the-token-as-password",
        server=f"https://x:{CANARY}@127.0.0.1:6443",
        says="clusters[0].cluster.server must not hold a user",
    ),
    Malformed(
        "server-with-the-token-in-a-query",
        server=f"https://127.0.0.1:6443/?token={CANARY}",
        says="clusters[0].cluster.server must not hold a query",
    ),
    Malformed(
        "server-not-https",
        server=f"http://127.0.0.1:6443/{CANARY}",
        says="clusters[0].cluster.server must start with https://",
    ),
    Malformed("document-only-the-token", text=CANARY, says="must be a YAML mapping, not a string"),
    Malformed("document-a-list", text=f"- {CANARY}\n", says="must be a YAML mapping, not a list"),
    Malformed(
        "two-documents",
        text=f"a: 1\n---\nb: {CANARY}\n",
        says="line 2, column 1: more than one YAML document",
    ),
    Malformed(
        "merge-key", user=f"    <<: {{token: {CANARY}}}", says="line 11, column 5: a merge key"
    ),
    Malformed(
        "nesting-too-deep",
        user="    token: " + "[" * 40 + CANARY + "]" * 40,
        says="nesting deeper than",
    ),
    Malformed(
        "auth-provider-with-the-token",
        user=f"    auth-provider: {{name: {CANARY}}}",
        says="users[0].user.auth-provider",
        reason="InsecureKubeconfig",
    ),
]


def _pieces(value: str, size: int = 6) -> set[str]:
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def _no_canary(error: BaseException) -> None:
    """Neither the canary, nor a piece of it, nor its base64 form: in the message or the
    traceback that a log line would print."""
    printed = "".join(traceback.format_exception(error))
    for text in (str(error), printed):
        leaked = sorted(p for p in _pieces(CANARY) if p in text)
        assert not leaked, f"pieces of the canary in {text!r}"
        assert _B64 not in text
        assert _B64.rstrip("=") not in text


def _text(case: Malformed, authority: Authority) -> str:
    if case.text is not None:
        return case.text
    return TEMPLATE.format(
        server=case.server,
        ca=authority.data if case.ca is None else case.ca,
        user=case.user,
        current=case.current,
    )


@pytest.mark.parametrize("case", MALFORMED, ids=[c.name for c in MALFORMED])
def test_a_malformed_kubeconfig_is_described_without_a_byte_of_it(
    case: Malformed, authority: Authority
) -> None:
    text = _text(case, authority)
    assert CANARY in text or case.name == "token-a-date"
    error = _refusal(text)
    assert error.reason == case.reason
    assert case.says in error.message
    _no_canary(error)


def test_a_yaml_error_names_where_and_what(authority: Authority) -> None:
    error = _refusal(_text(MALFORMED[1], authority))
    assert error.message == (
        "the kubeconfig is not valid YAML: line 18, column 1: the text ends inside a value "
        "(a quote not closed?) (in a quoted string that starts at line 11, column 12)"
    )


def test_many_problems_are_named_at_once(authority: Authority) -> None:
    config = _config(authority.data, {"token": 5, "client-key-data": "%"})
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1"
    config["apiVersion"] = "v2"
    error = _refusal(config)
    assert error.reason == "KubeconfigInvalid"
    assert error.message.count("; ") >= 2
    assert "and 1 more problems" in error.message


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda c: c.pop("clusters"), "names no clusters"),
        (lambda c: [c.pop("contexts"), c.pop("current-context")], "names no contexts"),
        (
            lambda c: c["contexts"][0]["context"].update(cluster="gone"),
            "contexts[0].context.cluster names none",
        ),
        (
            lambda c: c["contexts"][0]["context"].update(user="gone"),
            "contexts[0].context.user names none",
        ),
        (
            lambda c: c["clusters"][0]["cluster"].pop("server"),
            "clusters[0].cluster.server is missing",
        ),
        (lambda c: c["users"][0].update(user={}), "users[0].user holds no credentials"),
        (
            lambda c: c["clusters"].append(copy.deepcopy(c["clusters"][0])),
            "clusters[1].name is the same as clusters[0].name",
        ),
        (lambda c: c.update(clusters={"sup": {}}), "clusters must be a list, not a mapping"),
        (
            lambda c: c["clusters"][0]["cluster"].update({"tls-server-name": "a b"}),
            "tls-server-name is not a host name",
        ),
        (
            lambda c: c["clusters"][0]["cluster"].update({"disable-compression": "yes"}),
            "must be true or false",
        ),
    ],
)
def test_a_missing_or_dangling_piece_is_named(
    authority: Authority, change: Callable[[dict[str, Any]], object], says: str
) -> None:
    config = _config(authority.data)
    change(config)
    error = _refusal(config)
    assert error.reason == "KubeconfigInvalid"
    assert says in error.message


def test_spec_context_that_names_no_context(authority: Authority) -> None:
    error = _refusal(_config(authority.data), context="elsewhere")
    assert error.reason == "KubeconfigInvalid"
    assert "'elsewhere'" in error.message
    assert "spec.context" in error.message


def test_a_key_that_does_not_match_its_certificate(authority: Authority, client_pair: Pair) -> None:
    other = authority.issue("someone-else")
    user = {"client-certificate-data": client_pair.cert_data, "client-key-data": other.key_data}
    error = _refusal(_config(authority.data, user))
    assert error.reason == "KubeconfigInvalid"
    assert "users[0].user.client-certificate-data and client-key-data are not" in error.message


def test_an_encrypted_key_is_refused(authority: Authority, client_pair: Pair) -> None:
    key = serialization.load_pem_private_key(client_pair.key, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret-passphrase"),
    )
    user = {
        "client-certificate-data": client_pair.cert_data,
        "client-key-data": base64.b64encode(encrypted).decode(),
    }
    error = _refusal(_config(authority.data, user))
    assert "users[0].user.client-key-data is an encrypted key" in error.message


# --- what the client built from it does -----------------------------------------------------------


@dataclass
class Seen:
    """What the loopback server saw of each request."""

    authorization: list[str | None] = field(default_factory=list)
    client_subjects: list[str | None] = field(default_factory=list)


@dataclass(frozen=True)
class Server:
    url: str
    authority: Authority
    seen: Seen


@pytest.fixture
def server(tmp_path: Path, authority: Authority) -> Iterator[Server]:
    """An HTTPS server on 127.0.0.1 whose certificate is valid for supervisor.internal only,
    and which asks for (but does not require) a client certificate from the test CA."""
    pair = authority.issue("supervisor", dns=("supervisor.internal",))
    (tmp_path / "server.crt").write_bytes(pair.cert)
    (tmp_path / "server.key").write_bytes(pair.key)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=authority.pem.decode())
    tls.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    tls.verify_mode = ssl.CERT_OPTIONAL
    seen = Seen()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            peer = self.connection.getpeercert()  # type: ignore[attr-defined]
            subject = dict(x[0] for x in peer["subject"]).get("commonName") if peer else None
            seen.client_subjects.append(subject)
            seen.authorization.append(self.headers.get("Authorization"))
            status, body = 200, json.dumps({"gitVersion": "v1.37.2"}).encode()
            if self.path == "/echo":  # a server that quotes the request back in its refusal
                status = 403
                message = f"forbidden: request had Authorization: {self.headers['Authorization']}"
                body = json.dumps({"kind": "Status", "reason": "Forbidden", "message": message})
                body = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    httpd.handle_error = lambda *_: None  # type: ignore[method-assign]  # refused handshakes
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Server(
            url=f"https://127.0.0.1:{httpd.server_address[1]}", authority=authority, seen=seen
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _server_config(server: Server, user: dict[str, Any], **cluster: Any) -> dict[str, Any]:
    config = _config(server.authority.data, user)
    config["clusters"][0]["cluster"].update(server=server.url, **cluster)
    return config


def test_a_token_is_sent_as_a_bearer_header(server: Server) -> None:
    config = _server_config(
        server, {"token": "good-token-0123456789"}, **{"tls-server-name": "supervisor.internal"}
    )
    kube = _build(config)
    assert kube.request("GET", "/version") == {"gitVersion": "v1.37.2"}
    kube.api_client.close()
    assert server.seen.authorization == ["Bearer good-token-0123456789"]
    assert server.seen.client_subjects == [None]


def test_a_client_certificate_is_presented(server: Server, client_pair: Pair) -> None:
    user = {
        "client-certificate-data": client_pair.cert_data,
        "client-key-data": client_pair.key_data,
    }
    kube = _build(_server_config(server, user, **{"tls-server-name": "supervisor.internal"}))
    kube.request("GET", "/version")
    kube.request("GET", "/version")
    kube.api_client.close()
    assert server.seen.client_subjects == ["operator", "operator"]
    assert server.seen.authorization == [None, None]


def test_the_server_name_is_verified(server: Server) -> None:
    kube = _build(_server_config(server, {"token": "good-token-0123456789"}))
    with pytest.raises(KubeError) as caught:
        kube.request("GET", "/version", timeout=(2.0, 2.0))
    kube.api_client.close()
    assert remote._describe_failure(caught.value)[0] == "TLSUntrusted"
    assert server.seen.authorization == []


def test_a_server_of_another_ca_is_not_trusted(server: Server) -> None:
    other = Authority("other-ca")
    config = _server_config(
        server, {"token": "good-token-0123456789"}, **{"tls-server-name": "supervisor.internal"}
    )
    config["clusters"][0]["cluster"]["certificate-authority-data"] = other.data
    kube = _build(config)
    with pytest.raises(KubeError) as caught:
        kube.request("GET", "/version", timeout=(2.0, 2.0))
    kube.api_client.close()
    assert remote._describe_failure(caught.value)[0] == "TLSUntrusted"
    assert server.seen.authorization == []


def test_no_temporary_file_is_left_per_connection_attempt(
    server: Server, client_pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    before = dict(kube_config._temp_files)
    for attempt in range(3):
        # A rotated Secret each time: a new key and certificate.
        pair = client_pair if attempt == 0 else server.authority.issue("operator")
        user = {"client-certificate-data": pair.cert_data, "client-key-data": pair.key_data}
        kube = _build(_server_config(server, user, **{"tls-server-name": "supervisor.internal"}))
        kube.request("GET", "/version")
        kube.api_client.close()
    assert server.seen.client_subjects == ["operator"] * 3
    assert list(temporary.iterdir()) == []
    assert kube_config._temp_files == before


def test_a_server_that_echoes_the_token_does_not_put_it_in_messages(server: Server) -> None:
    token = "echoed-token-0123456789abcdef"
    config = _server_config(server, {"token": token}, **{"tls-server-name": "supervisor.internal"})
    kube = _build(config)
    with pytest.raises(KubeError) as caught:
        kube.request("GET", "/echo")
    kube.api_client.close()
    assert server.seen.authorization == [f"Bearer {token}"]
    reason, message = remote._describe_failure(caught.value)
    assert reason == "Forbidden"
    assert "[redacted]" in message
    for text in (message, str(caught.value), repr(caught.value)):
        assert not _pieces(token) & {text[i : i + 6] for i in range(len(text))}, text
