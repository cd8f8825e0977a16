"""A TCP server that tells each client the address it reached, then closes the connection.

Run on the load-balancer network (``bin/lb -- python -I greeter.py PORT``), bound to every
address there, it answers at whatever VIPs are present, and its greeting says which one a
connection arrived at: the benchmark's client can tell a connection that reached the new VIP
from one that reached the old, without a server per address. It imports nothing of the
project. It prints ``ready`` once listening and serves until killed.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path

PATH = Path(__file__).resolve()


def command(port: int) -> list[str]:
    """The argv that runs the greeter (to be run on the load-balancer network)."""
    # Isolated (-I), for the same reason as the probe: harness/ holds an operator.py.
    return [sys.executable, "-I", str(PATH), str(port)]


def main() -> int:
    """Serve until killed."""
    port = int(sys.argv[1])
    server = socket.create_server(
        ("::", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=512
    )
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        with connection, contextlib.suppress(OSError):
            address = connection.getsockname()[0].removeprefix("::ffff:")
            connection.sendall(f"{address}\n".encode())


if __name__ == "__main__":
    sys.exit(main())
