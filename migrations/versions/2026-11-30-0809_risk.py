"""risk: flags, authorized services, and the counters the risk rules read

Agents get a flag (which blocks every money movement) and ``enforce_authorized_services``;
``agent_services`` lists the merchants and wallets an agent is authorized to pay. The risk
rules read counters kept by the payment's own statements instead of scanning history:
per wallet, completed outflows, their volume and refused attempts; per agent, the payee
wallets already paid; per wallet, completed outflows per minute and per hour. A
transaction records its risk decision. Existing history is counted in: the counters start
from the stored transactions (the velocity buckets from those of the last day).

Revision ID: 9bc6e0887ef7
Revises: 8a4c2e6f1b07
Create Date: 2026-11-30 08:09:14.833165
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9bc6e0887ef7"
down_revision: str | None = "8a4c2e6f1b07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The counters as the payments already stored would have left them.
BACKFILL = (
    """
UPDATE wallets AS w
   SET risk_payments = c.completed, risk_volume = c.volume, risk_failures = c.failed
  FROM (SELECT from_wallet_id,
               count(*) FILTER (WHERE status <> 'failed') AS completed,
               coalesce(sum(amount) FILTER (WHERE status <> 'failed'), 0) AS volume,
               count(*) FILTER (WHERE status = 'failed') AS failed
          FROM transactions GROUP BY from_wallet_id) AS c
 WHERE w.id = c.from_wallet_id
""",
    """
INSERT INTO agent_recipients (agent_id, payee_wallet_id, first_paid_at)
SELECT agent_id, to_wallet_id, min(created_at)
  FROM transactions WHERE status <> 'failed'
 GROUP BY agent_id, to_wallet_id
""",
    """
INSERT INTO risk_buckets (wallet_id, granularity, bucket_start, payments)
SELECT from_wallet_id, g.granularity, date_trunc(g.granularity, created_at), count(*)
  FROM transactions, (VALUES ('minute'), ('hour')) AS g(granularity)
 WHERE status <> 'failed' AND created_at > now() - interval '1 day'
 GROUP BY 1, 2, 3
""",
)


def upgrade() -> None:
    op.create_table(
        "agent_recipients",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("payee_wallet_id", sa.String(length=40), nullable=False),
        sa.Column(
            "first_paid_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_recipients_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("agent_id", "payee_wallet_id", name=op.f("pk_agent_recipients")),
    )
    op.create_table(
        "agent_services",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_services_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("agent_id", "service_id", name=op.f("pk_agent_services")),
        sa.CheckConstraint(
            "mode IN ('sandbox', 'live')", name=op.f("ck_agent_services_mode_known")
        ),
    )
    op.create_table(
        "risk_buckets",
        sa.Column("wallet_id", sa.String(length=40), nullable=False),
        sa.Column("granularity", sa.String(length=8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payments", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "granularity IN ('minute', 'hour')", name=op.f("ck_risk_buckets_granularity_known")
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_risk_buckets_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint(
            "wallet_id", "granularity", "bucket_start", name=op.f("pk_risk_buckets")
        ),
    )
    op.add_column(
        "agents", sa.Column("is_flagged", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("agents", sa.Column("flag_reason", sa.Text(), nullable=True))
    op.add_column("agents", sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "agents",
        sa.Column(
            "enforce_authorized_services", sa.Boolean(), server_default="false", nullable=False
        ),
    )
    op.add_column(
        "transactions", sa.Column("risk", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "wallets", sa.Column("risk_payments", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column(
        "wallets", sa.Column("risk_volume", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column(
        "wallets", sa.Column("risk_failures", sa.BigInteger(), server_default="0", nullable=False)
    )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_column("wallets", "risk_failures")
    op.drop_column("wallets", "risk_volume")
    op.drop_column("wallets", "risk_payments")
    op.drop_column("transactions", "risk")
    op.drop_column("agents", "enforce_authorized_services")
    op.drop_column("agents", "flagged_at")
    op.drop_column("agents", "flag_reason")
    op.drop_column("agents", "is_flagged")
    op.drop_table("risk_buckets")
    op.drop_table("agent_services")
    op.drop_table("agent_recipients")
