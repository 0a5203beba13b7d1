"""ledger_post_entry refuses a balance that would leave BIGINT instead of raising

Amounts are bounded one by one (100 billion units), but a balance row accumulates them:
about 92 of the largest USDC credits fill a row's BIGINT. The overflow was an error that
aborted the caller's transaction (a 500 for the client). It is now one more refusal the
function returns (``balance_overflow``, naming the account) with its own writes undone,
so the caller answers it like insufficient funds.

Revision ID: 3d1f0b7e9c21
Revises: ef083315a10b
Create Date: 2026-11-30 07:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

from migrations.sql.ledger_overflow_2026_11_30 import LEDGER_POST_ENTRY, PREVIOUS

revision: str = "3d1f0b7e9c21"
down_revision: str | None = "ef083315a10b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(LEDGER_POST_ENTRY)


def downgrade() -> None:
    op.execute(PREVIOUS)
