"""webhook endpoints, idempotency records and audit records carry their mode too

Existing rows become sandbox, as revision 0a2ba0eb5fc0 made every agent, wallet, payment
and event sandbox: these rows describe that data (audit records), receive its events
(webhook endpoints) or replay requests made on it (idempotency records), so they stay
with it. The column then defaults to the writing connection's ``purser.mode``.

Idempotency records are keyed by mode: ``(owner_id, mode, method, path, key)``. Audit
records are numbered per owner and mode (``owner_seq`` unique per ``(owner_id, mode,
owner_seq)``); every existing row is sandbox, so its number stays right. ``mode`` is not
part of an audit row's hash: rows sealed before this revision still verify.

Downgrading fails on the restored keys where the modes overlap: an owner with audit
records of both modes (two rows numbered 1), or one idempotency key used in both modes.

Revision ID: ef083315a10b
Revises: f767900208a6
Create Date: 2026-11-30 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ef083315a10b"
down_revision: str | None = "f767900208a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("webhook_endpoints", "idempotency_records", "audit_records")
IDEMPOTENCY_KEY = ["owner_id", "method", "path", "key"]


def upgrade() -> None:
    for table in TABLES:
        # A constant default fills existing rows without rewriting the table (nor updating
        # a row: the audit trail's append-only trigger has nothing to refuse); then the
        # default becomes the connection's mode.
        op.add_column(
            table, sa.Column("mode", sa.String(length=8), server_default="sandbox", nullable=False)
        )
        op.alter_column(table, "mode", server_default=sa.text("current_setting('purser.mode')"))
        op.create_check_constraint(
            op.f(f"ck_{table}_mode_known"), table, "mode IN ('sandbox', 'live')"
        )
    op.drop_constraint(op.f("pk_idempotency_records"), "idempotency_records", type_="primary")
    op.create_primary_key(
        op.f("pk_idempotency_records"),
        "idempotency_records",
        ["owner_id", "mode", "method", "path", "key"],
    )
    op.drop_constraint("uq_audit_records_owner_id_owner_seq", "audit_records", type_="unique")
    op.create_unique_constraint(
        "uq_audit_records_owner_id_mode_owner_seq",
        "audit_records",
        ["owner_id", "mode", "owner_seq"],
    )


def downgrade() -> None:
    op.drop_constraint("uq_audit_records_owner_id_mode_owner_seq", "audit_records", type_="unique")
    op.create_unique_constraint(
        "uq_audit_records_owner_id_owner_seq", "audit_records", ["owner_id", "owner_seq"]
    )
    op.drop_constraint(op.f("pk_idempotency_records"), "idempotency_records", type_="primary")
    op.create_primary_key(op.f("pk_idempotency_records"), "idempotency_records", IDEMPOTENCY_KEY)
    for table in reversed(TABLES):
        op.drop_constraint(op.f(f"ck_{table}_mode_known"), table, type_="check")
        op.drop_column(table, "mode")
