"""Retry policy of the SDK, against scripted responses (no server needed)."""

import json
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import purser
import purser._core
import pytest
from purser import (
    APIConnectionError,
    AsyncPurserClient,
    IdempotencyConflictError,
    InternalServerError,
    PurserClient,
    RateLimitError,
    ValidationError,
)

PAYMENT = {
    "success": True,
    "transaction": {
        "tx_id": "tx_1",
        "from_wallet": "wallet_a",
        "to_wallet": "wallet_b",
        "amount": "1.50",
        "fee": "0.01",
        "total_cost": "1.51",
        "currency": "USDC",
        "purpose": None,
        "status": "completed",
        "error_message": None,
        "created_at": "2026-11-30T09:00:00Z",
        "completed_at": None,
        "agent_id": "agent_a",
        "merchant_id": "merchant_b",
        "recipient_agent_id": None,
        "product_id": None,
        "something_new": {"kept": True},
    },
    "error": None,
}


def problem(
    status: int, code: str, headers: dict[str, str] | None = None, **extra: object
) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": code, "code": code}
    return httpx.Response(status, json={**body, **extra}, headers=headers)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purser._core, "_backoff", lambda state: 0.0)


class Script:
    """Answers requests with the scripted responses in turn, recording each request."""

    def __init__(self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]


def fail(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def client_for(script: Script, max_retries: int = 3) -> AsyncPurserClient:
    return AsyncPurserClient(
        api_key="sk_test_x",
        base_url="http://purser.test",
        transport=httpx.MockTransport(script),
        max_retries=max_retries,
    )


async def test_body_and_headers() -> None:
    script = Script(httpx.Response(200, json=PAYMENT))
    async with client_for(script) as client:
        result = await client.pay("agent_a", Decimal("1.50"), merchant_id="merchant_b")
    assert result.transaction is not None
    assert result.transaction.amount == Decimal("1.50")
    assert result.transaction.model_extra == {"something_new": {"kept": True}}
    (request,) = script.requests
    assert request.url == "http://purser.test/api/v1/payments"
    assert request.headers["Authorization"] == "Bearer sk_test_x"
    assert json.loads(request.content) == {
        "agent_id": "agent_a",
        "amount": "1.50",
        "merchant_id": "merchant_b",
    }
    assert request.headers["Idempotency-Key"]


@pytest.mark.parametrize(
    "failure",
    [
        fail,
        problem(500, "internal_error"),
        problem(503, "unavailable"),
        problem(409, "idempotency_key_in_use"),
        problem(429, "rate_limited", headers={"Retry-After": "0"}),
    ],
)
async def test_retried_with_the_same_key(
    failure: httpx.Response | Callable[[httpx.Request], httpx.Response],
) -> None:
    script = Script(failure, failure, httpx.Response(200, json=PAYMENT))
    async with client_for(script) as client:
        result = await client.pay("agent_a", Decimal("1.5"), merchant_id="merchant_b")
    assert result.success
    assert len(script.requests) == 3
    assert len(set(script.keys)) == 1
    assert script.keys[0] is not None


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (fail, APIConnectionError),
        (problem(502, "bad_gateway"), InternalServerError),
        (problem(409, "idempotency_key_in_use"), IdempotencyConflictError),
        (problem(429, "rate_limited", headers={"Retry-After": "0"}), RateLimitError),
    ],
)
async def test_attempts_are_bounded(
    failure: httpx.Response | Callable[[httpx.Request], httpx.Response],
    error: type[Exception],
) -> None:
    script = Script(failure)
    async with client_for(script, max_retries=2) as client:
        with pytest.raises(error):
            await client.pay("agent_a", Decimal("1"), merchant_id="merchant_b")
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (problem(409, "idempotency_key_reused"), IdempotencyConflictError),
        (problem(422, "validation_error", param="amount"), ValidationError),
    ],
)
async def test_not_retried(failure: httpx.Response, error: type[Exception]) -> None:
    script = Script(failure)
    async with client_for(script) as client:
        with pytest.raises(error):
            await client.pay("agent_a", Decimal("1"), merchant_id="merchant_b")
    assert len(script.requests) == 1


async def test_retry_after_is_honoured() -> None:
    script = Script(
        problem(429, "rate_limited", headers={"Retry-After": "1"}),
        httpx.Response(200, json=PAYMENT),
    )
    started = time.monotonic()
    async with client_for(script) as client:
        await client.pay("agent_a", Decimal("1"), merchant_id="merchant_b")
    assert time.monotonic() - started >= 0.95


