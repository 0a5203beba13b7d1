from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, ModeScoped


class SequenceSettings(ModeScoped, Base):
    """An owner's Sequence rail: its Platform API key (encrypted as webhook secrets are;
    none: the deployment's default connection) and its transfer limits (none: the
    settings' defaults)."""

    __tablename__ = "sequence_settings"
    __table_args__ = (PrimaryKeyConstraint("owner_id", "mode"),)

    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    api_key_ciphertext: Mapped[str | None] = mapped_column(Text)
    #: The key's last four characters, to recognise it without reading it back.
    key_hint: Mapped[str | None] = mapped_column(String(8))
    base_url: Mapped[str | None] = mapped_column(Text)
    max_transfer_cents: Mapped[int | None] = mapped_column(BigInteger)
    max_daily_transfer_cents: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class SequenceTransfer(ModeScoped, CreatedAt, Base):
    """A transfer Purser asked Sequence to make (``kind`` ``transfer``: the gateway's, or
    ``funding``: into an agent's wallet). Its ``id`` is the ``idempotency-key`` Sequence
    sees, so resending it can never create a second transfer.

    ``status``: ``reserved`` (limit reserved; Sequence's answer not yet known: not sent,
    or sent without a definite reply), ``submitted`` (Sequence accepted it:
    ``sequence_transfer_id`` set), ``completed``, ``failed`` (reservation released)."""

    __tablename__ = "sequence_transfers"
    __table_args__ = (
        CheckConstraint("kind IN ('transfer', 'funding')", name="kind_known"),
        CheckConstraint(
            "status IN ('reserved', 'submitted', 'completed', 'failed')", name="status_known"
        ),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        UniqueConstraint("owner_id", "mode", "client_key", name="uq_sequence_transfers_client_key"),
        Index(
            "ix_sequence_transfers_unresolved",
            "next_check_at",
            postgresql_where=text("status IN ('reserved', 'submitted')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    source_id: Mapped[str] = mapped_column(String(64), nullable=False)
    destination_id: Mapped[str] = mapped_column(String(64), nullable=False)
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    description: Mapped[str | None] = mapped_column(String(10))
    #: The calendar day (limits time zone) whose daily limit holds the amount.
    day: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    sequence_transfer_id: Mapped[str | None] = mapped_column(String(64))
    sequence_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    #: The request's Idempotency-Key and body fingerprint (a retry finds this transfer).
    client_key: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(40))
    #: Funding: the wallet credited on completion, the amount in its minor units.
    agent_id: Mapped[str | None] = mapped_column(String(40))
    wallet_id: Mapped[str | None] = mapped_column(String(40))
    credit_amount: Mapped[int | None] = mapped_column(BigInteger)
    credit_currency: Mapped[str | None] = mapped_column(String(8))
    entry_id: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_check_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SequenceDailyUsage(Base):
    """Cents of an owner's transfers counted against one day's limit: reserved before
    Sequence is called, given back when a transfer definitely fails. A conditional UPDATE
    of this row is the only way to reserve, so no race can pass the limit."""

    __tablename__ = "sequence_daily_usage"
    __table_args__ = (
        PrimaryKeyConstraint("owner_id", "mode", "day"),
        CheckConstraint("used_cents >= 0", name="used_not_negative"),
    )

    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    mode: Mapped[str] = mapped_column(String(8), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    used_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
