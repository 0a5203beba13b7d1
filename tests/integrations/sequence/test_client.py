"""SequenceClient against the sandbox over real HTTP on 127.0.0.1: pages, balances,
transfers that settle or fall short, idempotent replays, retries (429 with Retry-After,
HTML 502, timeouts after commit, 409 in flight), ambiguous outcomes, local validation,
organisations kept apart, the read-after-write 404."""

import asyncio
import socket
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.integrations.sequence import (
    SequenceAmbiguous,
    SequenceAuthError,
    SequenceClient,
    SequenceIdempotencyMismatch,
    SequenceInvalid,
    SequenceNotFound,
    SequenceRateLimited,
    SequenceServerError,
    SequenceUnavailable,
)
from app.integrations.sequence.budget import RequestBudget
from app.integrations.sequence.client import retry_after_seconds
from app.integrations.sequence.sandbox import create_sandbox_app, seeded_id
from tests.integrations.sequence.conftest import Accounts, Sandbox


def _key() -> str:
    return str(uuid.uuid4())


def _elapsed_since(start: float) -> float:
    return asyncio.get_running_loop().time() - start


def _now() -> float:
    return asyncio.get_running_loop().time()


# --- Accounts -------------------------------------------------------------------------------


async def test_list_accounts_walks_every_page(
    sandbox: Sandbox, sequence: SequenceClient, key: str
) -> None:
    extra = [{"name": f"Pod {n:03}", "type": "POD", "balanceInCents": n} for n in range(120)]
    response = await sandbox.control.post("/_fake/accounts", json={"key": key, "accounts": extra})
    assert response.status_code == 201, response.text

    listed = await sequence.list_accounts()

    # 10 active seeded accounts and 120 more: two pages of 100, every one once.
    assert len(listed) == 130
    assert len({account.id for account in listed}) == 130
    names = {account.name for account in listed}
    assert {"Main Payroll", "Agent Budget", "Agent Budget Reserve", "Purser Settlement"} <= names
    assert "Old Car Fund" not in names
    assert {account.id for account in listed if account.name == "Pod 119"} == {
        seeded_id(key, "Pod 119")
    }


