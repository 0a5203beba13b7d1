"""State machines on top of payments: payment requests (invoices), holds, refunds."""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, ModeScoped


class PaymentRequest(ModeScoped, CreatedAt, Base):
    """An invoice from a requester agent to a payer agent: pending -> paid | cancelled |
    expired, each transition a conditional UPDATE from ``pending``."""

    __tablename__ = "payment_requests"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('pending', 'paid', 'cancelled', 'expired')", name="status_known"
        ),
        CheckConstraint("(status = 'paid') = (tx_id IS NOT NULL)", name="tx_iff_paid"),
        Index("ix_payment_requests_requester_owner", "requester_owner_id", "created_at", "id"),
        Index("ix_payment_requests_payer_owner", "payer_owner_id", "created_at", "id"),
        Index(
            "ix_payment_requests_pending_expiry",
            "expires_at",
            postgresql_where="status = 'pending'",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    requester_owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    requester_agent_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("agents.id"), nullable=False
    )
    payer_owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    payer_agent_id: Mapped[str] = mapped_column(String(40), ForeignKey("agents.id"), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    tx_id: Mapped[str | None] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Hold(ModeScoped, CreatedAt, Base):
    """Funds of an agent reserved for a merchant: pending -> captured | voided | expired.
    The money sits in the wallet's held ledger account (see ``ledger_holds``)."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("amount > 0 AND fee >= 0", name="amounts_valid"),
        CheckConstraint(
            "status IN ('pending', 'captured', 'voided', 'expired')", name="status_known"
        ),
        CheckConstraint(
            "captured_amount IS NULL OR (captured_amount > 0 AND captured_amount <= amount)",
            name="captured_within_amount",
        ),
        Index("ix_holds_agent_id_created_at", "agent_id", "created_at", "id"),
        Index("ix_holds_pending_expiry", "expires_at", postgresql_where="status = 'pending'"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    agent_id: Mapped[str] = mapped_column(String(40), ForeignKey("agents.id"), nullable=False)
    wallet_id: Mapped[str] = mapped_column(String(40), ForeignKey("wallets.id"), nullable=False)
    merchant_id: Mapped[str] = mapped_column(String(40), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The fee reserved with the amount (the fee of a full capture).
    fee: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    purpose: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    ledger_hold_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: When the hold was authorised: its spend counts in that moment's limit windows.
    authorized_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    captured_amount: Mapped[int | None] = mapped_column(BigInteger)
    capture_tx_id: Mapped[str | None] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Refund(ModeScoped, CreatedAt, Base):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount > 0 AND fee_returned >= 0", name="amounts_valid"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    tx_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("transactions.id"), nullable=False, index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fee_returned: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    entry_id: Mapped[str] = mapped_column(String(40), nullable=False)
    key_id: Mapped[str | None] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(40))
