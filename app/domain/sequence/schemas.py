"""Shapes of the Sequence gateway (seed ``000``: cents, and ``balance`` as "$1,500.00"),
of the owner's connection and limits, and of wallet funding."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, WithJsonSchema

from app.kit.money import AmountText
from app.kit.schemas import IdText, RequestSchema

#: Largest amount the gateway takes, in cents: far above any limit, well inside BIGINT.
MAX_CENTS = 10**12


def dollars(cents: int) -> str:
    """Cents as the seed writes money: ``150000`` -> ``"$1,500.00"``, ``-500`` ->
    ``"-$5.00"`` (exact: no float)."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${Decimal(abs(cents)).scaleb(-2):,.2f}"


class Pod(BaseModel):
    id: str
    name: str
    organization_id: str | None = Field(
        default=None, description="Always null: a Platform API key belongs to one organisation"
    )
    balance_cents: int | None
    balance: str | None = Field(description='The balance as "$1,500.00"; null if unknown')


class TotalBalance(BaseModel):
    total_balance_cents: int
    total_balance: str
    pod_count: int


class TransferSummary(BaseModel):
    id: str
    status: str
    amount_cents: int
    amount: str
    direction: str | None
    activity_type: str | None = Field(description="Sequence's origin (USER, RULE, DIRECT_DEPOSIT…)")
    source: dict[str, Any] | None
    destination: dict[str, Any] | None
    error_reason: str | None
    created_at: datetime | None
    completed_at: datetime | None


class PodDetail(Pod):
    description: str | None
    goal_amount_cents: int | None = Field(description="Sequence's savingsTargetInCents")
    available_balance_cents: int | None
    balance_last_updated_at: datetime | None
    recent_transfers: list[TransferSummary]


class AccountItem(BaseModel):
    id: str
    name: str
    type: str = Field(description="POD, INCOME_SOURCE (a port) or EXTERNAL_ACCOUNT")
    institution: str | None
    external_account_type: str | None
    balance_cents: int | None
    balance: str | None


class Accounts(BaseModel):
    pods: list[AccountItem]
    ports: list[AccountItem]
    accounts: list[AccountItem]


class ActivitySummary(BaseModel):
    transfer_count: int
    rule_executions: int
    total_incoming_cents: int
    total_incoming: str
    period_start: datetime = Field(description="The summary covers this month from here")


class ActivityPage(BaseModel):
    transfers: list[TransferSummary]
    has_next_page: bool
    end_cursor: str | None = Field(description="Pass as `after` for the next page")


AccountKindText = Literal["POD", "PORT", "ACCOUNT"]


class TransferCreate(RequestSchema):
    """Seed ``000`` ``POST /api/transfers``, validated as the Platform API requires."""

    source_id: IdText
    destination_id: IdText
    amount_cents: StrictInt = Field(
        ge=100, le=MAX_CENTS, description="Cents; Sequence's minimum is 100 ($1.00)"
    )
    source_type: AccountKindText = "POD"
    destination_type: AccountKindText = "POD"
    description: str = Field(
        default="",
        max_length=10,
        pattern=r"^[A-Za-z0-9 ]*$",
        description="The ACH label: at most 10 letters, digits or spaces (Sequence's rule)",
    )
    instant: StrictBool = Field(
        default=False, description="Not offered by Sequence's Platform API: true is refused"
    )
    kyc_id: str | None = Field(
        default=None, max_length=64, description="Accepted and ignored (the key names the org)"
    )


class TransferResult(BaseModel):
    status: Literal["completed", "pending", "failed"]
    transfer_id: str | None = Field(description="Sequence's transfer id (null until known)")
    id: str = Field(description="Purser's id of the transfer (also Sequence's idempotency key)")
    amount_cents: int
    source_id: str
    destination_id: str
    sequence_status: str | None
    error: str | None = None


class ConnectionPut(RequestSchema):
    api_key: str = Field(min_length=8, max_length=256, pattern=r"^[\x21-\x7e]+$")
    base_url: str | None = Field(
        default=None,
        max_length=300,
        pattern=r"^https?://[\x21-\x7e]+$",
        description="Default: SEQUENCE_BASE_URL, else https://api.getsequence.io/platform/v1",
    )


class ConnectionRead(BaseModel):
    source: Literal["owner", "default", "sandbox", "none"] = Field(
        description="owner: this owner's key; default: the deployment's SEQUENCE_API_KEY; "
        "sandbox: the sandbox Sequence; none: not connected"
    )
    key_hint: str | None
    base_url: str | None
    updated_at: datetime | None


class LimitsPut(RequestSchema):
    max_transfer_cents: StrictInt | None = Field(default=None, ge=100, le=MAX_CENTS)
    max_daily_transfer_cents: StrictInt | None = Field(default=None, ge=100, le=MAX_CENTS)


class LimitsRead(BaseModel):
    max_transfer_cents: int
    max_daily_transfer_cents: int
    used_today_cents: int
    remaining_today_cents: int


class FundingCreate(RequestSchema):
    source: Annotated[
        Literal["sequence"], WithJsonSchema({"type": "string", "enum": ["sequence"]})
    ] = Field(description="The rail the money comes from: `sequence`")
    pod_id: IdText
    amount: AmountText


class FundingRead(BaseModel):
    funding_id: str
    agent_id: str
    wallet_id: str
    status: Literal["pending", "completed", "failed"]
    amount: str
    currency: str
    pod_id: str
    transfer_id: str | None = Field(description="Sequence's transfer id, once known")
    error: str | None
    created_at: datetime
    completed_at: datetime | None
