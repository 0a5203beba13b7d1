"""All SQL of the ledger. Functions take the session first; nothing here commits."""

from collections.abc import Sequence
from typing import Any, Final, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Row,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import current_mode
from app.models.ledger import JournalEntry, LedgerAccount, LedgerBalance, LedgerHold, Posting

_accounts = cast(Table, LedgerAccount.__table__)
_balances = cast(Table, LedgerBalance.__table__)
_holds = cast(Table, LedgerHold.__table__)
_postings = cast(Table, Posting.__table__)
_entries = cast(Table, JournalEntry.__table__)

#: The parameters of ``ledger_post_entry`` whose types the driver cannot infer.
ENTRY_BINDS: Final = (
    bindparam("entry_metadata", type_=JSONB),
    bindparam("entry_account_ids", type_=ARRAY(Text)),
    bindparam("entry_currencies", type_=ARRAY(Text)),
    bindparam("entry_amounts", type_=ARRAY(BigInteger)),
)

_CALL = (
    "SELECT outcome, account_id, available, entry_id FROM ledger_post_entry("
    ":entry_id, :entry_kind, :entry_reference, :entry_description, :entry_metadata,"
    " :entry_account_ids, :entry_currencies, :entry_amounts, :entry_slot_seed)"
)

_POST_ENTRY = text(_CALL).bindparams(*ENTRY_BINDS)

#: ``ledger_post_entry`` as a CTE named ``entry`` (one row: ``outcome``, ``account_id``,
#: ``available``, ``entry_id``), for a statement of another domain to carry with
#: ``ENTRY_BINDS``: that statement then records what the entry did in the same round trip.
#: MATERIALIZED: the function runs exactly once, before anything that reads the CTE.
ENTRY_CTE: Final = f"entry AS MATERIALIZED ({_CALL})"


async def insert_account(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    """Insert an account and its zero balance slots; returns the account row."""
    row: Row[Any] = (
        await session.execute(insert(_accounts).values(**values).returning(_accounts))
    ).one()
    await _insert_slots(session, row)
    return row


async def insert_system_account(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    """Insert a platform account keyed by ``system_key`` unless it exists in the
    connection's mode; return it."""
    statement = (
        pg_insert(_accounts)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["system_key", "mode"])
        .returning(_accounts)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    if row is not None:
        await _insert_slots(session, row)
        return row
    existing = await get_account_by_system_key(session, values["system_key"])
    assert existing is not None
    return existing


async def _insert_slots(session: AsyncSession, account: Row[Any]) -> None:
    slots = select(
        literal(account.id).label("account_id"),
        func.generate_series(0, account.balance_slots - 1).label("slot"),
        literal(0).label("balance"),
        literal(account.must_not_go_negative).label("must_not_go_negative"),
    )
    await session.execute(
        insert(_balances).from_select(
            ["account_id", "slot", "balance", "must_not_go_negative"], slots
        )
    )


async def get_account_by_system_key(session: AsyncSession, system_key: str) -> Row[Any] | None:
    """The platform account of the connection's mode: each mode has its own."""
    statement = select(_accounts).where(
        _accounts.c.system_key == system_key, _accounts.c.mode == current_mode()
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def get_account(session: AsyncSession, account_id: str) -> Row[Any] | None:
    return (
        await session.execute(select(_accounts).where(_accounts.c.id == account_id))
    ).one_or_none()


async def call_post_entry(session: AsyncSession, params: dict[str, Any]) -> Row[Any]:
    """One round trip: lock, check and write the entry (see the ``ledger_post_entry`` SQL);
    ``params`` as ``service.PlannedEntry.params``."""
    row: Row[Any] = (await session.execute(_POST_ENTRY, params)).one()
    return row


async def get_entry(session: AsyncSession, entry_id: str) -> Row[Any] | None:
    return (await session.execute(select(_entries).where(_entries.c.id == entry_id))).one_or_none()


async def get_entry_postings(session: AsyncSession, entry_id: str) -> Sequence[Row[Any, Any, Any]]:
    statement = (
        select(_postings.c.account_id, _postings.c.currency, _postings.c.amount)
        .where(_postings.c.entry_id == entry_id)
        .order_by(_postings.c.account_id)
    )
    return (await session.execute(statement)).all()


async def sum_balances(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, int]:
    statement = (
        select(_balances.c.account_id, func.sum(_balances.c.balance))
        .where(_balances.c.account_id.in_(account_ids))
        .group_by(_balances.c.account_id)
    )
    return {row[0]: int(row[1]) for row in (await session.execute(statement)).all()}


async def insert_hold(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    row: Row[Any] = (await session.execute(insert(_holds).values(**values).returning(_holds))).one()
    return row


async def get_hold(session: AsyncSession, hold_id: str) -> Row[Any] | None:
    return (await session.execute(select(_holds).where(_holds.c.id == hold_id))).one_or_none()


async def get_hold_by_place_entry(session: AsyncSession, entry_id: str) -> Row[Any] | None:
    statement = select(_holds).where(_holds.c.place_entry_id == entry_id)
    return (await session.execute(statement)).one_or_none()


async def resolve_pending_hold(
    session: AsyncSession,
    hold_id: str,
    *,
    status: str,
    captured_amount: int | None,
    currency: str | None,
    resolve_entry_id: str,
) -> Row[Any] | None:
    """Move a hold out of ``pending`` exactly once: a conditional UPDATE, so of two
    concurrent resolutions one gets the row and the other gets ``None``."""
    conditions = [_holds.c.id == hold_id, _holds.c.status == "pending"]
    if captured_amount is not None:
        conditions.append(_holds.c.amount >= captured_amount)
    if currency is not None:
        conditions.append(_holds.c.currency == currency)
    statement = (
        _holds.update()
        .where(*conditions)
        .values(
            status=status,
            captured_amount=captured_amount,
            resolve_entry_id=resolve_entry_id,
            resolved_at=func.now(),
        )
        .returning(_holds)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def find_balance_mismatches(
    session: AsyncSession, account_ids: Sequence[str] | None = None
) -> Sequence[Row[Any, Any, Any]]:
    """Accounts whose balance slots do not add up to the sum of their postings."""
    balances = (
        select(_balances.c.account_id, func.sum(_balances.c.balance).label("total"))
        .group_by(_balances.c.account_id)
        .subquery()
    )
    postings = (
        select(_postings.c.account_id, func.sum(_postings.c.amount).label("total"))
        .group_by(_postings.c.account_id)
        .subquery()
    )
    balance_total = func.coalesce(balances.c.total, 0)
    postings_total = func.coalesce(postings.c.total, 0)
    statement = (
        select(
            _accounts.c.id, balance_total.label("balance"), postings_total.label("postings_total")
        )
        .outerjoin(balances, balances.c.account_id == _accounts.c.id)
        .outerjoin(postings, postings.c.account_id == _accounts.c.id)
        .where(balance_total != postings_total)
    )
    if account_ids is not None:
        statement = statement.where(_accounts.c.id.in_(account_ids))
    return (await session.execute(statement)).all()


async def total_by_currency(session: AsyncSession) -> dict[str, int]:
    """Sum of every balance per currency; zero for each in a sound ledger."""
    statement = (
        select(_accounts.c.currency, func.sum(_balances.c.balance))
        .join(_balances, _balances.c.account_id == _accounts.c.id)
        .group_by(_accounts.c.currency)
    )
    return {row[0]: int(row[1]) for row in (await session.execute(statement)).all()}
