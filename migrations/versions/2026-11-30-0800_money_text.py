"""money_text(minor, scale): minor units as the API writes them, for SQL that composes text

A payment's transaction row is written in the same statement as its ledger entry; when the
ledger refuses for insufficient funds, that statement writes the refusal's message
("Insufficient balance: have 1.50, need 2.00") with the balance the ledger saw, so the
figure must be rendered in SQL exactly as ``app.kit.money.format_amount`` renders it.

Revision ID: 8a4c2e6f1b07
Revises: 3d1f0b7e9c21
Create Date: 2026-11-30 08:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8a4c2e6f1b07"
down_revision: str | None = "3d1f0b7e9c21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY_TEXT = """
CREATE OR REPLACE FUNCTION money_text(minor bigint, scale integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- As app.kit.money.format_amount: the exact decimal value of ``minor`` units at
    -- ``scale`` decimals, trailing zeros dropped, but at least two decimals ("15.00",
    -- "1.50", "0.000001"). The division is exact: a power of ten divides at numeric's
    -- full precision.
    SELECT CASE WHEN scale(v) < 2 THEN round(v, 2)::text ELSE v::text END
      FROM (SELECT trim_scale(minor::numeric / (10::numeric ^ scale)) AS v) AS value
$$
"""


def upgrade() -> None:
    op.execute(MONEY_TEXT)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS money_text(bigint, integer)")
