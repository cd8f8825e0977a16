"""A client that opens a new connection every interval and says, for each, what answered.

Run as a pod (``bin/pod NS -- python probe.py HOST PORT ...``), it resolves HOST through the
pod's resolv.conf (CoreDNS, with the namespace's search path) and connects to the ClusterIP,
through kube-proxy's rules, as an application opening a connection does. Each attempt asks
the server its name (Redis: ``GET whoami``; a greeting server: its first line) and prints
one JSON line when it ends (so lines may come out of order; ``at`` orders them)::

    {"at": 1234.567, "ok": true, "server": "A", "error": null, "ms": 1.2}

``at`` is ``time.monotonic()``, which every process of the machine shares, so a test can
put the attempts beside its own events. It stops by itself after ``--count`` attempts or
``--seconds``, whichever comes first, and never waits longer than ``--timeout`` for one.
It imports nothing of the project, so it runs wherever a Python does.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PATH = Path(__file__).resolve()
_PRINT = threading.Lock()


@dataclass(frozen=True)
class Attempt:
    """One connection attempt, as the probe printed it."""

    at: float
    ok: bool
    server: str | None
    error: str | None
    ms: float


def attempts(text: str) -> list[Attempt]:
    """The attempts in the probe's output, in the order they started."""
    found = [Attempt(**json.loads(line)) for line in text.splitlines() if line.startswith("{")]
    return sorted(found, key=lambda a: a.at)


def command(host: str, port: int, *options: str) -> list[str]:
    """The argv that runs the probe (to be run as a pod)."""
    # Isolated (-I): the script's own directory holds harness/operator.py, which would shadow
    # the standard library's operator module.
    return [sys.executable, "-I", str(PATH), host, str(port), *options]


def _redis_get_whoami() -> bytes:
    return b"*2\r\n$3\r\nGET\r\n$6\r\nwhoami\r\n"


def _redis_bulk_string(sock: socket.socket) -> str:
    """The value of a reply "$<length>\\r\\n<value>\\r\\n"."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(256)
        if not chunk:
            raise ValueError("connection closed before the reply")
        data += chunk
    header, _, rest = data.partition(b"\r\n")
    if not header.startswith(b"$") or header == b"$-1":
        raise ValueError(f"unexpected reply {header[:40]!r}")
    length = int(header[1:])
    while len(rest) < length + 2:
        chunk = sock.recv(256)
        if not chunk:
            raise ValueError("connection closed in the reply")
        rest += chunk
    return rest[:length].decode()


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data


def ask(address: tuple[str, int], family: int, *, protocol: str, timeout: float) -> str:
    """Connect, ask the server's name, return it."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        if protocol == "redis":
            sock.sendall(_redis_get_whoami())
            return _redis_bulk_string(sock)
        return _read_line(sock).strip().decode()


def _error_name(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return f"dns: {error.strerror}"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, OSError) and error.errno is not None:
        return errno.errorcode.get(error.errno, str(error.errno))
    return type(error).__name__


def resolve(host: str, port: int) -> tuple[int, tuple[str, int]]:
    """The first address of ``host``, as getaddrinfo (and so the resolv.conf) gives it."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return family, (str(address[0]), int(address[1]))


def _attempt(target: tuple[int, tuple[str, int]] | None, args: argparse.Namespace) -> None:
    at = time.monotonic()
    record: dict[str, object] = {"at": at, "ok": False, "server": None, "error": None}
    try:
        family, address = target or resolve(args.host, args.port)
        record["server"] = ask(address, family, protocol=args.protocol, timeout=args.timeout)
        record["ok"] = True
    except (OSError, ValueError) as error:
        record["error"] = _error_name(error)
    record["ms"] = round((time.monotonic() - at) * 1000, 2)
    with _PRINT:
        print(json.dumps(record), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Probe until the count or the time runs out."""
    parser = argparse.ArgumentParser(prog="probe.py", description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--protocol", choices=["redis", "greeting"], default="redis")
    parser.add_argument("--every", type=float, default=0.05, help="seconds between attempts")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="stop after this long")
    parser.add_argument("--timeout", type=float, default=2.0, help="for one attempt")
    parser.add_argument(
        "--resolve-once", action="store_true", help="look the name up once, not per attempt"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    target = resolve(args.host, args.port) if args.resolve_once else None
    # Each attempt has a thread of its own, started on time whatever the previous one is
    # doing: one connection stuck until its timeout does not delay the next, as it would
    # not in an application serving many requests. At most timeout / every run at once.
    threads = []
    for attempt in range(args.count):
        due = started + attempt * args.every
        if due - started > args.seconds:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        thread = threading.Thread(target=_attempt, args=(target, args))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
