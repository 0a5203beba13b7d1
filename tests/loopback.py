"""An ASGI app served by uvicorn on a free loopback port, inside the test's event loop:
real HTTP (each request its own connection and transaction), never off 127.0.0.1."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def served_on_loopback(app: Any, **options: Any) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its base URL. ``options`` are
    uvicorn.Config's (lifespan off and warnings only unless given)."""
    import uvicorn

    port = free_loopback_port()
    config = {"log_level": "warning", "lifespan": "off", **options}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # a server that could not start says why
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
