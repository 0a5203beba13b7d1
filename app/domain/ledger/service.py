"""The ledger's public API: open accounts, post balanced entries, hold, capture, void.

Every function works inside the caller's transaction (it never commits). Money moves only
through ``post_entry``, which calls the ``ledger_post_entry`` SQL function: one round
trip that locks the touched balance rows in sorted order, checks funds, and writes the
entry, its postings and the balance projection.
"""

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import session_mode
from app.domain.ledger import repository
from app.domain.ledger.errors import (
    INSUFFICIENT_FUNDS_TEXT,
    AccountNotFound,
    BalanceOverflow,
    CaptureExceedsHold,
    CurrencyMismatch,
    EntryReferenceConflict,
    HoldNotFound,
    HoldNotPending,
    InsufficientFunds,
    InvalidPosting,
    UnbalancedEntry,
)
from app.domain.ledger.schemas import Account, BalanceMismatch, Entry, Hold, Leg
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, max_minor, scale_of
from app.models.ledger import AccountKind, EntryKind, HoldStatus

#: Accounts that must never be overdrawn unless the caller says otherwise.
PROTECTED_KINDS: Final = frozenset(
    {
        AccountKind.wallet_available,
        AccountKind.wallet_held,
        AccountKind.merchant,
        AccountKind.fee_revenue,
    }
)

#: Balance slots per kind. Accounts that many concurrent entries credit (fee revenue, a
#: busy merchant) or debit without a floor (deposit and clearing sources) get several
#: rows, so writers lock different ones; wallets keep one.
DEFAULT_SLOTS: Final[dict[AccountKind, int]] = {
    AccountKind.merchant: 8,
    AccountKind.fee_revenue: 16,
    AccountKind.owner_deposit: 8,
    AccountKind.rail_clearing: 8,
}


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        owner_id=row.owner_id,
        kind=row.kind,
        currency=row.currency,
        must_not_go_negative=row.must_not_go_negative,
        balance_slots=row.balance_slots,
        created_at=row.created_at,
    )


def _hold(row: Row[Any]) -> Hold:
    return Hold(
        id=row.id,
        available_account_id=row.available_account_id,
        held_account_id=row.held_account_id,
        amount=Money(row.amount, row.currency),
        captured=None if row.captured_amount is None else Money(row.captured_amount, row.currency),
        status=row.status,
        place_entry_id=row.place_entry_id,
        resolve_entry_id=row.resolve_entry_id,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )


def _account_values(
    kind: AccountKind,
    currency: str,
    owner_id: str | None,
    must_not_go_negative: bool | None,
    balance_slots: int | None,
) -> dict[str, Any]:
    scale_of(currency)
    slots = DEFAULT_SLOTS.get(kind, 1) if balance_slots is None else balance_slots
    if not 1 <= slots <= 64:
        raise InvalidPosting("balance_slots must be between 1 and 64", param="balance_slots")
    return {
        "id": new_id("acct", 10),
        "owner_id": owner_id,
        "kind": kind.value,
        "currency": currency,
        "must_not_go_negative": (
            kind in PROTECTED_KINDS if must_not_go_negative is None else must_not_go_negative
        ),
        "balance_slots": slots,
    }


async def open_account(
    session: AsyncSession,
    *,
    kind: AccountKind,
    currency: str,
    owner_id: str | None = None,
    must_not_go_negative: bool | None = None,
    balance_slots: int | None = None,
) -> Account:
    """Open an account with a zero balance. Raises ``UnknownCurrency``."""
    values = _account_values(kind, currency, owner_id, must_not_go_negative, balance_slots)
    return _account(await repository.insert_account(session, values))


async def open_system_account(
    session: AsyncSession,
    *,
    kind: AccountKind,
    currency: str,
    owner_id: str | None = None,
    balance_slots: int | None = None,
) -> Account:
    """The one account of ``kind`` in ``currency`` for the platform (or for ``owner_id``,
    such as an owner's deposit source) in the connection's mode, opened on first use."""
    values = _account_values(kind, currency, owner_id, None, balance_slots)
    scope = f"{owner_id}:" if owner_id is not None else ""
    values["system_key"] = f"{kind.value}:{scope}{currency}"
    return _account(await repository.insert_system_account(session, values))


