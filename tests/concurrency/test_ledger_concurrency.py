"""Real concurrency: many asyncio tasks, each its own connection and transaction,
against one PostgreSQL. Every transaction commits for real."""

import asyncio
import random
from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.ledger import service as ledger
from app.domain.ledger.errors import HoldNotPending, InsufficientFunds
from app.domain.ledger.schemas import Leg
from app.kit.money import Money
from app.models.ledger import AccountKind, EntryKind
from tests.ledger_helpers import open_funded_wallets, transfer_legs


async def test_200_transfers_among_10_accounts_conserve_money(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    source, wallets = await open_funded_wallets(sessionmaker, 10, minor_each=1_000_000)
    ids = [w.id for w in wallets]
    rng = random.Random(7)
    pairs = [tuple(rng.sample(ids, 2)) for _ in range(150)]
    # Opposite-direction pairs on purpose: a -> b and b -> a at the same time.
    pairs += [(ids[i % 10], ids[(i + 1) % 10]) for i in range(25)]
    pairs += [(ids[(i + 1) % 10], ids[i % 10]) for i in range(25)]
    rng.shuffle(pairs)

    async def transfer(payer: str, payee: str) -> str:
        async def work(session: AsyncSession) -> str:
            await ledger.post_entry(
                session,
                kind=EntryKind.transfer,
                legs=transfer_legs(payer, payee, rng.randint(1, 300_000)),
            )
            return "ok"

        # attempts=1: a deadlock or any other database error would propagate and fail
        # the test; the only acceptable refusal is InsufficientFunds.
        try:
            return await run_in_transaction(sessionmaker, work, attempts=1)
        except InsufficientFunds:
            return "insufficient"

    outcomes = Counter(await asyncio.gather(*(transfer(a, b) for a, b in pairs)))
    # Any exception other than a clean refusal would have propagated out of gather.
    assert outcomes["ok"] + outcomes["insufficient"] == 200
    assert outcomes["ok"] > 150
    async with sessionmaker() as session:
        balances = await ledger.balances_of(session, ids)
        assert sum(balances.values()) == 10 * 1_000_000
        assert min(balances.values()) >= 0
        assert await ledger.find_balance_mismatches(session, [*ids, source.id]) == []
        assert all(total == 0 for total in (await ledger.total_by_currency(session)).values())


async def test_n_debits_with_funds_for_k_exactly_k_succeed(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    n, k, price = 50, 17, 3_000_000
    _, payees = await open_funded_wallets(sessionmaker, 5, minor_each=0)
    _, (payer,) = await open_funded_wallets(sessionmaker, 1, minor_each=k * price + price - 1)

    async def debit(i: int) -> bool:
        async def work(session: AsyncSession) -> None:
            await ledger.post_entry(
                session,
                kind=EntryKind.payment,
                legs=transfer_legs(payer.id, payees[i % len(payees)].id, price),
            )

        try:
            await run_in_transaction(sessionmaker, work, attempts=1)
            return True
        except InsufficientFunds:
            return False

    results = await asyncio.gather(*(debit(i) for i in range(n)))
    assert results.count(True) == k
    async with sessionmaker() as session:
        assert (await ledger.balance_of(session, payer.id)).minor == price - 1
        received = await ledger.balances_of(session, [p.id for p in payees])
        assert sum(received.values()) == k * price


async def test_hot_merchant_and_fee_account_take_concurrent_credits(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    source, payers = await open_funded_wallets(sessionmaker, 40, minor_each=1_000)

    async def open_hot(session: AsyncSession) -> tuple[str, str]:
        merchant = await ledger.open_account(session, kind=AccountKind.merchant, currency="USDC")
        fees = await ledger.open_account(session, kind=AccountKind.fee_revenue, currency="USDC")
        return merchant.id, fees.id

    merchant, fees = await run_in_transaction(sessionmaker, open_hot)

    async def pay(payer: str) -> None:
        async def work(session: AsyncSession) -> None:
            await ledger.post_entry(
                session,
                kind=EntryKind.payment,
                legs=[
                    Leg(payer, Money(-110, "USDC")),
                    Leg(merchant, Money(100, "USDC")),
                    Leg(fees, Money(10, "USDC")),
                ],
            )

        for _ in range(5):
            await run_in_transaction(sessionmaker, work)

    await asyncio.gather(*(pay(p.id) for p in payers))
    async with sessionmaker() as session:
        balances = await ledger.balances_of(session, [merchant, fees])
        assert balances == {merchant: 40 * 5 * 100, fees: 40 * 5 * 10}
        slots_used = await session.scalar(
            text("SELECT count(*) FROM ledger_balances WHERE account_id = :id AND balance > 0"),
            {"id": merchant},
        )
        assert slots_used > 1  # the credits really were spread
        ids = [merchant, fees, source.id, *(p.id for p in payers)]
        assert await ledger.find_balance_mismatches(session, ids) == []


async def test_concurrent_captures_and_voids_of_one_hold_resolve_it_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async def setup(session: AsyncSession) -> tuple[str, str, str, str]:
        source = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency="USDC")
        available = await ledger.open_account(
            session, kind=AccountKind.wallet_available, currency="USDC"
        )
        held = await ledger.open_account(session, kind=AccountKind.wallet_held, currency="USDC")
        merchant = await ledger.open_account(session, kind=AccountKind.merchant, currency="USDC")
        await ledger.post_entry(
            session, kind=EntryKind.funding, legs=transfer_legs(source.id, available.id, 1_000)
        )
        # Two holds: the double-resolution of one must not eat into the other.
        hold = await ledger.place_hold(
            session,
            available_account_id=available.id,
            held_account_id=held.id,
            amount=Money(400, "USDC"),
        )
        await ledger.place_hold(
            session,
            available_account_id=available.id,
            held_account_id=held.id,
            amount=Money(500, "USDC"),
        )
        return hold.id, available.id, held.id, merchant.id

    hold_id, available, held, merchant = await run_in_transaction(sessionmaker, setup)

    async def resolve(i: int) -> bool:
        async def work(session: AsyncSession) -> None:
            if i % 2:
                await ledger.void_hold(session, hold_id)
            else:
                await ledger.capture_hold(
                    session, hold_id, legs=[Leg(merchant, Money(400, "USDC"))]
                )

        try:
            await run_in_transaction(sessionmaker, work, attempts=1)
            return True
        except HoldNotPending:
            return False

    results = await asyncio.gather(*(resolve(i) for i in range(10)))
    assert results.count(True) == 1
    async with sessionmaker() as session:
        balances = await ledger.balances_of(session, [available, held, merchant])
        assert balances[held] == 500
        assert balances[available] + balances[merchant] == 500
        assert balances[merchant] in (0, 400)
