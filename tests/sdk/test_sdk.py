"""The Python SDK against the real server over loopback HTTP."""

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from purser import (
    AgentFlaggedError,
    AsyncPurserClient,
    AuthenticationError,
    ConflictError,
    IdempotencyConflictError,
    InsufficientFundsError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    PurserClient,
    ValidationError,
    WalletFrozenError,
    WebhookVerificationError,
    webhooks,
)
from purser.models import PaymentResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from app.db import run_in_transaction
from app.domain.apikey.schemas import Scope
from app.domain.audit import service as audit_service
from app.kit.ids import new_id
from tests.sdk.conftest import DeliverWebhooks
from tests.webhook_receiver import Receiver


async def test_seed_example_flow(base_url: str, make_key) -> None:  # type: ignore[no-untyped-def]
    owner = new_id("owner")
    key = await make_key(owner=owner, scopes=list(Scope))
    async with AsyncPurserClient(api_key=key.secret, base_url=base_url) as client:
        merchant = await client.create_merchant("Coffee Shop")

        agent = await client.register_agent(
            name="my_agent",
            owner_id=owner,
            initial_balance=Decimal("100.00"),
            limit_per_tx=Decimal("20.00"),
        )
        assert agent.wallet.balance == Decimal("100")
        assert agent.wallet.limit_per_tx == Decimal("20")

        assert await client.can_afford(agent.agent.agent_id, Decimal("15.99"))
        assert not await client.can_afford(agent.agent.agent_id, Decimal("100.00"))
        result = await client.pay(
            agent_id=agent.agent.agent_id,
            amount=Decimal("15.99"),
            merchant_id=merchant.merchant_id,
        )
        assert isinstance(result, PaymentResult)
        assert result.success
        assert result.transaction is not None
        tx = result.transaction
        assert tx.amount == Decimal("15.99")
        assert isinstance(tx.fee, Decimal)

        wallet = await client.get_wallet(agent.agent.agent_id)
        assert wallet.balance == Decimal("100") - tx.total_cost
        fetched = await client.get_transaction(tx.tx_id)
        assert fetched.tx_id == tx.tx_id
        assert fetched.merchant_id == merchant.merchant_id


async def test_typed_errors(client: AsyncPurserClient, base_url: str) -> None:
    merchant = await client.create_merchant("Errors Inc")
    poor = await client.register_agent("poor", initial_balance=Decimal("10"))
    with pytest.raises(InsufficientFundsError) as insufficient:
        await client.pay(poor.agent.agent_id, Decimal("50"), merchant_id=merchant.merchant_id)
    assert insufficient.value.status == 400
    assert insufficient.value.code == "insufficient_funds"
    assert insufficient.value.tx_id
    assert insufficient.value.request_id

    limited = await client.register_agent(
        "limited", initial_balance=Decimal("100"), limit_per_tx=Decimal("5")
    )
    with pytest.raises(LimitExceededError) as limit:
        await client.pay(limited.agent.agent_id, Decimal("6"), merchant_id=merchant.merchant_id)
    assert limit.value.code == "limit_exceeded"

    with pytest.raises(NotFoundError) as missing:
        await client.get_agent("agent_" + "0" * 26)
    assert missing.value.status == 404

    with pytest.raises(ValidationError) as invalid:
        await client.pay(
            limited.agent.agent_id, Decimal("1.1234567"), merchant_id=merchant.merchant_id
        )
    assert invalid.value.status == 422
    assert invalid.value.param == "amount"

    # From an address of its own: failed authentications are throttled per client address,
    # and other suites sharing the session app may have spent 127.0.0.1's budget.
    own_address = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with AsyncPurserClient(
        api_key="sk_test_bad", base_url=base_url, transport=own_address, max_retries=0
    ) as bad:
        with pytest.raises(AuthenticationError) as unauthenticated:
            await bad.get_agent(limited.agent.agent_id)
    assert unauthenticated.value.status == 401
    assert unauthenticated.value.code == "invalid_api_key"

    key = new_id("idem")
    await client.pay(
        poor.agent.agent_id, Decimal("1"), merchant_id=merchant.merchant_id, idempotency_key=key
    )
    with pytest.raises(IdempotencyConflictError) as reused:
        await client.pay(
            poor.agent.agent_id, Decimal("2"), merchant_id=merchant.merchant_id, idempotency_key=key
        )
    assert reused.value.code == "idempotency_key_reused"

    with pytest.raises(TypeError):
        await client.pay(limited.agent.agent_id, 1.5, merchant_id=merchant.merchant_id)  # type: ignore[arg-type]


