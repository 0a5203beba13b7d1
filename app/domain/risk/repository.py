"""All SQL of risk: what the payment path's statements read and write for the rules, the
authorized services, the flag, and the reads of the risk endpoints."""

from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Label,
    Row,
    String,
    Table,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.limits.repository import saturating_add
from app.models.agent import Agent, AgentRecipient, AgentService, RiskBucket
from app.models.base import CURRENT_MODE_SQL, current_mode
from app.models.payment import Transaction
from app.models.wallet import Wallet

_agents = cast(Table, Agent.__table__)
_services = cast(Table, AgentService.__table__)
_recipients = cast(Table, AgentRecipient.__table__)
_buckets = cast(Table, RiskBucket.__table__)
_transactions = cast(Table, Transaction.__table__)
_wallets = cast(Table, Wallet.__table__)

#: The sliding windows of the velocity rule, and the buckets each sums.
WINDOWS: Final = {
    "last_hour": ("minute", timedelta(hours=1)),
    "last_day": ("hour", timedelta(days=1)),
}


def window_params(now: datetime) -> dict[str, datetime]:
    """The parameters of ``payer_columns``: where each sliding window starts at ``now``."""
    return {f"risk_{name}_since": now - span for name, (_, span) in WINDOWS.items()}


def _velocity(wallet_id: ColumnElement[Any], name: str) -> Label[Any]:
    granularity, _ = WINDOWS[name]
    return (
        select(func.coalesce(func.sum(_buckets.c.payments), 0))
        .where(
            _buckets.c.wallet_id == wallet_id,
            _buckets.c.granularity == granularity,
            _buckets.c.bucket_start
            > bindparam(f"risk_{name}_since", type_=DateTime(timezone=True)),
        )
        .scalar_subquery()
        .label(name)
    )


def payer_columns(wallets: FromClause) -> list[Label[Any]]:
    """Columns for the payer's lock statement: completed outflows in each sliding window
    (``last_hour``, ``last_day``; parameters ``window_params``) and whether the agent has
    authorized services (``has_authorized_services``). Read with the statement's
    snapshot: valid as the limits' counters are (``counters_fresh``)."""
    return [
        _velocity(wallets.c.id, "last_hour"),
        _velocity(wallets.c.id, "last_day"),
        exists().where(_services.c.agent_id == wallets.c.agent_id).label("has_authorized_services"),
    ]


def payee_columns(wallets: FromClause) -> list[Label[Any]]:
    """Columns for the payee's row of the same statement: whether the paying agent
    (parameter ``payer_agent_id``) has paid this wallet before (``known_recipient``) and
    whether it is one of its authorized services, as the wallet or as its merchant
    (``authorized_recipient``)."""
    payer = bindparam("payer_agent_id", type_=String)
    return [
        exists()
        .where(_recipients.c.agent_id == payer, _recipients.c.payee_wallet_id == wallets.c.id)
        .label("known_recipient"),
        exists()
        .where(
            _services.c.agent_id == payer,
            or_(
                _services.c.service_id == wallets.c.id,
                _services.c.service_id == wallets.c.merchant_id,
            ),
        )
        .label("authorized_recipient"),
    ]


#: Names of ``payer_columns`` and ``payee_columns``, in order.
PAYER_COLUMNS: Final = ("last_hour", "last_day", "has_authorized_services")
PAYEE_COLUMNS: Final = ("known_recipient", "authorized_recipient")


#: The wallet row's risk counters, moved by the UPDATE that counts a spend
#: (``limits.repository.spend_ctes`` ``also_set``).
SPEND_SET: Final = (
    f"{saturating_add('risk_payments', '1')}, {saturating_add('risk_volume', ':spend_amount')}"
)


