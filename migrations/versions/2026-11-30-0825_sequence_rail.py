"""sequence rail: per-owner connections and limits, transfers, daily usage

``sequence_settings`` holds an owner's Platform API key (encrypted) and limit overrides;
``sequence_transfers`` every transfer Purser asks Sequence for (gateway transfers and
wallet fundings), its id being the idempotency key Sequence sees; ``sequence_daily_usage``
the cents reserved against each day's limit before Sequence is called.

Revision ID: 05495ec12c34
Revises: 9bc6e0887ef7
Create Date: 2026-11-30 08:25:58.482889
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "05495ec12c34"
down_revision: str | None = "9bc6e0887ef7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sequence_daily_usage",
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "used_cents >= 0", name=op.f("ck_sequence_daily_usage_used_not_negative")
        ),
        sa.PrimaryKeyConstraint("owner_id", "mode", "day", name=op.f("pk_sequence_daily_usage")),
    )
    op.create_table(
        "sequence_settings",
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("api_key_ciphertext", sa.Text(), nullable=True),
        sa.Column("key_hint", sa.String(length=8), nullable=True),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("max_transfer_cents", sa.BigInteger(), nullable=True),
        sa.Column("max_daily_transfer_cents", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "mode",
            sa.String(length=8),
            server_default=sa.text("current_setting('purser.mode')"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("owner_id", "mode", name=op.f("pk_sequence_settings")),
        sa.CheckConstraint(
            "mode IN ('sandbox', 'live')", name=op.f("ck_sequence_settings_mode_known")
        ),
    )
    op.create_table(
        "sequence_transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("destination_id", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=10), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("sequence_transfer_id", sa.String(length=64), nullable=True),
        sa.Column("sequence_status", sa.String(length=20), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("client_key", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("request_id", sa.String(length=40), nullable=True),
        sa.Column("agent_id", sa.String(length=40), nullable=True),
        sa.Column("wallet_id", sa.String(length=40), nullable=True),
        sa.Column("credit_amount", sa.BigInteger(), nullable=True),
        sa.Column("credit_currency", sa.String(length=8), nullable=True),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_check_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "mode",
            sa.String(length=8),
            server_default=sa.text("current_setting('purser.mode')"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('transfer', 'funding')", name=op.f("ck_sequence_transfers_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('reserved', 'submitted', 'completed', 'failed')",
            name=op.f("ck_sequence_transfers_status_known"),
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_sequence_transfers_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_transfers")),
        sa.UniqueConstraint(
            "owner_id", "mode", "client_key", name="uq_sequence_transfers_client_key"
        ),
        sa.CheckConstraint(
            "mode IN ('sandbox', 'live')", name=op.f("ck_sequence_transfers_mode_known")
        ),
    )
    op.create_index(
        "ix_sequence_transfers_unresolved",
        "sequence_transfers",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('reserved', 'submitted')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_sequence_transfers_unresolved",
        table_name="sequence_transfers",
        postgresql_where=sa.text("status IN ('reserved', 'submitted')"),
    )
    op.drop_table("sequence_transfers")
    op.drop_table("sequence_settings")
    op.drop_table("sequence_daily_usage")
