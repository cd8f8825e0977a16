"""``/healthz`` (liveness) and ``/readyz`` (readiness) on the health port.

kopf's own liveness endpoint serves one path only, answers 200 whatever its probes say,
and only once every start-up handler has returned; both probes share the health port, and
liveness must answer while readiness still waits, with a 503 that says for what. So this
small server answers both. It runs on the event loop, as kopf's would: a loop that hangs
stops answering ``/healthz``, and the kubelet restarts the pod. So does a task the operator
cannot run without that has ended (the leader election, a sync worker, the resync, a status
writer): none of them ends by itself, and a process without one answers probes and does
nothing, so ``/healthz`` then answers 503 and names it. Neither probe sends a request
anywhere.

With ``--profile-memory``, the same port also serves ``/debug/memory`` (see
:mod:`shared_services.profiling`), computed in a thread so that the probes keep answering
meanwhile, one report at a time; without it that path is not found, like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

log = logging.getLogger(__name__)

MEMORY_PATH = "/debug/memory"
# A probe's request is a line and a few headers; anything longer is not a probe.
_MAX_REQUEST_HEAD = 8192
_REQUEST_TIMEOUT = 5.0
# How much of an ended task's error liveness says; the log has it whole.
_MAX_ERROR = 200


class Probed(Protocol):
    """What the probes ask of the operator."""

    def imports(self) -> int:
        """How many imports it knows."""

    def waiting_for(self) -> list[str]:
        """What readiness waits for; empty when ready."""

    def role(self) -> str:
        """What a ready replica does."""

    def notes(self) -> list[str]:
        """What a ready replica does without, and why (an API the server does not serve)."""

    def failed(self) -> list[str]:
        """The tasks it cannot run without that have ended, each with how; empty when none."""


def ended(tasks: Iterable[asyncio.Task[Any]]) -> list[str]:
    """How each of ``tasks`` that is done ended: raised, was cancelled, or returned."""
    said = []
    for task in tasks:
        if not task.done():
            continue
        if task.cancelled():
            said.append(f"{task.get_name()}: cancelled")
        elif (error := task.exception()) is not None:
            text = f"{type(error).__name__}: {error}"[:_MAX_ERROR]
            said.append(f"{task.get_name()}: raised {text}")
        else:
            said.append(f"{task.get_name()}: returned")
    return said


async def serve(
    port: int,
    operator: Probed,
    *,
    memory_report: Callable[[], dict[str, Any]] | None = None,
) -> asyncio.Server:
    """Serve both probes on ``port``, on every address (the kubelet probes the pod's).

    ``memory_report``, when given, answers ``/debug/memory``.
    """
    one_report = asyncio.Lock()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            if path == MEMORY_PATH and memory_report is not None and method == "GET":
                async with one_report:
                    status, body, kind = await _memory(memory_report)
            else:
                status, body, kind = _probe(method, path, operator)
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


async def _memory(
    memory_report: Callable[[], dict[str, Any]],
) -> tuple[http.HTTPStatus, str, str]:
    """The memory report as JSON; a report that fails is a 500 that says why, never a crash."""
    try:
        found = await asyncio.to_thread(memory_report)
        return http.HTTPStatus.OK, json.dumps(found, indent=1) + "\n", "application/json"
    except Exception as error:  # a diagnostic must not take the operator down
        log.exception("the memory report failed")
        return http.HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}\n", "text/plain"


def _probe(method: str, path: str, operator: Probed) -> tuple[http.HTTPStatus, str, str]:
    """The status, body and content type of one probe's answer."""
    if method not in ("GET", "HEAD"):
        return http.HTTPStatus.METHOD_NOT_ALLOWED, "GET only\n", "text/plain"
    if path == "/healthz":
        failed = operator.failed()
        if failed:
            body = json.dumps({"imports": operator.imports(), "failed": failed})
            return http.HTTPStatus.SERVICE_UNAVAILABLE, body, "application/json"
        return http.HTTPStatus.OK, json.dumps({"imports": operator.imports()}), "application/json"
    if path == "/readyz":
        waiting = operator.waiting_for()
        if waiting:
            text = "not ready, waiting for:\n" + "".join(f"  {item}\n" for item in waiting)
            return http.HTTPStatus.SERVICE_UNAVAILABLE, text, "text/plain"
        notes = "".join(f"  {note}\n" for note in operator.notes())
        return http.HTTPStatus.OK, f"{operator.role()}\n{notes}", "text/plain"
    return http.HTTPStatus.NOT_FOUND, "not found; try /healthz or /readyz\n", "text/plain"