def spend_ctes() -> str:
    """CTEs that count a completed outflow for the rules, for the statement that counts
    the spend (``limits.repository.spend_ctes``) to carry after its ``spend_lifetime``:
    one more payment in the wallet's minute and hour buckets, and the payee wallet
    (``:spend_payee_wallet_id``) among the agent's recipients. ``:spend_at`` is the
    payment's time; buckets are cut in UTC."""
    return """
    risk_velocity AS (
        INSERT INTO risk_buckets (wallet_id, granularity, bucket_start, payments)
        SELECT l.id, g.granularity,
               date_trunc(g.granularity, CAST(:spend_at AS timestamptz), 'UTC'), 1
          FROM spend_lifetime AS l, (VALUES ('minute'), ('hour')) AS g(granularity)
        ON CONFLICT (wallet_id, granularity, bucket_start)
        DO UPDATE SET payments = risk_buckets.payments + 1
    ),
    risk_recipient AS (
        INSERT INTO agent_recipients (agent_id, payee_wallet_id)
        SELECT l.agent_id, :spend_payee_wallet_id FROM spend_lifetime AS l
        ON CONFLICT DO NOTHING
    )"""


def failure_cte(gate: str) -> str:
    """A CTE that counts a refused attempt of wallet ``:failure_wallet_id`` if the SQL
    condition ``gate`` (a constant of the caller's) holds."""
    return f"""
    risk_failure AS (
        UPDATE wallets SET risk_failures = risk_failures + 1
         WHERE id = :failure_wallet_id AND ({gate})
    )"""  # noqa: S608


_COUNT_FAILURE = text(f"WITH {failure_cte('true')} SELECT 1")


async def count_failure(session: AsyncSession, wallet_id: str) -> None:
    """Count a refused attempt of ``wallet_id`` (for outflows whose refusal writes no
    transaction row: holds)."""
    await session.execute(_COUNT_FAILURE, {"failure_wallet_id": wallet_id})


async def activity(
    session: AsyncSession, wallet_id: str, agent_id: str, payee_wallet_id: str, now: datetime
) -> Row[Any]:
    """``payer_columns`` and ``payee_columns`` read now (under the payer's lock, when the
    lock statement's snapshot was stale)."""
    payee = _wallets.alias("payee")
    statement = select(*payer_columns(_wallets), *payee_columns(payee)).select_from(
        _wallets.join(payee, payee.c.id == bindparam("payee_wallet_id", type_=String))
    )
    statement = statement.where(_wallets.c.id == bindparam("wallet_id", type_=String))
    row: Row[Any] = (
        await session.execute(
            statement,
            {
                "wallet_id": wallet_id,
                "payee_wallet_id": payee_wallet_id,
                "payer_agent_id": agent_id,
                **window_params(now),
            },
        )
    ).one()
    return row


async def history(session: AsyncSession, wallet_id: str, now: datetime) -> Row[Any] | None:
    """The agent's history for scoring it alone: the wallet's counters and created_at, the
    agent's flag, the sliding windows at ``now``."""
    statement = (
        select(
            _wallets.c.risk_payments,
            _wallets.c.risk_volume,
            _wallets.c.risk_failures,
            _wallets.c.created_at,
            _wallets.c.currency,
            _agents.c.is_flagged,
            _agents.c.flag_reason,
            *payer_columns(_wallets),
        )
        .join(_agents, _agents.c.id == _wallets.c.agent_id)
        .where(_wallets.c.id == wallet_id)
    )
    row: Row[Any] | None = (await session.execute(statement, window_params(now))).one_or_none()
    return row


async def transaction_totals(session: AsyncSession, owner_id: str, agent_id: str) -> Row[Any]:
    """The agent's stored transactions (payments it made): ``total``, ``failed`` and the
    ``volume`` of those not failed (minor units), per currency (``currency``)."""
    t = _transactions
    statement = select(
        func.count().label("total"),
        func.count().filter(t.c.status == "failed").label("failed"),
        func.coalesce(func.sum(t.c.amount).filter(t.c.status != "failed"), 0).label("volume"),
    ).where(t.c.owner_id == owner_id, t.c.agent_id == agent_id, t.c.mode == current_mode())
    row: Row[Any] = (await session.execute(statement)).one()
    return row