async def test_rate_limit_error_carries_retry_after() -> None:
    script = Script(problem(429, "rate_limited", headers={"Retry-After": "0"}))
    async with client_for(script, max_retries=0) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.get_agent("agent_a")
    assert caught.value.retry_after == 0
    assert caught.value.status == 429


async def test_reads_send_no_idempotency_key_and_each_call_its_own() -> None:
    agent = {"agent_id": "agent_a", "name": "a", "owner_id": "o", "is_active": True}
    ok = httpx.Response(200, json=PAYMENT)
    script = Script(ok, ok, ok, httpx.Response(200, json=agent))
    async with client_for(script) as client:
        await client.pay("agent_a", Decimal("1"), merchant_id="m")
        await client.pay("agent_a", Decimal("1"), merchant_id="m")
        await client.pay("agent_a", Decimal("1"), merchant_id="m", idempotency_key="mine")
        fetched = await client.get_agent("agent_a")
    assert fetched.name == "a"
    assert script.keys[0] != script.keys[1]
    assert script.keys[2] == "mine"
    assert script.requests[3].method == "GET"
    assert script.keys[3] is None


def test_sync_retries_with_the_same_key() -> None:
    script = Script(fail, problem(503, "unavailable"), httpx.Response(200, json=PAYMENT))
    with PurserClient(
        api_key="sk_test_x", base_url="http://purser.test", transport=httpx.MockTransport(script)
    ) as client:
        assert client.pay("agent_a", Decimal("1"), merchant_id="m").success
    assert len(script.requests) == 3
    assert len(set(script.keys)) == 1


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURSER_API_KEY", "sk_test_env")
    monkeypatch.setenv("PURSER_BASE_URL", "http://env.test:9000/")
    client = PurserClient()
    assert client.base_url == "http://env.test:9000"
    client.close()
    monkeypatch.delenv("PURSER_BASE_URL")
    client = PurserClient()
    assert client.base_url == "http://127.0.0.1:8000"
    client.close()


def test_amounts_are_never_floats() -> None:
    assert purser._core.money(Decimal("1E+2")) == "100"
    assert purser._core.money(Decimal("0.000001")) == "0.000001"
    assert purser._core.money("15.99") == "15.99"
    with pytest.raises(TypeError):
        purser._core.money(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        purser._core.money(Decimal("NaN"))


WEBHOOK = {
    "subscription_id": "whsub_1",
    "url": "https://example.test/hook",
    "events": ["payment.completed"],
    "description": None,
    "is_active": True,
    "disabled_reason": None,
    "total_deliveries": 0,
    "successful_deliveries": 0,
    "failed_deliveries": 0,
    "created_at": "2026-11-30T09:00:00Z",
    "secret": "whsec_x",
}


def lost_answer(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection lost after sending", request=request)


async def test_a_request_the_server_does_not_replay_is_not_resent_after_a_lost_answer() -> None:
    """POST /webhooks is not stored under its idempotency key: resending it after a lost
    answer could subscribe twice, so the error is raised instead."""
    failures: list[tuple[Callable[[httpx.Request], httpx.Response] | httpx.Response, type]] = [
        (lost_answer, APIConnectionError),
        (problem(502, "bad_gateway"), InternalServerError),
    ]
    for failure, error in failures:
        script = Script(failure, httpx.Response(201, json=WEBHOOK))
        async with client_for(script) as client:
            with pytest.raises(error) as raised:
                await client.create_webhook("https://example.test/hook", ["payment.completed"])
        assert len(script.requests) == 1
        assert getattr(raised.value, "request_sent", True)


@pytest.mark.parametrize(
    "failure", [fail, problem(429, "rate_limited", headers={"Retry-After": "0"})]
)
async def test_a_request_that_surely_did_not_run_is_resent_even_if_not_replayed(
    failure: httpx.Response | Callable[[httpx.Request], httpx.Response],
) -> None:
    script = Script(failure, httpx.Response(201, json=WEBHOOK))
    async with client_for(script) as client:
        created = await client.create_webhook("https://example.test/hook", ["payment.completed"])
    assert created.secret == "whsec_x"
    assert len(script.requests) == 2


async def test_a_lost_answer_of_a_replayed_request_is_resent_with_its_key() -> None:
    script = Script(lost_answer, httpx.Response(200, json=PAYMENT))
    async with client_for(script) as client:
        assert (await client.pay("agent_a", Decimal("1"), merchant_id="m")).success
    assert len(script.requests) == 2
    assert script.keys[0] == script.keys[1]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "insufficient_funds", "InsufficientFundsError"),
        (400, "limit_exceeded", "LimitExceededError"),
        (403, "agent_flagged", "AgentFlaggedError"),
        (403, "wallet_frozen", "WalletFrozenError"),
        (422, "idempotency_key_reused", "IdempotencyConflictError"),
        (409, "idempotency_key_in_use", "IdempotencyConflictError"),
        (400, "currency_mismatch", "BadRequestError"),
        (401, "invalid_api_key", "AuthenticationError"),
        (403, "risk_denied", "PermissionDeniedError"),
        (404, "not_found", "NotFoundError"),
        (409, "request_not_payable", "ConflictError"),
        (422, "validation_error", "ValidationError"),
        (429, "rate_limited", "RateLimitError"),
        (502, "upstream_failed", "InternalServerError"),
        (418, "teapot", "APIStatusError"),
    ],
)
async def test_the_error_class_comes_from_the_code_then_the_status(
    status: int, code: str, error: str
) -> None:
    # The detail is misleading on purpose: the class never depends on the text.
    answer = problem(status, code, detail="Insufficient balance", tx_id="tx_9")
    script = Script(answer)
    async with client_for(script, max_retries=0) as client:
        with pytest.raises(purser.PurserError) as raised:
            await client.pay("agent_a", Decimal("1"), merchant_id="m")
    assert type(raised.value).__name__ == error
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.tx_id == "tx_9"


