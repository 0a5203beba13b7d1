from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String, Text, func
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