async def test_list_accounts_by_type_and_with_deleted(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    pods = await sequence.list_accounts("POD")
    assert {pod.type for pod in pods} == {"POD"}
    assert {pod.name for pod in pods} == {
        "Emergency Fund",
        "Groceries",
        "Agent Budget",
        "Vacation",
        "Agent Budget Reserve",
    }

    everything = await sequence.list_accounts(include_deleted=True)
    deleted = [account for account in everything if account.deleted_at is not None]
    assert [(account.name, account.id) for account in deleted] == [
        ("Old Car Fund", accounts["Old Car Fund"])
    ]


async def test_get_account_reads_the_balance_and_hides_numbers_from_repr(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    fund = await sequence.get_account(accounts["Emergency Fund"])
    assert fund.name == "Emergency Fund"
    assert fund.balance is not None
    assert fund.balance.balance_in_cents == 150_000
    assert fund.balance.available_balance_in_cents == 150_000
    assert fund.savings_target_in_cents == 1_000_000
    assert fund.bank_account_number is not None
    assert fund.routing_number is not None
    assert fund.bank_account_number not in repr(fund)
    assert fund.routing_number not in repr(fund)

    card = await sequence.get_account(accounts["Amex Gold ••1009"])
    assert card.external_account_type == "LIABILITY"
    assert card.balance is not None
    assert card.balance.balance_in_cents == 185_000  # owed
    assert card.balance.available_balance_in_cents is None
    assert card.balance.next_payment_minimum_in_cents == 4_000
    assert card.balance.next_payment_due_date is not None


# --- Transfers that settle ----------------------------------------------------------------


async def _balances(sequence: SequenceClient, account_id: str) -> tuple[int | None, int | None]:
    balance = (await sequence.get_account(account_id)).balance
    assert balance is not None
    return balance.balance_in_cents, balance.available_balance_in_cents


async def test_internal_transfer_holds_then_completes_and_moves_balances(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    source, destination = accounts["Agent Budget"], accounts["Groceries"]

    created = await sequence.create_transfer(
        idempotency_key=_key(),
        source_account_id=source,
        destination_account_id=destination,
        amount_in_cents=12_345,
        description="Lunch 42",
    )

    assert created.status == "PROCESSING"
    assert (created.direction, created.origin, created.execution_mode) == (
        "INTERNAL",
        "USER",
        "LIVE",
    )
    assert created.source is not None
    assert created.source.id == source
    # Held, not yet debited.
    assert await _balances(sequence, source) == (250_000, 250_000 - 12_345)

    settled = await sequence.wait_for_transfer(created.id, timeout=10, interval=0.1)

    assert settled.status == "COMPLETE"
    assert settled.completed_at is not None
    assert settled.error_code is None
    assert await _balances(sequence, source) == (237_655, 237_655)
    assert await _balances(sequence, destination) == (54_345, 54_345)


async def test_transfer_to_an_external_account_settles_into_it(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    settlement = accounts["Purser Settlement"]
    created = await sequence.create_transfer(
        idempotency_key=_key(),
        source_account_id=accounts["Agent Budget"],
        destination_account_id=settlement,
        amount_in_cents=50_000,
    )
    assert (created.direction, created.origin) == ("MONEY_OUT", "USER")

    settled = await sequence.wait_for_transfer(created.id, timeout=10, interval=0.1)

    assert settled.status == "COMPLETE"
    assert await _balances(sequence, accounts["Agent Budget"]) == (200_000, 200_000)
    assert await _balances(sequence, settlement) == (50_000, 50_000)
    arrived = await sequence.list_account_transfers(settlement, account_role="destination")
    assert [transfer.id for transfer in arrived.items] == [created.id]


async def test_shortfall_ends_incomplete_and_leaves_balances_alone(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    reserve = accounts["Agent Budget Reserve"]  # 10 000 cents
    created = await sequence.create_transfer(
        idempotency_key=_key(),
        source_account_id=reserve,
        destination_account_id=accounts["Vacation"],
        amount_in_cents=50_000,
    )
    assert created.status == "PROCESSING"  # a shortfall is never a synchronous error

    ended = await sequence.wait_for_transfer(created.id, timeout=10, interval=0.1)

    assert (ended.status, ended.error_code) == ("INCOMPLETE", "INSUFFICIENT_FUNDS")
    assert ended.completed_at is None
    assert await _balances(sequence, reserve) == (10_000, 10_000)
    assert await _balances(sequence, accounts["Vacation"]) == (80_000, 80_000)


@pytest.mark.parametrize(
    ("status", "error_code"), [("INCOMPLETE", "INSUFFICIENT_FUNDS"), ("ERROR", "PAYMENT_FAILED")]
)
async def test_a_failed_transfer_releases_its_hold(
    sandbox: Sandbox,
    sequence: SequenceClient,
    accounts: Accounts,
    status: str,
    error_code: str,
) -> None:
    vacation = accounts["Vacation"]
    created = await sequence.create_transfer(
        idempotency_key=_key(),
        source_account_id=vacation,
        destination_account_id=accounts["Groceries"],
        amount_in_cents=5_000,
    )
    assert await _balances(sequence, vacation) == (80_000, 75_000)

    await sandbox.force(created.id, status)
    ended = await sequence.wait_for_transfer(created.id, timeout=10, interval=0.1)

    assert (ended.status, ended.error_code) == (status, error_code)
    assert await _balances(sequence, vacation) == (80_000, 80_000)
    assert await _balances(sequence, accounts["Groceries"]) == (42_000, 42_000)


async def test_simulation_is_final_quickly_and_moves_nothing(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    created = await sequence.create_transfer(
        idempotency_key=_key(),
        source_account_id=accounts["Agent Budget"],
        destination_account_id=accounts["Vacation"],
        amount_in_cents=7_000,
        simulation=True,
    )
    assert created.execution_mode == "SIMULATION"

    ended = await sequence.wait_for_transfer(created.id, timeout=10, interval=0.1)

    assert ended.status == "COMPLETE"
    assert await _balances(sequence, accounts["Agent Budget"]) == (250_000, 250_000)
    live = await sequence.list_transfers([accounts["Agent Budget"]], page_size=100)
    assert created.id not in {transfer.id for transfer in live.items}
    simulated = await sequence.list_transfers(
        [accounts["Agent Budget"]], execution_mode="SIMULATION", page_size=100
    )
    assert created.id in {transfer.id for transfer in simulated.items}


async def test_list_transfers_filters_and_pages(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    everything = await sequence.list_transfers(
        [accounts["Groceries"], accounts["Main Payroll"]], page_size=100
    )
    origins = [transfer.origin for transfer in everything.items]
    assert sorted(origins) == ["DIRECT_DEPOSIT", "EXTERNAL_PULL", "RULE", "USER"]
    created = [transfer.created_at for transfer in everything.items]
    assert created == sorted(created, reverse=True)  # newest first
    atm = next(transfer for transfer in everything.items if transfer.origin == "EXTERNAL_PULL")
    assert atm.destination is None
    deposit = next(t for t in everything.items if t.origin == "DIRECT_DEPOSIT")
    assert deposit.source is None

    first = await sequence.list_transfers(
        [accounts["Groceries"], accounts["Main Payroll"]], page_size=3
    )
    second = await sequence.list_transfers(
        [accounts["Groceries"], accounts["Main Payroll"]], page=2, page_size=3
    )
    assert (first.has_next_page, second.has_next_page) == (True, False)
    assert [t.id for t in first.items + second.items] == [t.id for t in everything.items]

    money_in = await sequence.list_transfers([accounts["Main Payroll"]], direction="MONEY_IN")
    assert [transfer.origin for transfer in money_in.items] == ["DIRECT_DEPOSIT"]

    # from/to are inclusive and sent in UTC with Z: a window of exactly one transfer.
    assert atm.created_at is not None
    window = await sequence.list_transfers(
        [accounts["Groceries"]], from_=atm.created_at, to=atm.created_at
    )
    assert [transfer.id for transfer in window.items] == [atm.id]
    later = await sequence.list_transfers(
        [accounts["Groceries"]], from_=atm.created_at + timedelta(milliseconds=1)
    )
    assert atm.id not in {transfer.id for transfer in later.items}

    spent = await sequence.list_account_transfers(accounts["Groceries"], account_role="source")
    assert sorted(transfer.origin for transfer in spent.items) == ["EXTERNAL_PULL", "USER"]


# --- Idempotency --------------------------------------------------------------------------


async def test_same_key_replays_the_transfer_and_another_body_is_refused(
    sandbox: Sandbox, sequence: SequenceClient, accounts: Accounts, key: str
) -> None:
    intent: dict[str, Any] = {
        "idempotency_key": "purser-tr-0001",
        "source_account_id": accounts["Agent Budget"],
        "destination_account_id": accounts["Purser Settlement"],
        "amount_in_cents": 2_500,
    }
    first = await sequence.create_transfer(**intent)
    again = await sequence.create_transfer(**intent)

    assert again.id == first.id
    assert len(await sandbox.created_transfers(key)) == 1

    with pytest.raises(SequenceIdempotencyMismatch) as caught:
        await sequence.create_transfer(**{**intent, "amount_in_cents": 2_501})
    assert caught.value.status == 400
    assert caught.value.code == "IDEMPOTENCY_KEY_MISMATCH"
    assert caught.value.definite is True
    assert caught.value.request_id is not None
    assert len(await sandbox.created_transfers(key)) == 1


async def test_a_key_past_its_24_hours_starts_a_new_transfer(
    sandbox: Sandbox, sequence: SequenceClient, accounts: Accounts, key: str
) -> None:
    intent: dict[str, Any] = {
        "idempotency_key": "purser-tr-0002",
        "source_account_id": accounts["Agent Budget"],
        "destination_account_id": accounts["Groceries"],
        "amount_in_cents": 100,
    }
    first = await sequence.create_transfer(**intent)
    await sandbox.control.post("/_fake/clock", json={"advance_seconds": 24 * 3600 + 1})

    second = await sequence.create_transfer(**intent)

    assert second.id != first.id
    assert len(await sandbox.created_transfers(key)) == 2


# --- Retries ------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "expected_wait"), [(1, 1.0), (None, 1.0), ("soon", 1.0)])
async def test_429_waits_for_retry_after_then_succeeds(
    sandbox: Sandbox,
    sequence: SequenceClient,
    accounts: Accounts,
    retry_after: int | str | None,
    expected_wait: float,
) -> None:
    await sandbox.fault(
        "429", method="GET", path="/platform/v1/accounts/*", retry_after=retry_after
    )

    start = _now()
    account = await sequence.get_account(accounts["Groceries"])

    # Retry-After when usable (§5), else the 1 s fallback; no upper bound is asserted.
    assert _elapsed_since(start) >= expected_wait
    assert account.name == "Groceries"


async def test_429_until_the_attempts_run_out_raises_rate_limited(
    sandbox: Sandbox, key: str, accounts: Accounts
) -> None:
    await sandbox.fault("429", method="GET", path="/platform/v1/accounts/*", count=5, retry_after=1)
    async with SequenceClient(key, sandbox.api, max_attempts=2) as sequence:
        with pytest.raises(SequenceRateLimited) as caught:
            await sequence.get_account(accounts["Groceries"])
    assert caught.value.status == 429
    assert caught.value.code == "RATE_LIMIT_EXCEEDED"
    assert caught.value.retry_after == 1.0


async def test_502_with_an_html_body_is_retried(
    sandbox: Sandbox, sequence: SequenceClient, key: str
) -> None:
    await sandbox.fault("502", method="GET", path="/platform/v1/accounts", count=2)

    listed = await sequence.list_accounts()

    assert len(listed) == 10


async def test_502_when_attempts_run_out_is_a_server_error_read_from_html(
    sandbox: Sandbox, key: str
) -> None:
    await sandbox.fault("502", path="/platform/v1/accounts")
    async with SequenceClient(key, sandbox.api, max_attempts=1) as sequence:
        with pytest.raises(SequenceServerError) as caught:
            await sequence.list_accounts()
    assert caught.value.status == 502
    assert caught.value.code is None
    assert "502 Bad Gateway" in caught.value.message
    assert "<" not in caught.value.message
    assert caught.value.definite is False


async def test_a_truncated_200_is_retried(
    sandbox: Sandbox, sequence: SequenceClient, accounts: Accounts
) -> None:
    await sandbox.fault("malformed_json", method="GET", path="/platform/v1/accounts/*")

    account = await sequence.get_account(accounts["Vacation"])

    assert account.name == "Vacation"


async def test_timeout_after_commit_is_settled_by_the_replayed_201(
    sandbox: Sandbox, key: str, accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    await sandbox.fault("timeout_after_commit", method="POST", path="/platform/v1/transfers*")
    async with SequenceClient(
        key, sandbox.api, timeout=1.0, retry_wait_initial=0.05, retry_wait_max=0.2
    ) as sequence:
        start = _now()
        transfer = await sequence.create_transfer(
            idempotency_key="purser-tr-0003",
            source_account_id=accounts["Agent Budget"],
            destination_account_id=accounts["Purser Settlement"],
            amount_in_cents=9_900,
        )
        assert _elapsed_since(start) >= 1.0
    assert "timed out" in caplog.text  # the first attempt's, retried with the same key

    created = await sandbox.created_transfers(key)
    assert [(t["id"], t["idempotencyKey"]) for t in created] == [(transfer.id, "purser-tr-0003")]


async def test_409_in_progress_is_retried_until_the_first_request_commits(
    sandbox: Sandbox, key: str, accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    await sandbox.fault("in_flight", method="POST", path="/platform/v1/transfers", seconds=1.0)
    async with SequenceClient(
        key, sandbox.api, timeout=0.4, max_attempts=10, retry_wait_initial=0.1, retry_wait_max=0.2
    ) as sequence:
        transfer = await sequence.create_transfer(
            idempotency_key="purser-tr-0004",
            source_account_id=accounts["Groceries"],
            destination_account_id=accounts["Vacation"],
            amount_in_cents=1_000,
        )

    assert "TRANSFER_IN_PROGRESS" in caplog.text
    created = await sandbox.created_transfers(key)
    assert [t["id"] for t in created] == [transfer.id]


async def test_post_out_of_retries_on_500_is_ambiguous(
    sandbox: Sandbox, key: str, accounts: Accounts
) -> None:
    await sandbox.fault("500", method="POST", path="/platform/v1/transfers", count=10)
    intent: dict[str, Any] = {
        "idempotency_key": "purser-tr-0005",
        "source_account_id": accounts["Agent Budget"],
        "destination_account_id": accounts["Groceries"],
        "amount_in_cents": 4_200,
    }
    async with SequenceClient(
        key, sandbox.api, max_attempts=3, retry_wait_initial=0.05, retry_wait_max=0.1
    ) as sequence:
        with pytest.raises(SequenceAmbiguous) as caught:
            await sequence.create_transfer(**intent)
        error = caught.value
        assert error.definite is False
        assert (error.status, error.code) == (500, "UNEXPECTED_ERROR")
        assert error.request_id is not None
        assert error.request_id.startswith("req_")
        assert (error.idempotency_key, error.attempts) == ("purser-tr-0005", 3)
        assert isinstance(error.__cause__, SequenceServerError)
        assert await sandbox.created_transfers(key) == []

        # Settling it: the same key, once Sequence answers again.
        await sandbox.control.delete("/_fake/faults")
        transfer = await sequence.create_transfer(**intent)
    assert [t["id"] for t in await sandbox.created_transfers(key)] == [transfer.id]


async def test_post_out_of_retries_on_timeouts_is_ambiguous(
    sandbox: Sandbox, key: str, accounts: Accounts
) -> None:
    await sandbox.fault("timeout_before_commit", method="POST", path="/platform/v1/*", count=2)
    async with SequenceClient(
        key, sandbox.api, timeout=0.5, max_attempts=2, retry_wait_initial=0.05
    ) as sequence:
        with pytest.raises(SequenceAmbiguous) as caught:
            await sequence.create_transfer(
                idempotency_key="purser-tr-0006",
                source_account_id=accounts["Agent Budget"],
                destination_account_id=accounts["Groceries"],
                amount_in_cents=4_200,
            )
    assert caught.value.definite is False
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, SequenceUnavailable)
    assert await sandbox.created_transfers(key) == []


async def test_reads_out_of_retries_on_transport_errors_are_unavailable(key: str) -> None:
    async with SequenceClient(
        key, _refusing_url(), max_attempts=2, retry_wait_initial=0.01, retry_wait_max=0.02
    ) as sequence:
        with pytest.raises(SequenceUnavailable) as caught:
            await sequence.get_account(str(uuid.uuid4()))
    assert caught.value.status is None
    assert caught.value.definite is False


def _refusing_url() -> str:
    """A loopback URL on which nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/platform/v1"


# --- Local validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount_in_cents": 99}, "amount_in_cents"),
        ({"amount_in_cents": 0}, "amount_in_cents"),
        ({"amount_in_cents": True}, "amount_in_cents"),
        ({"amount_in_cents": 150.0}, "amount_in_cents"),
        ({"description": "Eleven char"}, "description"),
        ({"description": "Rent!"}, "description"),
        ({"description": "café"}, "description"),
        ({"destination_account_id": "same"}, "destination_account_id"),
        ({"source_account_id": ""}, "source_account_id"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "x" * 37}, "idempotency_key"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
    ],
)
async def test_local_validation_refuses_before_any_request(
    changes: dict[str, Any], field: str
) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    intent: dict[str, Any] = {
        "idempotency_key": "purser-tr-0007",
        "source_account_id": "same",
        "destination_account_id": "other",
        "amount_in_cents": 100,
        "description": "Rent 2026",
        **changes,
    }
    async with SequenceClient(
        "sk_sandbox_unused", "http://127.0.0.1:9/platform/v1", transport=httpx.MockTransport(record)
    ) as sequence:
        with pytest.raises(SequenceInvalid) as caught:
            await sequence.create_transfer(**intent)

    assert field in caught.value.message
    assert (caught.value.status, caught.value.code) == (None, "INVALID_PARAMETERS")
    assert caught.value.definite is True
    assert sent == []


# --- Keys and organisations ---------------------------------------------------------------


async def test_two_keys_are_two_organisations(sandbox: Sandbox) -> None:
    first, second = "sk_sandbox_alice", f"sk_sandbox_bob-{uuid.uuid4().hex[:8]}"
    async with (
        SequenceClient(first, sandbox.api) as alice,
        SequenceClient(second, sandbox.api) as bob,
    ):
        alices = {account.id for account in await alice.list_accounts()}
        bobs = {account.id for account in await bob.list_accounts()}
        assert alices.isdisjoint(bobs)

        with pytest.raises(SequenceNotFound) as caught:
            await alice.get_account(seeded_id(second, "Agent Budget"))
        assert caught.value.code == "ACCOUNT_NOT_FOUND"

        transfer = await bob.create_transfer(
            idempotency_key=_key(),
            source_account_id=seeded_id(second, "Agent Budget"),
            destination_account_id=seeded_id(second, "Groceries"),
            amount_in_cents=100,
        )
        await bob.wait_for_transfer(transfer.id, timeout=5, interval=0.1)
        with pytest.raises(SequenceNotFound):
            await alice.get_transfer(transfer.id)


def test_seeded_ids_survive_a_restart() -> None:
    before = create_sandbox_app().organization("sk_sandbox_restart")
    after = create_sandbox_app().organization("sk_sandbox_restart")
    other = create_sandbox_app().organization("sk_sandbox_someone_else")

    assert list(before.accounts) == list(after.accounts)
    assert set(before.accounts).isdisjoint(other.accounts)
    for account_id in before.accounts:
        assert uuid.UUID(account_id).version == 4


@pytest.mark.parametrize("bad_key", ["sk_live_abc", "sk_sandbox_", "sk_sandbox_" + "a" * 65])
async def test_a_key_outside_the_sandbox_is_refused(sandbox: Sandbox, bad_key: str) -> None:
    async with SequenceClient(bad_key, sandbox.api) as sequence:
        with pytest.raises(SequenceAuthError) as caught:
            await sequence.list_accounts()
    assert (caught.value.status, caught.value.code) == (401, "UNAUTHORIZED")
    assert caught.value.definite is True


# --- Polling and the read-after-write 404 -------------------------------------------------


async def test_an_early_read_is_a_404_that_wait_for_transfer_polls_through(
    sequence: SequenceClient, accounts: Accounts
) -> None:
    created = await sequence.create_transfer(
        idempotency_key=_key(),
        source_account_id=accounts["Main Payroll"],
        destination_account_id=accounts["Emergency Fund"],
        amount_in_cents=30_000,
    )
    with pytest.raises(SequenceNotFound) as caught:
        await sequence.get_transfer(created.id)
    assert caught.value.code == "TRANSFER_NOT_FOUND"

    settled = await sequence.wait_for_transfer(created.id, timeout=10, interval=0.1)

    assert (settled.id, settled.status) == (created.id, "COMPLETE")


async def test_wait_for_a_transfer_that_never_appears_raises_not_found(
    sequence: SequenceClient,
) -> None:
    with pytest.raises(SequenceNotFound):
        await sequence.wait_for_transfer(
            str(uuid.uuid4()), timeout=1.0, interval=0.1, transient_404_seconds=0.5
        )
    with pytest.raises(SequenceNotFound):
        await sequence.wait_for_transfer(str(uuid.uuid4()), timeout=0.5, interval=0.1)


async def test_wait_returns_the_last_transfer_seen_when_the_timeout_comes_first(
    sandbox: Sandbox, sequence: SequenceClient, accounts: Accounts
) -> None:
    created = await sequence.create_transfer(
        idempotency_key=_key(),
        source_account_id=accounts["Agent Budget"],
        destination_account_id=accounts["Purser Settlement"],
        amount_in_cents=1_000,
    )
    await sandbox.force(created.id, "PENDING")  # stuck there

    start = _now()
    last = await sequence.wait_for_transfer(created.id, timeout=1.5, interval=0.1)

    assert last.status == "PENDING"
    assert not last.terminal
    assert _elapsed_since(start) >= 1.4


async def test_an_unknown_path_is_a_plain_not_found(sandbox: Sandbox, key: str) -> None:
    async with SequenceClient(key, sandbox.root + "/platform/v2") as sequence:
        with pytest.raises(SequenceNotFound) as caught:
            await sequence.list_accounts()
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        404,
        None,
        "Not Found",
    )


# --- Pieces -------------------------------------------------------------------------------


def test_budget_allows_a_burst_then_spaces_requests_over_the_window() -> None:
    now = [0.0]
    budget = RequestBudget(3, clock=lambda: now[0])

    assert [budget.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.reserve() == 60.0  # the 4th waits for the 1st to leave the window
    now[0] = 30.0
    assert budget.reserve() == 30.0
    now[0] = 200.0
    assert budget.reserve() == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("1.5", 1.5),
        (None, None),
        ("0", None),
        ("-2", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_is_read_as_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds
