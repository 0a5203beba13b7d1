"""What a new sandbox organisation holds (spec §13.9, simplified): one income source, six
pods (one deleted), four external accounts (depository, liability, investment) and a
short history of transfers of several origins.

Ids are **deterministic**: ``seeded_id(key, name)`` hashes the API key and the account's
name (or a history entry's label) into a UUID with version 4 and the RFC 4122 variant, so
a restarted sandbox gives the same key the same ids, and two keys never share one.
Timestamps are relative to the organisation's first request.

Balances, in cents (the history below is already counted in them):

- ``Main Payroll``, INCOME_SOURCE: 320 000;
- ``Emergency Fund``, POD: 150 000, savings target 1 000 000;
- ``Groceries``, POD: 42 000;
- ``Agent Budget``, POD: 250 000;
- ``Vacation``, POD: 80 000;
- ``Agent Budget Reserve``, POD: 10 000 (a second name containing "Agent Budget", so a
  lookup by name can be ambiguous);
- ``Chase Checking ••4567``, EXTERNAL_ACCOUNT / DEPOSITORY: 1 234 500;
- ``Purser Settlement``, EXTERNAL_ACCOUNT / DEPOSITORY: 0 (where Purser funds wallets);
- ``Amex Gold ••1009``, EXTERNAL_ACCOUNT / LIABILITY: 185 000 owed, statement fields set;
- ``Vanguard Brokerage ••8812``, EXTERNAL_ACCOUNT / INVESTMENT: 5 400 000;
- ``Old Car Fund``, POD, deleted 30 days ago: 0 (listed only with ``state=ALL``).
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from app.integrations.sequence.sandbox.state import AccountRecord, TransferRecord

_NAMESPACE: Final = "purser-sequence-sandbox/v1"
#: Stripe's test routing number: valid in form, routes nowhere.
_ROUTING_NUMBER: Final = "110000000"


def seeded_id(key: str, name: str) -> str:
    """A UUID v4-shaped id derived from ``key`` and ``name`` (same inputs, same id)."""
    digest = hashlib.sha256(f"{_NAMESPACE}\0{key}\0{name}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _account_number(key: str, name: str) -> str:
    digest = hashlib.sha256(f"{_NAMESPACE}\0number\0{key}\0{name}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**16).zfill(16)


@dataclass(frozen=True, slots=True)
class _Seed:
    name: str
    type: str
    balance: int | None
    external_account_type: str | None = None
    institution_name: str | None = None
    beneficiary_name: str | None = None
    description: str | None = None
    savings_target: int | None = None
    can_be_source: bool = True
    can_be_destination: bool = True
    deleted_days_ago: int | None = None


_ACCOUNTS: Final = (
    _Seed(
        "Main Payroll",
        "INCOME_SOURCE",
        320_000,
        institution_name="Sequence",
        description="Where the paycheck lands",
        can_be_destination=False,
    ),
    _Seed(
        "Emergency Fund",
        "POD",
        150_000,
        description="Six months of expenses",
        savings_target=1_000_000,
    ),
    _Seed("Groceries", "POD", 42_000),
    _Seed("Agent Budget", "POD", 250_000, description="Spent by Purser's agents"),
    _Seed("Vacation", "POD", 80_000),
    _Seed("Agent Budget Reserve", "POD", 10_000),
    _Seed(
        "Chase Checking ••4567",
        "EXTERNAL_ACCOUNT",
        1_234_500,
        external_account_type="DEPOSITORY",
        institution_name="Chase",
        beneficiary_name="Alex Doe",
    ),
    _Seed(
        "Purser Settlement",
        "EXTERNAL_ACCOUNT",
        0,
        external_account_type="DEPOSITORY",
        institution_name="Purser",
        beneficiary_name="Purser Inc",
        description="Purser funds agent wallets from this account",
    ),
    _Seed(
        "Amex Gold ••1009",
        "EXTERNAL_ACCOUNT",
        185_000,
        external_account_type="LIABILITY",
        institution_name="American Express",
        beneficiary_name="Alex Doe",
        can_be_source=False,
    ),
    _Seed(
        "Vanguard Brokerage ••8812",
        "EXTERNAL_ACCOUNT",
        5_400_000,
        external_account_type="INVESTMENT",
        institution_name="Vanguard",
        beneficiary_name="Alex Doe",
        can_be_source=False,
    ),
    _Seed("Old Car Fund", "POD", 0, deleted_days_ago=30),
)


def seed_accounts(key: str, now: datetime) -> list[AccountRecord]:
    """The accounts of a new organisation for ``key``, in listing order."""
    created = now - timedelta(days=400)
    accounts: list[AccountRecord] = []
    for seed in _ACCOUNTS:
        managed = seed.type != "EXTERNAL_ACCOUNT"
        liability = seed.external_account_type == "LIABILITY"
        statement: dict[str, Any] = {}
        if liability:
            statement = {
                "lastStatementBalanceInCents": 150_000,
                "lastStatementDate": (now - timedelta(days=10)).date().isoformat(),
                "nextPaymentMinimumInCents": 4_000,
                "nextPaymentDueDate": (now + timedelta(days=15)).date().isoformat(),
                "interestRatePercentage": 24.99,
            }
        deleted_at = (
            now - timedelta(days=seed.deleted_days_ago)
            if seed.deleted_days_ago is not None
            else None
        )
        accounts.append(
            AccountRecord(
                id=seeded_id(key, seed.name),
                name=seed.name,
                type=seed.type,
                created_at=created,
                updated_at=deleted_at or created,
                external_account_type=seed.external_account_type,
                description=seed.description,
                beneficiary_name=seed.beneficiary_name,
                institution_name=seed.institution_name,
                can_be_source=seed.can_be_source,
                can_be_destination=seed.can_be_destination,
                deleted_at=deleted_at,
                routing_number=_ROUTING_NUMBER if managed else None,
                bank_account_number=_account_number(key, seed.name) if managed else None,
                savings_target_in_cents=seed.savings_target,
                balance_in_cents=seed.balance,
                # A liability has no spendable balance (§10.3): what is owed is not money.
                available_in_cents=None if liability else seed.balance,
                statement=statement,
                balance_updated_at=now,
            )
        )
    return accounts


def seed_transfers(key: str, accounts: list[AccountRecord], now: datetime) -> list[TransferRecord]:
    """A short history for ``accounts``: a payroll deposit with no source, a rule's move,
    a card payment, an ATM pull with no destination, a pull from an outside bank, cashback,
    and one simulation. All final."""
    by_name = {account.name: account for account in accounts}
    rule_id = seeded_id(key, "rule:Payday split")
    execution_id = seeded_id(key, "rule-execution:1")
    day = timedelta(days=1)
    # (origin, cents, direction, label, source, destination, after the start, mode)
    history: list[tuple[str, int, str, str, str | None, str | None, timedelta, str]] = [
        ("DIRECT_DEPOSIT", 320_000, "MONEY_IN", "payroll", None, "Main Payroll", 0 * day, "LIVE"),
        ("RULE", 50_000, "INTERNAL", "split", "Main Payroll", "Emergency Fund", 0 * day, "LIVE"),
        ("USER", 25_000, "MONEY_OUT", "card", "Groceries", "Amex Gold ••1009", day, "LIVE"),
        ("EXTERNAL_PULL", 6_000, "MONEY_OUT", "atm", "Groceries", None, 1.2 * day, "LIVE"),
        ("USER_PULL", 100_000, "MONEY_IN", "pull", "Chase Checking ••4567", "Agent Budget",
         2 * day, "LIVE"),
        ("CASHBACK", 1_250, "MONEY_IN", "cashback", None, "Vacation", 2.1 * day, "LIVE"),
        ("USER", 5_000, "INTERNAL", "dry run", "Agent Budget", "Vacation", 2.2 * day, "SIMULATION"),
    ]  # fmt: skip
    start = now - timedelta(days=3)
    transfers: list[TransferRecord] = []
    for origin, amount, direction, label, source, destination, offset, mode in history:
        is_rule = origin == "RULE"
        # The rule's move follows the deposit by a few seconds, as in §8.1's example.
        created = start + offset + timedelta(seconds=4 if is_rule else 0)
        transfers.append(
            TransferRecord(
                id=seeded_id(key, f"history:{label}"),
                amount_in_cents=amount,
                direction=direction,
                origin=origin,
                source=by_name[source] if source else None,
                destination=by_name[destination] if destination else None,
                status="COMPLETE",
                created_at=created,
                visible_at=created,
                execution_mode=mode,
                # Deposits and card payments land at once; the rule's move took seconds.
                completed_at=created + timedelta(seconds=4 if is_rule else 0),
                rule_id=rule_id if is_rule else None,
                rule_execution_id=execution_id if is_rule else None,
                seeded=True,
            )
        )
    return transfers
