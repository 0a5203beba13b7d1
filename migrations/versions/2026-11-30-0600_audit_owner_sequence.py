"""audit records are numbered per owner

``owner_seq`` is a record's place among its owner's records, in chain order, given by the
sealer together with ``chain_seq``; the API shows it instead of the global ``seq``. Rows
sealed before this revision are numbered here; unsealed ones wait for the sealer.

Revision ID: f767900208a6
Revises: 0a2ba0eb5fc0
Create Date: 2026-11-30 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.sql import audit_owner_sequence_2026_11_30 as audit_sql

revision: str = "f767900208a6"
down_revision: str | None = "0a2ba0eb5fc0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_records", sa.Column("owner_seq", sa.BigInteger(), nullable=True))
    for statement in audit_sql.UPGRADE:
        op.execute(statement)
    op.create_unique_constraint(
        "uq_audit_records_owner_id_owner_seq", "audit_records", ["owner_id", "owner_seq"]
    )
    op.create_check_constraint(
        op.f("ck_audit_records_owner_seq_when_sealed"),
        "audit_records",
        "(owner_seq IS NULL) = (chain_seq IS NULL)",
    )
    op.drop_index("ix_audit_records_owner_id_seq", table_name="audit_records")
    op.create_index(
        "ix_audit_records_owner_id_unsealed",
        "audit_records",
        ["owner_id", "seq"],
        unique=False,
        postgresql_where=sa.text("owner_seq IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_audit_records_owner_id_unsealed",
        table_name="audit_records",
        postgresql_where=sa.text("owner_seq IS NULL"),
    )
    op.create_index(
        "ix_audit_records_owner_id_seq", "audit_records", ["owner_id", "seq"], unique=False
    )
    op.drop_constraint(
        op.f("ck_audit_records_owner_seq_when_sealed"), "audit_records", type_="check"
    )
    op.drop_constraint("uq_audit_records_owner_id_owner_seq", "audit_records", type_="unique")
    for statement in audit_sql.DOWNGRADE:
        op.execute(statement)
    op.drop_column("audit_records", "owner_seq")
