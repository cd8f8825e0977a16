"""``python -m harness.forward``: the workload API server's port, inside the node namespace.

kube-proxy and CoreDNS run in the data plane's node namespace, which has no link to the
host's at all, while the API server listens on the host's loopback. This process makes its
listening socket inside the node namespace (at 127.0.0.1 and the API server's own port, so
the URL, and the certificate valid for it, stay the same) and connects out from the host's
namespace, copying bytes both ways. Nothing is routed between the namespaces; only this
one port is reachable, and only from inside the node namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys

from harness.netns import entered

_CHUNK = 1 << 16


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _connection(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, *, port: int
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        client_writer.close()  # the API server is down: the client sees a reset, as it would
        return
    try:
        await asyncio.gather(
            _pipe(client_reader, server_writer), _pipe(server_reader, client_writer)
        )
    finally:
        for writer in (client_writer, server_writer):
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def listener(netns: str, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:``port`` inside ``netns``."""
    with entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(netns: str, port: int) -> None:
    """Forward until killed."""
    server = await asyncio.start_server(
        lambda r, w: _connection(r, w, port=port), sock=listener(netns, port)
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    """Parse the command line and forward."""
    parser = argparse.ArgumentParser(prog="python -m harness.forward", description=__doc__)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.netns, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