class DropFirstPayment(httpx.AsyncBaseTransport):
    """Sends the first ``POST`` to ``path`` (``/payments``) to the server, then loses its
    answer."""

    def __init__(self, path: str = "/api/v1/payments") -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.path = path
        self.payment_keys: list[str | None] = []
        self.dropped = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == self.path:
            self.payment_keys.append(request.headers.get("Idempotency-Key"))
            if not self.dropped:
                self.dropped = True
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection lost after the server answered", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_retry_after_lost_response_charges_once(base_url: str, api_key: str) -> None:
    transport = DropFirstPayment()
    async with AsyncPurserClient(api_key=api_key, base_url=base_url, transport=transport) as client:
        merchant = await client.create_merchant("Retry Shop")
        agent = await client.register_agent("retrier", initial_balance=Decimal("50"))
        result = await client.pay(
            agent.agent.agent_id, Decimal("7.5"), merchant_id=merchant.merchant_id
        )
        assert result.success

        assert transport.dropped
        assert len(transport.payment_keys) == 2
        assert transport.payment_keys[0] == transport.payment_keys[1]

        transactions = [tx async for tx in client.list_transactions(agent.agent.agent_id)]
        assert len(transactions) == 1
        assert result.transaction is not None
        assert transactions[0].tx_id == result.transaction.tx_id
        wallet = await client.get_wallet(agent.agent.agent_id)
        assert wallet.balance == Decimal("50") - result.transaction.total_cost


async def test_a_funding_whose_answer_was_lost_is_resent_and_credits_once(
    base_url: str, api_key: str
) -> None:
    async with AsyncPurserClient(api_key=api_key, base_url=base_url) as client:
        agent = await client.register_agent("funded once")
        agent_id = agent.agent.agent_id
        pods = {pod.name: pod.id for pod in await client.list_pods()}
        used_before = (await client.get_sequence_limits()).used_today_cents
    transport = DropFirstPayment(f"/api/v1/agents/{agent_id}/wallet/fund")
    async with AsyncPurserClient(api_key=api_key, base_url=base_url, transport=transport) as client:
        funding = await client.fund_wallet(agent_id, pods["Agent Budget"], Decimal("25.00"))
        assert transport.dropped
        assert len(transport.payment_keys) == 2
        assert transport.payment_keys[0] == transport.payment_keys[1]
        assert funding.status == "completed"
        assert (await client.get_funding(funding.funding_id)).amount == Decimal("25")
        assert (await client.get_wallet(agent_id)).balance == Decimal("25")
        used = (await client.get_sequence_limits()).used_today_cents
        assert used - used_before == 2500  # one transfer reached Sequence's limits


async def test_a_dry_run_is_resent_after_a_lost_answer_and_writes_nothing(
    base_url: str, api_key: str
) -> None:
    transport = DropFirstPayment()
    async with AsyncPurserClient(api_key=api_key, base_url=base_url, transport=transport) as client:
        merchant = await client.create_merchant("Plan Shop")
        agent = await client.register_agent("planner", initial_balance=Decimal("20"))
        agent_id = agent.agent.agent_id
        plan = await client.dry_run_pay(agent_id, Decimal("5"), merchant_id=merchant.merchant_id)
        # Resent after the lost answer, with no key either time: it wrote nothing.
        assert transport.dropped
        assert transport.payment_keys == [None, None]
        assert (plan.decision, plan.fee is not None) == ("allow", True)
        assert [tx async for tx in client.list_transactions(agent_id)] == []
        assert (await client.get_wallet(agent_id)).balance == Decimal("20")

        paid = await client.pay(agent_id, Decimal("5"), merchant_id=merchant.merchant_id)
        assert paid.transaction is not None
        assert paid.transaction.fee == plan.fee
        assert (await client.get_wallet(agent_id)).balance == plan.projected_balance

        # What the server cannot run at all raises, as the real call would.
        with pytest.raises(NotFoundError):
            await client.dry_run_capture_hold("hold_missing")
        with pytest.raises(ValidationError) as invalid:
            await client.dry_run_pay(agent_id, "-1", merchant_id=merchant.merchant_id)
        assert invalid.value.param == "amount"
        with pytest.raises(ConflictError) as too_much:
            await client.dry_run_refund(paid.transaction.tx_id, Decimal("6"))
        assert too_much.value.code == "refund_exceeds_payment"