#: Platform account ids by mode and system key. Accounts are never deleted, so an id read
#: from a committed row stays valid for the life of the process.
_system_account_ids: dict[tuple[str, str], str] = {}


async def system_account_id(session: AsyncSession, kind: AccountKind, currency: str) -> str:
    """Id of the platform's account of ``kind`` in ``currency`` (fee revenue, …) in the
    session's mode: sandbox fees and live fees are kept in different accounts."""
    system_key = f"{kind.value}:{currency}"
    # The mode comes from the engine, not the database: a cached id costs no statement.
    cache_key = (session_mode(session).value, system_key)
    cached = _system_account_ids.get(cache_key)
    if cached is not None:
        return cached
    existing = await repository.get_account_by_system_key(session, system_key)
    if existing is not None:
        _system_account_ids[cache_key] = existing.id
        return str(existing.id)
    return (await open_system_account(session, kind=kind, currency=currency)).id


async def get_account(session: AsyncSession, account_id: str) -> Account:
    row = await repository.get_account(session, account_id)
    if row is None:
        raise AccountNotFound(f"ledger account {account_id} does not exist")
    return _account(row)


#: A leg may carry up to this many times the largest amount: a payment's debit is its amount
#: plus the fee, so a leg of exactly the largest amount must not be the limit. Ten times
#: it stays six orders of magnitude below BIGINT at scale 6.
MAX_LEG_FACTOR = 10


def _merge_legs(legs: Iterable[Leg]) -> list[Leg]:
    """One leg per account (sorted by account id), each non-zero; the entry balanced."""
    totals: dict[str, int] = defaultdict(int)
    currency_of: dict[str, str] = {}
    for leg in legs:
        amount = leg.amount
        if amount.minor == 0:
            raise InvalidPosting(f"leg for account {leg.account_id} has a zero amount")
        if abs(amount.minor) > MAX_LEG_FACTOR * max_minor(amount.currency):
            raise InvalidPosting(f"leg for account {leg.account_id} exceeds the maximum amount")
        known = currency_of.setdefault(leg.account_id, amount.currency)
        if known != amount.currency:
            raise CurrencyMismatch(f"account {leg.account_id} appears in two currencies")
        totals[leg.account_id] += amount.minor
    merged = [
        Leg(account_id, Money(total, currency_of[account_id]))
        for account_id, total in sorted(totals.items())
        if total != 0
    ]
    if len(merged) < 2:
        raise InvalidPosting("an entry must move money between at least two accounts")
    per_currency: dict[str, int] = defaultdict(int)
    for leg in merged:
        per_currency[leg.amount.currency] += leg.amount.minor
    unbalanced = {currency: total for currency, total in per_currency.items() if total != 0}
    if unbalanced:
        currency, total = next(iter(sorted(unbalanced.items())))
        raise UnbalancedEntry(
            f"entry is unbalanced: legs in {currency} sum to {format_amount(total, currency)}"
        )
    return merged


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """A balanced entry, checked and ready to post: the parameters of ``ledger_post_entry``
    (as ``repository.ENTRY_CTE`` names them) and what is needed to read its outcome."""

    entry_id: str
    kind: EntryKind
    reference: str | None
    legs: tuple[Leg, ...]
    params: dict[str, Any]


def plan_entry(
    *,
    kind: EntryKind,
    legs: Sequence[Leg],
    reference: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    entry_id: str | None = None,
) -> PlannedEntry:
    """Check and merge ``legs`` (raising ``InvalidPosting``, ``UnbalancedEntry``,
    ``CurrencyMismatch``) and prepare their posting, which ``post_entry`` runs in a round
    trip of its own or another domain's statement carries (``repository.ENTRY_CTE``)."""
    merged = _merge_legs(legs)
    entry_id = entry_id or new_id("je", 12)
    return PlannedEntry(
        entry_id=entry_id,
        kind=kind,
        reference=reference,
        legs=tuple(merged),
        params={
            "entry_id": entry_id,
            "entry_kind": kind.value,
            "entry_reference": reference,
            "entry_description": description,
            "entry_metadata": metadata,
            "entry_account_ids": [leg.account_id for leg in merged],
            "entry_currencies": [leg.amount.currency for leg in merged],
            "entry_amounts": [leg.amount.minor for leg in merged],
            # Picks the slot of each multi-slot account this entry credits; not security.
            "entry_slot_seed": random.getrandbits(30),
        },
    )


