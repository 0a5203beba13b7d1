"""Audit records are numbered per owner: ``seq`` and cursors never reveal how many records
other owners made; the numbers come with sealing, are checked by verify, and the migration
numbers rows sealed before it."""

import asyncio
from typing import Any

import httpx
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.audit import service as audit_service
from app.migrations import alembic_config
from app.postgres import to_async_url
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant

#: The revision that introduced per-owner numbers.
REVISION = "f767900208a6"


async def seal_all(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    while await run_in_transaction(sessionmaker, audit_service.seal):
        pass


async def pay(client: httpx.AsyncClient, headers: dict[str, str], amount: str) -> None:
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"]}
    response = await client.post(
        "/api/v1/payments", json={**body, "amount": amount}, headers=headers
    )
    assert response.status_code == 200, response.text


async def audit_page(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = await client.get("/api/v1/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_each_owner_counts_only_its_own_records(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    alice, bob = await make_key(), await make_key()
    # Interleaved: every payment of Alice's is followed by one of Bob's.
    for amount in ("1.00", "2.00", "3.00"):
        await pay(client, bearer(alice), amount)
        await pay(client, bearer(bob), amount)
    await seal_all(sessionmaker)
    for key in (alice, bob):
        records = (await audit_page(client, bearer(key), limit=200))["data"]
        assert [r["seq"] for r in records] == [6, 5, 4, 3, 2, 1]
        assert all(r["sealed"] for r in records)
        assert [r["event"] for r in records[:2]] == ["payment_completed", "payment_requested"]
    # Internally the two owners' records interleave: those are the numbers not shown.
    async with sessionmaker() as session:
        internal = (
            await session.execute(
                text("SELECT seq, chain_seq FROM audit_records WHERE owner_id = :o ORDER BY seq"),
                {"o": alice.owner_id},
            )
        ).all()
    assert [row.seq for row in internal] != list(range(internal[0].seq, internal[0].seq + 6))


async def test_cursors_carry_the_owners_own_numbers(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key()
    for amount in ("1.00", "2.00"):
        await pay(client, bearer(key), amount)
    await pay(client, bearer(await make_key()), "1.00")  # another owner's, in between
    await seal_all(sessionmaker)
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = await audit_page(client, bearer(key), **params)
        pages.append([r["seq"] for r in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == f"aud_{page['data'][-1]['seq']}"
    assert pages == [[4, 3, 2], [1]]
    refused = await client.get("/api/v1/audit?cursor=aud_x", headers=bearer(key))
    assert refused.status_code == 422
    assert refused.json()["param"] == "cursor"


async def test_unsealed_records_lead_the_first_page_and_are_numbered_when_sealed(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key()
    await pay(client, bearer(key), "1.00")
    await seal_all(sessionmaker)
    await pay(client, bearer(key), "2.00")
    first = await audit_page(client, bearer(key), limit=10)
    assert [(r["seq"], r["sealed"]) for r in first["data"]] == [
        (None, False),
        (None, False),
        (2, True),
        (1, True),
    ]
    assert first["data"][0]["event"] == "payment_completed"
    # A page full of unsealed records continues with the sealed ones.
    full = await audit_page(client, bearer(key), limit=2)
    assert [r["seq"] for r in full["data"]] == [None, None]
    assert full["next_cursor"] == "aud_3"
    rest = await audit_page(client, bearer(key), limit=2, cursor=full["next_cursor"])
    assert [r["seq"] for r in rest["data"]] == [2, 1]
    await seal_all(sessionmaker)
    after = await audit_page(client, bearer(key), limit=10)
    assert [(r["seq"], r["event"]) for r in after["data"]] == [
        (4, "payment_completed"),
        (3, "payment_requested"),
        (2, "payment_completed"),
        (1, "payment_requested"),
    ]


async def _insert(session: AsyncSession, owners: list[str]) -> None:
    for owner in owners:
        await audit_service.append(
            session,
            [
                audit_service.record(
                    owner_id=owner,
                    event="payment_completed",
                    subject_type="transaction",
                    subject_id=f"tx_{owner}",
                    key_id=None,
                    request_id=None,
                )
            ],
        )
    await session.commit()


async def test_verify_finds_a_wrong_owner_number(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url, pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            await _insert(session, ["owner_a", "owner_b", "owner_a"])
        await seal_all(sessionmaker)
        async with sessionmaker() as session:
            intact = await audit_service.verify(session)
            assert (intact.bad_seq, intact.checked) == (None, 3)
            # The trigger refuses the edit; a tamperer switches triggers off first.
            await session.execute(text("SET session_replication_role = replica"))
            await session.execute(
                text(
                    "UPDATE audit_records SET owner_seq = 3 WHERE owner_id = 'owner_a'"
                    " AND owner_seq = 2"
                )
            )
            await session.commit()
        async with sessionmaker() as session:
            broken = await audit_service.verify(session)
        assert broken.bad_seq == 3
        assert broken.reason == "owner sequence 3 where 2 is due"
    finally:
        await engine.dispose()


async def test_the_migration_numbers_rows_sealed_before_it(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    await asyncio.to_thread(command.downgrade, config, f"{REVISION}-1")
    engine = create_engine(to_async_url(empty_database_url), pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            await _insert(session, ["owner_a", "owner_b", "owner_a", "owner_b", "owner_a"])
            # Seal the old way: chain position and hash, no owner number.
            rows = (await session.execute(text("SELECT * FROM audit_records ORDER BY seq"))).all()
            prev_hash = audit_service.GENESIS
            for position, row in enumerate(rows, start=1):
                digest = audit_service.row_hash(row, position, prev_hash)
                await session.execute(
                    text(
                        "UPDATE audit_records SET chain_seq = :c, prev_hash = :p, hash = :h"
                        " WHERE seq = :s"
                    ),
                    {"c": position, "p": prev_hash, "h": digest, "s": row.seq},
                )
                prev_hash = digest
            await session.commit()
            await _insert(session, ["owner_a"])  # not sealed yet
        await engine.dispose()
        await asyncio.to_thread(command.upgrade, config, "head")
        engine = create_engine(to_async_url(empty_database_url), pool_size=2, max_overflow=0)
        sessionmaker = create_sessionmaker(engine)
        numbered = "SELECT owner_id, owner_seq FROM audit_records ORDER BY seq"
        async with sessionmaker() as session:
            before = [tuple(row) for row in (await session.execute(text(numbered))).all()]
        assert before == [
            ("owner_a", 1),
            ("owner_b", 1),
            ("owner_a", 2),
            ("owner_b", 2),
            ("owner_a", 3),
            ("owner_a", None),
        ]
        await seal_all(sessionmaker)
        async with sessionmaker() as session:
            after = [tuple(row) for row in (await session.execute(text(numbered))).all()]
            result = await audit_service.verify(session)
        assert after[-1] == ("owner_a", 4)
        assert (result.bad_seq, result.checked, result.unsealed) == (None, 6, 0)
    finally:
        await engine.dispose()
