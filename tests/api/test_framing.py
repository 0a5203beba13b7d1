"""HTTP framing on a real server over loopback: a request whose body framing is ambiguous
(RFC 9112 §6.1) is one 400 and a closed connection, and a request smuggled behind its
body never runs.

The server is uvicorn with the options of ``purser serve`` (``app.cli.server_options``),
once per HTTP implementation uvicorn may pick (``auto`` picks httptools when installed).
"""

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from importlib.util import find_spec

import httpx
import pytest
import uvicorn

from app.cli import server_options
from app.config import Settings
from app.main import create_app
from tests.api.helpers import MakeKey, bearer

IMPLEMENTATIONS = [
    "h11",
    pytest.param(
        "httptools",
        marks=pytest.mark.skipif(find_spec("httptools") is None, reason="httptools not installed"),
    ),
]


@pytest.fixture(params=IMPLEMENTATIONS)
async def served(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[int]:
    """The port of a real server running the app as ``purser serve`` would."""
    settings = Settings(run_jobs=False)
    app = create_app(database_url=database_url, settings=settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port: int = listener.getsockname()[1]
    # Logging stays the test process's own: log_config would reconfigure it for good.
    options = {**server_options(settings), "log_config": None, "http": request.param}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await task
    listener.close()


def create_agent_request(secret: str, name: str) -> bytes:
    body = json.dumps({"name": name, "initial_balance": "0"}).encode()
    return (
        b"POST /api/v1/agents HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Authorization: Bearer " + secret.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"\r\n" + body
    )


async def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Send ``data`` on one connection; return what came back and whether the server
    closed the connection (within 5 seconds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        try:
            while chunk := await asyncio.wait_for(reader.read(65536), 5):
                received += chunk
        except TimeoutError:
            return received, False
        return received, True
    finally:
        writer.close()


async def agent_names(port: int, headers: dict[str, str]) -> list[str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.get("/api/v1/agents", headers=headers)
    assert response.status_code == 200, response.text
    return [agent["name"] for agent in response.json()]


#: uvicorn's own answer to a request its HTTP parser refuses (llhttp, under httptools,
#: refuses Content-Length with Transfer-Encoding before the app sees the request).
SERVER_REFUSAL = b"Invalid HTTP request received."


def assert_one_400_then_closed(received: bytes, closed: bool) -> None:
    """One response, 400 with ``Connection: close`` (the app's ``invalid_framing`` problem,
    or the server's own refusal), and the connection closed after it."""
    assert closed, "the server kept the connection open"
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert received.startswith(b"HTTP/1.1 400 "), received
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert body == SERVER_REFUSAL or json.loads(body)["code"] == "invalid_framing", body


async def test_content_length_with_transfer_encoding_is_400_and_closes(
    served: int, make_key: MakeKey
) -> None:
    key = await make_key()
    smuggled = create_agent_request(key.secret, "smuggled")
    chunked_body = b"0\r\n\r\n" + smuggled
    # A front end framing by Content-Length sees one request whose body holds the second;
    # a back end framing by Transfer-Encoding sees two.
    front = (
        b"POST /api/v1/agents HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Authorization: Bearer " + key.secret.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(chunked_body)).encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"\r\n" + chunked_body
    )
    received, closed = await exchange(served, front)
    assert_one_400_then_closed(received, closed)
    await asyncio.sleep(0.2)  # time for a smuggled request to have run, had it run
    assert await agent_names(served, bearer(key)) == []
    # The smuggled bytes on their own are a valid request: it was never run above.
    alone = smuggled.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    direct, _ = await exchange(served, alone)
    assert direct.startswith(b"HTTP/1.1 201 "), direct
    assert await agent_names(served, bearer(key)) == ["smuggled"]


async def test_transfer_encoding_in_http_1_0_is_400_and_closes(
    served: int, make_key: MakeKey
) -> None:
    key = await make_key()
    request = (
        b"POST /api/v1/agents HTTP/1.0\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Authorization: Bearer " + key.secret.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"\r\n"
        b"0\r\n\r\n"
    )
    received, closed = await exchange(served, request)
    assert_one_400_then_closed(received, closed)


async def test_ordinary_requests_keep_the_connection(served: int, make_key: MakeKey) -> None:
    key = await make_key()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served}") as client:
        for _ in range(2):
            response = await client.get("/api/v1/agents", headers=bearer(key))
            assert response.status_code == 200
            assert "close" not in response.headers.get("connection", "")

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "chunked", '
            yield b'"initial_balance": "0"}'

        streamed = await client.post(
            "/api/v1/agents",
            content=chunks(),
            headers={**bearer(key), "content-type": "application/json"},
        )
        assert streamed.status_code == 201, streamed.text
        assert len(client._transport._pool.connections) == 1  # type: ignore[attr-defined]
