"""The ledger service against a real database: postings, refusals, holds."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.ledger import service as ledger
from app.domain.ledger.errors import (
    AccountNotFound,
    CaptureExceedsHold,
    CurrencyMismatch,
    EntryReferenceConflict,
    HoldNotPending,
    InsufficientFunds,
    InvalidPosting,
    UnbalancedEntry,
)
from app.domain.ledger.schemas import Leg
from app.kit.money import Money, UnknownCurrency
from app.models.ledger import AccountKind, EntryKind, HoldStatus
from tests.ledger_helpers import open_funded_wallets, postings_count, transfer_legs


async def test_three_leg_payment_moves_exact_amounts(session: AsyncSession) -> None:
    payer = await ledger.open_account(session, kind=AccountKind.wallet_available, currency="USDC")
    payee = await ledger.open_account(session, kind=AccountKind.merchant, currency="USDC")
    fees = await ledger.open_account(session, kind=AccountKind.fee_revenue, currency="USDC")
    source = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency="USDC")
    await ledger.post_entry(
        session, kind=EntryKind.funding, legs=transfer_legs(source.id, payer.id, 20_000_000)
    )
    entry = await ledger.post_entry(
        session,
        kind=EntryKind.payment,
        legs=[
            Leg(payer.id, Money(-15_100_000, "USDC")),
            Leg(payee.id, Money.parse("15.00", "USDC")),
            Leg(fees.id, Money.parse("0.10", "USDC")),
        ],
        metadata={"purpose": "Product purchase"},
    )
    assert entry.created
    assert await ledger.balance_of(session, payer.id) == Money(4_900_000, "USDC")
    assert await ledger.balance_of(session, payee.id) == Money(15_000_000, "USDC")
    assert await ledger.balance_of(session, fees.id) == Money(100_000, "USDC")
    assert await ledger.balance_of(session, source.id) == Money(-20_000_000, "USDC")
    ids = [payer.id, payee.id, fees.id, source.id]
    assert await ledger.find_balance_mismatches(session, ids) == []


@pytest.mark.parametrize(
    ("legs_factory", "error"),
    [
        (lambda a, b: [Leg(a, Money(-5, "USDC")), Leg(b, Money(4, "USDC"))], UnbalancedEntry),
        (lambda a, b: [Leg(a, Money(-5, "USDC")), Leg(b, Money(0, "USDC"))], InvalidPosting),
        (lambda a, b: [Leg(a, Money(-5, "USDC")), Leg(a, Money(5, "USDC"))], InvalidPosting),
        (lambda a, b: [Leg(a, Money(-5, "USDC")), Leg(b, Money(5, "USDT"))], UnbalancedEntry),
        (
            lambda a, b: [Leg(a, Money(-5, "USDC")), Leg("acct_missing", Money(5, "USDC"))],
            AccountNotFound,
        ),
        (lambda a, b: [Leg(a, Money(-5, "USDT")), Leg(b, Money(5, "USDT"))], CurrencyMismatch),
        (
            lambda a, b: [Leg(a, Money(-(10**20), "USDC")), Leg(b, Money(10**20, "USDC"))],
            InvalidPosting,
        ),
    ],
)
async def test_bad_entries_raise_typed_errors_and_write_nothing(
    session: AsyncSession, legs_factory, error: type[Exception]
) -> None:
    source = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency="USDC")
    target = await ledger.open_account(session, kind=AccountKind.wallet_available, currency="USDC")
    before = await postings_count(session)
    with pytest.raises(error):
        await ledger.post_entry(
            session, kind=EntryKind.transfer, legs=legs_factory(source.id, target.id)
        )
    assert await postings_count(session) == before
    # The transaction is still usable after a refusal.
    await ledger.post_entry(
        session, kind=EntryKind.transfer, legs=transfer_legs(source.id, target.id, 1)
    )


def test_amounts_with_too_many_decimals_never_reach_the_ledger() -> None:
    with pytest.raises(Exception, match="more than 6 decimal places"):
        Leg("acct_x", Money.parse("0.0000001", "USDC"))


async def test_unknown_currency_account_is_refused(session: AsyncSession) -> None:
    with pytest.raises(UnknownCurrency):
        await ledger.open_account(session, kind=AccountKind.merchant, currency="XYZ")


async def test_overdraw_of_protected_account_is_refused_with_seed_message(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _source, (wallet, other) = await open_funded_wallets(sessionmaker, 2, minor_each=10_000_000)
    async with sessionmaker() as session:
        before = await postings_count(session)
        with pytest.raises(InsufficientFunds) as refused:
            await ledger.post_entry(
                session, kind=EntryKind.payment, legs=transfer_legs(wallet.id, other.id, 16_090_000)
            )
        assert refused.value.detail == "Insufficient balance: have 10.00, need 16.09"
        assert refused.value.code == "insufficient_funds"
        assert await postings_count(session) == before
        assert (await ledger.balance_of(session, wallet.id)).minor == 10_000_000


async def test_unprotected_source_may_go_negative(session: AsyncSession) -> None:
    source = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency="USD")
    wallet = await ledger.open_account(session, kind=AccountKind.wallet_available, currency="USD")
    await ledger.post_entry(
        session, kind=EntryKind.funding, legs=transfer_legs(source.id, wallet.id, 500, "USD")
    )
    assert (await ledger.balance_of(session, source.id)).minor == -500


async def test_reference_makes_posting_idempotent(session: AsyncSession) -> None:
    source = await ledger.open_account(session, kind=AccountKind.rail_clearing, currency="USDC")
    wallet = await ledger.open_account(session, kind=AccountKind.wallet_available, currency="USDC")
    legs = transfer_legs(source.id, wallet.id, 7)
    reference = f"fund-{wallet.id}"
    first = await ledger.post_entry(session, kind=EntryKind.funding, legs=legs, reference=reference)
    again = await ledger.post_entry(session, kind=EntryKind.funding, legs=legs, reference=reference)
    assert first.created
    assert not again.created
    assert again.id == first.id
    assert (await ledger.balance_of(session, wallet.id)).minor == 7
    with pytest.raises(EntryReferenceConflict):
        await ledger.post_entry(
            session,
            kind=EntryKind.funding,
            legs=transfer_legs(source.id, wallet.id, 8),
            reference=reference,
        )
    assert (await ledger.balance_of(session, wallet.id)).minor == 7


async def test_system_account_is_opened_once(session: AsyncSession) -> None:
    first = await ledger.open_system_account(
        session, kind=AccountKind.fee_revenue, currency="PYUSD"
    )
    second = await ledger.open_system_account(
        session, kind=AccountKind.fee_revenue, currency="PYUSD"
    )
    assert first.id == second.id
    assert first.balance_slots == 16


async def test_slotted_protected_account_spends_across_slots(session: AsyncSession) -> None:
    source = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency="USDC")
    merchant = await ledger.open_account(
        session, kind=AccountKind.merchant, currency="USDC", balance_slots=4
    )
    refund_to = await ledger.open_account(
        session, kind=AccountKind.wallet_available, currency="USDC"
    )
    for _ in range(12):  # credits land on random slots
        await ledger.post_entry(
            session, kind=EntryKind.payment, legs=transfer_legs(source.id, merchant.id, 10)
        )
    # A debit larger than any one slot is taken from several; every slot stays >= 0.
    await ledger.post_entry(
        session, kind=EntryKind.refund, legs=transfer_legs(merchant.id, refund_to.id, 115)
    )
    slots = (
        (
            await session.execute(
                text("SELECT balance FROM ledger_balances WHERE account_id = :id"),
                {"id": merchant.id},
            )
        )
        .scalars()
        .all()
    )
    assert len(slots) == 4
    assert min(slots) >= 0
    assert sum(slots) == 5
    with pytest.raises(InsufficientFunds):
        await ledger.post_entry(
            session, kind=EntryKind.refund, legs=transfer_legs(merchant.id, refund_to.id, 6)
        )
    assert await ledger.find_balance_mismatches(session, [merchant.id, refund_to.id]) == []


class TestHolds:
    async def _wallet(self, session: AsyncSession, minor: int) -> tuple[str, str, str]:
        source = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency="USDC")
        available = await ledger.open_account(
            session, kind=AccountKind.wallet_available, currency="USDC"
        )
        held = await ledger.open_account(session, kind=AccountKind.wallet_held, currency="USDC")
        merchant = await ledger.open_account(session, kind=AccountKind.merchant, currency="USDC")
        await ledger.post_entry(
            session, kind=EntryKind.funding, legs=transfer_legs(source.id, available.id, minor)
        )
        return available.id, held.id, merchant.id

    async def test_hold_then_partial_capture_releases_the_rest(self, session: AsyncSession) -> None:
        available, held, merchant = await self._wallet(session, 100)
        hold = await ledger.place_hold(
            session, available_account_id=available, held_account_id=held, amount=Money(60, "USDC")
        )
        assert hold.status == HoldStatus.pending
        assert (await ledger.balance_of(session, available)).minor == 40
        assert (await ledger.balance_of(session, held)).minor == 60
        captured = await ledger.capture_hold(
            session, hold.id, legs=[Leg(merchant, Money(45, "USDC"))]
        )
        assert captured.status == HoldStatus.captured
        assert captured.captured == Money(45, "USDC")
        balances = await ledger.balances_of(session, [available, held, merchant])
        assert balances == {available: 55, held: 0, merchant: 45}

    async def test_void_returns_everything(self, session: AsyncSession) -> None:
        available, held, _ = await self._wallet(session, 100)
        hold = await ledger.place_hold(
            session, available_account_id=available, held_account_id=held, amount=Money(100, "USDC")
        )
        voided = await ledger.void_hold(session, hold.id)
        assert voided.status == HoldStatus.voided
        assert await ledger.balances_of(session, [available, held]) == {available: 100, held: 0}

    async def test_hold_beyond_available_is_refused(self, session: AsyncSession) -> None:
        available, held, _ = await self._wallet(session, 100)
        with pytest.raises(InsufficientFunds):
            await ledger.place_hold(
                session,
                available_account_id=available,
                held_account_id=held,
                amount=Money(101, "USDC"),
            )
        assert await ledger.balances_of(session, [available, held]) == {available: 100, held: 0}

    @pytest.mark.parametrize("first", ["capture", "void"])
    @pytest.mark.parametrize("second", ["capture", "void"])
    async def test_a_hold_resolves_exactly_once(
        self, session: AsyncSession, first: str, second: str
    ) -> None:
        available, held, merchant = await self._wallet(session, 100)
        hold = await ledger.place_hold(
            session, available_account_id=available, held_account_id=held, amount=Money(30, "USDC")
        )

        async def resolve(how: str) -> None:
            if how == "capture":
                await ledger.capture_hold(session, hold.id, legs=[Leg(merchant, Money(30, "USDC"))])
            else:
                await ledger.void_hold(session, hold.id)

        await resolve(first)
        after_first = await ledger.balances_of(session, [available, held, merchant])
        with pytest.raises(HoldNotPending):
            await resolve(second)
        assert await ledger.balances_of(session, [available, held, merchant]) == after_first

    async def test_capture_more_than_held_is_refused(self, session: AsyncSession) -> None:
        available, held, merchant = await self._wallet(session, 100)
        hold = await ledger.place_hold(
            session, available_account_id=available, held_account_id=held, amount=Money(30, "USDC")
        )
        with pytest.raises(CaptureExceedsHold):
            await ledger.capture_hold(session, hold.id, legs=[Leg(merchant, Money(31, "USDC"))])
        with pytest.raises(CurrencyMismatch):
            await ledger.capture_hold(session, hold.id, legs=[Leg(merchant, Money(3, "USDT"))])
        assert (await ledger.void_hold(session, hold.id)).status == HoldStatus.voided
