"""``/healthz`` fails once a task the operator cannot run without has ended.

Every long-lived task survives every error it can meet; one that ends all the same (a bug,
a cancellation from nowhere) leaves a process that answers probes and does nothing. So
liveness names the ended tasks and answers 503, and the kubelet restarts the pod; while
none has ended it answers 200 with the same JSON body as always. The probes are served
on loopback and asked over HTTP, as the kubelet asks them.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from shared_services import probes


class _Operator:
    def __init__(self, failed: list[str]) -> None:
        self._failed = failed

    def imports(self) -> int:
        return 3

    def waiting_for(self) -> list[str]:
        return []

    def role(self) -> str:
        return "ready"

    def notes(self) -> list[str]:
        return []

    def failed(self) -> list[str]:
        return self._failed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.decode().partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), body


@pytest.mark.parametrize(
    ("failed", "status"),
    [([], 200), (["resync: raised RuntimeError: boom"], 503)],
    ids=["all-running", "one-ended"],
)
def test_liveness_fails_once_a_vital_task_ended(failed: list[str], status: int) -> None:
    async def probe() -> tuple[int, str]:
        port = _free_port()
        server = await probes.serve(port, _Operator(failed))
        try:
            return await _get(port, "/healthz")
        finally:
            server.close()
            await server.wait_closed()

    answered, body = asyncio.run(probe())
    assert answered == status
    if failed:
        assert "resync: raised RuntimeError: boom" in body
    else:
        assert json.loads(body) == {"imports": 3}


def test_how_a_task_ended_is_said() -> None:
    async def tasks() -> list[str]:
        async def forever() -> None:
            await asyncio.Event().wait()

        async def boom() -> None:
            raise RuntimeError("boom")

        async def done() -> None:
            return None

        loop = asyncio.get_running_loop()
        running = loop.create_task(forever(), name="workers")
        raised = loop.create_task(boom(), name="resync")
        returned = loop.create_task(done(), name="leader")
        cancelled = loop.create_task(forever(), name="status")
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(raised, returned, cancelled, return_exceptions=True)
        said = probes.ended([running, raised, returned, cancelled])
        running.cancel()
        return said

    assert asyncio.run(tasks()) == [
        "resync: raised RuntimeError: boom",
        "leader: returned",
        "status: cancelled",
    ]
