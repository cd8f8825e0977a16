"""``/healthz`` (liveness) and ``/readyz`` (readiness) on the health port.

kopf's own liveness endpoint serves one path only, answers 200 whatever its probes say,
and only once every start-up handler has returned; both probes share the health port, and
liveness must answer while readiness still waits, with a 503 that says for what. So this
small server answers both. It runs on the event loop, as kopf's would: a loop that hangs
stops answering ``/healthz``, and the kubelet restarts the pod. Neither probe sends a
request anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
from typing import Protocol

# A probe's request is a line and a few headers; anything longer is not a probe.
_MAX_REQUEST_HEAD = 8192
_REQUEST_TIMEOUT = 5.0


class Probed(Protocol):
    """What the probes ask of the operator."""

    def imports(self) -> int:
        """How many imports it knows."""

    def waiting_for(self) -> list[str]:
        """What readiness waits for; empty when ready."""

    def role(self) -> str:
        """What a ready replica does."""


async def serve(port: int, operator: Probed) -> asyncio.Server:
    """Serve both probes on ``port``, on every address (the kubelet probes the pod's)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, body, kind = _probe(method, target.split("?", 1)[0], operator)
            payload = body.encode()
            writer.write(
                (
                    f"HTTP/1.1 {status.value} {status.phrase}\r\n"
                    f"Content-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
                + (payload if method == "GET" else b"")
            )
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass  # not a request worth an answer (LimitOverrunError is a ValueError)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(
        answer,
        host="0.0.0.0",  # noqa: S104
        port=port,
        limit=_MAX_REQUEST_HEAD,
    )


def _probe(method: str, path: str, operator: Probed) -> tuple[http.HTTPStatus, str, str]:
    """The status, body and content type of one probe's answer."""
    if method not in ("GET", "HEAD"):
        return http.HTTPStatus.METHOD_NOT_ALLOWED, "GET only\n", "text/plain"
    if path == "/healthz":
        return http.HTTPStatus.OK, json.dumps({"imports": operator.imports()}), "application/json"
    if path == "/readyz":
        waiting = operator.waiting_for()
        if waiting:
            text = "not ready, waiting for:\n" + "".join(f"  {item}\n" for item in waiting)
            return http.HTTPStatus.SERVICE_UNAVAILABLE, text, "text/plain"
        return http.HTTPStatus.OK, f"{operator.role()}\n", "text/plain"
    return http.HTTPStatus.NOT_FOUND, "not found; try /healthz or /readyz\n", "text/plain"
