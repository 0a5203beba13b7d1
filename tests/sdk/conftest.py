"""The session app served over real loopback HTTP, and an SDK client with every scope."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI
from purser import AsyncPurserClient

from app.domain.apikey.schemas import Scope


@pytest.fixture(scope="module")
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api_key(make_key) -> str:  # type: ignore[no-untyped-def]
    return (await make_key(scopes=list(Scope))).secret


@pytest.fixture
async def client(base_url: str, api_key: str) -> AsyncIterator[AsyncPurserClient]:
    async with AsyncPurserClient(api_key=api_key, base_url=base_url) as client:
        yield client
