"""The journal, read: a wallet's postings with running balances, one entry with all its
postings, and the reconciliation of a wallet's balances against its postings.

Only reads: money moves through ``app.domain.ledger`` alone. Who may read what:

- an agent's wallet journal: whoever may read the agent's wallet (``agent_service.get``:
  the owner's keys, and a key restricted to that agent);
- an entry: an owner key, if the entry posts to an account of its owner; an agent key, if
  it posts to its own agent's wallet. Otherwise the entry is not found, exactly as one
  that does not exist (or is of the other mode).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.agent import service as agent_service
from app.domain.agent.errors import AgentNotFound
from app.domain.apikey.schemas import Principal
from app.domain.journal import repository
from app.domain.journal.errors import EntryNotFound
from app.domain.journal.schemas import (
    AccountOwner,
    AccountReconciliation,
    EntryReference,
    JournalEntryRead,
    OwnerType,
    PostingRead,
    WalletAccount,
    WalletEntry,
    WalletReconciliation,
)
from app.domain.ledger import service as ledger
from app.domain.wallet import service as wallet_service
from app.kit.money import format_amount
from app.models.ledger import AccountKind, EntryKind

#: The owner type of each account kind (``AccountOwner.type``).
_OWNER_TYPES: Final[dict[str, OwnerType]] = {
    AccountKind.wallet_available: "agent",
    AccountKind.wallet_held: "agent",
    AccountKind.merchant: "merchant",
    AccountKind.fee_revenue: "fee",
    AccountKind.owner_deposit: "deposit",
    AccountKind.rail_clearing: "rail",
}
#: What the platform's accounts are called (they have no id of their own to show).
_PLATFORM_NAMES: Final[dict[OwnerType, str]] = {
    "fee": "Fee revenue",
    "deposit": "Owner deposit",
    "rail": "Sequence",
}
#: Reference prefixes as the writers of entries put them (``<prefix>:<id>``): a payment
#: (``app.domain.payment``), a hold placed (``app.domain.hold``), a refund, a Sequence
#: funding (``app.domain.sequence.transfers``), a sandbox initial balance.
_PREFIXES: Final = ("payment", "hold", "refund", "funding", "initial_balance")


@dataclass(frozen=True, slots=True)
class _Ref:
    """An entry's reference, parsed: ``prefix`` one of ``_PREFIXES`` (else None)."""

    prefix: str | None
    key: str


def _parse(reference: str | None) -> _Ref | None:
    if reference is None:
        return None
    prefix, colon, key = reference.partition(":")
    if colon and key and prefix in _PREFIXES:
        return _Ref(prefix, key)
    return _Ref(None, reference)


def _posting_order(row: Row[Any]) -> tuple[bool, int, int]:
    """Debits first, then credits, each largest first; insertion order breaks ties."""
    return (row.amount > 0, -abs(row.amount), row.posting_id)


