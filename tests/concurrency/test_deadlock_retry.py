"""A real deadlock between two transactions that each post twice in opposite orders.

One ledger call cannot deadlock with another (rows are locked in sorted order), but a
transaction that posts twice holds the first entry's locks while it takes the second's.
The deadlock that follows must not reach the caller: the unit-of-work runner reruns the
transaction PostgreSQL chose as the victim.
"""

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.ledger import service as ledger
from app.models.ledger import EntryKind
from tests.ledger_helpers import open_funded_wallets, transfer_legs


async def test_deadlocked_transaction_is_rerun_not_surfaced(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    engine = create_engine(database_url, pool_size=4, max_overflow=0)
    fast = create_sessionmaker(engine)
    _, (a, b, x1, x2, y1, y2) = await open_funded_wallets(sessionmaker, 6, minor_each=1_000)
    both_hold_their_first_lock = asyncio.Barrier(2)
    attempts = {"ab": 0, "ba": 0}

    def transaction(first: str, second: str, sinks: tuple[str, str], name: str):  # type: ignore[no-untyped-def]
        async def work(session: AsyncSession) -> None:
            attempts[name] += 1
            await session.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
            await ledger.post_entry(
                session, kind=EntryKind.transfer, legs=transfer_legs(first, sinks[0], 10)
            )
            if attempts[name] == 1:
                await both_hold_their_first_lock.wait()
            await ledger.post_entry(
                session, kind=EntryKind.transfer, legs=transfer_legs(second, sinks[1], 10)
            )

        return work

    before = await _deadlocks(sessionmaker)
    try:
        await asyncio.wait_for(
            asyncio.gather(
                run_in_transaction(fast, transaction(a.id, b.id, (x1.id, y1.id), "ab")),
                run_in_transaction(fast, transaction(b.id, a.id, (x2.id, y2.id), "ba")),
            ),
            timeout=60,
        )
        async with fast() as session:
            balances = await ledger.balances_of(session, [a.id, b.id, x1.id, y2.id])
    finally:
        # Backends flush their statistics when they exit: close them before reading.
        await engine.dispose()
    deadlocks = before
    for _ in range(50):
        deadlocks = await _deadlocks(sessionmaker)
        if deadlocks > before:
            break
        await asyncio.sleep(0.1)
    assert balances == {a.id: 980, b.id: 980, x1.id: 1_010, y2.id: 1_010}
    assert deadlocks > before, "the scenario must really deadlock"
    assert attempts["ab"] + attempts["ba"] >= 3, "the victim transaction was rerun"


async def _deadlocks(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        await session.execute(text("SELECT pg_stat_clear_snapshot()"))
        count = await session.scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
        return int(count or 0)
