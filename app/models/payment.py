from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, ModeScoped


class Transaction(ModeScoped, CreatedAt, Base):
    """A payment attempt: completed (with its journal entry) or failed (with the reason).
    Failed attempts are kept, never rolled away with the failure.

    NOTE: only the payer side has foreign keys. A foreign-key check takes a KEY SHARE lock
    on the row it points to; on the payee side (one busy merchant's wallet) that turns the
    row into a multixact hot spot and costs a lookup per column on every payment. The
    payment service reads every referenced row in the same transaction, and none of
    these rows can be deleted.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('completed', 'failed', 'partially_refunded', 'refunded')",
            name="status_known",
        ),
        CheckConstraint("amount > 0 AND fee >= 0", name="amounts_valid"),
        CheckConstraint("(status = 'failed') = (entry_id IS NULL)", name="entry_unless_failed"),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount", name="refunds_within_amount"
        ),
        Index("ix_transactions_agent_id_created_at", "agent_id", "created_at", "id"),
        Index("ix_transactions_to_agent_id_created_at", "to_agent_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False, server_default="payment")
    agent_id: Mapped[str] = mapped_column(String(40), ForeignKey("agents.id"), nullable=False)
    from_wallet_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("wallets.id"), nullable=False
    )
    to_wallet_id: Mapped[str] = mapped_column(String(40), nullable=False)
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    #: The receiving agent of an agent-to-agent payment.
    to_agent_id: Mapped[str | None] = mapped_column(String(40))
    product_id: Mapped[str | None] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fee: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    purpose: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    entry_id: Mapped[str | None] = mapped_column(String(40))
    key_id: Mapped[str | None] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(40))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Sum of this payment's refunds; the CHECK above caps it at the amount.
    refunded_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    #: The payment request this transaction paid, or the hold it captured.
    request_id_paid: Mapped[str | None] = mapped_column(String(40))
    hold_id: Mapped[str | None] = mapped_column(String(40))
    #: The risk decision of the attempt: ``{decision, score, level, factors}``.
    risk: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class SpendCounter(Base):
    """What a wallet spent in one calendar window (day, week or month starting on
    ``window_start`` in the configured time zone). Updated under the wallet's row lock."""

    __tablename__ = "spend_counters"
    __table_args__ = (
        CheckConstraint("period IN ('day', 'week', 'month')", name="period_known"),
        CheckConstraint("spent >= 0", name="spent_not_negative"),
    )

    wallet_id: Mapped[str] = mapped_column(String(40), ForeignKey("wallets.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    window_start: Mapped[date] = mapped_column(Date, primary_key=True)
    spent: Mapped[int] = mapped_column(BigInteger, nullable=False)


class FeeSchedule(Base):
    """Fees as data: ``flat`` minor units plus ``percent_bps`` hundredths of a percent of
    the amount (rounded half up to the minor unit), per currency."""

    __tablename__ = "fee_schedules"
    __table_args__ = (
        CheckConstraint("flat >= 0", name="flat_not_negative"),
        CheckConstraint("percent_bps BETWEEN 0 AND 10000", name="bps_range"),
    )

    currency: Mapped[str] = mapped_column(String(8), primary_key=True)
    flat: Mapped[int] = mapped_column(BigInteger, nullable=False)
    percent_bps: Mapped[int] = mapped_column(Integer, nullable=False)


class IdempotencyRecord(ModeScoped, CreatedAt, Base):
    """A completed request and its response, replayed for the same key and body.

    Keyed by mode too: an owner's sandbox and live requests are different requests even
    with the same key, so a live request never replays (nor is refused for) a sandbox one.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (PrimaryKeyConstraint("owner_id", "mode", "method", "path", "key"),)

    owner_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    # Who made the request (``idempotency.service.Authority``): a stored response is
    # replayed only to a caller that could have made the request. Rows written before
    # these columns have no key id and count as an owner-wide key's.
    key_id: Mapped[str | None] = mapped_column(String(40))
    agent_id: Mapped[str | None] = mapped_column(String(40))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    body: Mapped[bytes] = mapped_column(nullable=False)
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )


class OutboxEvent(ModeScoped, CreatedAt, Base):
    """An event written in the same transaction as the change it describes; the webhook
    worker delivers it."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_unfanned", "created_at", postgresql_where="fanned_out_at IS NULL"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    #: When deliveries were created for it (the fan-out job); NULL until then.
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditRecord(ModeScoped, CreatedAt, Base):
    """Append-only audit trail of money-relevant events.

    Writers only insert (no lock). A sealer later assigns each committed row the next
    ``chain_seq`` and ``hash = sha256(prev_hash + canonical row)``, so the chain costs the
    payment path nothing; ``purser audit verify`` recomputes it.

    ``seq`` and ``chain_seq`` are global and stay inside: the API shows ``owner_seq``, the
    row's place among its owner's records of its mode (1, 2, 3… in chain order), which the
    sealer gives it with its chain position. A global number would let an owner count
    everyone's payments between two of its own; numbering the modes apart keeps each
    mode's trail gapless, as ``GET /audit`` shows only the key's mode.

    ``mode`` is the mode of the connection that wrote the record. It is not in the hash
    (rows sealed before it existed keep their hashes); the append-only trigger keeps it.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        UniqueConstraint(
            "owner_id", "mode", "owner_seq", name="uq_audit_records_owner_id_mode_owner_seq"
        ),
        # The owner's records not sealed yet (the first page of GET /audit).
        Index(
            "ix_audit_records_owner_id_unsealed",
            "owner_id",
            "seq",
            postgresql_where="owner_seq IS NULL",
        ),
        CheckConstraint("(owner_seq IS NULL) = (chain_seq IS NULL)", name="owner_seq_when_sealed"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[str | None] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(32), nullable=False)
    subject_id: Mapped[str] = mapped_column(String(40), nullable=False)
    agent_id: Mapped[str | None] = mapped_column(String(40))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(8))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    owner_seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
