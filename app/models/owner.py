from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class OwnerControl(Base):
    """An owner's brakes and sandbox clock, per mode: a row exists once the owner froze
    its agents, moved its test clock, or created an agent (whose creation locks the row
    so that a concurrent owner-wide freeze cannot miss it).

    ``frozen_at`` set: every agent of the owner is frozen (``wallets.owner_frozen`` holds
    it on each wallet, where the payer's lock reads it). ``clock_offset_seconds``: how far
    the owner's sandbox clock runs ahead of the server's (always 0 in live mode)."""

    __tablename__ = "owner_controls"

    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Part of the key: an owner's sandbox brakes never touch its live agents.
    mode: Mapped[str] = mapped_column(
        String(8),
        CheckConstraint("mode IN ('sandbox', 'live')", name="mode_known"),
        primary_key=True,
    )
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    frozen_by_key_id: Mapped[str | None] = mapped_column(String(40))
    clock_offset_seconds: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default="0"
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