def posted(
    planned: PlannedEntry, outcome: str, account_id: str | None, available: int | None
) -> Entry:
    """The entry ``planned`` became, given the outcome ``ledger_post_entry`` returned for
    it (``outcome``, and the ``account_id`` and ``available`` balance it names); raises
    ``InsufficientFunds`` (400), ``BalanceOverflow`` (409), ``AccountNotFound`` or
    ``CurrencyMismatch`` for a refusal. The function wrote nothing then. A
    ``duplicate_reference`` is the caller's to resolve (``post_entry`` does)."""
    if outcome == "posted":
        return Entry(
            id=planned.entry_id,
            kind=planned.kind.value,
            reference=planned.reference,
            legs=planned.legs,
        )
    if outcome == "insufficient_funds":
        assert account_id is not None
        assert available is not None
        leg = next(leg for leg in planned.legs if leg.account_id == account_id)
        currency = leg.amount.currency
        raise InsufficientFunds(
            INSUFFICIENT_FUNDS_TEXT.format(
                have=format_amount(available, currency),
                need=format_amount(-leg.amount.minor, currency),
            ),
            account_id=account_id,
            available=available,
            needed=-leg.amount.minor,
        )
    if outcome == "balance_overflow":
        raise BalanceOverflow(
            f"ledger account {account_id} cannot hold more: its balance would pass "
            "the largest a balance row stores"
        )
    if outcome == "unknown_account":
        raise AccountNotFound(f"ledger account {account_id} does not exist")
    if outcome == "currency_mismatch":
        raise CurrencyMismatch(f"ledger account {account_id} holds another currency")
    raise AssertionError(f"unexpected ledger outcome {outcome!r}")


async def post_entry(
    session: AsyncSession,
    *,
    kind: EntryKind,
    legs: Sequence[Leg],
    reference: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    entry_id: str | None = None,
) -> Entry:
    """Post a balanced entry atomically, or raise a typed error having written nothing.

    With a ``reference``, posting again with the same legs returns the first entry
    (``created=False``) and posting different legs raises ``EntryReferenceConflict``.
    Raises ``InvalidPosting``, ``UnbalancedEntry``, ``CurrencyMismatch``,
    ``AccountNotFound``, ``InsufficientFunds`` or ``BalanceOverflow`` (409: an account row
    would pass BIGINT); the caller's transaction stays usable.
    """
    planned = plan_entry(
        kind=kind,
        legs=legs,
        reference=reference,
        description=description,
        metadata=metadata,
        entry_id=entry_id,
    )
    result = await repository.call_post_entry(session, planned.params)
    if result.outcome == "duplicate_reference":
        return await _existing_entry(session, result.entry_id, reference, list(planned.legs))
    return posted(planned, result.outcome, result.account_id, result.available)


async def _existing_entry(
    session: AsyncSession, entry_id: str, reference: str | None, merged: list[Leg]
) -> Entry:
    row = await repository.get_entry(session, entry_id)
    assert row is not None
    existing = [
        Leg(p.account_id, Money(p.amount, p.currency))
        for p in await repository.get_entry_postings(session, entry_id)
    ]
    if existing != merged:
        raise EntryReferenceConflict(
            f"reference {reference!r} was already used by entry {entry_id} with other legs"
        )
    return Entry(
        id=entry_id, kind=row.kind, reference=reference, legs=tuple(existing), created=False
    )


async def balance_of(session: AsyncSession, account_id: str) -> Money:
    """The account's balance: the sum of its slots (equal to the sum of its postings)."""
    account = await get_account(session, account_id)
    totals = await repository.sum_balances(session, [account_id])
    return Money(totals.get(account_id, 0), account.currency)


async def balances_of(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, int]:
    """Balances in minor units of several accounts, in one query (unknown ids are absent)."""
    return await repository.sum_balances(session, account_ids)


