from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import (
    ARRAY,
    Date,
    DateTime,
    Row,
    String,
    Table,
    bindparam,
    insert,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.ledger.repository import ENTRY_BINDS, ENTRY_CTE
from app.domain.limits.repository import spend_ctes
from app.domain.risk import repository as risk_repository
from app.models.base import current_mode
from app.models.payment import Transaction

_transactions = cast(Table, Transaction.__table__)
_DIALECT = PGDialect()  # type: ignore[no-untyped-call]  # unannotated in SQLAlchemy


#: The columns a payment's transaction row is written with (the rest take their defaults).
_COLUMNS: Final = (
    "id",
    "owner_id",
    "agent_id",
    "from_wallet_id",
    "to_wallet_id",
    "merchant_id",
    "to_agent_id",
    "product_id",
    "amount",
    "fee",
    "currency",
    "purpose",
    "key_id",
    "request_id",
    "request_id_paid",
    "risk",
    # The request's time, as completed_at is: an owner's sandbox test clock dates both.
    "created_at",
)


def _typed(column: str) -> str:
    """The parameter of ``column`` cast to the column's type: a parameter in a SELECT list
    has no type of its own for PostgreSQL to infer. Text goes as ``text``: a cast to
    ``varchar(n)`` would cut an overlong value, where the insert refuses it."""
    kind = _transactions.c[column].type
    sql_type = "text" if isinstance(kind, String) else kind.compile(dialect=_DIALECT)
    return f"CAST(:{column} AS {sql_type})"


def _outflow_ctes(gate: str) -> str:
    """The counters a completed outflow moves, as CTEs gated on the SQL condition ``gate``:
    the limits' spend (lifetime total and windows) and, in the same UPDATE of the wallet
    row, the risk counters; then the risk rules' velocity buckets and known recipients.
    Parameters: ``spend_*`` (``outflow_params``)."""
    return f"{spend_ctes(gate, also_set=risk_repository.SPEND_SET)}, {risk_repository.spend_ctes()}"


def outflow_params(spend: dict[str, Any], *, payee_wallet_id: str, at: datetime) -> dict[str, Any]:
    """The parameters of ``_outflow_ctes``: the limits' ``spend_params``, the payee's
    wallet and the moment (the velocity buckets')."""
    return {**spend, "spend_payee_wallet_id": payee_wallet_id, "spend_at": at}


_OUTFLOW_BINDS = (
    bindparam("spend_starts", type_=ARRAY(Date)),
    bindparam("spend_at", type_=DateTime(timezone=True)),
)

# A payment's money part in one round trip, in the pipeline's order (policy was decided
# before it, under the payer's lock):
#   1. ledger: post the entry (payer -> payee + fee revenue), or refuse it (insufficient
#      funds, having written nothing);
#   2. limits and risk: if it posted, count the outflow (spend windows and lifetime total,
#      velocity buckets, known recipients); if not, count a refused attempt;
#   3. the transaction row: completed with its entry, or failed with the ledger's refusal,
#      its message filled in with the balance the ledger saw (``money_text`` renders it
#      as the API does).
_POSTED = "EXISTS (SELECT FROM entry WHERE outcome = 'posted')"
_POST_AND_RECORD = text(
    f"""
    WITH {ENTRY_CTE},
    {_outflow_ctes(_POSTED)},
    {risk_repository.failure_cte(f"NOT {_POSTED}")},
    tx AS (
        INSERT INTO transactions ({", ".join(_COLUMNS)},
                                  status, error_code, error_message, entry_id, completed_at)
        SELECT {", ".join(_typed(column) for column in _COLUMNS)},
               CASE WHEN e.outcome = 'posted' THEN 'completed' ELSE 'failed' END,
               CASE WHEN e.outcome <> 'posted' THEN CAST(:refusal_code AS text) END,
               CASE WHEN e.outcome = 'insufficient_funds' THEN
                   replace(replace(CAST(:refusal_text AS text),
                                   '{{have}}', money_text(e.available, CAST(:scale AS integer))),
                           '{{need}}', CAST(:need AS text))
               END,
               CASE WHEN e.outcome = 'posted' THEN e.entry_id END,
               CASE WHEN e.outcome = 'posted' THEN CAST(:completed_at AS timestamptz) END
          FROM entry AS e
        RETURNING *
    )
    SELECT tx.*, e.outcome AS entry_outcome, e.account_id AS entry_account_id,
           e.available AS entry_available
      FROM tx CROSS JOIN entry AS e
    """  # noqa: S608
).bindparams(
    *ENTRY_BINDS,
    *_OUTFLOW_BINDS,
    bindparam("completed_at", type_=DateTime(timezone=True)),
    bindparam("risk", type_=JSONB),
)

# A refused attempt's row, and the refusal counted for the risk rules, in one round trip.
_RECORD_REFUSAL = text(
    f"""
    WITH {risk_repository.failure_cte("true")},
    tx AS (
        INSERT INTO transactions ({", ".join(_COLUMNS)}, status, error_code, error_message)
        SELECT {", ".join(_typed(column) for column in _COLUMNS)}, 'failed',
               CAST(:error_code AS text), CAST(:error_message AS text)
        RETURNING *
    )
    SELECT * FROM tx
    """  # noqa: S608
).bindparams(bindparam("risk", type_=JSONB))

_COUNT_OUTFLOW = text(f"WITH {_outflow_ctes('true')} SELECT 1").bindparams(*_OUTFLOW_BINDS)


async def insert_transaction(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    """Insert a transaction row as given (a completed capture) and return it."""
    statement = insert(_transactions).values(**values).returning(_transactions)
    row: Row[Any] = (await session.execute(statement)).one()
    return row


async def record_refusal(
    session: AsyncSession, values: dict[str, Any], *, error_code: str, error_message: str
) -> Row[Any]:
    """Insert the failed transaction row of an attempt refused before the ledger
    (``values``: its ``_COLUMNS``) and count the refusal against the payer's wallet for
    the risk rules; return the row."""
    params = {
        **values,
        "error_code": error_code,
        "error_message": error_message,
        "failure_wallet_id": values["from_wallet_id"],
    }
    row: Row[Any] = (await session.execute(_RECORD_REFUSAL, params)).one()
    return row


async def count_outflow(session: AsyncSession, params: dict[str, Any]) -> None:
    """Count a completed outflow that writes no transaction row of its own (a hold
    placed): ``_outflow_ctes`` with ``outflow_params``."""
    await session.execute(_COUNT_OUTFLOW, params)


async def post_and_record(
    session: AsyncSession,
    values: dict[str, Any],
    *,
    entry: dict[str, Any],
    outflow: dict[str, Any],
    refusal: dict[str, Any],
) -> Row[Any]:
    """Post a payment's ledger entry, count it (or its refusal) and insert its
    transaction row, in one statement (``_POST_AND_RECORD``); return the row with
    ``entry_outcome``, ``entry_account_id`` and ``entry_available`` (the ledger's answer).

    ``values``: the row's ``_COLUMNS`` (and ``completed_at``); ``entry``: the ledger's
    parameters (``PlannedEntry.params``); ``outflow``: ``outflow_params``; ``refusal``:
    ``refusal_code``, ``refusal_text`` (with ``{have}`` and ``{need}``), ``need`` (decimal
    text) and ``scale`` (the currency's decimals) for the row of a payment the ledger
    refuses."""
    params = {
        **values,
        **entry,
        **outflow,
        **refusal,
        "failure_wallet_id": values["from_wallet_id"],
    }
    row: Row[Any] = (await session.execute(_POST_AND_RECORD, params)).one()
    return row


async def get_transaction(session: AsyncSession, owner_id: str, tx_id: str) -> Row[Any] | None:
    statement = select(_transactions).where(
        _transactions.c.owner_id == owner_id,
        _transactions.c.id == tx_id,
        _transactions.c.mode == current_mode(),
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def list_for_agent(
    session: AsyncSession,
    owner_id: str,
    agent_id: str,
    *,
    limit: int,
    offset: int,
    starting_after: Row[Any] | None,
) -> Sequence[Row[Any]]:
    """Payments the agent made or received, newest first."""
    t = _transactions
    statement = select(t).where(
        t.c.owner_id == owner_id,
        t.c.mode == current_mode(),
        or_(t.c.agent_id == agent_id, t.c.to_agent_id == agent_id),
    )
    if starting_after is not None:
        statement = statement.where(
            tuple_(t.c.created_at, t.c.id) < tuple_(starting_after.created_at, starting_after.id)
        )
    statement = statement.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows
