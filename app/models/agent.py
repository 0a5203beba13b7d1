from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, ModeScoped


class Agent(ModeScoped, CreatedAt, Base):
    __tablename__ = "agents"
    __table_args__ = (
        Index("ix_agents_owner_id_created_at", "owner_id", "created_at", "id"),
        # The startup check asks whether any agent of the other mode exists.
        Index("ix_agents_mode", "mode"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    #: A flagged agent moves no money until unflagged (seed: "blocks transactions").
    is_flagged: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    flag_reason: Mapped[str | None] = mapped_column(Text)
    flagged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: On: the agent may pay only its authorized services (``agent_services``).
    enforce_authorized_services: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default="false"
    )


class AgentService(ModeScoped, CreatedAt, Base):
    """A merchant or wallet an agent is authorized to pay: lowers the new-recipient risk
    factor and, with ``enforce_authorized_services``, is the only payee allowed."""

    __tablename__ = "agent_services"

    agent_id: Mapped[str] = mapped_column(String(40), ForeignKey("agents.id"), primary_key=True)
    #: A ``merchant_…`` or ``wallet_…`` id of the agent's owner.
    service_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[str | None] = mapped_column(String(40))


class AgentRecipient(Base):
    """A wallet the agent has paid (completed outflow) at least once: the new-recipient
    risk factor reads it; written by the payment's own statement."""

    __tablename__ = "agent_recipients"

    agent_id: Mapped[str] = mapped_column(String(40), ForeignKey("agents.id"), primary_key=True)
    payee_wallet_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    first_paid_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class RiskBucket(Base):
    """Completed outflows of a wallet in one minute or one hour (``granularity``) starting
    at ``bucket_start``: the velocity rule sums the minutes of the last hour and the hours
    of the last day, so its windows slide by the minute and the hour, without scanning
    transactions. Written by the payment's own statement, under the wallet's lock."""

    __tablename__ = "risk_buckets"
    __table_args__ = (
        CheckConstraint("granularity IN ('minute', 'hour')", name="granularity_known"),
    )

    wallet_id: Mapped[str] = mapped_column(String(40), ForeignKey("wallets.id"), primary_key=True)
    granularity: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    payments: Mapped[int] = mapped_column(Integer, nullable=False)
