"""A sandbox Sequence served by uvicorn on a loopback port for the module's tests, and a
``SequenceClient`` talking to it over real HTTP.

Every test gets its own API key, which is its own organisation in the sandbox: tests
never see each other's balances, transfers, idempotency keys or rate-limit windows.
"""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from app.integrations.sequence import SequenceClient
from app.integrations.sequence.sandbox import create_sandbox_app, seeded_id

#: Timings of the test sandbox: short, so that a transfer settles within a second or two.
SANDBOX_OPTIONS: dict[str, Any] = {
    "settle_seconds": 1.0,
    "ach_settle_seconds": 1.5,
    "simulation_seconds": 0.1,
    "read_after_write_delay": 0.5,
}


@dataclass
class Sandbox:
    root: str
    api: str
    control: httpx.AsyncClient

    async def fault(self, kind: str, **fields: Any) -> None:
        response = await self.control.post("/_fake/faults", json={"kind": kind, **fields})
        assert response.status_code == 201, response.text

    async def state(self, key: str) -> dict[str, Any]:
        response = await self.control.get("/_fake/state", params={"key": key})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def created_transfers(self, key: str) -> list[dict[str, Any]]:
        """Transfers of ``key``'s organisation other than the seeded history."""
        return [t for t in (await self.state(key))["transfers"] if not t["seeded"]]

    async def force(self, transfer_id: str, status: str, error_code: str | None = None) -> None:
        body = {"status": status, "error_code": error_code}
        response = await self.control.post(f"/_fake/transfers/{transfer_id}", json=body)
        assert response.status_code == 200, response.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(**SANDBOX_OPTIONS),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=root) as control:
            yield Sandbox(root=root, api=f"{root}/platform/v1", control=control)
    finally:
        server.should_exit = True
        await task


@pytest.fixture(autouse=True)
async def _no_fault_outlives_its_test(sandbox: Sandbox) -> AsyncIterator[None]:
    yield
    await sandbox.control.delete("/_fake/faults")


@pytest.fixture
def key() -> str:
    """A fresh sandbox key: a fresh organisation."""
    return f"sk_sandbox_test-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def sequence(sandbox: Sandbox, key: str) -> AsyncIterator[SequenceClient]:
    """A client with short backoffs (Retry-After is still obeyed in full)."""
    async with SequenceClient(
        key, sandbox.api, timeout=2.0, retry_wait_initial=0.05, retry_wait_max=0.2
    ) as client:
        yield client


class Accounts:
    """The seeded ids of one key, by account name (``seeded_id``)."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __getitem__(self, name: str) -> str:
        return seeded_id(self._key, name)


@pytest.fixture
def accounts(key: str) -> Accounts:
    return Accounts(key)
