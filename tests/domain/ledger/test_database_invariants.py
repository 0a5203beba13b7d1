"""The database itself holds the ledger's invariants, even against raw SQL."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import sqlstate_of
from app.domain.ledger import service as ledger
from app.models.ledger import AccountKind, EntryKind
from tests.ledger_helpers import open_funded_wallets, transfer_legs


async def _raw(session: AsyncSession, sql: str, **params: object) -> None:
    await session.execute(text(sql), params)


async def test_unbalanced_entry_in_raw_sql_fails_at_commit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, (a, b) = await open_funded_wallets(sessionmaker, 2, minor_each=0)
    async with sessionmaker() as session:
        await _raw(
            session,
            "INSERT INTO journal_entries (id, kind) VALUES ('je_raw_unbalanced', 'transfer')",
        )
        await _raw(
            session,
            "INSERT INTO postings (entry_id, account_id, currency, amount) VALUES "
            "('je_raw_unbalanced', :a, 'USDC', -5), ('je_raw_unbalanced', :b, 'USDC', 4)",
            a=a.id,
            b=b.id,
        )
        with pytest.raises(DBAPIError) as error:
            await session.commit()
        assert sqlstate_of(error.value) == "23514"
        assert "unbalanced" in str(error.value)
    async with sessionmaker() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM journal_entries WHERE id = 'je_raw_unbalanced'")
        )
        assert count == 0


async def test_posting_to_an_account_in_another_currency_is_rejected(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, (a, b) = await open_funded_wallets(sessionmaker, 2, minor_each=0)
    async with sessionmaker() as session:
        await _raw(
            session, "INSERT INTO journal_entries (id, kind) VALUES ('je_raw_ccy', 'transfer')"
        )
        with pytest.raises(DBAPIError) as error:
            await _raw(
                session,
                "INSERT INTO postings (entry_id, account_id, currency, amount) VALUES "
                "('je_raw_ccy', :a, 'USDT', -5), ('je_raw_ccy', :b, 'USDT', 5)",
                a=a.id,
                b=b.id,
            )
        assert sqlstate_of(error.value) == "23503"


async def test_postings_cannot_be_added_to_an_entry_of_another_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    source, (wallet, other_a, other_b) = await open_funded_wallets(sessionmaker, 3, minor_each=0)
    async with sessionmaker() as session:
        entry = await ledger.post_entry(
            session, kind=EntryKind.funding, legs=transfer_legs(source.id, wallet.id, 5)
        )
        await session.commit()
    async with sessionmaker() as session:
        # A balanced pair appended later would dodge a per-entry check made at the first commit.
        with pytest.raises(DBAPIError) as error:
            await _raw(
                session,
                "INSERT INTO postings (entry_id, account_id, currency, amount) VALUES "
                "(:e, :a, 'USDC', 5), (:e, :b, 'USDC', -5)",
                e=entry.id,
                a=other_a.id,
                b=other_b.id,
            )
        assert sqlstate_of(error.value) == "23503"
        assert "did not create" in str(error.value)


async def test_entry_without_postings_fails_at_commit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        await _raw(
            session, "INSERT INTO journal_entries (id, kind) VALUES ('je_raw_empty', 'transfer')"
        )
        with pytest.raises(DBAPIError) as error:
            await session.commit()
        assert sqlstate_of(error.value) == "23514"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE postings SET amount = amount + 1 WHERE entry_id = :entry",
        "DELETE FROM postings WHERE entry_id = :entry",
        "UPDATE journal_entries SET kind = 'payment' WHERE id = :entry",
        "DELETE FROM journal_entries WHERE id = :entry",
        "TRUNCATE postings",
        "TRUNCATE journal_entries CASCADE",
    ],
)
async def test_journal_is_append_only(
    sessionmaker: async_sessionmaker[AsyncSession], statement: str
) -> None:
    source, (wallet,) = await open_funded_wallets(sessionmaker, 1, minor_each=0)
    async with sessionmaker() as session:
        entry = await ledger.post_entry(
            session, kind=EntryKind.funding, legs=transfer_legs(source.id, wallet.id, 9)
        )
        await session.commit()
    async with sessionmaker() as session:
        with pytest.raises(DBAPIError) as error:
            await _raw(session, statement, entry=entry.id)
        assert sqlstate_of(error.value) == "23001"
        assert "append-only" in str(error.value)
    async with sessionmaker() as session:
        assert (await ledger.balance_of(session, wallet.id)).minor == 9
        assert await ledger.find_balance_mismatches(session, [wallet.id, source.id]) == []


async def test_protected_balance_cannot_go_negative_even_in_raw_sql(session: AsyncSession) -> None:
    wallet = await ledger.open_account(session, kind=AccountKind.wallet_available, currency="USDC")
    with pytest.raises(DBAPIError) as error:
        await _raw(
            session, "UPDATE ledger_balances SET balance = -1 WHERE account_id = :id", id=wallet.id
        )
    assert sqlstate_of(error.value) == "23514"


async def test_protection_flag_cannot_be_switched_off(session: AsyncSession) -> None:
    wallet = await ledger.open_account(session, kind=AccountKind.wallet_available, currency="USDC")
    with pytest.raises(DBAPIError) as error:
        await _raw(
            session,
            "UPDATE ledger_balances SET must_not_go_negative = false WHERE account_id = :id",
            id=wallet.id,
        )
    assert sqlstate_of(error.value) == "23001"