DRY_RUN = {
    "dry_run": True,
    "decision": "allow",
    "status_code": 200,
    "reasons": [],
    "wallet_id": "wallet_a",
    "amount": "1.50",
    "fee": "0.01",
    "currency": "USDC",
    "projected_balance": "8.49",
    "projected_held_balance": "0.00",
    "limits": {},
    "risk": None,
}


@pytest.mark.parametrize("failure", [lost_answer, problem(502, "bad_gateway")])
async def test_a_dry_run_sends_the_real_body_without_a_key_and_is_resent_freely(
    failure: httpx.Response | Callable[[httpx.Request], httpx.Response],
) -> None:
    script = Script(failure, httpx.Response(200, json=DRY_RUN), httpx.Response(200, json=PAYMENT))
    async with client_for(script) as client:
        plan = await client.dry_run_pay("agent_a", Decimal("1.50"), merchant_id="merchant_b")
        await client.pay("agent_a", Decimal("1.50"), merchant_id="merchant_b")
    assert (plan.decision, plan.fee, plan.projected_balance) == (
        "allow",
        Decimal("0.01"),
        Decimal("8.49"),
    )
    dry, resent, real = script.requests
    assert [r.headers.get("Dry-Run") for r in script.requests] == ["true", "true", None]
    assert script.keys[:2] == [None, None]
    assert script.keys[2] is not None
    assert dry.url == resent.url == real.url == "http://purser.test/api/v1/payments"
    assert dry.content == resent.content == real.content


HOLD = {
    "hold_id": "hold_1",
    "agent_id": "agent_a",
    "merchant_id": "merchant_b",
    "wallet_id": "wallet_a",
    "amount": "2.00",
    "fee": "0.01",
    "currency": "USDC",
    "status": "pending",
}
REFUND = {"refund_id": "refund_1", "tx_id": "tx_1", "amount": "1.00", "currency": "USDC"}
TRANSFER = {
    "status": "completed",
    "transfer_id": "transfer_1",
    "id": "seqt_1",
    "amount_cents": 1200,
    "source_id": "pod_a",
    "destination_id": "pod_b",
}
FUNDING = {
    "funding_id": "fund_1",
    "agent_id": "agent_a",
    "wallet_id": "wallet_a",
    "status": "pending",
    "amount": "25.00",
    "currency": "USDC",
    "pod_id": "pod_a",
}


