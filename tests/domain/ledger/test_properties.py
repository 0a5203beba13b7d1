"""Property test: random sequences of opens, entries, holds, captures and voids.

After every step, against the real database: the sum of all balances per currency is 0,
every balance equals the sum of its postings (and the model's expectation), and no
protected balance row is negative. Refused operations must change nothing.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.ledger import service as ledger
from app.domain.ledger.errors import (
    CaptureExceedsHold,
    CurrencyMismatch,
    HoldNotPending,
    InsufficientFunds,
    InvalidPosting,
    UnbalancedEntry,
)
from app.domain.ledger.schemas import Leg
from app.kit.money import Money
from app.models.ledger import AccountKind, EntryKind

CURRENCIES = ["USD", "USDC"]
amounts = st.integers(min_value=1, max_value=5_000)


def near(value: int) -> st.SearchStrategy[int]:
    """Amounts around a boundary (a balance, a hold), where off-by-one bugs live."""
    edges = [v for v in (value - 1, value, value + 1) if v > 0]
    return st.one_of(st.sampled_from(edges), amounts) if edges else amounts


@dataclass
class Acct:
    id: str
    currency: str
    protected: bool


@dataclass
class Wallet:
    available: Acct
    held: Acct


@dataclass
class HoldRef:
    id: str
    wallet: Wallet
    amount: int
    state: list[str] = field(default_factory=lambda: ["pending"])


class LedgerMachine(RuleBasedStateMachine):
    runner: asyncio.Runner
    sessionmaker: async_sessionmaker[AsyncSession]

    accounts = Bundle("accounts")
    wallets = Bundle("wallets")
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.expected: dict[str, int] = {}
        self.sources: dict[str, Acct] = {}

    def run(self, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        return self.runner.run(run_in_transaction(self.sessionmaker, work))

    def refused(
        self, error: type[Exception], work: Callable[[AsyncSession], Awaitable[Any]]
    ) -> None:
        with pytest.raises(error):
            self.run(work)

    def open(self, kind: AccountKind, currency: str, slots: int | None = None) -> Acct:
        async def work(session: AsyncSession) -> Acct:
            account = await ledger.open_account(
                session, kind=kind, currency=currency, balance_slots=slots
            )
            return Acct(account.id, currency, account.must_not_go_negative)

        account: Acct = self.run(work)
        self.expected[account.id] = 0
        return account

    @initialize(target=wallets)
    def open_sources_and_wallets(self) -> Any:
        for currency in CURRENCIES:
            self.sources[currency] = self.open(AccountKind.owner_deposit, currency, slots=3)
        return multiple(*(self.open_wallet(c, 10_000) for c in CURRENCIES for _ in range(2)))

    @initialize(target=accounts)
    def open_sinks(self) -> Any:
        return multiple(
            *(
                self.open(kind, c, slots)
                for c in CURRENCIES
                for kind, slots in ((AccountKind.merchant, 4), (AccountKind.fee_revenue, 1))
            )
        )

    @rule(
        target=accounts,
        kind=st.sampled_from([AccountKind.merchant, AccountKind.fee_revenue]),
        currency=st.sampled_from(CURRENCIES),
        slots=st.sampled_from([1, 4]),
    )
    def open_sink(self, kind: AccountKind, currency: str, slots: int) -> Acct:
        return self.open(kind, currency, slots)

    @rule(target=wallets, currency=st.sampled_from(CURRENCIES), funding=st.integers(0, 20_000))
    def open_wallet(self, currency: str, funding: int) -> Wallet:
        wallet = Wallet(
            self.open(AccountKind.wallet_available, currency),
            self.open(AccountKind.wallet_held, currency),
        )
        if funding:
            self.transfer(self.sources[currency], wallet.available, funding)
        return wallet

    def transfer(self, payer: Acct, payee: Acct, amount: int) -> None:
        async def work(session: AsyncSession) -> None:
            await ledger.post_entry(
                session,
                kind=EntryKind.transfer,
                legs=[
                    Leg(payer.id, Money(-amount, payer.currency)),
                    Leg(payee.id, Money(amount, payee.currency)),
                ],
            )

        if payer.id == payee.id:
            self.refused(InvalidPosting, work)
        elif payer.currency != payee.currency:
            self.refused(UnbalancedEntry, work)
        elif payer.protected and self.expected[payer.id] < amount:
            self.refused(InsufficientFunds, work)
        else:
            self.run(work)
            self.expected[payer.id] -= amount
            self.expected[payee.id] += amount

    @rule(wallet=wallets, payee=accounts, data=st.data())
    def pay_from_wallet(self, wallet: Wallet, payee: Acct, data: st.DataObject) -> None:
        amount = data.draw(near(self.expected[wallet.available.id]))
        self.transfer(wallet.available, payee, amount)

    @rule(payer=accounts, payee=accounts, amount=amounts)
    def move_between_sinks(self, payer: Acct, payee: Acct, amount: int) -> None:
        self.transfer(payer, payee, amount)

    @rule(wallet=wallets, merchant=accounts, fees=accounts, amount=amounts, fee=amounts)
    def three_leg_payment(
        self, wallet: Wallet, merchant: Acct, fees: Acct, amount: int, fee: int
    ) -> None:
        payer = wallet.available
        legs = [
            Leg(payer.id, Money(-(amount + fee), payer.currency)),
            Leg(merchant.id, Money(amount, merchant.currency)),
            Leg(fees.id, Money(fee, fees.currency)),
        ]

        async def work(session: AsyncSession) -> None:
            await ledger.post_entry(session, kind=EntryKind.payment, legs=legs)

        currencies = {payer.currency, merchant.currency, fees.currency}
        if len(currencies) > 1:
            self.refused((UnbalancedEntry, CurrencyMismatch), work)  # type: ignore[arg-type]
        elif self.expected[payer.id] < amount + fee:
            self.refused(InsufficientFunds, work)
        else:
            self.run(work)
            self.expected[payer.id] -= amount + fee
            self.expected[merchant.id] += amount
            self.expected[fees.id] += fee

    @rule(target=holds, wallet=wallets, data=st.data())
    def place_hold(self, wallet: Wallet, data: st.DataObject) -> HoldRef | None:
        amount = data.draw(near(self.expected[wallet.available.id]))

        async def work(session: AsyncSession) -> str:
            hold = await ledger.place_hold(
                session,
                available_account_id=wallet.available.id,
                held_account_id=wallet.held.id,
                amount=Money(amount, wallet.available.currency),
            )
            return hold.id

        if self.expected[wallet.available.id] < amount:
            self.refused(InsufficientFunds, work)
            return None
        hold_id: str = self.run(work)
        self.expected[wallet.available.id] -= amount
        self.expected[wallet.held.id] += amount
        return HoldRef(hold_id, wallet, amount)

    @rule(hold=holds, payee=accounts, data=st.data())
    def capture(self, hold: HoldRef | None, payee: Acct, data: st.DataObject) -> None:
        if hold is None:
            return
        amount = data.draw(near(hold.amount))

        async def work(session: AsyncSession) -> None:
            await ledger.capture_hold(
                session, hold.id, legs=[Leg(payee.id, Money(amount, payee.currency))]
            )

        currency = hold.wallet.available.currency
        if hold.state[0] != "pending":
            self.refused(HoldNotPending, work)
        elif payee.currency != currency:
            self.refused(CurrencyMismatch, work)
        elif amount > hold.amount:
            self.refused(CaptureExceedsHold, work)
        else:
            self.run(work)
            hold.state[0] = "captured"
            self.expected[hold.wallet.held.id] -= hold.amount
            self.expected[payee.id] += amount
            self.expected[hold.wallet.available.id] += hold.amount - amount

    @rule(hold=holds)
    def void(self, hold: HoldRef | None) -> None:
        if hold is None:
            return

        async def work(session: AsyncSession) -> None:
            await ledger.void_hold(session, hold.id)

        if hold.state[0] != "pending":
            self.refused(HoldNotPending, work)
        else:
            self.run(work)
            hold.state[0] = "voided"
            self.expected[hold.wallet.held.id] -= hold.amount
            self.expected[hold.wallet.available.id] += hold.amount

    @rule(wallet=wallets, payee=accounts, amount=amounts)
    def unbalanced_entry_is_refused(self, wallet: Wallet, payee: Acct, amount: int) -> None:
        async def work(session: AsyncSession) -> None:
            await ledger.post_entry(
                session,
                kind=EntryKind.transfer,
                legs=[
                    Leg(wallet.available.id, Money(-amount, wallet.available.currency)),
                    Leg(payee.id, Money(amount + 1, wallet.available.currency)),
                ],
            )

        self.refused(UnbalancedEntry, work)

    @invariant()
    def ledger_is_sound(self) -> None:
        if not self.expected:
            return

        async def check(session: AsyncSession) -> None:
            ids = list(self.expected)
            assert await ledger.balances_of(session, ids) == self.expected
            assert await ledger.find_balance_mismatches(session, ids) == []
            totals = await ledger.total_by_currency(session)
            assert all(total == 0 for total in totals.values()), totals
            negative = await session.scalar(
                text(
                    "SELECT count(*) FROM ledger_balances"
                    " WHERE must_not_go_negative AND balance < 0"
                )
            )
            assert negative == 0

        self.run(check)


def test_ledger_state_machine(database_url: str) -> None:
    with asyncio.Runner() as runner:
        engine = runner.run(_engine(database_url))
        LedgerMachine.runner = runner
        LedgerMachine.sessionmaker = create_sessionmaker(engine)
        try:
            run_state_machine_as_test(
                LedgerMachine,
                settings=settings(
                    max_examples=40,
                    stateful_step_count=40,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                ),
            )
        finally:
            runner.run(engine.dispose())


async def _engine(database_url: str):  # type: ignore[no-untyped-def]
    return create_engine(database_url, pool_size=2, max_overflow=0)