async def test_each_call_gets_its_own_idempotency_key(base_url: str, api_key: str) -> None:
    transport = DropFirstPayment()
    transport.dropped = True  # drop nothing
    async with AsyncPurserClient(api_key=api_key, base_url=base_url, transport=transport) as client:
        merchant = await client.create_merchant("Twice Shop")
        agent = await client.register_agent("twice", initial_balance=Decimal("50"))
        for _ in range(2):
            await client.pay(agent.agent.agent_id, Decimal("1"), merchant_id=merchant.merchant_id)
        await client.pay(
            agent.agent.agent_id,
            Decimal("1"),
            merchant_id=merchant.merchant_id,
            idempotency_key="k-1",
        )
        again = await client.pay(
            agent.agent.agent_id,
            Decimal("1"),
            merchant_id=merchant.merchant_id,
            idempotency_key="k-1",
        )
        assert again.success
    assert len(set(transport.payment_keys)) == 3
    assert transport.payment_keys[2:] == ["k-1", "k-1"]


async def test_auto_paging(
    client: AsyncPurserClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    merchant = await client.create_merchant("Paging Shop")
    agent = await client.register_agent("pager", initial_balance=Decimal("100"))
    paid = []
    for _ in range(5):
        result = await client.pay(
            agent.agent.agent_id, Decimal("1"), merchant_id=merchant.merchant_id
        )
        assert result.transaction is not None
        paid.append(result.transaction.tx_id)

    listed = [tx.tx_id async for tx in client.list_transactions(agent.agent.agent_id, page_size=2)]
    assert sorted(listed) == sorted(paid)
    assert len(listed) == len(set(listed)) == 5

    # Sealing (a periodic job, off in tests) numbers the records the cursor follows.
    await run_in_transaction(sessionmaker, audit_service.seal)
    records = [record async for record in client.list_audit(page_size=2)]
    seqs = [record.seq for record in records]
    assert len(records) >= 7  # two creations' worth of payments at least
    assert seqs == sorted((s for s in seqs if s is not None), reverse=True)
    assert len(set(seqs)) == len(seqs)


async def test_holds_refunds_requests_and_risk(client: AsyncPurserClient) -> None:
    merchant = await client.create_merchant("Hold Shop")
    payer = await client.register_agent("payer", initial_balance=Decimal("100"))
    payee = await client.register_agent("payee", initial_balance=Decimal("0"))
    payer_id = payer.agent.agent_id

    hold = await client.create_hold(payer_id, merchant.merchant_id, Decimal("10"))
    assert hold.status == "pending"
    captured = await client.capture_hold(hold.hold_id, Decimal("4"))
    assert captured.status == "captured"
    assert captured.captured_amount == Decimal("4")
    voided = await client.void_hold(
        (await client.create_hold(payer_id, merchant.merchant_id, Decimal("3"))).hold_id
    )
    assert (await client.get_hold(voided.hold_id)).status == "voided"

    result = await client.pay(payer_id, Decimal("8"), merchant_id=merchant.merchant_id)
    assert result.transaction is not None
    refund = await client.refund(result.transaction.tx_id, Decimal("3"), reason="broken")
    assert refund.amount == Decimal("3")
    assert [r.refund_id for r in await client.list_refunds(result.transaction.tx_id)] == [
        refund.refund_id
    ]

    request = await client.create_payment_request(payee.agent.agent_id, payer_id, Decimal("2"))
    paid = await client.pay_payment_request(request.request_id)
    assert paid.success
    assert (await client.get_payment_request(request.request_id)).status == "paid"
    other = await client.create_payment_request(payee.agent.agent_id, payer_id, Decimal("1"))
    assert (await client.cancel_payment_request(other.request_id)).status == "cancelled"
    listed = [r.request_id async for r in client.list_payment_requests(page_size=1)]
    assert {request.request_id, other.request_id} <= set(listed)

    score = await client.get_risk_score(payer_id)
    assert 0 <= score.score <= 100
    flagged = await client.flag_agent(payer_id, "suspicious")
    assert flagged.is_flagged
    assert (await client.get_risk_profile(payer_id)).is_flagged
    with pytest.raises(AgentFlaggedError) as refused:
        await client.pay(payer_id, Decimal("1"), merchant_id=merchant.merchant_id)
    assert refused.value.status == 403
    assert isinstance(refused.value, PermissionDeniedError)
    assert not (await client.unflag_agent(payer_id)).is_flagged
    services = await client.authorize_service(payer_id, merchant.merchant_id)
    assert merchant.merchant_id in services.services
    assert (
        merchant.merchant_id
        not in (await client.revoke_service(payer_id, merchant.merchant_id)).services
    )

    product = await client.create_product(merchant.merchant_id, "Widget", Decimal("2.50"))
    assert (await client.get_product(product.product_id)).price == Decimal("2.5")
    bought = await client.pay(payer_id, product_id=product.product_id)
    assert bought.transaction is not None
    assert bought.transaction.amount == Decimal("2.5")

    webhook = await client.create_webhook("http://127.0.0.1:9/hook", ["payment.completed"])
    assert webhook.secret.startswith("whsec_")
    assert webhook.subscription_id in [w.subscription_id for w in await client.list_webhooks()]
    await client.delete_webhook(webhook.subscription_id)
    assert webhook.subscription_id not in [w.subscription_id for w in await client.list_webhooks()]

    wallet = await client.update_limits(payer_id, limit_daily=Decimal("50"))
    assert wallet.limit_daily == Decimal("50")
    wallet = await client.update_limits(payer_id, limit_daily=None)
    assert wallet.limit_daily is None


async def test_sync_client(base_url: str, api_key: str) -> None:
    def flow() -> tuple[Decimal, Decimal, int]:
        with PurserClient(api_key=api_key, base_url=base_url) as client:
            merchant = client.create_merchant("Sync Shop")
            agent = client.register_agent("sync", initial_balance=Decimal("20"))
            assert client.can_afford(agent.agent.agent_id, Decimal("5"))
            result = client.pay(
                agent.agent.agent_id, Decimal("5"), merchant_id=merchant.merchant_id
            )
            assert result.transaction is not None
            with pytest.raises(InsufficientFundsError):
                client.pay(agent.agent.agent_id, Decimal("500"), merchant_id=merchant.merchant_id)
            wallet = client.get_wallet(agent.agent.agent_id)
            count = len(list(client.list_transactions(agent.agent.agent_id, page_size=1)))
            return wallet.balance, result.transaction.total_cost, count

    balance, cost, count = await asyncio.to_thread(flow)
    assert balance == Decimal("20") - cost
    assert count == 2  # the completed payment and the refused one


def test_webhook_verify() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps(
        {"id": "evt_1", "type": "payment.completed", "data": {"amount": "1.00"}}
    ).encode()
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_1", now, body.decode()),
    }
    event = webhooks.verify(body, headers, secret)
    assert event["type"] == "payment.completed"
    # Headers are case-insensitive; a rotation's two signatures verify with either secret.
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    rotated = dict(headers)
    rotated["Webhook-Signature"] = (
        rotated.pop("webhook-signature") + " " + Webhook(other).sign("msg_1", now, body.decode())
    )
    assert webhooks.verify(body, rotated, other)["id"] == "evt_1"

    with pytest.raises(WebhookVerificationError):
        webhooks.verify(body.replace(b"1.00", b"9.00"), headers, secret)
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(body, {**headers, "webhook-signature": "garbage"}, secret)
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(body, headers, other)
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(body, {k: v for k, v in headers.items() if k != "webhook-id"}, secret)


