"""A wallet funding survives a kill of the API process between Sequence's accept and its
completion: the restarted process's poller credits the wallet, exactly once. Real
processes: `purser sequence-sandbox` and `purser serve`, over loopback HTTP."""

import asyncio
import signal
import subprocess
import time

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.domain.apikey.schemas import Scope
from app.domain.sequence.service import sandbox_key
from app.integrations.sequence.sandbox import seeded_id
from tests.api.helpers import MakeKey, bearer
from tests.test_cli import PURSER, _free_port, _get_when_up, _start_serve


def _sandbox(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PURSER, "sequence-sandbox", "--port", str(port), "--settle-seconds", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def _funding_entries(sessionmaker: async_sessionmaker[AsyncSession], funding: str) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM journal_entries WHERE reference = :ref"),
            {"ref": f"funding:{funding}"},
        )
    return int(count or 0)


async def test_a_funding_is_credited_once_across_a_kill_of_the_app(
    database_url: str, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key(scopes=list(Scope))
    headers = bearer(key)
    sandbox_port, port = _free_port(), _free_port()
    sandbox = _sandbox(sandbox_port)
    env = {
        "PURSER_SEQUENCE_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}/platform/v1",
        # Answer as soon as Sequence accepted: the kill lands before completion.
        "PURSER_SEQUENCE_WAIT_SECONDS": "0",
        "PURSER_RUN_WEBHOOKS": "false",
    }
    url = f"http://127.0.0.1:{port}"
    server = await asyncio.to_thread(lambda: _start_serve(database_url, port, env_extra=env))
    try:
        await asyncio.to_thread(_get_when_up, f"{url}/api/v1/health")
        await asyncio.to_thread(_get_when_up, f"http://127.0.0.1:{sandbox_port}/_fake/clock")
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            agent = await client.post(
                "/api/v1/agents", json={"name": "funded agent", "currency": "USD"}
            )
            agent_id = agent.json()["agent"]["agent_id"]
            pod = seeded_id(sandbox_key(key.owner_id, Settings()), "Agent Budget")
            funded = await client.post(
                f"/api/v1/agents/{agent_id}/wallet/fund",
                json={"source": "sequence", "pod_id": pod, "amount": "25.00"},
            )
            assert funded.status_code == 202, funded.text
            funding = funded.json()
            assert funding["status"] == "pending"
            assert funding["transfer_id"] is not None  # Sequence accepted it
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        assert await _funding_entries(sessionmaker, funding["funding_id"]) == 0

        server = await asyncio.to_thread(lambda: _start_serve(database_url, port, env_extra=env))
        await asyncio.to_thread(_get_when_up, f"{url}/api/v1/health")
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            deadline = time.monotonic() + 60
            state = {}
            while time.monotonic() < deadline:
                state = (await client.get(f"/api/v1/fundings/{funding['funding_id']}")).json()
                if state["status"] != "pending":
                    break
                await asyncio.sleep(0.5)
            assert state["status"] == "completed", state
            # Give a second poller round the chance to credit twice: it must not.
            await asyncio.sleep(3)
            wallet = (await client.get(f"/api/v1/agents/{agent_id}/wallet")).json()
        assert wallet["balance"] == "25.00"
        assert await _funding_entries(sessionmaker, funding["funding_id"]) == 1
    finally:
        for process in (server, sandbox):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
