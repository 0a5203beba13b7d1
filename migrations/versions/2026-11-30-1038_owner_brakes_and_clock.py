"""owner brakes and clock: owner-wide freeze and sandbox test clock

``owner_controls`` holds, per owner and mode, whether all its agents are frozen and how
far its sandbox clock runs ahead; ``wallets.owner_frozen`` copies the freeze onto each
wallet, where the payer's lock reads it.

Revision ID: 1eebe95a5c49
Revises: 05495ec12c34
Create Date: 2026-11-30 10:38:05.294381
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1eebe95a5c49"
down_revision: str | None = "05495ec12c34"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owner_controls",
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("frozen_by_key_id", sa.String(length=40), nullable=True),
        sa.Column("clock_offset_seconds", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "mode IN ('sandbox', 'live')", name=op.f("ck_owner_controls_mode_known")
        ),
        sa.PrimaryKeyConstraint("owner_id", "mode", name=op.f("pk_owner_controls")),
    )
    op.add_column(
        "wallets", sa.Column("owner_frozen", sa.Boolean(), server_default="false", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("wallets", "owner_frozen")
    op.drop_table("owner_controls")
