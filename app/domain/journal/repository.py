"""All SQL of the journal: reads of postings and entries. Nothing here writes."""

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    Row,
    String,
    Table,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.agent import Agent
from app.models.base import current_mode
from app.models.ledger import JournalEntry, LedgerAccount, LedgerHold, Posting
from app.models.merchant import Merchant
from app.models.payment import Transaction
from app.models.payment_flow import Hold, Refund
from app.models.sequence import SequenceTransfer
from app.models.wallet import Wallet

_accounts = cast(Table, LedgerAccount.__table__)
_agents = cast(Table, Agent.__table__)
_entries = cast(Table, JournalEntry.__table__)
_holds = cast(Table, Hold.__table__)
_ledger_holds = cast(Table, LedgerHold.__table__)
_merchants = cast(Table, Merchant.__table__)
_postings = cast(Table, Posting.__table__)
_refunds = cast(Table, Refund.__table__)
_transfers = cast(Table, SequenceTransfer.__table__)
_transactions = cast(Table, Transaction.__table__)
_wallets = cast(Table, Wallet.__table__)


async def get_agent_wallet_any_owner(session: AsyncSession, agent_id: str) -> Row[Any] | None:
    """The agent's wallet in the connection's mode, whoever owns it (an operator's read)."""
    statement = select(_wallets).where(
        _wallets.c.agent_id == agent_id, _wallets.c.mode == current_mode()
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def get_posting_id(session: AsyncSession, account_id: str, entry_id: str) -> int | None:
    """The insertion order (``postings.id``) of ``account_id``'s posting in ``entry_id``,
    or None when the entry does not post to that account."""
    statement = select(_postings.c.id).where(
        _postings.c.account_id == account_id, _postings.c.entry_id == entry_id
    )
    posting_id: int | None = (await session.execute(statement)).scalar_one_or_none()
    return posting_id


async def list_account_postings(
    session: AsyncSession, account_id: str, *, limit: int, before_id: int | None
) -> Sequence[Row[Any]]:
    """The account's postings, newest first: at most ``limit``, only those older than
    posting ``before_id`` if given. Each row: ``id``, ``entry_id``, ``amount``,
    ``currency``, ``balance_after`` (minor units: the sum of the account's postings up to
    and including this one, in insertion order, computed from the postings themselves)
    and the entry's ``kind``, ``reference``, ``description``, ``created_at``.

    Posting order is insertion order (``postings.id``). A wallet account has one balance
    row, which every entry posting to it locks before it inserts its posting and keeps
    locked until commit, so that order is also the order the postings committed in: the
    balance after a posting never changes once it is read. The window sums every posting
    up to the cursor, so a page deep in the history costs its whole prefix (the index
    ``ix_postings_account_id_id`` serves it).
    """
    history = select(
        _postings.c.id,
        _postings.c.entry_id,
        _postings.c.amount,
        _postings.c.currency,
        func.sum(_postings.c.amount).over(order_by=_postings.c.id).label("balance_after"),
    ).where(_postings.c.account_id == account_id)
    if before_id is not None:
        # Exact: the balance after a posting depends only on the postings before it.
        history = history.where(_postings.c.id < before_id)
    page = history.order_by(_postings.c.id.desc()).limit(limit).subquery("page")
    statement = (
        select(
            page,
            _entries.c.kind,
            _entries.c.reference,
            _entries.c.description,
            _entries.c.created_at,
        )
        .join(_entries, _entries.c.id == page.c.entry_id)
        .order_by(page.c.id.desc())
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


async def get_entry(session: AsyncSession, entry_id: str) -> Row[Any] | None:
    """The entry, if it is of the connection's mode."""
    statement = select(_entries).where(_entries.c.id == entry_id, _entries.c.mode == current_mode())
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def entry_postings(session: AsyncSession, entry_ids: Sequence[str]) -> Sequence[Row[Any]]:
    """Every posting of the entries, each with whose account it names: ``entry_id``,
    ``posting_id``, ``account_id``, ``amount``, ``currency``, the account's ``kind`` and
    ``owner_id``, and for a wallet's account the wallet's ``wallet_id``, ``agent_id`` /
    ``merchant_id``, ``available_account_id``, ``agent_name`` / ``merchant_name``."""
    statement = (
        select(
            _postings.c.entry_id,
            _postings.c.id.label("posting_id"),
            _postings.c.account_id,
            _postings.c.amount,
            _postings.c.currency,
            _accounts.c.kind,
            _accounts.c.owner_id,
            _wallets.c.id.label("wallet_id"),
            _wallets.c.agent_id,
            _wallets.c.merchant_id,
            _wallets.c.available_account_id,
            _agents.c.name.label("agent_name"),
            _merchants.c.name.label("merchant_name"),
        )
        .select_from(_postings)
        .join(_accounts, _accounts.c.id == _postings.c.account_id)
        .outerjoin(
            _wallets,
            or_(
                _wallets.c.available_account_id == _postings.c.account_id,
                _wallets.c.held_account_id == _postings.c.account_id,
            ),
        )
        .outerjoin(_agents, _agents.c.id == _wallets.c.agent_id)
        .outerjoin(_merchants, _merchants.c.id == _wallets.c.merchant_id)
        .where(_postings.c.entry_id.in_(entry_ids))
        .order_by(_postings.c.entry_id, _postings.c.id)
    )
    return cast(Sequence[Row[Any]], (await session.execute(statement)).all())


async def reference_details(
    session: AsyncSession,
    *,
    tx_ids: Sequence[str],
    refund_ids: Sequence[str],
    funding_ids: Sequence[str],
    resolution_entry_ids: Sequence[str],
    available_account_ids: Sequence[str],
) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """What entry references point at, in one round trip, keyed by (``source``, key):

    - ``("payment", tx_id)``: (the payment request it paid, None);
    - ``("refund", refund_id)``: (the payment refunded, None);
    - ``("funding", funding_id)``: (Sequence's transfer id, None);
    - ``("resolution", entry_id)``: (the hold that capture or void entry resolved, the
      capture's payment). A hold is found from the available account it was placed
      from (``available_account_ids``: indexed), never by a scan of every hold.
    """
    text_null = null().cast(String)
    parts = []
    if tx_ids:
        parts.append(
            select(
                literal("payment").label("source"),
                _transactions.c.id.label("key"),
                _transactions.c.request_id_paid.label("first"),
                text_null.label("second"),
            ).where(_transactions.c.id.in_(tx_ids))
        )
    if refund_ids:
        parts.append(
            select(literal("refund"), _refunds.c.id, _refunds.c.tx_id, text_null).where(
                _refunds.c.id.in_(refund_ids)
            )
        )
    if funding_ids:
        parts.append(
            select(
                literal("funding"),
                _transfers.c.id,
                _transfers.c.sequence_transfer_id,
                text_null,
            ).where(_transfers.c.id.in_(funding_ids))
        )
    if resolution_entry_ids and available_account_ids:
        parts.append(
            select(
                literal("resolution"),
                _ledger_holds.c.resolve_entry_id,
                _holds.c.id,
                _holds.c.capture_tx_id,
            )
            .select_from(_ledger_holds)
            .join(_holds, _holds.c.ledger_hold_id == _ledger_holds.c.id)
            .where(
                _ledger_holds.c.available_account_id.in_(available_account_ids),
                _ledger_holds.c.resolve_entry_id.in_(resolution_entry_ids),
            )
        )
    if not parts:
        return {}
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    rows = (await session.execute(statement)).all()
    return {(row[0], row[1]): (row[2], row[3]) for row in rows}


async def sum_postings(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, int]:
    """The sum of each account's postings in minor units (accounts without any: absent)."""
    statement = (
        select(_postings.c.account_id, func.sum(_postings.c.amount))
        .where(_postings.c.account_id.in_(account_ids))
        .group_by(_postings.c.account_id)
    )
    return {row[0]: int(row[1]) for row in (await session.execute(statement)).all()}
