"""A TLS front of a real API server on loopback, which gives chosen requests a broken answer.

An API server never answers 200 with HTML, never cuts a body off in the middle and never
names itself with a 300-character version; a proxy, a load balancer or a captive portal in
front of it may. The front presents the cluster's own serving certificate, so a kubeconfig
that names the front instead of the server is trusted exactly as the server is. Every
request gets a connection of its own to the real server (the front asks for ``Connection:
close``), so the front sees each request line and a rule may answer it instead; what no rule
answers is copied both ways as it comes, watches included. Nothing is sent anywhere but to
the real server on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.cluster import Cluster

_HEAD_LIMIT = 1 << 16
_CHUNK = 1 << 16
_TIMEOUT = 30.0


@dataclass(frozen=True)
class Answer:
    """What the front writes instead of the real server's answer, before it hangs up."""

    kind: str
    raw: bytes


def html() -> Answer:
    """200 with a login page, as a captive portal or a misrouted proxy answers."""
    body = b"<html><body><h1>Please sign in</h1></body></html>"
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
    return Answer("html", head.encode() + b"Connection: close\r\n\r\n" + body)


def cut() -> Answer:
    """200 whose body stops in the middle: the length promised is never sent."""
    body = b'{"kind": "Status", "apiVersion": "v1", "items": ['
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n"
    return Answer("cut", head.encode() + b"Connection: close\r\n\r\n" + body)


def hang_up() -> Answer:
    """No answer at all: the connection is closed once the request has arrived."""
    return Answer("hang-up", b"")


def json_answer(document: Any) -> Answer:
    """200 with this JSON document."""
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return Answer("json", head.encode() + b"Connection: close\r\n\r\n" + body)


def hold() -> Answer:
    """Passed on only once the test calls :meth:`ApiFront.release`: a request in flight."""
    return Answer("hold", b"")


@dataclass(frozen=True)
class Request:
    """One request as it reached the front: its line, and the bearer token it carried."""

    method: str
    target: str
    token: str

    @classmethod
    def of(cls, head: bytes) -> Request:
        """Read from the request's head."""
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        token = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "authorization":
                token = value.strip().removeprefix("Bearer ").strip()
        return cls(method, target, token)


# The answer to give instead of the server's, or None to pass the request on.
Rule = Callable[[Request], Answer | None]


def _no_rule(_request: Request) -> Answer | None:
    return None


class ApiFront:
    """A front of ``cluster``'s API server on a loopback port of its own.

    It serves from an event loop in a thread of its own: TLS on both sides through asyncio's
    memory buffers, so that a request's body and its answer may flow at the same time.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        upstream = urlsplit(cluster.url)
        self._upstream = (str(upstream.hostname), int(upstream.port or 443))
        self.rule: Rule = _no_rule
        self._server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_tls.load_cert_chain(cluster.pki.serving_cert, cluster.pki.serving_key)
        self._server_tls.set_alpn_protocols(["http/1.1"])
        self._client_tls = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
        self._lock = threading.Lock()
        # Every request, and the kind of answer a rule gave it ("" when passed on).
        self._requests: list[tuple[Request, str]] = []
        self._release = asyncio.Event()  # bound to the front's loop when first awaited
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="api front", daemon=True
        )
        self.port = 0

    @property
    def url(self) -> str:
        """Where the front listens."""
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> ApiFront:
        """Listen on a free loopback port and serve in the background."""
        self._thread.start()
        opened = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = opened.result(timeout=_TIMEOUT)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Stop listening, close every open connection, end the thread and close the loop."""
        if self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                done.result(timeout=_TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_TIMEOUT)
        if not self._loop.is_running():
            self._loop.close()

    def cut_open(self) -> None:
        """Reset every connection open now (the watches among them), as an outage does."""
        self._loop.call_soon_threadsafe(self._abort_all)

    def answered(self, path: str = "") -> int:
        """How many requests whose target starts with ``path`` a rule answered."""
        with self._lock:
            return sum(1 for r, kind in self._requests if kind and r.target.startswith(path))

    def requests(self) -> list[Request]:
        """Every request that reached the front so far, in order."""
        with self._lock:
            return [request for request, _ in self._requests]

    def release(self) -> None:
        """Pass on the requests held so far, and those held from now on."""
        self._loop.call_soon_threadsafe(self._release.set)

    def kubeconfig(self, *, token: str | None = None) -> dict[str, Any]:
        """The cluster's admin kubeconfig, pointed at the front."""
        config = self.cluster.kubeconfig(token=token)
        config["clusters"][0]["cluster"]["server"] = self.url
        return config

    def kubeconfig_yaml(self, *, token: str | None = None) -> str:
        """The kubeconfig as YAML text, as it would sit in a Secret."""
        return yaml.safe_dump(self.kubeconfig(token=token), sort_keys=False)

    def write_kubeconfig(self, path: Path) -> Path:
        """Write the kubeconfig to ``path`` (mode 0600) and return the path."""
        path.write_text(self.kubeconfig_yaml())
        path.chmod(0o600)
        return path

    # -- serving, on the front's own event loop -------------------------------------------

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(
            self._serve, host="127.0.0.1", port=0, ssl=self._server_tls, limit=_HEAD_LIMIT
        )

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._abort_all()
        serving = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in serving:
            task.cancel()
        await asyncio.gather(*serving, return_exceptions=True)

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Every failure here is the connection's end, never the test's: a client that hangs
        # up mid-request is what several scenarios make happen on purpose.
        self._writers.add(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
            request = Request.of(head)
            answer = self.rule(request)
            with self._lock:
                self._requests.append((request, answer.kind if answer else ""))
            if answer is not None and answer.kind == "hold":
                await self._release.wait()
                answer = None
            if answer is None:
                await self._pass(reader, writer, head)
                return
            writer.write(answer.raw)
            await writer.drain()
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            await _close(writer)

    async def _pass(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
    ) -> None:
        host, port = self._upstream
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self._client_tls, server_hostname=host),
            _TIMEOUT,
        )
        self._writers.add(up_writer)
        try:
            up_writer.write(_closing(head))
            # The request's body, if any, flows on while the answer (a watch stream, perhaps)
            # comes back, until the server hangs up after it.
            body = asyncio.ensure_future(_pipe(reader, up_writer))
            await _pipe(up_reader, writer)
            body.cancel()
        finally:
            self._writers.discard(up_writer)
            up_writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close after what was written has gone out; reset when the peer will not wait."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5.0)
    except (OSError, TimeoutError):
        writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass


def _closing(head: bytes) -> bytes:
    """The request head asking for the connection to be closed after the answer."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"
