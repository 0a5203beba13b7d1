"""every row of an owner's data and money carries its mode (sandbox or live)

Existing rows become sandbox: before this revision money could enter the ledger only as
sandbox funding (a live server refuses ``initial_balance`` and no rail is connected), so
every balance is sandbox money, even where a live key moved it. The column then defaults
to the writing connection's ``purser.mode`` (set by ``app.db.create_engine``).

Platform accounts (fee revenue, deposit sources) become one per mode: their natural key
is unique per mode. Postings must name accounts of their entry's mode.

Downgrading a database that has platform accounts in both modes fails on the restored
unique key: the two modes' money cannot be merged back into one account.

Revision ID: 0a2ba0eb5fc0
Revises: fc3791882fae
Create Date: 2026-11-30 05:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.sql import modes_2026_11_30 as modes_sql

revision: str = "0a2ba0eb5fc0"
down_revision: str | None = "fc3791882fae"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Everything an owner can address by id, every money row, and the events they raise.
TABLES = (
    "agents",
    "wallets",
    "merchants",
    "products",
    "ledger_accounts",
    "journal_entries",
    "transactions",
    "holds",
    "payment_requests",
    "refunds",
    "outbox_events",
)


def upgrade() -> None:
    for table in TABLES:
        # A constant default fills existing rows without rewriting the table; then the
        # default becomes the connection's mode.
        op.add_column(
            table, sa.Column("mode", sa.String(length=8), server_default="sandbox", nullable=False)
        )
        op.alter_column(table, "mode", server_default=sa.text("current_setting('purser.mode')"))
        op.create_check_constraint(
            op.f(f"ck_{table}_mode_known"), table, "mode IN ('sandbox', 'live')"
        )
    op.create_index("ix_agents_mode", "agents", ["mode"], unique=False)
    op.create_index("ix_merchants_mode", "merchants", ["mode"], unique=False)
    op.drop_constraint(op.f("uq_ledger_accounts_system_key"), "ledger_accounts", type_="unique")
    op.create_unique_constraint(
        "uq_ledger_accounts_system_key_mode", "ledger_accounts", ["system_key", "mode"]
    )
    for statement in modes_sql.UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in modes_sql.DOWNGRADE:
        op.execute(statement)
    op.drop_constraint("uq_ledger_accounts_system_key_mode", "ledger_accounts", type_="unique")
    op.create_unique_constraint(
        op.f("uq_ledger_accounts_system_key"), "ledger_accounts", ["system_key"]
    )
    op.drop_index("ix_merchants_mode", table_name="merchants")
    op.drop_index("ix_agents_mode", table_name="agents")
    for table in reversed(TABLES):
        op.drop_constraint(op.f(f"ck_{table}_mode_known"), table, type_="check")
        op.drop_column(table, "mode")
