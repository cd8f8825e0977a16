"""Real servers on the central cluster's load-balancer network: Redis, PostgreSQL, plain TCP.

Each listens at one VIP (the lb namespace allows binding an address before it is present,
so a server can wait at a VIP that a test is about to move to) and knows its own name, so a
client can tell which server answered: Redis holds it under the key ``whoami``, PostgreSQL
as its ``cluster_name`` setting, a plain TCP server sends it as a greeting.
"""

from __future__ import annotations

import contextlib
import ipaddress
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.dataplane import DataPlane, Process, listening, postgres_bin_dir, socket_in


def _family(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _wait_ready(
    process: Process, ready: Callable[[], bool], what: str, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.popen.poll() is not None:
            msg = f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
            raise RuntimeError(msg)
        with contextlib.suppress(OSError):
            if ready():
                return
        if time.monotonic() > deadline:
            msg = f"{process.name}: not {what} within {timeout} s:\n{process.tail()}"
            raise TimeoutError(msg)
        time.sleep(0.05)


def resp(*words: str) -> bytes:
    """A Redis command in the protocol's own framing."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RedisServer:
    """Debian's redis-server, at one VIP, holding its name under ``whoami``."""

    def __init__(self, plane: DataPlane, *, name: str, address: str, port: int = 6379) -> None:
        self.plane = plane
        self.name = name
        self.address = address
        self.port = port
        self.process: Process | None = None

    def start(self) -> RedisServer:
        """Start it and wait until it answers."""
        # Its name is set through a Unix socket, which reaches it whether or not its VIP is
        # on the network yet; Redis removes the socket when it stops.
        socket_path = self.plane.directory / f"redis-{self.name}.sock"
        self.process = self.plane.spawn_on_lb(
            f"redis-{self.name}",
            [
                "redis-server",
                "--bind", self.address,
                "--port", str(self.port),
                "--unixsocket", str(socket_path),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "no",
                "--daemonize", "no",
            ],
        )  # fmt: skip

        def named() -> bool:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(socket_path))
                sock.sendall(resp("SET", "whoami", self.name))
                return sock.recv(64).startswith(b"+OK")

        # Redis listens on TCP before it opens the Unix socket, and exits if it cannot.
        _wait_ready(self.process, named, "answering on its Unix socket")
        return self

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None:
            self.plane.stop_process(self.process)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class PostgresServer:
    """Debian's PostgreSQL, at one VIP (or more), as the ``postgres`` user, trusting all.

    Its data directory is outside the test's temporary tree, which root alone may enter.
    """

    _template: Path | None = None
    _template_lock = threading.Lock()

    def __init__(
        self,
        plane: DataPlane,
        *,
        name: str,
        address: str,
        also: Sequence[str] = (),
        port: int = 5432,
    ) -> None:
        self.plane = plane
        self.name = name
        self.addresses = (address, *also)
        self.port = port
        self.process: Process | None = None
        self.directory: Path | None = None

    @classmethod
    def _initdb(cls) -> Path:
        """One initialised data directory per process, copied for each server."""
        with cls._template_lock:
            if cls._template is None or not cls._template.exists():
                bin_dir = postgres_bin_dir()
                assert bin_dir is not None, "PostgreSQL's server is not installed"
                entry = pwd.getpwnam("postgres")
                base = Path(tempfile.mkdtemp(prefix="sso-postgres-template-"))
                shutil.chown(base, entry.pw_uid, entry.pw_gid)
                subprocess.run(
                    [
                        "setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                        "--clear-groups", "--",
                        str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "postgres",
                        "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C",
                    ],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )  # fmt: skip
                cls._template = base
            return cls._template

    def start(self) -> PostgresServer:
        """Start it and wait until it accepts connections."""
        template = self._initdb()
        entry = pwd.getpwnam("postgres")
        self.directory = Path(tempfile.mkdtemp(prefix=f"sso-postgres-{self.name}-"))
        shutil.chown(self.directory, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            ["cp", "-a", str(template / "data"), str(self.directory / "data")], check=True
        )
        (self.directory / "data" / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n"
        )
        bin_dir = postgres_bin_dir()
        assert bin_dir is not None
        log_path = self.plane.directory / f"postgres-{self.name}.log"
        # The log may hold an earlier server's lines: only what this one writes counts.
        offset = log_path.stat().st_size if log_path.exists() else 0
        self.process = self.plane.spawn_on_lb(
            f"postgres-{self.name}",
            [
                str(bin_dir / "postgres"),
                "-D", str(self.directory / "data"),
                "-c", f"listen_addresses={','.join(self.addresses)}",
                "-p", str(self.port),
                "-c", f"unix_socket_directories={self.directory}",
                "-c", f"cluster_name={self.name}",
                "-c", "fsync=off",
                "-c", "shared_buffers=16MB",
            ],
            user="postgres",
        )  # fmt: skip

        def accepting() -> bool:
            with log_path.open("rb") as log:
                log.seek(offset)
                said = log.read()
            return b"ready to accept connections" in said and all(
                listening(self.plane.lb, address, self.port) for address in self.addresses
            )

        _wait_ready(self.process, accepting, "accepting connections")
        return self

    def stop(self) -> None:
        """Stop it and remove its data."""
        if self.process is not None:
            self.plane.stop_process(self.process)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    @classmethod
    def remove_template(cls) -> None:
        """Remove the initialised data directory the servers were copied from."""
        with cls._template_lock:
            if cls._template is not None:
                shutil.rmtree(cls._template, ignore_errors=True)
                cls._template = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class TcpServer:
    """A plain TCP server that greets every connection with its name, then closes it.

    For services with no client in Debian (MongoDB): what a client can check is that the
    connection reaches the right address and port.
    """

    def __init__(self, plane: DataPlane, *, name: str, address: str, port: int) -> None:
        self.plane = plane
        self.name = name
        self.address = address
        self.port = port
        self.connections = 0
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, name=f"tcp-{name}", daemon=True)

    def start(self) -> TcpServer:
        """Listen and serve in a thread."""
        self._sock = socket_in(self.plane.lb, _family(self.address))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.address, self.port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while self._sock.fileno() != -1:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self.connections += 1
                with contextlib.suppress(OSError):
                    conn.sendall(f"{self.name}\n".encode())

    def stop(self) -> None:
        """Stop listening."""
        if self._sock is not None:
            self._sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