async def test_every_dry_run_twin_sends_its_real_methods_request() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Dry-Run") == "true":
            return httpx.Response(200, json=DRY_RUN)
        path = request.url.path
        bodies = {"/refund": REFUND, "/pay": PAYMENT, "/transfers": TRANSFER, "/fund": FUNDING}
        body = next((b for end, b in bodies.items() if path.endswith(end)), HOLD)
        return httpx.Response(200, json=body)

    script = Script(answer)
    async with client_for(script) as client:
        await client.create_hold("agent_a", "merchant_b", Decimal("2"), expires_in_minutes=10)
        await client.dry_run_create_hold(
            "agent_a", "merchant_b", Decimal("2"), expires_in_minutes=10
        )
        await client.capture_hold("hold_1", "1.00")
        await client.dry_run_capture_hold("hold_1", "1.00")
        await client.pay_payment_request("req_1")
        await client.dry_run_pay_payment_request("req_1")
        await client.refund("tx_1", "1", reason="r")
        await client.dry_run_refund("tx_1", "1", reason="r")
        await client.create_transfer(
            "pod_a", "pod_b", 1200, description="rent", source_type="POD", kyc_id="k"
        )
        await client.dry_run_create_transfer(
            "pod_a", "pod_b", 1200, description="rent", source_type="POD", kyc_id="k"
        )
        await client.fund_wallet("agent_a", "pod_a", Decimal("25.00"))
        await client.dry_run_fund_wallet("agent_a", "pod_a", Decimal("25.00"))
        # The shared request refuses a float of cents in the twin too, sending nothing.
        with pytest.raises(TypeError):
            await client.dry_run_create_transfer("pod_a", "pod_b", 12.0)  # type: ignore[arg-type]
    assert len(script.requests) == 12
    assert json.loads(script.requests[-3].content) == {
        "source_id": "pod_a",
        "destination_id": "pod_b",
        "amount_cents": 1200,
        "source_type": "POD",
        "description": "rent",
        "kyc_id": "k",
    }
    assert json.loads(script.requests[-1].content) == {
        "source": "sequence",
        "pod_id": "pod_a",
        "amount": "25.00",
    }
    for real, dry in zip(script.requests[::2], script.requests[1::2], strict=True):
        assert (real.method, real.url, real.content) == (dry.method, dry.url, dry.content)
        assert (real.headers.get("Dry-Run"), dry.headers["Dry-Run"]) == (None, "true")
        assert "Idempotency-Key" in real.headers
        assert "Idempotency-Key" not in dry.headers


CLOCK = {
    "now": "2026-12-01T09:00:00Z",
    "offset_seconds": 86400,
    "server_now": "2026-11-30T09:00:00Z",
    "holds_expired": 0,
    "payment_requests_expired": 0,
}


async def test_a_clock_advance_whose_answer_was_lost_is_resent_with_its_key() -> None:
    """The server replays an advance by its Idempotency-Key: the retry cannot move the
    clock twice."""
    script = Script(lost_answer, httpx.Response(200, json=CLOCK))
    async with client_for(script) as client:
        moved = await client.advance_test_clock(86_400)
        with pytest.raises(TypeError):
            await client.advance_test_clock(1.5)  # type: ignore[arg-type]
    assert moved.offset_seconds == 86_400
    assert len(script.requests) == 2
    keys = {request.headers["Idempotency-Key"] for request in script.requests}
    assert len(keys) == 1
    assert all(json.loads(r.content) == {"seconds": 86_400} for r in script.requests)


def entry(entry_id: str, balance_after: str) -> dict[str, object]:
    return {
        "entry_id": entry_id,
        "kind": "payment",
        "account": "held",
        "amount": "-1.00",
        "balance_after": balance_after,
        "currency": "USDC",
        "counterparties": [],
        "reference": None,
        "description": None,
        "created_at": "2026-11-30T09:00:00Z",
    }


async def test_wallet_entries_page_by_the_last_entry_id_keeping_the_account() -> None:
    script = Script(
        httpx.Response(200, json=[entry("je_3", "3.00"), entry("je_2", "4.00")]),
        httpx.Response(200, json=[entry("je_1", "5.00")]),
    )
    async with client_for(script) as client:
        entries = [
            e
            async for e in client.list_wallet_entries(
                "agent_a", account="held", starting_after="je_4", page_size=2
            )
        ]
    assert [(e.entry_id, e.balance_after) for e in entries] == [
        ("je_3", Decimal("3.00")),
        ("je_2", Decimal("4.00")),
        ("je_1", Decimal("5.00")),
    ]
    assert [dict(r.url.params) for r in script.requests] == [
        {"account": "held", "starting_after": "je_4", "limit": "2"},
        {"account": "held", "starting_after": "je_2", "limit": "2"},
    ]
