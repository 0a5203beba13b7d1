"""A balance row that would pass the BIGINT range is a refusal, never a database error."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.ledger import service as ledger
from app.domain.ledger.errors import BalanceOverflow
from app.domain.ledger.schemas import Leg
from app.kit.ids import new_id
from app.kit.money import Money
from app.models.ledger import AccountKind, EntryKind

BIGINT_MAX = 2**63 - 1


async def test_a_credit_past_bigint_is_refused_and_the_transaction_stays_usable(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async def scenario(session: AsyncSession) -> None:
        owner = new_id("owner")
        source = (
            await ledger.open_account(
                session, kind=AccountKind.owner_deposit, currency="USDC", owner_id=owner
            )
        ).id
        target = (
            await ledger.open_account(
                session, kind=AccountKind.wallet_available, currency="USDC", owner_id=owner
            )
        ).id
        # Bring the target's one balance row to the edge of BIGINT, as ~92 of the largest
        # credits would.
        await session.execute(
            text("UPDATE ledger_balances SET balance = :edge WHERE account_id = :id"),
            {"edge": BIGINT_MAX - 10, "id": target},
        )
        with pytest.raises(BalanceOverflow) as refused:
            await ledger.post_entry(
                session,
                kind=EntryKind.transfer,
                legs=[Leg(source, Money(-11, "USDC")), Leg(target, Money(11, "USDC"))],
            )
        assert refused.value.status_code == 409
        assert target in refused.value.detail
        # Nothing was written, and the transaction still works.
        balance = await session.scalar(
            text("SELECT balance FROM ledger_balances WHERE account_id = :id"), {"id": target}
        )
        assert balance == BIGINT_MAX - 10
        entry = await ledger.post_entry(
            session,
            kind=EntryKind.transfer,
            legs=[Leg(source, Money(-10, "USDC")), Leg(target, Money(10, "USDC"))],
        )
        assert entry.id

    async with sessionmaker() as session:
        try:
            await scenario(session)
        finally:
            # The edge balance was written by hand: leave nothing behind.
            await session.rollback()
