"""What the GetSequence Platform API v1 returns, as pydantic models (spec §10).

Attributes are snake_case; each is read from (and, with ``by_alias=True``, written as) its
camelCase wire name, so ``Balance(balance_in_cents=1)`` and
``Balance.model_validate({"balanceInCents": 1})`` build the same object.

Every amount is an integer number of **cents** (USD minor units, §1). Datetimes are
timezone-aware UTC; ``lastStatementDate`` and ``nextPaymentDueDate`` are plain dates.

The spec's examples leave out fields its schema calls required (§10 notes, §15.6), so only
what identifies an object is required here (an id, and what a caller cannot do without);
everything else defaults to ``None`` (or ``False``) instead of failing validation. Enum
values are kept as plain strings: the spec says several lists grow over time (``errorCode``
in §10.6), and an unknown value must not make a whole page unreadable. Unknown fields are
ignored for the same reason.
"""

from datetime import date, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

#: Transfer statuses after which a transfer never changes (§8.1; the spec implies them).
TERMINAL_STATUSES: Final = frozenset({"COMPLETE", "INCOMPLETE", "ERROR", "CANCELLED"})
#: Every transfer status (§8.1).
TRANSFER_STATUSES: Final = frozenset(
    {"PENDING_APPROVAL", "PROCESSING", "PENDING", *TERMINAL_STATUSES}
)
#: ``AccountType`` (§10.1).
ACCOUNT_TYPES: Final = frozenset({"INCOME_SOURCE", "POD", "EXTERNAL_ACCOUNT"})
#: Accounts Sequence manages: a transfer between two of them is ``INTERNAL`` (§10.6).
MANAGED_ACCOUNT_TYPES: Final = frozenset({"INCOME_SOURCE", "POD"})
#: ``Transfer.direction`` (§10.6).
DIRECTIONS: Final = frozenset({"MONEY_IN", "MONEY_OUT", "INTERNAL"})
#: ``origin`` values a list may filter on; ``UNKNOWN`` appears only in responses (§10.6).
ORIGIN_FILTERS: Final = frozenset(
    {"DIRECT_DEPOSIT", "CHECK_DEPOSIT", "CASHBACK", "USER_PULL", "RULE", "USER", "EXTERNAL_PULL"}
)
#: ``executionMode`` filter values; lists default to ``LIVE`` (§6, §11.3).
EXECUTION_MODE_FILTERS: Final = frozenset({"LIVE", "SIMULATION", "ALL"})
#: ``accountRole`` of ``GET /accounts/{accountId}/transfers``, lowercase on the wire (§11.3).
ACCOUNT_ROLES: Final = frozenset({"source", "destination", "either"})


