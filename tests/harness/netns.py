"""Network namespaces, as ``ip netns`` keeps them: made, entered by one thread, removed.

A socket belongs to the network namespace of the thread that made it, for its whole life.
So a thread may step into a namespace just to make a socket (a listener for the API
forwarder, a client of a server on the load-balancer network) and step out again; the other
threads of the process never leave the host's namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the block with the calling thread in network namespace ``name``.

    Sockets made in the block stay in that namespace after it ends.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def ip(*args: str, netns: str | None = None) -> str:
    """Run one ``ip`` command (in ``netns`` if given); fail with what it printed."""
    command = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        msg = f"{' '.join(command)} failed: {result.stderr.strip() or result.stdout.strip()}"
        raise RuntimeError(msg)
    return result.stdout


def ip_batch(lines: Sequence[str], *, netns: str | None = None) -> None:
    """Run several ``ip`` commands in one process (one line each, as ``ip -batch`` reads)."""
    if not lines:
        return
    command = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    result = subprocess.run(
        command, input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        msg = f"ip -batch in {netns or 'the host'} failed: {result.stderr.strip()}"
        raise RuntimeError(msg)


def sysctl(netns: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl (net.*) inside ``netns``."""
    with entered(netns):
        # /proc/sys/net shows the namespace of the thread that opens it.
        Path("/proc/sys", *key.split(".")).write_text(value)


def add(name: str) -> None:
    """Create a network namespace, with its loopback up."""
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def exists(name: str) -> bool:
    """Whether ``ip netns`` knows a namespace of that name."""
    return (NETNS_DIR / name).exists()


def names() -> list[str]:
    """Every namespace ``ip netns`` knows."""
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def delete(name: str) -> None:
    """Remove a namespace; its interfaces, addresses and nftables tables go with it.

    The kernel frees it once no process is left in it, so the processes are stopped first.
    """
    if exists(name):
        ip("netns", "delete", name)