def test_sync_client_is_generated_from_the_async_one() -> None:
    script = Path(__file__).resolve().parents[2] / "sdk" / "python" / "scripts" / "unasync.py"
    result = subprocess.run([sys.executable, str(script), "--check"], check=False)
    assert result.returncode == 0, "run sdk/python/scripts/unasync.py"


def test_webhook_verify_refuses_headers_it_cannot_read_and_says_when_the_body_is_not_json() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    now = datetime.now(UTC)
    for body in (b"{}", b"not json"):
        signed = {
            "webhook-id": "msg_2",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign("msg_2", now, body.decode()),
        }
        if body == b"{}":
            # Headers as (name, value) pairs, as some frameworks give them.
            assert webhooks.verify(body, list(signed.items()), secret) == {}
        else:
            with pytest.raises(WebhookVerificationError, match="not JSON"):
                webhooks.verify(body, signed, secret)
    with pytest.raises(WebhookVerificationError, match="headers"):
        webhooks.verify(b"{}", None, secret)  # type: ignore[arg-type]


async def test_amount_text_is_checked_by_the_server_not_rewritten(
    client: AsyncPurserClient,
) -> None:
    merchant = await client.create_merchant("Text Amounts")
    agent = await client.register_agent("texter", initial_balance=Decimal("10"))
    for text in (" 5 ", "abc"):
        with pytest.raises(ValidationError) as refused:
            await client.pay(agent.agent.agent_id, text, merchant_id=merchant.merchant_id)
        assert refused.value.param == "amount"
    assert (await client.get_wallet(agent.agent.agent_id)).balance == Decimal("10")


