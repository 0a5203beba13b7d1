from datetime import date
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Label,
    Table,
    bindparam,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Date

from app.models.payment import SpendCounter

_counters = cast(Table, SpendCounter.__table__)


#: The largest value of a BIGINT column.
BIGINT_MAX = 2**63 - 1


def saturating_add(column: str, amount: str) -> str:
    """SQL adding ``amount`` (>= 0) to ``column`` without leaving BIGINT: a lifetime
    counter stops at its largest value instead of failing the payment that reaches it."""
    return f"{column} = least({column}, {BIGINT_MAX} - {amount}) + {amount}"


def spend_ctes(gate: str, also_set: str = "") -> str:
    """The CTEs that count a spend, for a statement to carry: ``spend_lifetime`` adds
    ``:spend_amount`` to the wallet's ``spent_total`` (and makes the assignments
    ``also_set`` of other counters the wallet row carries: one UPDATE of the row), then
    ``spend_windows`` to each window's counter (periods and starts as two arrays unnested
    side by side) — only if the SQL condition ``gate`` holds. ``gate`` and ``also_set``
    are constants of the caller's, never request data. Counters are written from
    ``spend_lifetime``'s row (``id``, ``agent_id``): the wallet row is locked before any
    counter, the order every writer takes them in. Parameters: ``spend_params``."""
    assignments = ", ".join(
        filter(None, (saturating_add("spent_total", ":spend_amount"), also_set))
    )
    return f"""
    spend_lifetime AS (
        UPDATE wallets SET {assignments}
         WHERE id = :spend_wallet_id AND ({gate})
        RETURNING id, agent_id
    ),
    spend_windows AS (
        INSERT INTO spend_counters (wallet_id, period, window_start, spent)
        SELECT l.id, w.period, w.window_start, :spend_amount
          FROM spend_lifetime AS l,
               unnest(CAST(:spend_periods AS text[]), CAST(:spend_starts AS date[]))
                   AS w(period, window_start)
        ON CONFLICT (wallet_id, period, window_start)
        DO UPDATE SET spent = spend_counters.spent + EXCLUDED.spent
    )"""  # noqa: S608


#: The windows a wallet has counters for, in the order ``spent_columns`` reads them.
PERIODS = ("day", "week", "month")


def spent_columns(wallet_id: ColumnElement[Any]) -> list[Label[Any]]:
    """Columns for the payer's lock statement: ``spent_<period>`` (NULL: nothing spent
    yet) and ``window_<period>`` (the window start it was read for), per period, for the
    windows given as parameters (``window_params``). They are read with the statement's
    snapshot: valid only if the wallet row did not change between that snapshot and the
    lock (see ``wallet.repository``)."""
    columns: list[Label[Any]] = []
    for period in PERIODS:
        start = bindparam(f"window_{period}", type_=Date)
        spent = (
            select(_counters.c.spent)
            .where(
                _counters.c.wallet_id == wallet_id,
                _counters.c.period == period,
                _counters.c.window_start == start,
            )
            .scalar_subquery()
        )
        columns.append(spent.label(f"spent_{period}"))
        columns.append(start.label(f"window_{period}"))
    return columns


def window_params(windows: dict[str, date]) -> dict[str, date]:
    """The parameters of ``spent_columns``: each period's window start."""
    return {f"window_{period}": windows[period] for period in PERIODS}


def spend_params(wallet_id: str, windows: dict[str, date], amount: int) -> dict[str, Any]:
    """The parameters of ``spend_ctes``: ``amount`` (minor units) spent by ``wallet_id``
    in each of ``windows`` (period -> window start)."""
    return {
        "spend_wallet_id": wallet_id,
        "spend_amount": amount,
        "spend_periods": list(windows),
        "spend_starts": list(windows.values()),
    }


async def spent_in_windows(
    session: AsyncSession, wallet_id: str, windows: dict[str, date]
) -> dict[str, int]:
    statement = select(_counters.c.period, _counters.c.spent).where(
        _counters.c.wallet_id == wallet_id,
        tuple_(_counters.c.period, _counters.c.window_start).in_(list(windows.items())),
    )
    return {row.period: int(row.spent) for row in (await session.execute(statement)).all()}


# The wallet row is locked before any counter row: counters are read from the wallet's
# row (``(SELECT id FROM lifetime)`` runs before a counter can match), the order a
# payment takes them in (it locks the wallet, then writes the counters). Sibling CTEs
# alone run in no promised order, which let a release and a payment wait on each other.
_REMOVE_SPEND = text(
    """
    WITH lifetime AS (
        UPDATE wallets
           SET spent_total = greatest(spent_total - :amount, 0),
               risk_payments = greatest(risk_payments - :risk_payments, 0),
               risk_volume = greatest(risk_volume - :risk_volume, 0)
         WHERE id = :wallet_id
        RETURNING id
    )
    UPDATE spend_counters c
       SET spent = greatest(c.spent - :amount, 0)
      FROM unnest(CAST(:periods AS text[]), CAST(:starts AS date[])) AS w(period, window_start)
     WHERE c.wallet_id = (SELECT id FROM lifetime)
       AND c.period = w.period AND c.window_start = w.window_start
    """
)


async def remove_spend(
    session: AsyncSession,
    wallet_id: str,
    windows: dict[str, date],
    amount: int,
    *,
    risk_payments: int = 0,
    risk_volume: int = 0,
) -> None:
    """Take ``amount`` back out of ``spent_total`` and the windows it was counted in, and
    ``risk_payments`` / ``risk_volume`` out of the risk counters the same row carries."""
    await session.execute(
        _REMOVE_SPEND,
        {
            "wallet_id": wallet_id,
            "amount": amount,
            "risk_payments": risk_payments,
            "risk_volume": risk_volume,
            "periods": list(windows),
            "starts": list(windows.values()),
        },
    )