async def place_hold(
    session: AsyncSession,
    *,
    available_account_id: str,
    held_account_id: str,
    amount: Money,
    reference: str | None = None,
    hold_id: str | None = None,
) -> Hold:
    """Reserve ``amount``: move it from the available to the held account.

    Raises ``InsufficientFunds`` (nothing written) when the available account lacks it.
    A repeated ``reference`` returns the hold placed the first time.
    """
    if amount.minor <= 0:
        raise InvalidPosting("a hold amount must be greater than zero", param="amount")
    entry = await post_entry(
        session,
        kind=EntryKind.hold,
        legs=[
            Leg(available_account_id, Money(-amount.minor, amount.currency)),
            Leg(held_account_id, amount),
        ],
        reference=reference,
    )
    if not entry.created:
        row = await repository.get_hold_by_place_entry(session, entry.id)
        assert row is not None
        return _hold(row)
    row = await repository.insert_hold(
        session,
        {
            "id": hold_id or new_id("lhold", 10),
            "available_account_id": available_account_id,
            "held_account_id": held_account_id,
            "currency": amount.currency,
            "amount": amount.minor,
            "status": HoldStatus.pending.value,
            "place_entry_id": entry.id,
        },
    )
    return _hold(row)


async def _claim_hold(
    session: AsyncSession,
    hold_id: str,
    status: HoldStatus,
    entry_id: str,
    captured: Money | None = None,
) -> Row[Any]:
    row = await repository.resolve_pending_hold(
        session,
        hold_id,
        status=status.value,
        captured_amount=None if captured is None else captured.minor,
        currency=None if captured is None else captured.currency,
        resolve_entry_id=entry_id,
    )
    if row is not None:
        return row
    current = await repository.get_hold(session, hold_id)
    if current is None:
        raise HoldNotFound(f"hold {hold_id} does not exist")
    if current.status != HoldStatus.pending:
        raise HoldNotPending(f"hold {hold_id} is already {current.status}")
    assert captured is not None
    if captured.currency != current.currency:
        raise CurrencyMismatch(f"hold {hold_id} is in {current.currency}", param="currency")
    raise CaptureExceedsHold(
        f"capture of {captured} exceeds the hold of "
        f"{format_amount(current.amount, current.currency)}",
        param="amount",
    )


async def capture_hold(session: AsyncSession, hold_id: str, *, legs: Sequence[Leg]) -> Hold:
    """Pay out of a pending hold: each leg credits a payee; the captured total may be less
    than the hold, and the rest goes back to the available account. Exactly once: a
    second capture or a capture after void raises ``HoldNotPending`` and moves nothing."""
    if not legs or any(leg.amount.minor <= 0 for leg in legs):
        raise InvalidPosting("capture legs must credit positive amounts", param="amount")
    currencies = {leg.amount.currency for leg in legs}
    if len(currencies) != 1:
        raise CurrencyMismatch("capture legs must share the hold's currency")
    captured = Money(sum(leg.amount.minor for leg in legs), currencies.pop())
    entry_id = new_id("je", 12)
    row = await _claim_hold(session, hold_id, HoldStatus.captured, entry_id, captured)
    released = row.amount - captured.minor
    entry_legs = [Leg(row.held_account_id, Money(-row.amount, row.currency)), *legs]
    if released:
        entry_legs.append(Leg(row.available_account_id, Money(released, row.currency)))
    await post_entry(session, kind=EntryKind.capture, legs=entry_legs, entry_id=entry_id)
    return _hold(row)


async def void_hold(session: AsyncSession, hold_id: str) -> Hold:
    """Release a pending hold back to the available account, exactly once."""
    entry_id = new_id("je", 12)
    row = await _claim_hold(session, hold_id, HoldStatus.voided, entry_id)
    await post_entry(
        session,
        kind=EntryKind.void,
        legs=[
            Leg(row.held_account_id, Money(-row.amount, row.currency)),
            Leg(row.available_account_id, Money(row.amount, row.currency)),
        ],
        entry_id=entry_id,
    )
    return _hold(row)


async def find_balance_mismatches(
    session: AsyncSession, account_ids: Sequence[str] | None = None
) -> list[BalanceMismatch]:
    """Reconciliation: accounts whose balance differs from the sum of their postings."""
    rows = await repository.find_balance_mismatches(session, account_ids)
    return [BalanceMismatch(r.id, int(r.balance), int(r.postings_total)) for r in rows]


async def total_by_currency(session: AsyncSession) -> dict[str, int]:
    """Sum of all balances per currency: zero in a ledger that creates no money."""
    return await repository.total_by_currency(session)
