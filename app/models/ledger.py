"""Ledger tables. Only ``app.domain.ledger`` writes them.

- ``ledger_accounts``: one account per (owner, purpose, currency) and mode; never holds a
  balance. An account's mode never changes, and every posting names an account of its
  entry's mode (the postings trigger), so sandbox and live money never meet in an entry.
- ``ledger_balances``: the balance projection, one row per account *slot*. Ordinary
  accounts have one slot; hot accounts (fee revenue, busy merchants, deposit sources)
  have several so concurrent credits lock different rows. ``balance_of`` sums the slots.
- ``journal_entries`` / ``postings``: immutable; postings of an entry sum to zero per
  currency (a deferred constraint trigger), and no UPDATE/DELETE/TRUNCATE is allowed.
- ``ledger_holds``: reserved funds (available -> held) awaiting capture or void.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, ModeScoped


class AccountKind(StrEnum):
    wallet_available = "wallet_available"
    """What an agent wallet can spend."""
    wallet_held = "wallet_held"
    """Funds of a wallet reserved by pending holds."""
    merchant = "merchant"
    fee_revenue = "fee_revenue"
    owner_deposit = "owner_deposit"
    """Source of sandbox initial balances: goes negative by what the owner put in."""
    rail_clearing = "rail_clearing"
    """Counterpart of money arriving from (or leaving to) an external rail."""


class EntryKind(StrEnum):
    transfer = "transfer"
    payment = "payment"
    funding = "funding"
    hold = "hold"
    capture = "capture"
    void = "void"
    refund = "refund"
    adjustment = "adjustment"


class HoldStatus(StrEnum):
    pending = "pending"
    captured = "captured"
    voided = "voided"


class LedgerAccount(ModeScoped, CreatedAt, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("id", "currency", name="uq_ledger_accounts_id_currency"),
        # Platform accounts (fee revenue, deposit sources) exist once per mode.
        UniqueConstraint("system_key", "mode", name="uq_ledger_accounts_system_key_mode"),
        CheckConstraint("balance_slots BETWEEN 1 AND 64", name="slots_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    must_not_go_negative: Mapped[bool] = mapped_column(Boolean, nullable=False)
    balance_slots: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    #: Natural key of platform accounts ("fee_revenue:USDC"), so they are opened once per
    #: mode.
    system_key: Mapped[str | None] = mapped_column(String(160))


class LedgerBalance(Base):
    __tablename__ = "ledger_balances"
    __table_args__ = (
        CheckConstraint("NOT must_not_go_negative OR balance >= 0", name="protected_not_negative"),
    )

    account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    #: Copied from the account so that a CHECK (which cannot look at another table) holds it.
    must_not_go_negative: Mapped[bool] = mapped_column(Boolean, nullable=False)


class JournalEntry(ModeScoped, CreatedAt, Base):
    __tablename__ = "journal_entries"
    __table_args__ = (
        # Partial: most entries carry no reference and then cost no index entry.
        Index(
            "uq_journal_entries_reference",
            "reference",
            unique=True,
            postgresql_where=text("reference IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    #: Caller's idempotency reference: one entry per reference, ever.
    reference: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    #: The writing transaction (xid8 as bigint): postings may only be added to an entry by
    #: the transaction that created it, so the commit-time balance check sees them all.
    txid: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text("(pg_current_xact_id())::text::bigint")
    )


class Posting(Base):
    """One account's side of an entry (legs are merged: one posting per account).

    NOTE: no foreign keys on purpose. A foreign-key check runs per row and takes a KEY
    SHARE lock on the referenced row: on a hot account that lock turns the account row
    into a multixact hot spot. One statement-level trigger checks instead that every
    posting names an entry of the current transaction and an account in its currency.
    """

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_postings_account_id_id", "account_id", "id"),
    )

    entry_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: Insertion order, for an account's history.
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LedgerHold(CreatedAt, Base):
    __tablename__ = "ledger_holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "captured_amount IS NULL OR (captured_amount >= 0 AND captured_amount <= amount)",
            name="captured_within_amount",
        ),
        CheckConstraint("status IN ('pending', 'captured', 'voided')", name="status_known"),
        CheckConstraint(
            "(status = 'pending') = (resolved_at IS NULL)", name="resolved_iff_not_pending"
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    available_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, index=True
    )
    held_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False
    )
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    captured_amount: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    place_entry_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("journal_entries.id"), nullable=False
    )
    # Deferred: a capture or void claims the hold (conditional UPDATE) before it posts
    # the entry that resolves it, so the entry exists only by commit time.
    resolve_entry_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("journal_entries.id", deferrable=True, initially="DEFERRED")
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
