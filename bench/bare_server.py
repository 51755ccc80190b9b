"""The yardstick: a bare ``websockets`` broadcast server, no framework.

Every text message received from any connection is sent as is to every open connection
(``websockets.asyncio.server.broadcast``: one write per connection, no waiting for drains). The
driver sends the very frame to broadcast, so the payload is the app's own frame size.

    python bench/bare_server.py PORT [--deflate]
"""
from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

CLIENTS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    CLIENTS.add(ws)
    try:
        async for message in ws:
            broadcast(CLIENTS, message)
    finally:
        CLIENTS.discard(ws)


async def main(port: int, deflate: bool) -> None:
    async with serve(handler, "127.0.0.1", port, compression="deflate" if deflate else None,
                     max_size=2**20, backlog=1024) as server:
        print(f"bare server on 127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), "--deflate" in sys.argv[2:]))