async def list_services(session: AsyncSession, agent_id: str) -> list[str]:
    statement = (
        select(_services.c.service_id)
        .where(_services.c.agent_id == agent_id, _services.c.mode == current_mode())
        .order_by(_services.c.created_at, _services.c.service_id)
    )
    return list((await session.execute(statement)).scalars())


async def add_service(
    session: AsyncSession, agent_id: str, service_id: str, owner_id: str, key_id: str | None
) -> bool:
    """Authorize ``service_id`` for the agent; False if it already was."""
    statement = (
        insert(_services)
        .values(agent_id=agent_id, service_id=service_id, owner_id=owner_id, key_id=key_id)
        .on_conflict_do_nothing(index_elements=["agent_id", "service_id"])
        .returning(_services.c.service_id)
    )
    return (await session.execute(statement)).one_or_none() is not None


async def remove_service(session: AsyncSession, agent_id: str, service_id: str) -> bool:
    """Revoke ``service_id`` for the agent; False if it was not authorized."""
    statement = (
        delete(_services)
        .where(
            _services.c.agent_id == agent_id,
            _services.c.service_id == service_id,
            _services.c.mode == current_mode(),
        )
        .returning(_services.c.service_id)
    )
    return (await session.execute(statement)).one_or_none() is not None


async def flag(
    session: AsyncSession,
    owner_id: str,
    agent_id: str,
    reason: str,
    now: datetime,
    *,
    replace: bool,
) -> Row[Any] | None:
    """Flag the agent; an agent already flagged keeps its reason unless ``replace``. The
    row (``is_flagged``, ``flag_reason``, ``flagged_at``) if it changed, else None: a
    conditional UPDATE, so concurrent flags record one change."""
    statement = (
        update(_agents)
        .where(
            _agents.c.owner_id == owner_id,
            _agents.c.id == agent_id,
            _agents.c.mode == current_mode(),
            or_(~_agents.c.is_flagged, literal(replace)),
        )
        .values(is_flagged=True, flag_reason=reason, flagged_at=now)
        .returning(_agents.c.is_flagged, _agents.c.flag_reason, _agents.c.flagged_at)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


# Unflag, returning the reason it had: only a flagged agent changes (of concurrent
# unflags, one).
_UNFLAG = text(
    f"""
    UPDATE agents AS a SET is_flagged = false, flag_reason = NULL, flagged_at = NULL
      FROM (SELECT id, flag_reason FROM agents WHERE id = :agent_id FOR UPDATE) AS before
     WHERE a.id = before.id AND a.owner_id = :owner_id AND a.is_flagged
       AND a.mode = {CURRENT_MODE_SQL}
    RETURNING before.flag_reason AS previous_reason
    """  # noqa: S608
)


async def unflag(session: AsyncSession, owner_id: str, agent_id: str) -> tuple[bool, str | None]:
    """Unflag the agent: whether it was flagged, and the reason it had."""
    row = (
        await session.execute(_UNFLAG, {"owner_id": owner_id, "agent_id": agent_id})
    ).one_or_none()
    return (False, None) if row is None else (True, row.previous_reason)


async def get_agent_row(session: AsyncSession, agent_id: str) -> Row[Any]:
    row: Row[Any] = (await session.execute(select(_agents).where(_agents.c.id == agent_id))).one()
    return row


async def prune_buckets(session: AsyncSession, before: datetime) -> int:
    """Delete velocity buckets that no window reaches any more (started before
    ``before``)."""
    result = await session.execute(delete(_buckets).where(_buckets.c.bucket_start < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def service_exists(session: AsyncSession, owner_id: str, service_id: str) -> bool:
    """Whether ``service_id`` is a merchant or wallet of ``owner_id`` (this mode)."""
    statement = select(
        exists().where(
            _wallets.c.owner_id == owner_id,
            _wallets.c.mode == current_mode(),
            or_(_wallets.c.id == service_id, _wallets.c.merchant_id == service_id),
        )
    )
    return bool((await session.execute(statement)).scalar())