async def test_webhook_verify_accepts_a_real_delivery_and_rejects_a_tampered_one(
    client: AsyncPurserClient, receiver: Receiver, deliver_webhooks: DeliverWebhooks
) -> None:
    hook = await client.create_webhook(f"{receiver.url}/purser", ["payment.completed"])
    merchant = await client.create_merchant("Verified Shop")
    agent = await client.register_agent("verified", initial_balance=Decimal("20"))
    paid = await client.pay(
        agent.agent.agent_id, Decimal("12.34"), merchant_id=merchant.merchant_id
    )
    assert paid.transaction is not None
    assert await deliver_webhooks() >= 1
    (delivered,) = receiver.requests

    event = webhooks.verify(delivered.body, delivered.headers, hook.secret)
    assert event["type"] == "payment.completed"
    assert event["data"]["transaction"]["id"] == paid.transaction.tx_id
    assert event["data"]["transaction"]["amount"] == "12.34"

    tampered = delivered.body.replace(b'"12.34"', b'"99.99"')
    assert tampered != delivered.body
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(tampered, delivered.headers, hook.secret)
    with pytest.raises(WebhookVerificationError):  # another subscription's secret
        webhooks.verify(delivered.body, delivered.headers, "whsec_" + "QUJD" * 8)
    replayed_id = {**delivered.headers, "webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(delivered.body, replayed_id, hook.secret)


async def test_an_agent_key_freezes_its_agent_and_only_an_owner_key_unfreezes(
    client: AsyncPurserClient, base_url: str
) -> None:
    merchant = await client.create_merchant("Brake Shop")
    agent_id = (await client.register_agent("braked", initial_balance=Decimal("10"))).agent.agent_id
    agent_key = await client.create_key("brake", agent_id=agent_id, scopes=["payments:write"])
    async with AsyncPurserClient(api_key=agent_key.secret, base_url=base_url) as own:
        frozen = await own.freeze_agent(agent_id)
        assert (frozen.scope, frozen.agent_id, frozen.frozen) == ("agent", agent_id, True)
        with pytest.raises(WalletFrozenError):
            await own.pay(agent_id, Decimal("1"), merchant_id=merchant.merchant_id)
        with pytest.raises(PermissionDeniedError):
            await own.unfreeze_agent(agent_id)
    assert (await client.unfreeze_agent(agent_id)).changed
    assert (await client.pay(agent_id, Decimal("1"), merchant_id=merchant.merchant_id)).success
