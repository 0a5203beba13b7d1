from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, ModeScoped


class Merchant(ModeScoped, CreatedAt, Base):
    __tablename__ = "merchants"
    __table_args__ = (
        Index("ix_merchants_owner_id_created_at", "owner_id", "created_at", "id"),
        # The startup check asks whether any merchant of the other mode exists.
        Index("ix_merchants_mode", "mode"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(50))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
