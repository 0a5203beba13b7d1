"""Values the ledger takes and returns. Amounts are integers of minor units."""

from dataclasses import dataclass
from datetime import datetime

from app.kit.money import Money


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of an entry: ``amount`` > 0 adds to the account, < 0 takes from it."""

    account_id: str
    amount: Money


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    owner_id: str | None
    kind: str
    currency: str
    must_not_go_negative: bool
    balance_slots: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    kind: str
    reference: str | None
    legs: tuple[Leg, ...]
    #: False when an earlier entry with the same reference and legs was returned instead.
    created: bool = True


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    available_account_id: str
    held_account_id: str
    amount: Money
    captured: Money | None
    status: str
    place_entry_id: str
    resolve_entry_id: str | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    """An account whose balance projection differs from the sum of its postings."""

    account_id: str
    balance: int
    postings_total: int
