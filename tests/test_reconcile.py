"""``purser reconcile --agent ID``: a real process, against a real database, comparing a
wallet's balances (the ledger's projection) with the sums of its postings."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.postgres import to_libpq_url
from tests.api.helpers import MakeKey, bearer, key_maker
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of

PURSER = str(Path(sys.executable).parent / "purser")


async def reconcile(
    database_url: str, agent_id: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``purser reconcile --agent agent_id`` on ``database_url``, off the event loop."""
    environment = {**os.environ, "DATABASE_URL": to_libpq_url(database_url), **env}
    return await asyncio.to_thread(
        subprocess.run,
        [PURSER, "reconcile", "--agent", agent_id],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines_of(output: str) -> dict[str, str]:
    """The account lines, by account: ``{"available": "balance=… postings=… …", …}``."""
    lines = {}
    for line in output.splitlines()[1:]:
        account, _, rest = line.partition(" ")
        lines[account] = " ".join(rest.split())
    return lines


async def test_a_sound_wallet_reconciles_to_zero(
    client: httpx.AsyncClient, make_key: MakeKey, database_url: str
) -> None:
    key = await make_key()
    headers = bearer(key)
    agent = await create_agent(client, headers, initial_balance="50.00")
    agent_id = agent["agent"]["agent_id"]
    merchant = (await create_merchant(client, headers))["merchant_id"]
    paid = await client.post(
        "/api/v1/payments",
        json={"agent_id": agent_id, "merchant_id": merchant, "amount": "12.34"},
        headers=headers,
    )
    assert paid.status_code == 200, paid.text
    held = await client.post(
        "/api/v1/payments/holds",
        json={"agent_id": agent_id, "merchant_id": merchant, "amount": "5.00"},
        headers=headers,
    )
    assert held.status_code == 201, held.text
    wallet = await wallet_of(client, headers, agent_id)

    result = await reconcile(database_url, agent_id)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == f"agent {agent_id}  owner={key.owner_id}  wallet={wallet['wallet_id']}"
    assert lines_of(result.stdout) == {
        "available": f"balance={wallet['balance']} postings={wallet['balance']} "
        "difference=0.00 USDC",
        "held": f"balance={wallet['held_balance']} postings={wallet['held_balance']} "
        "difference=0.00 USDC",
    }


async def test_an_unknown_agent_or_one_of_the_other_mode_is_not_found(
    client: httpx.AsyncClient, make_key: MakeKey, database_url: str
) -> None:
    unknown = await reconcile(database_url, "agent_doesnotexist")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().endswith("error: Agent agent_doesnotexist not found")
    # The command reads the mode the server is configured for: a sandbox agent is not
    # found by a live one.
    agent = await create_agent(client, bearer(await make_key()))
    agent_id = agent["agent"]["agent_id"]
    assert (await reconcile(database_url, agent_id)).returncode == 0
    live = await reconcile(database_url, agent_id, PURSER_MODE="live")
    assert live.returncode == 2, live.stdout
    assert live.stderr.strip().endswith(f"error: Agent {agent_id} not found")


@pytest.fixture
async def own_client(empty_database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, MakeKey]]:
    """The app on a database of this test's own, which the test may damage."""
    engine = create_engine(empty_database_url, pool_size=1, max_overflow=0)
    app = create_app(database_url=empty_database_url, settings=Settings(run_jobs=False))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://purser.test") as client,
        ):
            yield client, key_maker(create_sessionmaker(engine))
    finally:
        await engine.dispose()


async def test_a_balance_that_drifted_from_its_postings_exits_1(
    own_client: tuple[httpx.AsyncClient, MakeKey], empty_database_url: str
) -> None:
    client, make_key = own_client
    headers = bearer(await make_key())
    agent = await create_agent(client, headers, initial_balance="10.00")
    agent_id = agent["agent"]["agent_id"]
    # Damage the balance projection of the held account by one minor unit, as a bug
    # writing ``ledger_balances`` outside ``ledger_post_entry`` would.
    engine = create_engine(empty_database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE ledger_balances SET balance = balance + 1 WHERE account_id = "
                    "(SELECT held_account_id FROM wallets WHERE agent_id = :agent_id)"
                ),
                {"agent_id": agent_id},
            )
    finally:
        await engine.dispose()

    result = await reconcile(empty_database_url, agent_id)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert lines_of(result.stdout) == {
        "available": "balance=10.00 postings=10.00 difference=0.00 USDC",
        "held": "balance=0.000001 postings=0.00 difference=0.000001 USDC",
    }
    assert "differs from the sum of its postings" in result.stderr
