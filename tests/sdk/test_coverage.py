"""The SDK covers the whole API: every operation under ``/api/v1`` in the server's OpenAPI
document has a client method (each method declares the operations it calls), and every
public method of ``AsyncPurserClient`` runs against the real server over loopback HTTP,
with each request it sends checked against the operations it declared."""

import asyncio
import inspect
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from purser import (
    AsyncPurserClient,
    AuthenticationError,
    BadRequestError,
    PurserClient,
    PurserError,
    WalletFrozenError,
    models,
    route_table,
    webhooks,
)
from purser._core import Route
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.apikey.schemas import Scope
from app.domain.audit import service as audit_service
from tests.api.helpers import MakeKey
from tests.sdk.conftest import DeliverWebhooks
from tests.webhook_receiver import Receiver

API_PREFIX = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}
#: Public members of the client that are not API calls.
LIFECYCLE = {"aclose", "close"}


def api_operations(app: FastAPI) -> set[Route]:
    """Every (method, path) the server documents under ``/api/v1``, path without it."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {
        (method.upper(), path.removeprefix(API_PREFIX))
        for path, operations in paths.items()
        if path.startswith(API_PREFIX + "/")
        for method in operations
        if method in HTTP_METHODS
    }


def public_methods(client: type) -> set[str]:
    return {
        name
        for name, member in vars(client).items()
        if not name.startswith("_") and callable(member) and name not in LIFECYCLE
    }


def test_every_operation_has_a_method_and_every_method_an_operation(app: FastAPI) -> None:
    table = route_table(AsyncPurserClient)
    covered = {route for routes in table.values() for route in routes}
    operations = api_operations(app)
    assert operations - covered == set(), "operations of /api/v1 without an SDK method"
    assert covered - operations == set(), "SDK methods declaring operations the API lacks"
    assert public_methods(AsyncPurserClient) == set(table), "methods declaring no operation"
    # The generated sync client has the same methods and table.
    assert route_table(PurserClient) == table
    assert public_methods(PurserClient) == set(table)


#: The SDK model of each object schema the API answers with (2xx, under ``/api/v1``).
SCHEMA_MODELS: dict[str, type[models.PurserModel]] = {
    "Health": models.Health,
    "Readiness": models.Readiness,
    "ApiKeyRead": models.ApiKey,
    "ApiKeyCreated": models.ApiKeyCreated,
    "AgentRead": models.Agent,
    "AgentCreated": models.AgentCreated,
    "WalletRead": models.Wallet,
    "LimitStateRead": models.LimitState,
    "VirtualCardRead": models.VirtualCard,
    "MerchantRead": models.Merchant,
    "MerchantWalletRead": models.MerchantWallet,
    "ProductRead": models.Product,
    "TransactionRead": models.Transaction,
    "RiskRecord": models.RiskRecord,
    "RiskFactor": models.RiskFactor,
    "PaymentResult": models.PaymentResult,
    "PaymentEstimate": models.PaymentEstimate,
    "HoldRead": models.Hold,
    "RefundRead": models.Refund,
    "PaymentRequestRead": models.PaymentRequest,
    "WebhookRead": models.Webhook,
    "WebhookCreated": models.WebhookCreated,
    "EventType": models.EventType,
    "TestDelivery": models.TestDelivery,
    "DeliveryAttemptRead": models.DeliveryAttempt,
    "RiskScore": models.RiskScore,
    "RiskProfile": models.RiskProfile,
    "FlagState": models.FlagState,
    "AuthorizedServices": models.AuthorizedServices,
    "AuditPage": models.AuditPage,
    "AuditRecordRead": models.AuditRecord,
    "Pod": models.Pod,
    "PodDetail": models.PodDetail,
    "TotalBalance": models.TotalBalance,
    "TransferSummary": models.TransferSummary,
    "AccountItem": models.SequenceAccount,
    "Accounts": models.SequenceAccounts,
    "ActivitySummary": models.ActivitySummary,
    "ActivityPage": models.ActivityPage,
    "TransferResult": models.TransferResult,
    "ConnectionRead": models.SequenceConnection,
    "LimitsRead": models.SequenceLimits,
    "FundingRead": models.Funding,
    "DryRunResult": models.DryRunResult,
    "DryRunReason": models.DryRunReason,
    "FreezeRead": models.FreezeResult,
    "ClockRead": models.TestClock,
    "WalletEntry": models.WalletEntry,
    "JournalEntryRead": models.JournalEntry,
    "PostingRead": models.Posting,
    "EntryReference": models.EntryReference,
    "AccountOwner": models.AccountOwner,
}


def response_schemas(app: FastAPI) -> dict[str, dict[str, Any]]:
    """Every object schema a 2xx answer under ``/api/v1`` holds, nested ones included."""
    spec = app.openapi()
    components: dict[str, dict[str, Any]] = spec["components"]["schemas"]
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                if name not in found:
                    found[name] = components[name]
                    walk(components[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path, operations in spec["paths"].items():
        if path.startswith(API_PREFIX + "/"):
            for method, operation in operations.items():
                if method in HTTP_METHODS:
                    for status, response in operation["responses"].items():
                        if status.startswith("2"):
                            walk(response.get("content", {}))
    return {name: schema for name, schema in found.items() if schema.get("properties")}


def test_every_answer_has_a_typed_model_with_every_field(app: FastAPI) -> None:
    schemas = response_schemas(app)
    assert set(schemas) - set(SCHEMA_MODELS) == set(), (
        "response schemas without an SDK model: add one to purser/models.py and map it here"
    )
    for name, schema in schemas.items():
        model = SCHEMA_MODELS[name]
        missing = set(schema["properties"]) - set(model.model_fields)
        assert missing == set(), f"{model.__name__} lacks {name}'s fields"


README = Path(__file__).resolve().parents[2] / "sdk" / "python" / "README.md"


def test_the_readme_tables_list_every_method_with_its_operations_and_answer() -> None:
    rows = re.findall(r"^\| `(\w+)\((.*?)\)` \| (.+?) \| `(.+?)` \|$", README.read_text(), re.M)
    documented = {
        name: tuple((verb, path) for verb, path in re.findall(r"`([A-Z]+) (/[^`]*)`", calls))
        for name, _, calls, _ in rows
    }
    assert len(documented) == len(rows), "a method listed twice"
    assert documented == route_table(PurserClient)
    for name, arguments, _, answer in rows:
        signature = inspect.signature(getattr(PurserClient, name))
        assert answer == signature.return_annotation.replace("m.", ""), name
        listed = [a.split("=")[0] for a in arguments.split(", ") if a]
        given = [p for p in list(signature.parameters)[1:] if p != "idempotency_key"]
        assert listed == given, name


# -- every method against the server ----------------------------------------------------


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p) + "$"
    )


def _literal_segments(template: str) -> int:
    return sum(1 for segment in template.split("/") if segment and "{" not in segment)


def operation_of(method: str, path: str, declared: tuple[Route, ...]) -> Route | None:
    """The declared operation a request matches; of several, the most literal one (as the
    server's router, which tries ``/pods/detail/{pod_id}`` before
    ``/pods/{org_id}/{pod_id}``)."""
    matches = [
        (verb, template)
        for verb, template in declared
        if verb == method and _pattern(API_PREFIX + template).match(path)
    ]
    return max(matches, key=lambda r: _literal_segments(r[1]), default=None)


@dataclass
class Sent:
    caller: str | None
    method: str
    path: str
    status: int
    headers: httpx.Headers


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Sends every request to the server, noting which client method it came from."""

    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    caller: str | None = None
    sent: list[Sent] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.sent.append(
            Sent(
                self.caller,
                request.method,
                request.url.path,
                response.status_code,
                request.headers,
            )
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Traced:
    """The client, each public method call noted with the requests it makes (also while
    a list's iterator fetches its pages)."""

    def __init__(self, client: AsyncPurserClient, recorder: Recorder) -> None:
        self._client = client
        self._recorder = recorder
        self.called: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._client, name)
        if name.startswith("_") or not callable(member):
            return member
        return self._trace(name, member)

    def _trace(self, name: str, member: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self._recorder

        def traced(*args: Any, **kwargs: Any) -> Any:
            self.called.add(name)
            result = member(*args, **kwargs)
            if inspect.iscoroutine(result):

                async def run() -> Any:
                    recorder.caller = name
                    try:
                        return await result
                    finally:
                        recorder.caller = None

                return run()
            assert isinstance(result, AsyncIterator), name

            async def iterate() -> AsyncIterator[Any]:
                while True:
                    recorder.caller = name
                    try:
                        item = await anext(result)
                    except StopAsyncIteration:
                        return
                    finally:
                        recorder.caller = None
                    yield item

            return iterate()

        return traced


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


@pytest.fixture
async def traced(base_url: str, make_key: MakeKey) -> AsyncIterator[tuple[Traced, Recorder, str]]:
    key = await make_key(scopes=list(Scope))
    recorder = Recorder()
    async with AsyncPurserClient(api_key=key.secret, base_url=base_url, transport=recorder) as c:
        yield Traced(c, recorder), recorder, key.owner_id


async def test_every_public_method_runs_against_the_server(
    app: FastAPI,
    base_url: str,
    traced: tuple[Traced, Recorder, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    deliver_webhooks: DeliverWebhooks,
    sequence_sandbox_url: str,
) -> None:
    c, recorder, owner_id = traced

    # -- health and keys
    assert (await c.health()).status == "ok"
    ready = await c.readiness()
    assert (ready.status, ready.database) == ("ready", "ok")
    issued = await c.create_key("reader", scopes=["agents:read"], tier="free")
    assert issued.secret.startswith("sk_test_")
    assert (issued.owner_id, issued.scopes, issued.tier) == (owner_id, ["agents:read"], "free")
    listed_keys = {k.key_id: k for k in await c.list_keys()}
    assert issued.key_id in listed_keys
    assert "secret" not in (listed_keys[issued.key_id].model_extra or {})
    async with AsyncPurserClient(api_key=issued.secret, base_url=base_url) as reader:
        assert [a async for a in reader.list_agents()] == []
    revoked = await c.revoke_key(issued.key_id)
    assert revoked.revoked_at is not None
    # From an address of its own: failed authentications are throttled per address.
    own_address = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    async with AsyncPurserClient(
        api_key=issued.secret, base_url=base_url, transport=own_address, max_retries=0
    ) as reader:
        with pytest.raises(AuthenticationError):
            await collect(reader.list_agents())

    # -- merchants and catalog
    merchant = await c.create_merchant("Coverage Shop", category="tools")
    merchant_id = merchant.merchant_id
    assert (await c.get_merchant(merchant_id)).category == "tools"
    other_merchant = await c.create_merchant("Second Shop")
    listed = [x.merchant_id for x in await collect(c.list_merchants(page_size=1))]
    assert {merchant_id, other_merchant.merchant_id} <= set(listed)
    assert len(listed) == len(set(listed))
    product = await c.create_product(merchant_id, "Widget", Decimal("2.50"), category="tools")
    changed = await c.update_product(product.product_id, price=Decimal("3.00"), in_stock=False)
    assert (changed.price, changed.in_stock) == (Decimal("3"), False)
    assert (await c.get_product(product.product_id)).price == Decimal("3.00")
    out_of_stock = await collect(c.list_products(category="tools", in_stock_only=False))
    assert product.product_id in [p.product_id for p in out_of_stock]
    assert product.product_id not in [
        p.product_id async for p in c.list_products(category="tools", in_stock_only=True)
    ]

    # -- agents, wallets, limits
    payer = await c.register_agent("coverage payer", initial_balance=Decimal("100"))
    payee = await c.register_agent("coverage payee")
    payer_id, payee_id = payer.agent.agent_id, payee.agent.agent_id
    assert payer.wallet.balance == Decimal("100")
    assert (await c.get_agent(payer_id)).name == "coverage payer"
    renamed = await c.update_agent(payer_id, description="pays for coverage")
    assert (renamed.description, renamed.name) == ("pays for coverage", "coverage payer")
    agents = [a.agent_id for a in await collect(c.list_agents(page_size=1))]
    assert sorted(agents) == sorted([payer_id, payee_id])
    limited = await c.update_limits(payer_id, limit_daily=Decimal("80"))
    assert limited.limit_daily == Decimal("80")
    assert (await c.get_wallet(payer_id)).limit_daily == Decimal("80")

    # -- payments, refunds
    estimate = await c.estimate(Decimal("10"))
    assert estimate.total == estimate.amount + estimate.fee == Decimal("10") + estimate.fee
    assert await c.can_afford(payer_id, Decimal("10"))
    assert not await c.can_afford(payer_id, Decimal("100"))  # the fee tips it over
    paid = await c.pay(payer_id, Decimal("10"), merchant_id=merchant_id, purpose="coverage")
    assert paid.success
    assert paid.transaction is not None
    tx = await c.get_transaction(paid.transaction.tx_id)
    assert (tx.amount, tx.total_cost, tx.merchant_id) == (
        Decimal("10"),
        Decimal("10") + estimate.fee,
        merchant_id,
    )
    assert tx.risk is not None
    assert tx.risk.decision == "allow"
    assert [t.tx_id for t in await collect(c.list_transactions(payer_id))] == [tx.tx_id]
    assert (await c.get_merchant_wallet(merchant_id)).balance == Decimal("10")
    refund = await c.refund(tx.tx_id, Decimal("4"), reason="partial")
    assert (refund.amount, refund.tx_id) == (Decimal("4"), tx.tx_id)
    assert [r.refund_id for r in await c.list_refunds(tx.tx_id)] == [refund.refund_id]
    assert (await c.get_merchant_wallet(merchant_id)).balance == Decimal("6")

    # -- holds
    hold = await c.create_hold(payer_id, merchant_id, Decimal("5"), purpose="deposit")
    assert (await c.get_hold(hold.hold_id)).status == "pending"
    captured = await c.capture_hold(hold.hold_id, Decimal("2"))
    assert (captured.status, captured.captured_amount) == ("captured", Decimal("2"))
    released = await c.void_hold((await c.create_hold(payer_id, merchant_id, Decimal("1"))).hold_id)
    assert released.status == "voided"
    holds = {h.hold_id: h.status for h in await collect(c.list_holds(payer_id, page_size=1))}
    assert holds == {hold.hold_id: "captured", released.hold_id: "voided"}

    # -- payment requests
    invoice = await c.create_payment_request(payee_id, payer_id, Decimal("3"), description="fee")
    assert (await c.get_payment_request(invoice.request_id)).status == "pending"
    settled = await c.pay_payment_request(invoice.request_id)
    assert settled.success
    assert settled.transaction is not None
    assert settled.transaction.amount == Decimal("3")
    dropped = await c.create_payment_request(payee_id, payer_id, Decimal("1"))
    assert (await c.cancel_payment_request(dropped.request_id)).status == "cancelled"
    requests = {r.request_id: r.status for r in await collect(c.list_payment_requests(page_size=1))}
    assert requests == {invoice.request_id: "paid", dropped.request_id: "cancelled"}

    # -- risk
    score = await c.get_risk_score(payer_id)
    assert 0 <= score.score <= 100
    assert score.is_acceptable
    assert all(isinstance(f, models.RiskFactor) for f in score.factors)
    assert (await c.flag_agent(payer_id, "looks odd")).is_flagged
    profile = await c.get_risk_profile(payer_id)
    assert (profile.is_flagged, profile.flag_reason) == (True, "looks odd")
    assert profile.total_transactions >= 2
    assert not (await c.unflag_agent(payer_id)).is_flagged
    assert merchant_id in (await c.authorize_service(payer_id, merchant_id)).services
    assert (await c.revoke_service(payer_id, merchant_id)).services == []

    # -- freezing: a frozen wallet moves no money, refused as WalletFrozenError
    pending = await c.create_hold(payer_id, merchant_id, Decimal("1"))
    frozen = await c.freeze_agent(payer_id, release_holds=True)
    assert (frozen.scope, frozen.agent_id, frozen.frozen, frozen.changed) == (
        "agent",
        payer_id,
        True,
        True,
    )
    assert (frozen.agent_ids, frozen.holds_released) == ([payer_id], [pending.hold_id])
    assert (await c.get_hold(pending.hold_id)).status == "voided"
    assert (await c.get_wallet(payer_id)).frozen
    with pytest.raises(WalletFrozenError) as refused:
        await c.pay(payer_id, Decimal("1"), merchant_id=merchant_id)
    assert (refused.value.status, refused.value.code) == (403, "wallet_frozen")
    assert refused.value.tx_id is not None
    assert (await c.get_transaction(refused.value.tx_id)).status == "failed"
    thawed = await c.unfreeze_agent(payer_id)
    assert (thawed.frozen, thawed.changed) == (False, True)
    assert (await c.pay(payer_id, Decimal("1"), merchant_id=merchant_id)).success
    everyone = await c.freeze_all()
    assert (everyone.scope, everyone.agent_id, everyone.frozen, everyone.agent_ids) == (
        "owner",
        None,
        True,
        sorted([payer_id, payee_id]),
    )
    with pytest.raises(WalletFrozenError):
        await c.pay_payment_request(
            (await c.create_payment_request(payee_id, payer_id, Decimal("1"))).request_id
        )
    frozen_plan = await c.dry_run_pay(payer_id, Decimal("1"), merchant_id=merchant_id)
    assert (frozen_plan.decision, frozen_plan.status_code) == ("deny", 403)
    assert [reason.code for reason in frozen_plan.reasons] == ["wallet_frozen"]
    assert (await c.unfreeze_all()).frozen is False
    assert not (await c.get_wallet(payer_id)).frozen

    # -- dry runs: the real call's decision, fee and projections, nothing written
    before = await c.get_wallet(payer_id)
    plan = await c.dry_run_pay(payer_id, Decimal("5"), merchant_id=merchant_id, purpose="dry")
    assert (plan.dry_run, plan.decision, plan.status_code, plan.reasons) == (True, "allow", 200, [])
    assert (plan.wallet_id, plan.amount, plan.currency) == (
        before.wallet_id,
        Decimal("5"),
        before.currency,
    )
    assert (await c.get_wallet(payer_id)).balance == before.balance
    real = (await c.pay(payer_id, Decimal("5"), merchant_id=merchant_id, purpose="dry")).transaction
    assert real is not None
    assert real.risk is not None
    assert plan.risk is not None
    assert plan.risk.decision == real.risk.decision
    after = await c.get_wallet(payer_id)
    assert plan.fee == real.fee
    assert plan.projected_balance == after.balance == before.balance - real.total_cost
    assert plan.projected_held_balance == after.held_balance
    assert plan.limits == after.limits
    assert plan.limits["daily"].used == before.limits["daily"].used + Decimal("5")
    over = await c.dry_run_pay(payer_id, Decimal("79"), merchant_id=merchant_id)
    assert (over.decision, over.projected_balance, over.limits) == (
        "deny",
        after.balance,
        after.limits,
    )
    with pytest.raises(PurserError) as refused_for_real:
        await c.pay(payer_id, Decimal("79"), merchant_id=merchant_id)
    assert [reason.code for reason in over.reasons] == [refused_for_real.value.code]
    assert over.status_code == refused_for_real.value.status
    hold_plan = await c.dry_run_create_hold(payer_id, merchant_id, Decimal("2"))
    assert (hold_plan.decision, hold_plan.status_code) == ("allow", 201)
    assert [h.hold_id async for h in c.list_holds(payer_id)] == [
        pending.hold_id,
        released.hold_id,
        hold.hold_id,
    ]
    placed = await c.create_hold(payer_id, merchant_id, Decimal("2"))
    wallet = await c.get_wallet(payer_id)
    assert hold_plan.fee == placed.fee
    assert (hold_plan.projected_balance, hold_plan.projected_held_balance) == (
        wallet.balance,
        wallet.held_balance,
    )
    capture_plan = await c.dry_run_capture_hold(placed.hold_id, Decimal("1"))
    assert capture_plan.decision == "allow"
    assert (await c.get_hold(placed.hold_id)).status == "pending"
    await c.capture_hold(placed.hold_id, Decimal("1"))
    wallet = await c.get_wallet(payer_id)
    assert (capture_plan.projected_balance, capture_plan.projected_held_balance) == (
        wallet.balance,
        wallet.held_balance,
    )
    bill = await c.create_payment_request(payee_id, payer_id, Decimal("1"))
    bill_plan = await c.dry_run_pay_payment_request(bill.request_id)
    assert bill_plan.decision == "allow"
    assert (await c.get_payment_request(bill.request_id)).status == "pending"
    bill_paid = (await c.pay_payment_request(bill.request_id)).transaction
    assert bill_paid is not None
    assert bill_plan.fee == bill_paid.fee
    assert bill_plan.projected_balance == (await c.get_wallet(payer_id)).balance
    refund_plan = await c.dry_run_refund(real.tx_id, Decimal("1"), reason="dry")
    assert (refund_plan.decision, refund_plan.status_code, refund_plan.risk) == ("allow", 201, None)
    assert await c.list_refunds(real.tx_id) == []
    await c.refund(real.tx_id, Decimal("1"), reason="dry")
    assert refund_plan.projected_balance == (await c.get_wallet(payer_id)).balance

    # -- webhooks, delivered for real to a loopback receiver
    # Events of the payments above are fanned out now, before the subscription exists.
    await deliver_webhooks()
    types = {t.type for t in await c.list_event_types()}
    assert {"payment.completed", "wallet.funded"} <= types
    hook = await c.create_webhook(f"{receiver.url}/hook", ["payment.completed"])
    assert hook.secret.startswith("whsec_")
    assert (await c.get_webhook(hook.subscription_id)).events == ["payment.completed"]
    updated_hook = await c.update_webhook(
        hook.subscription_id, description="coverage", events=["payment.completed", "risk.alert"]
    )
    assert (updated_hook.description, sorted(updated_hook.events)) == (
        "coverage",
        ["payment.completed", "risk.alert"],
    )
    assert hook.subscription_id in [w.subscription_id for w in await c.list_webhooks()]
    test_event = await c.test_webhook(hook.subscription_id)
    assert await deliver_webhooks() >= 1
    attempts = await c.list_webhook_deliveries(hook.subscription_id)
    assert [(a.event_id, a.event_type, a.status_code) for a in attempts] == [
        (test_event.event_id, "webhook.test", 200)
    ]
    first = webhooks.verify(receiver.requests[-1].body, receiver.requests[-1].headers, hook.secret)
    assert (first["id"], first["type"]) == (test_event.event_id, "webhook.test")
    replayed = await c.replay_webhook_delivery(hook.subscription_id, test_event.event_id)
    assert replayed.event_id == test_event.event_id
    rotated = await c.rotate_webhook_secret(hook.subscription_id)
    assert rotated.secret.startswith("whsec_")
    assert rotated.secret != hook.secret
    assert await deliver_webhooks() >= 1
    again = receiver.requests[-1]
    assert webhooks.verify(again.body, again.headers, rotated.secret)["id"] == test_event.event_id
    assert webhooks.verify(again.body, again.headers, hook.secret)["id"] == test_event.event_id
    await c.delete_webhook(hook.subscription_id)
    assert hook.subscription_id not in [w.subscription_id for w in await c.list_webhooks()]

    # -- the Sequence gateway (the sandbox Sequence of the session's app)
    connection = await c.get_sequence_connection()
    assert connection.source == "sandbox"
    own_key = f"sk_sandbox_coverage-{uuid.uuid4().hex[:12]}"
    mine = await c.set_sequence_connection(own_key, base_url=sequence_sandbox_url)
    assert (mine.source, mine.key_hint) == ("owner", "…" + own_key[-4:])
    assert (await c.delete_sequence_connection()).source == "sandbox"
    pods = {pod.name: pod for pod in await c.list_pods()}
    assert {"Emergency Fund", "Groceries", "Vacation", "Agent Budget"} <= set(pods)
    total = await c.get_total_balance()
    assert total.pod_count == len(pods)
    assert total.total_balance_cents == sum(p.balance_cents or 0 for p in pods.values())
    emergency = pods["Emergency Fund"]
    assert (await c.get_pod_balance("emergency")).id == emergency.id
    detail = await c.get_pod(emergency.id)
    assert (detail.id, detail.balance_cents) == (emergency.id, emergency.balance_cents)
    assert (await c.get_pod(emergency.id, org_id="org-uuid")).id == emergency.id
    accounts = await c.get_sequence_accounts()
    assert {a.id for a in accounts.pods} == {p.id for p in pods.values()}
    assert "Purser Settlement" in [a.name for a in accounts.accounts]
    summary = await c.get_activity_summary()
    assert summary.rule_executions <= summary.transfer_count
    assert summary.total_incoming == f"${Decimal(summary.total_incoming_cents) / 100:,.2f}"
    history = [t.id for t in await collect(c.list_activity(page_size=2))]
    assert len(history) > 2  # more than one page, followed by end_cursor
    assert len(history) == len(set(history))
    limits = await c.set_sequence_limits(max_transfer_cents=500_000)
    assert limits.max_transfer_cents == 500_000
    with pytest.raises(BadRequestError) as instant:
        await c.create_transfer(pods["Vacation"].id, pods["Groceries"].id, 1200, instant=True)
    assert instant.value.param == "instant"
    # A dry run: the limits' reservation, rolled back; Sequence is not called.
    vacation = (await c.get_pod(pods["Vacation"].id)).balance_cents
    transfer_plan = await c.dry_run_create_transfer(
        pods["Vacation"].id, pods["Groceries"].id, 1200, description="coverage", kyc_id="ignored"
    )
    assert (transfer_plan.decision, transfer_plan.status_code, transfer_plan.reasons) == (
        "allow",
        202,
        [],
    )
    assert (transfer_plan.amount, transfer_plan.currency, transfer_plan.risk) == (
        Decimal("12"),
        "USD",
        None,
    )
    assert await c.get_sequence_limits() == limits  # used_today_cents still 0
    assert (await c.get_pod(pods["Vacation"].id)).balance_cents == vacation
    moved = await c.create_transfer(
        pods["Vacation"].id, pods["Groceries"].id, 1200, description="coverage", kyc_id="ignored"
    )
    assert (moved.status, moved.amount_cents) == ("completed", 1200)
    assert moved.transfer_id is not None
    assert (await c.get_transfer(moved.id)).amount_cents == 1200
    assert (await c.get_transfer(moved.transfer_id, org_id="org-uuid")).id == moved.transfer_id
    used = await c.get_sequence_limits()
    assert (used.max_transfer_cents, used.used_today_cents) == (500_000, 1200)
    # The dry run's limits (dollars) are the real transfer's, as they stand after it.
    assert set(transfer_plan.limits) == {"sequence_per_transfer", "sequence_daily"}
    assert (
        transfer_plan.limits["sequence_per_transfer"].limit
        == Decimal(used.max_transfer_cents) / 100
    )
    daily_plan = transfer_plan.limits["sequence_daily"]
    assert (daily_plan.limit, daily_plan.used, daily_plan.remaining) == (
        Decimal(used.max_daily_transfer_cents) / 100,
        Decimal(used.used_today_cents) / 100,
        Decimal(used.remaining_today_cents) / 100,
    )
    too_big = await c.dry_run_create_transfer(pods["Vacation"].id, pods["Groceries"].id, 500_100)
    assert too_big.decision == "deny"
    assert too_big.limits["sequence_daily"].used == Decimal("12")  # its reservation undone
    with pytest.raises(BadRequestError) as over_the_limit:
        await c.create_transfer(pods["Vacation"].id, pods["Groceries"].id, 500_100)
    assert [reason.code for reason in too_big.reasons] == [over_the_limit.value.code]
    assert too_big.status_code == over_the_limit.value.status
    assert await c.get_sequence_limits() == used
    unfunded_wallet = await c.get_wallet(payer_id)
    unfunded = unfunded_wallet.balance
    funding_plan = await c.dry_run_fund_wallet(payer_id, pods["Agent Budget"].id, Decimal("25.00"))
    assert (funding_plan.decision, funding_plan.status_code, funding_plan.wallet_id) == (
        "allow",
        202,
        unfunded_wallet.wallet_id,
    )
    assert funding_plan.risk is not None
    assert (await c.get_wallet(payer_id)).balance == unfunded
    assert await c.get_sequence_limits() == used
    funding = await c.fund_wallet(payer_id, pods["Agent Budget"].id, Decimal("25.00"))
    assert (funding.status, funding.amount) == ("completed", Decimal("25"))
    assert (await c.get_funding(funding.funding_id)).transfer_id == funding.transfer_id
    assert (await c.get_wallet(payer_id)).balance == unfunded + Decimal("25")
    assert (funding_plan.amount, funding_plan.currency) == (funding.amount, funding.currency)
    assert funding_plan.projected_balance == unfunded + Decimal("25")
    funded_limits = await c.get_sequence_limits()
    assert funded_limits.used_today_cents == 1200 + 2500
    assert (
        funding_plan.limits["sequence_daily"].used == Decimal(funded_limits.used_today_cents) / 100
    )

    # -- the journal: postings with running balances, newest first
    wallet = await c.get_wallet(payer_id)
    entries = await collect(c.list_wallet_entries(payer_id, page_size=3))
    assert len(entries) > 3  # more than one page, followed by starting_after
    assert len({e.entry_id for e in entries}) == len(entries)
    assert entries[0].balance_after == wallet.balance
    assert sum(e.amount for e in entries) == wallet.balance
    for newer, older in pairwise(entries):
        assert newer.balance_after == older.balance_after + newer.amount
    newest = entries[0]
    assert newest.reference is not None
    assert (newest.kind, newest.amount, newest.reference.type, newest.reference.id) == (
        "funding",
        Decimal("25"),
        "funding",
        funding.funding_id,
    )
    assert newest.reference.transfer_id == funding.transfer_id
    later = [
        e.entry_id
        for e in await collect(c.list_wallet_entries(payer_id, starting_after=entries[1].entry_id))
    ]
    assert later == [e.entry_id for e in entries[2:]]
    (listed_payment,) = [
        e for e in entries if e.reference is not None and e.reference.id == tx.tx_id
    ]
    entry = await c.get_journal_entry(listed_payment.entry_id)
    assert sum(p.amount for p in entry.postings) == 0
    assert {(p.account, p.owner.id, p.amount) for p in entry.postings} == {
        ("wallet_available", payer_id, -tx.total_cost),
        ("merchant", merchant_id, tx.amount),
        ("fee_revenue", None, tx.fee),
    }
    assert listed_payment.counterparties == [
        p for p in entry.postings if p.account != "wallet_available"
    ]
    held = await collect(c.list_wallet_entries(payer_id, account="held"))
    assert held[0].balance_after == wallet.held_balance
    assert {"hold", "capture", "void"} <= {e.kind for e in held}

    # -- audit (sealing, a periodic job off in tests, numbers the records)
    await run_in_transaction(sessionmaker, audit_service.seal)
    events = {record.event for record in await collect(c.list_audit(page_size=5))}
    assert {"api_key_created", "payment_completed", "transfer_completed"} <= events

    # -- the sandbox test clock: a day later, the daily limit's window starts again
    clock = await c.get_test_clock()
    assert clock.offset_seconds == 0
    assert (await c.get_wallet(payer_id)).limits["daily"].used > 0
    moved_on = await c.advance_test_clock(86_400)
    assert moved_on.offset_seconds == 86_400
    assert moved_on.now - clock.now >= timedelta(days=1)
    daily = (await c.get_wallet(payer_id)).limits["daily"]
    assert (daily.used, daily.remaining) == (Decimal(0), Decimal("80"))
    assert (await c.get_test_clock()).offset_seconds == 86_400

    # -- every method was called, and every request went to an operation it declared
    table = route_table(AsyncPurserClient)
    assert set(table) - c.called == set(), "public methods this test did not call"
    answered: set[Route] = set()
    for sent in recorder.sent:
        assert sent.caller is not None, sent
        matched = operation_of(sent.method, sent.path, table[sent.caller])
        assert matched is not None, f"{sent.caller} sent {sent.method} {sent.path}"
        if 200 <= sent.status < 300:
            answered.add(matched)
        # A dry run says so and carries no idempotency key; every other change has one.
        dry_run = sent.caller.startswith("dry_run_")
        assert (sent.headers.get("Dry-Run") == "true") == dry_run, sent
        assert ("Idempotency-Key" in sent.headers) == (sent.method != "GET" and not dry_run)
    assert api_operations(app) - answered == set(), "operations no call was answered 2xx by"


def test_an_undeclared_request_is_caught() -> None:
    declared = route_table(AsyncPurserClient)["get_pod"]
    assert operation_of("GET", "/api/v1/sequence/pods/detail/p1", declared) == (
        "GET",
        "/sequence/pods/detail/{pod_id}",
    )
    assert operation_of("GET", "/api/v1/sequence/pods/org/p1", declared) == (
        "GET",
        "/sequence/pods/{org_id}/{pod_id}",
    )
    assert operation_of("GET", "/api/v1/sequence/pods/p1/balance/x", declared) is None
    assert operation_of("DELETE", "/api/v1/sequence/pods/detail/p1", declared) is None


async def test_the_sync_client_over_real_http(base_url: str, make_key: MakeKey) -> None:
    """A smoke test of the generated client: a payment, pages, the gateway and funding."""
    key = await make_key(scopes=list(Scope))

    def flow() -> None:
        with PurserClient(api_key=key.secret, base_url=base_url) as client:
            assert client.health().status == "ok"
            merchant = client.create_merchant("Sync Coverage")
            agent = client.register_agent("sync coverage", initial_balance=Decimal("30"))
            agent_id = agent.agent.agent_id
            for _ in range(3):
                client.pay(agent_id, Decimal("1"), merchant_id=merchant.merchant_id)
            assert len(list(client.list_transactions(agent_id, page_size=2))) == 3
            pods = {pod.name: pod.id for pod in client.list_pods()}
            assert len(list(client.list_activity(page_size=2))) > 2
            funding_plan = client.dry_run_fund_wallet(agent_id, pods["Agent Budget"], "5.00")
            funded = client.fund_wallet(agent_id, pods["Agent Budget"], "5.00")
            assert funded.status == "completed"
            assert funding_plan.projected_balance == client.get_wallet(agent_id).balance
            assert client.get_wallet(agent_id).balance == Decimal("35") - 3 * (
                client.estimate(Decimal("1")).total
            )
            hold = client.create_hold(agent_id, merchant.merchant_id, Decimal("2"))
            assert [h.hold_id for h in client.list_holds(agent_id)] == [hold.hold_id]
            assert client.get_merchant_wallet(merchant.merchant_id).balance == Decimal("3")
            wallet = client.get_wallet(agent_id)
            plan = client.dry_run_pay(agent_id, Decimal("1"), merchant_id=merchant.merchant_id)
            assert plan.projected_balance == wallet.balance - client.estimate(Decimal("1")).total
            entries = list(client.list_wallet_entries(agent_id, page_size=2))
            assert [e.kind for e in entries] == ["hold", "funding"] + 3 * ["payment"] + ["funding"]
            assert entries[0].balance_after == sum(e.amount for e in entries) == wallet.balance

    await asyncio.to_thread(flow)
