"""``money_text`` (SQL) renders minor units exactly as ``format_amount`` (Python) does: a
payment refused by the ledger gets its message from SQL, every other amount from Python,
and a client must never see two spellings of one figure."""

import random

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.money import CURRENCY_SCALES, format_amount

BIGINT_MAX = 2**63 - 1


def _cases() -> list[int]:
    """Edges (zero, one, each power of ten and its neighbours, the BIGINT ends) and a
    seeded spread of magnitudes."""
    edges = {0, 1, -1, BIGINT_MAX, -BIGINT_MAX - 1}
    for power in range(19):
        for delta in (-1, 0, 1):
            edges.update({10**power + delta, -(10**power + delta)})
    rng = random.Random(20261130)
    spread = [
        rng.randrange(-(10 ** rng.randrange(1, 19)), 10 ** rng.randrange(1, 19))
        for _ in range(3000)
    ]
    return sorted(value for value in edges | set(spread) if -BIGINT_MAX - 1 <= value <= BIGINT_MAX)


async def test_sql_and_python_spell_every_amount_alike(session: AsyncSession) -> None:
    values = _cases()
    for currency, scale in CURRENCY_SCALES.items():
        rows = (
            await session.execute(
                text("SELECT v, money_text(v, :scale) FROM unnest(CAST(:values AS bigint[])) AS v"),
                {"values": values, "scale": scale},
            )
        ).all()
        mismatches = [(v, sql) for v, sql in rows if sql != format_amount(v, currency)]
        assert mismatches == [], (currency, mismatches[:5])
        assert len(rows) == len(values)
