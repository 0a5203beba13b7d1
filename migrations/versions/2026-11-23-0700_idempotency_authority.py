"""idempotency records remember who made the request

Revision ID: fc3791882fae
Revises: cefee88c1c7b
Create Date: 2026-11-23 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fc3791882fae"
down_revision: str | None = "cefee88c1c7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Records kept from before get no key id, no agent and no scopes: they are replayed
    # to owner-wide keys only, which could have made any request of their owner.
    op.add_column("idempotency_records", sa.Column("key_id", sa.String(length=40), nullable=True))
    op.add_column("idempotency_records", sa.Column("agent_id", sa.String(length=40), nullable=True))
    op.add_column(
        "idempotency_records",
        sa.Column("scopes", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("idempotency_records", "scopes")
    op.drop_column("idempotency_records", "agent_id")
    op.drop_column("idempotency_records", "key_id")
