"""The journal as the API shows it, and the reconciliation ``purser reconcile`` prints.

Amounts are signed decimal strings in the posting's currency: positive adds to the
account, negative takes from it ("-15.99" for money out of a wallet). Inside, minor units.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from app.models.ledger import EntryKind


class WalletAccount(StrEnum):
    """Which of an agent wallet's two ledger accounts a journal listing reads."""

    available = "available"
    """What the agent can spend (the wallet's ``balance``)."""
    held = "held"
    """What pending holds reserve (the wallet's ``held_balance``)."""


OwnerType = Literal["agent", "merchant", "fee", "deposit", "rail"]
ReferenceType = Literal[
    "payment",
    "payment_request",
    "hold",
    "capture",
    "void",
    "refund",
    "funding",
    "initial_balance",
    "other",
]
AccountKindText = Literal[
    "wallet_available", "wallet_held", "merchant", "fee_revenue", "owner_deposit", "rail_clearing"
]


class AccountOwner(BaseModel):
    """Whose account a posting names."""

    type: OwnerType = Field(
        description="`agent` (an agent's wallet), `merchant` (a merchant's wallet), `fee` "
        "(the platform's fee revenue), `deposit` (the owner's deposit: sandbox funding), "
        "`rail` (money arriving from an external rail: Sequence)."
    )
    id: str | None = Field(
        description="The agent's or merchant's id; null for the platform's accounts.",
        examples=["merchant_b71e4c9a2d6f3058"],
    )
    name: str | None = Field(
        description="The merchant's or agent's name when the caller may read it (an agent "
        "of another owner, or another agent for an agent key: null); a label for the "
        "platform's accounts.",
        examples=["TechStore Electronics"],
    )
    wallet_id: str | None = Field(
        description="The agent's or merchant's wallet; null for the platform's accounts."
    )


class PostingRead(BaseModel):
    """One account's side of an entry."""

    account: AccountKindText = Field(
        description="The account's kind: an agent wallet's `wallet_available` or "
        "`wallet_held`, a `merchant` wallet, `fee_revenue`, `owner_deposit` or `rail_clearing`."
    )
    owner: AccountOwner
    amount: str = Field(
        description="Signed decimal string: positive into the account, negative out of it.",
        examples=["15.99"],
    )
    currency: str


class EntryReference(BaseModel):
    """What an entry records, from the entry's reference (or, for a hold's capture or
    void, from the hold it resolved)."""

    type: ReferenceType = Field(
        description="`payment` (a payment, `id` its tx_id), `payment_request` (a payment "
        "request paid, `id` its request id, `tx_id` the payment), `hold` (a hold placed), "
        "`capture` / `void` (a hold captured, `tx_id` the capture's payment, or released; "
        "`id` the hold), `refund` (`id` the refund, `tx_id` the payment refunded), "
        "`funding` (a Sequence funding, `id` the funding, `transfer_id` Sequence's "
        "transfer), `initial_balance` (a sandbox initial balance, `id` the wallet), `other` "
        "(`id` the raw reference)."
    )
    id: str = Field(examples=["tx_a41c9e7b3d2f6058"])
    tx_id: str | None = Field(default=None, description="The payment concerned, if any.")
    transfer_id: str | None = Field(
        default=None, description="Sequence's id of a funding's transfer."
    )


class WalletEntry(BaseModel):
    """One posting of a wallet account, with the account's balance right after it."""

    entry_id: str = Field(
        description="The journal entry (`GET /journal/entries/{entry_id}`); also the "
        "cursor for `starting_after`.",
        examples=["je_5cb9b6f2bb75cd20188ffa16"],
    )
    kind: EntryKind
    account: WalletAccount = Field(description="The wallet account posted to.")
    amount: str = Field(
        description="Signed decimal string: negative is money out of the account.",
        examples=["-15.99"],
    )
    balance_after: str = Field(
        description="The account's balance after this posting: the sum of its postings up "
        "to and including this one, in posting order.",
        examples=["84.01"],
    )
    currency: str
    counterparties: list[PostingRead] = Field(
        description="The entry's other postings (a payment with a fee: the payee and the "
        "fee revenue), debits first, then credits, each largest first."
    )
    reference: EntryReference | None = Field(
        description="What the entry records; null for an entry without a reference."
    )
    description: str | None
    created_at: datetime


class JournalEntryRead(BaseModel):
    """A journal entry with every posting; they sum to zero per currency."""

    entry_id: str = Field(examples=["je_5cb9b6f2bb75cd20188ffa16"])
    kind: EntryKind
    reference: EntryReference | None
    description: str | None
    postings: list[PostingRead] = Field(
        description="Every posting: debits first, then credits, each largest first."
    )
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccountReconciliation:
    """One wallet account: its balance (the ledger's projection) beside the sum of its
    postings, both in minor units of ``currency``."""

    account: WalletAccount
    currency: str
    balance: int
    postings_total: int

    @property
    def difference(self) -> int:
        return self.balance - self.postings_total


@dataclass(frozen=True, slots=True)
class WalletReconciliation:
    owner_id: str
    agent_id: str
    wallet_id: str
    accounts: tuple[AccountReconciliation, ...]

    @property
    def balanced(self) -> bool:
        return all(account.difference == 0 for account in self.accounts)
