"""Every answer a server can give becomes a :class:`KubeError` or a JSON object, and a write
is sent once, within what is left of the lease.

A small server on 127.0.0.1 gives the answers that no API server gives but a proxy, a
portal or a cut connection before one may: a body cut off in the middle, a page of HTML
with 200, JSON that is not an object or nests past what a parser can follow, an error whose
details have another shape, an error message as long as a book with a credential in it.
Pinned:

- each is a :class:`KubeError` that says what came back, temporary, so callers that catch
  only those (every loop of the operator) retry instead of ending;
- a message quoted from a server is bounded, and scrubbed of the client's credentials
  before it is cut, so no piece of one survives at the cut;
- a write (POST, PUT, PATCH, DELETE) reaches the server once: the client library re-sends
  nothing on its own, where the fence would not be asked again;
- a write is refused before it is sent when no time is left, and otherwise may take no
  longer than the time that is left.

Each holds for both ways a request goes: through the kubernetes client's pool from a thread,
and through aiohttp from the event loop (:class:`AsyncKube`, the operator's writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client as k8s

from harness.pki import write_pki
from shared_services import kube as kube_module
from shared_services.api import JSON
from shared_services.kube import (
    AsyncKube,
    Conflict,
    Fenced,
    Forbidden,
    Gone,
    Invalid,
    Kube,
    KubeError,
    NotFound,
    TooManyRequests,
    Unauthorized,
)

TOKEN = "s3cr3t-token-0123456789abcdefghij"


def _answer(status: str, body: bytes, *, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Server:
    """A server on loopback that gives every request the same answer (b"" hangs up)."""

    answer: bytes
    silent: bool = False  # read the request, then say nothing until the client gives up
    requests: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)  # each request's line and headers
    _sock: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def serve(self) -> None:
        with self._sock:
            self._serve()

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            # OSError: the client hung up first, which some tests make it do.
            with conn, contextlib.suppress(OSError):
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = conn.recv(65536)
            if not chunk:
                break
            head += chunk
        if not head:
            return
        self.requests.append(head.split(b"\r\n", 1)[0].decode())
        self.heads.append(head.decode(errors="replace"))
        if self.silent:
            # Bounded: the client hangs up once its timeout passes.
            while not self._stopped.is_set() and conn.recv(65536):
                pass
            return
        conn.sendall(self.answer)

    def stop(self) -> None:
        self._stopped.set()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[tuple[Server, threading.Thread]] = []

    def start(answer: bytes = b"", *, silent: bool = False) -> Server:
        server = Server(answer, silent=silent)
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.stop()
        thread.join(timeout=15)


def _kube(server: Server, **kwargs: object) -> Kube:
    configuration = k8s.Configuration(host=server.url)
    configuration.api_key = {"BearerToken": TOKEN}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return Kube(k8s.ApiClient(configuration), secrets=(TOKEN,), **kwargs)  # type: ignore[arg-type]


Send = Callable[..., JSON]


@pytest.fixture(params=["thread", "loop"])
def send(request: pytest.FixtureRequest) -> Send:
    """``kube.request`` as sent from a thread, or from the loop through an AsyncKube."""
    if request.param == "thread":
        return lambda kube, *args, **options: kube.request(*args, **options)

    async def from_loop(kube: Kube, *args: Any, **options: Any) -> JSON:
        client = AsyncKube(kube)
        try:
            return await client.request(*args, **options)
        finally:
            await client.close()

    return lambda kube, *args, **options: asyncio.run(from_loop(kube, *args, **options))


def test_a_body_cut_off_in_the_middle_is_a_connection_error(
    serve: Callable[..., Server], send: Send
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
    server = serve(head + b'{"items": [')
    with pytest.raises(KubeError) as failed:
        send(_kube(server), "GET", "/api/v1/services")
    assert failed.value.temporary
    assert failed.value.reason == "ConnectionError"


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (b"<html><body>Please sign in</body></html>", "text/html", "text/html"),
        (b"[1, 2, 3]", "application/json", "not a JSON object"),
        (b'"v1.34.0"', "application/json", "not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "not JSON"),
        (b'{"gitVersion": "\xff\xfe"}', "application/json", "not JSON"),
    ],
    ids=["html", "list", "string", "nested", "not-utf8"],
)
def test_an_answer_that_is_not_a_json_object_is_invalid(
    serve: Callable[..., Server], send: Send, body: bytes, content_type: str, said: str
) -> None:
    server = serve(_answer("200 OK", body, content_type=content_type))
    with pytest.raises(KubeError) as failed:
        send(_kube(server), "GET", "/version")
    assert failed.value.temporary
    assert failed.value.reason == "InvalidResponse"
    assert said in failed.value.message
    assert len(failed.value.message) < 300


@pytest.mark.parametrize(
    "details",
    ["not an object", {"causes": 5}, {"causes": ["a", {"field": 7}]}, [1, 2]],
    ids=["string", "causes-number", "causes-mixed", "list"],
)
def test_an_error_whose_details_have_another_shape(
    serve: Callable[..., Server], details: object
) -> None:
    refusal = {"kind": "Status", "reason": "Invalid", "message": "no", "details": details}
    server = serve(_answer("422 Unprocessable Entity", json.dumps(refusal).encode()))
    with pytest.raises(KubeError) as failed:
        _kube(server).request("GET", "/api/v1/services")
    assert failed.value.status == 422
    assert failed.value.message == "no"


@pytest.mark.parametrize(
    ("status", "kind", "temporary"),
    [
        ("401 Unauthorized", Unauthorized, False),
        ("403 Forbidden", Forbidden, False),
        ("404 Not Found", NotFound, False),
        ("409 Conflict", Conflict, False),
        ("410 Gone", Gone, False),
        ("422 Unprocessable Entity", Invalid, False),
        ("429 Too Many Requests", TooManyRequests, True),
        ("500 Internal Server Error", KubeError, True),
    ],
)
def test_each_answer_the_code_tells_apart_has_its_class(
    serve: Callable[..., Server], send: Send, status: str, kind: type[KubeError], temporary: bool
) -> None:
    refusal = {"kind": "Status", "reason": status.split(" ", 1)[1], "message": "no"}
    server = serve(_answer(status, json.dumps(refusal).encode()))
    with pytest.raises(KubeError) as failed:
        send(_kube(server), "GET", "/api/v1/services")
    assert type(failed.value) is kind
    assert failed.value.status == int(status.split(maxsplit=1)[0])
    assert failed.value.temporary is temporary


@pytest.mark.parametrize("as_json", [True, False], ids=["status", "text"])
def test_a_long_message_is_bounded_and_no_piece_of_a_credential_survives(
    serve: Callable[..., Server], send: Send, as_json: bool
) -> None:
    # Every 75 characters a token: a bound of 500 or 1,024 characters cuts through one.
    text = "".join(f"{'x' * 40} {TOKEN} " for _ in range(60))
    if as_json:
        body = json.dumps({"kind": "Status", "reason": "Forbidden", "message": text}).encode()
        server = serve(_answer("403 Forbidden", body))
    else:
        server = serve(_answer("403 Forbidden", text.encode(), content_type="text/plain"))
    with pytest.raises(KubeError) as failed:
        send(_kube(server), "GET", "/api/v1/services")
    message = str(failed.value)
    assert len(message) <= 1100
    assert not any(TOKEN[:n] in message for n in range(6, len(TOKEN) + 1))


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_is_sent_once(serve: Callable[..., Server], send: Send, method: str) -> None:
    server = serve(b"")  # hangs up without an answer
    with pytest.raises(KubeError) as failed:
        send(_kube(server), method, "/api/v1/namespaces/web/services/db", body={})
    assert failed.value.temporary
    assert len(server.requests) == 1, server.requests


def test_a_write_with_no_time_left_is_not_sent(serve: Callable[..., Server], send: Send) -> None:
    server = serve(_answer("200 OK", b"{}"))
    kube = _kube(server, may_write=lambda: True, time_left=lambda: 0.0)
    with pytest.raises(Fenced):
        send(kube, "PATCH", "/api/v1/namespaces/web/services/db", body={})
    assert server.requests == []
    assert send(kube, "GET", "/api/v1/namespaces/web/services/db") == {}


def test_a_write_may_take_only_the_time_left(serve: Callable[..., Server]) -> None:
    server = serve(silent=True)
    kube = _kube(server, may_write=lambda: True, time_left=lambda: 0.4)
    with pytest.raises(KubeError) as failed:
        kube.request("PUT", "/api/v1/namespaces/web/services/db", body={})
    waited = re.search(r"read timeout=([0-9.]+)", failed.value.message)
    assert waited is not None, failed.value.message
    assert float(waited[1]) <= 0.4
    assert len(server.requests) == 1


def test_a_write_from_the_loop_may_take_only_the_time_left(serve: Callable[..., Server]) -> None:
    """aiohttp does not say the timeout in its error: the write ends long before its own."""
    server = serve(silent=True)
    kube = _kube(server, may_write=lambda: True, time_left=lambda: 0.4)

    async def write() -> float:
        client = AsyncKube(kube)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with pytest.raises(KubeError) as failed:
                await client.request("PUT", "/api/v1/namespaces/web/services/db", body={})
        finally:
            await client.close()
        assert failed.value.temporary
        return loop.time() - started

    # The read timeout would be 30 seconds; a bound far from 0.4 keeps a slow machine out.
    assert asyncio.run(write()) < kube_module.REQUEST_TIMEOUT[1] / 3
    assert len(server.requests) == 1


def test_the_credentials_are_asked_for_once_a_second_and_at_once_after_a_401(
    serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configuration's refresh runs for the token a request sends, but not every time.

    It reads a token file again once it expired (a projected ServiceAccount token, an exec
    plugin's), and it costs: asked for every request, it was a hundredth of the CPU. The
    module's clock is a stand-in, so that a slow machine cannot stretch the second.
    """
    now = [1000.0]
    monkeypatch.setattr(kube_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    server = serve(_answer("200 OK", b"{}"))
    kube = _kube(server)
    refreshed: list[str] = []

    def refresh(configuration: k8s.Configuration) -> None:
        refreshed.append(f"{TOKEN}-{len(refreshed) + 1}")
        configuration.api_key["BearerToken"] = refreshed[-1]

    kube.api_client.configuration.refresh_api_key_hook = refresh
    for _ in range(5):
        kube.request("GET", "/version")
        now[0] += 0.1
    assert len(refreshed) == 1
    assert all(f"Authorization: Bearer {TOKEN}-1\r\n" in head for head in server.heads)

    now[0] += kube_module.AUTHORIZATION_SECONDS
    kube.request("GET", "/version")
    assert len(refreshed) == 2, "not asked again once the second was over"
    assert f"Bearer {TOKEN}-2\r\n" in server.heads[-1]

    server.answer = _answer("401 Unauthorized", b'{"kind": "Status", "reason": "Unauthorized"}')
    with pytest.raises(Unauthorized):
        kube.request("GET", "/version")
    server.answer = _answer("200 OK", b"{}")
    kube.request("GET", "/version")
    assert len(refreshed) == 3, "not asked again after the server refused the token"
    assert f"Bearer {TOKEN}-3\r\n" in server.heads[-1]


def _configuration(host: str, **settings: Any) -> k8s.Configuration:
    configuration = k8s.Configuration(host=host)
    for name, value in settings.items():
        setattr(configuration, name, value)
    return configuration


@pytest.mark.parametrize(
    ("settings", "direct"),
    [
        ({"proxy": "http://127.0.0.1:3128"}, False),
        ({"proxy": "http://127.0.0.1:3128", "no_proxy": "127.0.0.0/8"}, True),
        ({"assert_hostname": "api.example"}, False),
        ({"ssl_ca_cert": None}, False),
    ],
    ids=["proxy", "proxy-bypassed", "pinned-host-name", "no-ca"],
)
def test_what_only_the_kubernetes_client_honours_stays_with_it(
    tmp_path: Path, settings: dict[str, Any], direct: bool
) -> None:
    """A proxy, a host name to check or the client's own CA bundle: sent from a thread."""
    ca = write_pki(tmp_path, cluster_name="unit").ca_cert
    configuration = _configuration("https://127.0.0.1:6443", **{"ssl_ca_cert": str(ca), **settings})
    tls = kube_module.direct_tls(configuration)
    assert (tls is not None) is direct
    if tls:
        assert tls.verify_mode == ssl.CERT_REQUIRED
        assert tls.check_hostname


def test_the_loop_verifies_the_server_as_the_configuration_says(tmp_path: Path) -> None:
    """Verified against the configured CA; not at all only where the kubeconfig said so."""
    ca = write_pki(tmp_path, cluster_name="unit").ca_cert
    verified = kube_module.direct_tls(_configuration("https://127.0.0.1:6443", ssl_ca_cert=str(ca)))
    assert isinstance(verified, ssl.SSLContext)
    assert verified.verify_mode == ssl.CERT_REQUIRED
    assert verified.check_hostname
    assert verified.get_ca_certs()  # the configured CA, and nothing else loaded
    skipped = kube_module.direct_tls(
        _configuration("https://127.0.0.1:6443", ssl_ca_cert=str(ca), verify_ssl=False)
    )
    assert isinstance(skipped, ssl.SSLContext)
    assert skipped.verify_mode == ssl.CERT_NONE
    assert kube_module.direct_tls(_configuration("http://127.0.0.1:8080")) is False
