"""Helpers the ledger tests share: open accounts and fund them through real entries."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.ledger import service as ledger
from app.domain.ledger.schemas import Account, Leg
from app.kit.ids import new_id
from app.kit.money import Money
from app.models.ledger import AccountKind, EntryKind


async def open_funded_wallets(
    sessionmaker: async_sessionmaker[AsyncSession],
    count: int,
    *,
    minor_each: int,
    currency: str = "USDC",
) -> tuple[Account, list[Account]]:
    """A deposit source and ``count`` protected wallets holding ``minor_each`` each."""

    async def work(session: AsyncSession) -> tuple[Account, list[Account]]:
        owner = new_id("owner")
        source = await ledger.open_account(
            session, kind=AccountKind.owner_deposit, currency=currency, owner_id=owner
        )
        wallets = [
            await ledger.open_account(
                session, kind=AccountKind.wallet_available, currency=currency, owner_id=owner
            )
            for _ in range(count)
        ]
        if minor_each:
            for wallet in wallets:
                await ledger.post_entry(
                    session,
                    kind=EntryKind.funding,
                    legs=[
                        Leg(source.id, Money(-minor_each, currency)),
                        Leg(wallet.id, Money(minor_each, currency)),
                    ],
                )
        return source, wallets

    return await run_in_transaction(sessionmaker, work)


async def postings_count(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT count(*) FROM postings"))).scalar_one())


def transfer_legs(source_id: str, target_id: str, minor: int, currency: str = "USDC") -> list[Leg]:
    return [Leg(source_id, Money(-minor, currency)), Leg(target_id, Money(minor, currency))]