class _Reader:
    """Turns rows into what the caller may read: names of accounts only where ``principal``
    could read them elsewhere (its owner's merchants; its owner's agents for an owner
    key, its own agent for an agent key)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def owner(self, row: Row[Any]) -> AccountOwner:
        kind = _OWNER_TYPES.get(row.kind)
        if kind is None:
            raise AssertionError(f"account {row.account_id} has an unknown kind {row.kind!r}")
        mine = row.owner_id == self.principal.owner_id
        if kind == "merchant":
            return AccountOwner(
                type="merchant",
                id=row.merchant_id,
                name=row.merchant_name if mine else None,
                wallet_id=row.wallet_id,
            )
        if kind == "agent":
            readable = mine and self.principal.sees_agent(row.agent_id)
            return AccountOwner(
                type="agent",
                id=row.agent_id,
                name=row.agent_name if readable else None,
                wallet_id=row.wallet_id,
            )
        return AccountOwner(type=kind, id=None, name=_PLATFORM_NAMES[kind], wallet_id=None)

    def posting(self, row: Row[Any]) -> PostingRead:
        return PostingRead(
            account=row.kind,
            owner=self.owner(row),
            amount=format_amount(row.amount, row.currency),
            currency=row.currency,
        )


async def _references(
    session: AsyncSession,
    entries: Iterable[tuple[str, str, str | None]],
    available_account_ids: Sequence[str],
) -> dict[str, EntryReference | None]:
    """Each entry's ``EntryReference`` (by entry id), with what it points at looked up in
    one round trip. ``entries``: (entry id, kind, reference); a capture or void entry has
    no reference and is found from the hold it resolved, among the holds placed from
    ``available_account_ids``."""
    parsed = {entry_id: (kind, _parse(reference)) for entry_id, kind, reference in entries}
    wanted: dict[str, list[str]] = defaultdict(list)
    for entry_id, (kind, ref) in parsed.items():
        if ref is not None and ref.prefix in ("payment", "refund", "funding"):
            wanted[ref.prefix].append(ref.key)
        elif ref is None and kind in (EntryKind.capture, EntryKind.void):
            wanted["resolution"].append(entry_id)
    found = await repository.reference_details(
        session,
        tx_ids=wanted["payment"],
        refund_ids=wanted["refund"],
        funding_ids=wanted["funding"],
        resolution_entry_ids=wanted["resolution"],
        available_account_ids=available_account_ids,
    )
    references: dict[str, EntryReference | None] = {}
    for entry_id, (kind, ref) in parsed.items():
        references[entry_id] = _reference(entry_id, kind, ref, found)
    return references


def _reference(
    entry_id: str,
    kind: str,
    ref: _Ref | None,
    found: dict[tuple[str, str], tuple[str | None, str | None]],
) -> EntryReference | None:
    if ref is None:
        if kind not in (EntryKind.capture, EntryKind.void):
            return None
        resolved = found.get(("resolution", entry_id))
        if resolved is None or resolved[0] is None:
            return None
        hold_id, capture_tx_id = resolved
        if kind == EntryKind.capture:
            return EntryReference(type="capture", id=hold_id, tx_id=capture_tx_id)
        return EntryReference(type="void", id=hold_id)
    if ref.prefix is None:
        return EntryReference(type="other", id=ref.key)
    first = found.get((ref.prefix, ref.key), (None, None))[0]
    if ref.prefix == "payment":
        if first is not None:
            return EntryReference(type="payment_request", id=first, tx_id=ref.key)
        return EntryReference(type="payment", id=ref.key, tx_id=ref.key)
    if ref.prefix == "refund":
        return EntryReference(type="refund", id=ref.key, tx_id=first)
    if ref.prefix == "funding":
        return EntryReference(type="funding", id=ref.key, transfer_id=first)
    if ref.prefix == "hold":
        return EntryReference(type="hold", id=ref.key)
    return EntryReference(type="initial_balance", id=ref.key)


async def list_wallet_entries(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    *,
    account: WalletAccount,
    limit: int,
    starting_after: str | None,
) -> list[WalletEntry]:
    """The postings of the agent wallet's ``account``, newest first, each with the
    account's balance after it; after the entry ``starting_after`` if given.

    Raises ``AgentNotFound`` (404) for an agent the caller does not see and
    ``EntryNotFound`` (404, ``param`` ``starting_after``) for a cursor that is not an
    entry of this listing (of this very account)."""
    await agent_service.get(session, principal, agent_id)
    wallet = await wallet_service.get_agent_wallet(session, principal.owner_id, agent_id)
    account_id = (
        wallet.available_account_id
        if account is WalletAccount.available
        else wallet.held_account_id
    )
    before_id = None
    if starting_after is not None:
        before_id = await repository.get_posting_id(session, account_id, starting_after)
        if before_id is None:
            raise EntryNotFound(f"Entry {starting_after} not found", param="starting_after")
    rows = await repository.list_account_postings(
        session, account_id, limit=limit, before_id=before_id
    )
    if not rows:
        return []
    entry_ids = [row.entry_id for row in rows]
    legs: dict[str, list[Row[Any]]] = defaultdict(list)
    for leg in await repository.entry_postings(session, entry_ids):
        if leg.account_id != account_id:
            legs[leg.entry_id].append(leg)
    references = await _references(
        session,
        [(row.entry_id, row.kind, row.reference) for row in rows],
        [wallet.available_account_id],
    )
    reader = _Reader(principal)
    return [
        WalletEntry(
            entry_id=row.entry_id,
            kind=row.kind,
            account=account,
            amount=format_amount(row.amount, row.currency),
            balance_after=format_amount(int(row.balance_after), row.currency),
            currency=row.currency,
            counterparties=[
                reader.posting(leg) for leg in sorted(legs[row.entry_id], key=_posting_order)
            ],
            reference=references[row.entry_id],
            description=row.description,
            created_at=row.created_at,
        )
        for row in rows
    ]


def _touches_callers_account(principal: Principal, legs: Sequence[Row[Any]]) -> bool:
    if principal.agent_id is None:
        return any(leg.owner_id == principal.owner_id for leg in legs)
    return any(
        leg.owner_id == principal.owner_id
        and leg.agent_id == principal.agent_id
        and leg.kind in (AccountKind.wallet_available, AccountKind.wallet_held)
        for leg in legs
    )


async def get_entry(session: AsyncSession, principal: Principal, entry_id: str) -> JournalEntryRead:
    """The entry with all its postings. Raises ``EntryNotFound`` (404) when it does not
    exist, is of the other mode, or posts to none of the caller's accounts (an owner
    key: its owner's; an agent key: its agent's wallet)."""
    entry = await repository.get_entry(session, entry_id)
    legs = [] if entry is None else await repository.entry_postings(session, [entry_id])
    if entry is None or not _touches_callers_account(principal, legs):
        raise EntryNotFound(f"Entry {entry_id} not found")
    available = sorted({leg.available_account_id for leg in legs if leg.available_account_id})
    references = await _references(session, [(entry.id, entry.kind, entry.reference)], available)
    reader = _Reader(principal)
    return JournalEntryRead(
        entry_id=entry.id,
        kind=entry.kind,
        reference=references[entry.id],
        description=entry.description,
        postings=[reader.posting(leg) for leg in sorted(legs, key=_posting_order)],
        created_at=entry.created_at,
    )


async def reconcile_agent_wallet(session: AsyncSession, agent_id: str) -> WalletReconciliation:
    """The agent's wallet (whoever owns it, in the connection's mode): each account's
    balance from the ledger's balance projection beside the sum of its postings. Raises
    ``AgentNotFound`` for an agent without a wallet in this mode."""
    wallet = await repository.get_agent_wallet_any_owner(session, agent_id)
    if wallet is None:
        raise AgentNotFound(f"Agent {agent_id} not found")
    accounts = {
        WalletAccount.available: wallet.available_account_id,
        WalletAccount.held: wallet.held_account_id,
    }
    ids = list(accounts.values())
    balances = await ledger.balances_of(session, ids)
    totals = await repository.sum_postings(session, ids)
    return WalletReconciliation(
        owner_id=wallet.owner_id,
        agent_id=agent_id,
        wallet_id=wallet.id,
        accounts=tuple(
            AccountReconciliation(
                account=account,
                currency=wallet.currency,
                balance=balances.get(account_id, 0),
                postings_total=totals.get(account_id, 0),
            )
            for account, account_id in accounts.items()
        ),
    )
