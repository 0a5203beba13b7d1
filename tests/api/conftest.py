from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.ledger import service as ledger


@pytest.fixture(autouse=True)
async def ledger_stays_sound(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[None]:
    """After every API test: money is conserved and every balance equals its postings."""
    yield
    async with sessionmaker() as session:
        assert await ledger.find_balance_mismatches(session) == []
        totals = await ledger.total_by_currency(session)
        assert all(total == 0 for total in totals.values()), totals
