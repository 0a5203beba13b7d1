from collections.abc import Sequence
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
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.ledger.repository import ENTRY_BINDS, ENTRY_CTE
from app.domain.limits.repository import spend_ctes
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
)


def _typed(column: str) -> str:
    """The parameter of ``column`` cast to the column's type: a parameter in a SELECT list
    has no type of its own for PostgreSQL to infer. Text goes as ``text``: a cast to
    ``varchar(n)`` would cut an overlong value, where the insert refuses it."""
    kind = _transactions.c[column].type
    sql_type = "text" if isinstance(kind, String) else kind.compile(dialect=_DIALECT)
    return f"CAST(:{column} AS {sql_type})"


# A payment's money part in one round trip, in the pipeline's order (policy was decided
# before it, under the payer's lock):
#   1. ledger: post the entry (payer -> payee + fee revenue), or refuse it (insufficient
#      funds, having written nothing);
#   2. limits: only if it posted, count the amount in the lifetime total and each window;
#   3. the transaction row: completed with its entry, or failed with the ledger's refusal,
#      its message filled in with the balance the ledger saw (``money_text`` renders it
#      as the API does).
_POST_AND_RECORD = text(
    f"""
    WITH {ENTRY_CTE},
    {spend_ctes("EXISTS (SELECT FROM entry WHERE outcome = 'posted')")},
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
    bindparam("completed_at", type_=DateTime(timezone=True)),
    bindparam("spend_starts", type_=ARRAY(Date)),
)


async def insert_transaction(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    """Insert the transaction row of a payment that did not reach the ledger (refused
    before it) and return it."""
    statement = insert(_transactions).values(**values).returning(_transactions)
    row: Row[Any] = (await session.execute(statement)).one()
    return row


async def post_and_record(
    session: AsyncSession,
    values: dict[str, Any],
    *,
    entry: dict[str, Any],
    spend: dict[str, Any],
    refusal: dict[str, Any],
) -> Row[Any]:
    """Post a payment's ledger entry, count its spend and insert its transaction row, in
    one statement (``_POST_AND_RECORD``); return the row with ``entry_outcome``,
    ``entry_account_id`` and ``entry_available`` (the ledger's answer).

    ``values``: the row's ``_COLUMNS`` (and ``completed_at``); ``entry``: the ledger's
    parameters (``PlannedEntry.params``); ``spend``: ``limits`` ``spend_params``;
    ``refusal``: ``refusal_code``, ``refusal_text`` (with ``{have}`` and ``{need}``),
    ``need`` (decimal text) and ``scale`` (the currency's decimals) for the row of a
    payment the ledger refuses."""
    params = {**values, **entry, **spend, **refusal}
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