class SequenceModel(BaseModel):
    """Base of the models: camelCase aliases, population by name, unknown fields ignored,
    instances immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Balance(SequenceModel):
    """An account's balance (§10.3). All ten fields may be null.

    ``balance_in_cents`` is what a pod or depository account holds, and for a liability the
    amount **owed**, as a positive number; ``available_balance_in_cents`` is what can be
    spent (the balance less pending holds). ``error`` is set, and ``balance_in_cents`` null,
    when Sequence could not read the balance.
    """

    balance_in_cents: int | None = None
    available_balance_in_cents: int | None = None
    last_statement_balance_in_cents: int | None = None
    last_statement_date: date | None = None
    next_payment_minimum_in_cents: int | None = None
    next_payment_due_date: date | None = None
    balance_last_updated_at: datetime | None = None
    error: str | None = None
    interest_rate_percentage: float | None = None
    original_loan_amount_in_cents: int | None = None


class AccountSummary(SequenceModel):
    """An item of ``GET /accounts`` (§10.1, §11.1): no balance, no account numbers.

    ``type`` is ``INCOME_SOURCE``, ``POD`` or ``EXTERNAL_ACCOUNT``;
    ``external_account_type`` is ``DEPOSITORY``, ``INVESTMENT`` or ``LIABILITY`` for
    external accounts, else ``None``. ``can_be_source``/``can_be_destination`` are about
    **rules**, not manual transfers (§11.6). ``deleted_at`` is set only on accounts listed
    with ``state=ALL``.
    """

    id: str
    name: str = ""
    type: str
    description: str | None = None
    external_account_type: str | None = None
    beneficiary_name: str | None = None
    institution_name: str | None = None
    can_be_source: bool = False
    can_be_destination: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class Account(AccountSummary):
    """``GET /accounts/{id}`` (§10.2): the summary plus balance and account numbers.

    ``routing_number`` and ``bank_account_number`` may be full, unmasked numbers (§15.1):
    they are left out of ``repr`` so that no log line built from the object carries them.
    ``savings_target_in_cents`` is set only on pods. The spec's ``linkedAccount`` (a manual
    liability linked to a pod) is kept as the raw mapping Sequence sent, or ``None``.
    """

    routing_number: str | None = Field(default=None, repr=False)
    bank_account_number: str | None = Field(default=None, repr=False)
    balance: Balance | None = None
    savings_target_in_cents: int | None = None
    linked_account: dict[str, Any] | None = Field(default=None, repr=False)


class TransferParty(SequenceModel):
    """A transfer's source or destination (``TransferAccountRef``, §10.4).

    ``type`` is an ``AccountType`` or ``EXTERNAL_ENTITY`` (an outside party known by name
    only, whose ``id`` and ``is_deleted`` are ``None``). ``name`` is ``"Unknown"`` when
    Sequence cannot find the record at all.
    """

    id: str | None = None
    name: str = "Unknown"
    type: str = "EXTERNAL_ENTITY"
    is_deleted: bool | None = None


class Transfer(SequenceModel):
    """A transfer (§10.6).

    ``amount_in_cents`` is always positive; ``direction`` (``MONEY_IN``, ``MONEY_OUT``,
    ``INTERNAL``) carries the sense. ``status`` is one of ``TRANSFER_STATUSES``;
    ``error_code`` (an open-ended list, §10.6: ``INSUFFICIENT_FUNDS``, ``PAYMENT_FAILED``…)
    is set on ``INCOMPLETE`` and ``ERROR``; ``completed_at`` once ``COMPLETE``. A transfer
    carries no description or client reference (§10.6): match it by ``id``.
    """

    id: str
    amount_in_cents: int
    direction: str | None = None
    origin: str | None = None
    source: TransferParty | None = None
    destination: TransferParty | None = None
    status: str
    execution_mode: str = "LIVE"
    rule_id: str | None = None
    rule_execution_id: str | None = None
    error_code: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        """Whether the status is final (``TERMINAL_STATUSES``, §8.1)."""
        return self.status in TERMINAL_STATUSES


class _Page(SequenceModel):
    """A page of a list (§6): the wire's ``{items, pagination: {page, pageSize,
    hasNextPage}}`` flattened. A missing or null ``hasNextPage`` reads as ``False``, as
    §6 asks of clients (several official examples leave it out)."""

    page: int = 1
    page_size: int = 10
    has_next_page: bool = False

    @model_validator(mode="before")
    @classmethod
    def _flatten_pagination(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("pagination"), dict):
            return {**value["pagination"], **{k: v for k, v in value.items() if k != "pagination"}}
        return value

    @field_validator("has_next_page", mode="before")
    @classmethod
    def _null_is_false(cls, value: Any) -> Any:
        return False if value is None else value


class TransferPage(_Page):
    """A page of ``GET /transfers`` or ``GET /accounts/{accountId}/transfers`` (§11.3,
    §11.4), newest ``created_at`` first."""

    items: list[Transfer] = Field(default_factory=list)


class AccountPage(_Page):
    """A page of ``GET /accounts`` (§11.1)."""

    items: list[AccountSummary] = Field(default_factory=list)
