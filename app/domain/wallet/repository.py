import functools
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    Row,
    String,
    Table,
    bindparam,
    false,
    insert,
    literal_column,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.limits import repository as limits_repository
from app.domain.risk import repository as risk_repository
from app.models.agent import Agent
from app.models.base import current_mode
from app.models.wallet import VirtualCard, Wallet

_wallets = cast(Table, Wallet.__table__)
_cards = cast(Table, VirtualCard.__table__)
_agents = cast(Table, Agent.__table__)


async def insert_wallet(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    row: Row[Any] = (
        await session.execute(insert(_wallets).values(**values).returning(_wallets))
    ).one()
    return row


async def insert_card(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    row: Row[Any] = (await session.execute(insert(_cards).values(**values).returning(_cards))).one()
    return row


async def get_wallet(
    session: AsyncSession,
    *,
    owner_id: str,
    agent_id: str | None = None,
    merchant_id: str | None = None,
    for_update: bool = False,
) -> Row[Any] | None:
    statement = select(_wallets).where(
        _wallets.c.owner_id == owner_id, _wallets.c.mode == current_mode()
    )
    if agent_id is not None:
        statement = statement.where(_wallets.c.agent_id == agent_id)
    if merchant_id is not None:
        statement = statement.where(_wallets.c.merchant_id == merchant_id)
    if for_update:
        # NO KEY UPDATE: serialises writers of this wallet without blocking the KEY SHARE
        # locks that foreign keys to it take (a payment *to* this wallet), which would
        # otherwise deadlock two agents paying each other.
        statement = statement.with_for_update(key_share=True)
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def get_card(session: AsyncSession, wallet_id: str) -> Row[Any] | None:
    statement = select(_cards).where(_cards.c.wallet_id == wallet_id)
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def update_wallet(session: AsyncSession, wallet_id: str, values: dict[str, Any]) -> Row[Any]:
    statement = update(_wallets).where(_wallets.c.id == wallet_id).values(**values)
    row: Row[Any] = (await session.execute(statement.returning(_wallets))).one()
    return row


async def get_wallet_by_id(
    session: AsyncSession, *, owner_id: str, wallet_id: str
) -> Row[Any] | None:
    statement = select(_wallets).where(
        _wallets.c.owner_id == owner_id,
        _wallets.c.id == wallet_id,
        _wallets.c.mode == current_mode(),
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def lock_agent_wallet_with_payee(
    session: AsyncSession,
    *,
    owner_id: str,
    agent_id: str | None,
    payee_owner_id: str,
    windows: dict[str, date],
    now: datetime,
    payee_merchant_id: str | None = None,
    payee_wallet_id: str | None = None,
    payee_agent_id: str | None = None,
) -> tuple[Row[Any] | None, Row[Any] | None]:
    """``(payer, payee)`` in one round trip: agent ``agent_id``'s wallet locked as
    ``get_wallet`` locks it (with the agent's ``agent_is_active``, ``agent_is_flagged``,
    ``agent_flag_reason``, ``agent_enforces_services``, its spend counters of ``windows``
    (``limits.repository.spent_columns``) and its risk windows at ``now``
    (``risk.repository.payer_columns``)), and the payee's wallet of
    ``payee_owner_id``, named by exactly one of merchant, wallet or agent id, read without
    a lock, with what the paying agent's risk rules ask of it
    (``risk.repository.payee_columns``). ``agent_id=None`` reads the payee only. None for
    a wallet not found (or of the other mode).

    The counters are read with the statement's snapshot, taken before the lock was
    granted: another payment of this agent may have committed new counts meanwhile. Every
    counter write updates the wallet row in its transaction, and the locked row is the
    newest version, so ``counters_fresh`` compares that version (``xmin``) with the one
    the snapshot sees: equal, nothing was counted in between and the counters are
    current; else the caller reads them again, now under the lock."""
    if payee_merchant_id is not None:
        payee_by, payee_key = "merchant_id", payee_merchant_id
    elif payee_wallet_id is not None:
        payee_by, payee_key = "id", payee_wallet_id
    else:
        payee_by, payee_key = "agent_id", payee_agent_id or ""
    params: dict[str, Any] = {
        "payer_owner_id": owner_id,
        "payer_agent_id": agent_id,
        "payee_owner_id": payee_owner_id,
        "payee_key": payee_key,
        **limits_repository.window_params(windows),
        **risk_repository.window_params(now),
    }
    statement = _payer_and_payee_statement(payee_by, with_payer=agent_id is not None)
    rows = (await session.execute(statement, params)).all()
    payer_row = next((row for row in rows if row.is_payer), None)
    payee_row = next((row for row in rows if not row.is_payer), None)
    return payer_row, payee_row


@functools.cache
def _payer_and_payee_statement(payee_by: str, *, with_payer: bool) -> Any:
    """The statement of ``lock_agent_wallet_with_payee`` for a payee named by ``payee_by``
    (a wallets column), with or without the payer's branch: built once per kind, with
    parameters, so that SQLAlchemy compiles it once. Both branches have the same columns:
    each fills the other's with NULL."""
    seen = _wallets.alias("seen")
    counters_fresh = (
        literal_column("wallets.xmin")
        == select(literal_column("seen.xmin")).where(seen.c.id == _wallets.c.id).scalar_subquery()
    ).label("counters_fresh")
    payer_only = [
        _agents.c.is_active.label("agent_is_active"),
        _agents.c.is_flagged.label("agent_is_flagged"),
        _agents.c.flag_reason.label("agent_flag_reason"),
        _agents.c.enforce_authorized_services.label("agent_enforces_services"),
        counters_fresh,
        *limits_repository.spent_columns(_wallets.c.id),
        *risk_repository.payer_columns(_wallets),
    ]
    payee_only = risk_repository.payee_columns(_wallets)
    payee = select(
        _wallets,
        false().label("is_payer"),
        *(null().label(column.name) for column in payer_only),
        *payee_only,
    ).where(
        _wallets.c.owner_id == bindparam("payee_owner_id", type_=String),
        _wallets.c.mode == current_mode(),
        _wallets.c[payee_by] == bindparam("payee_key", type_=String),
    )
    if not with_payer:
        return payee
    # The payer's branch is a subquery of its own: a locking clause may not apply to a
    # UNION, but may to one of its inputs. The payer's wallet and agent rows are locked:
    # the agent's too, so that a payment that waited for the lock reads the agent's state
    # (active, flagged, enforced services) as the last change to it committed — a flag
    # stops every payment that had not yet taken the lock.
    payer = (
        select(
            _wallets,
            true().label("is_payer"),
            *payer_only,
            # Typed: the subquery would make an untyped NULL text, which no UNION matches.
            *(null().cast(column.type).label(column.name) for column in payee_only),
        )
        .join(_agents, _agents.c.id == _wallets.c.agent_id)
        .where(
            _wallets.c.owner_id == bindparam("payer_owner_id", type_=String),
            _wallets.c.agent_id == bindparam("payer_agent_id", type_=String),
            _wallets.c.mode == current_mode(),
        )
        .with_for_update(key_share=True, of=[_wallets, _agents])
        .subquery()
    )
    return union_all(select(payer), payee)


async def get_wallet_any_owner(session: AsyncSession, wallet_id: str) -> Row[Any] | None:
    """A wallet by id across owners: only for a counterparty already established by a
    record the caller may see (a paid payment request)."""
    statement = select(_wallets).where(
        _wallets.c.id == wallet_id, _wallets.c.mode == current_mode()
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row
