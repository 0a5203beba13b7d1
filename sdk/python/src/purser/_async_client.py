"""The asynchronous client. ``_sync_client.py`` is generated from this file by
``sdk/python/scripts/unasync.py``: edit here, then run the script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from purser import models as m
from purser._core import (
    API_PREFIX,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    UNSET,
    Call,
    Money,
    Pager,
    Unset,
    call,
    connection_error,
    headers_for,
    is_retryable,
    money,
    money_or_none,
    resolve_settings,
    wait_for,
)
from purser.errors import error_from_response

T = TypeVar("T")


def _p(segment: str) -> str:
    return quote(segment, safe="")


class AsyncPurserClient:
    """Purser's API over httpx (async). Every mutating call carries an ``Idempotency-Key``
    made once per call (or yours) and reused on every retry, so a retry never pays twice.

    ``api_key`` defaults to ``PURSER_API_KEY``, ``base_url`` to ``PURSER_BASE_URL`` or
    ``http://127.0.0.1:8000``. ``max_retries`` bounds the retries of network errors,
    429 (after ``Retry-After``), 5xx and ``idempotency_key_in_use``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key, self.base_url = resolve_settings(api_key, base_url)
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(
            base_url=self.base_url + API_PREFIX, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- transport ---------------------------------------------------------------------

    async def _send_once(self, c: Call[Any], headers: dict[str, str]) -> httpx.Response:
        try:
            response = await self._http.request(
                c.method, c.path, params=c.params or None, json=c.json, headers=headers
            )
        except httpx.TransportError as error:
            raise connection_error(error) from error
        if response.is_error:
            raise error_from_response(response)
        return response

    async def _request(self, c: Call[T]) -> T:
        headers = headers_for(c, self._api_key)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_for,
            retry=retry_if_exception(is_retryable),
            reraise=True,
        )
        response: httpx.Response | None = None
        async for attempt in retrying:
            with attempt:
                response = await self._send_once(c, headers)
        assert response is not None
        return c.parse(response)

    async def _paginate(self, pager: Pager[T]) -> AsyncIterator[T]:
        current: Call[Any] | None = pager.first()
        while current is not None:
            page = await self._request(current)
            for item in pager.items(page):
                yield item
            current = pager.next(current, page)

    # -- agents and wallets ------------------------------------------------------------

    async def register_agent(
        self,
        name: str,
        initial_balance: Money | None = None,
        currency: str = "USDC",
        *,
        owner_id: str | None = None,
        description: str | None = None,
        limit_per_tx: Money | None = None,
        limit_total: Money | None = None,
        limit_daily: Money | None = None,
        limit_weekly: Money | None = None,
        limit_monthly: Money | None = None,
        idempotency_key: str | None = None,
    ) -> m.AgentCreated:
        """Create an agent and its wallet (funded with ``initial_balance`` in the sandbox)."""
        body = {
            "name": name,
            "currency": currency,
            "owner_id": owner_id,
            "description": description,
            "initial_balance": money_or_none(initial_balance),
            "limit_per_tx": money_or_none(limit_per_tx),
            "limit_total": money_or_none(limit_total),
            "limit_daily": money_or_none(limit_daily),
            "limit_weekly": money_or_none(limit_weekly),
            "limit_monthly": money_or_none(limit_monthly),
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call("POST", "/agents", m.AgentCreated, json=body, idempotency_key=idempotency_key)
        )

    async def get_agent(self, agent_id: str) -> m.Agent:
        return await self._request(call("GET", f"/agents/{_p(agent_id)}", m.Agent))

    def list_agents(self, *, page_size: int = 50) -> AsyncIterator[m.Agent]:
        """Every agent of the key's owner, fetched page by page."""
        return self._paginate(Pager(call("GET", "/agents", list[m.Agent]), "offset", page_size))

    async def get_wallet(self, agent_id: str) -> m.Wallet:
        return await self._request(call("GET", f"/agents/{_p(agent_id)}/wallet", m.Wallet))

    async def update_limits(
        self,
        agent_id: str,
        *,
        limit_per_tx: Money | Unset | None = UNSET,
        limit_total: Money | Unset | None = UNSET,
        limit_daily: Money | Unset | None = UNSET,
        limit_weekly: Money | Unset | None = UNSET,
        limit_monthly: Money | Unset | None = UNSET,
        idempotency_key: str | None = None,
    ) -> m.Wallet:
        """Change the limits named; ``None`` clears one, omitted ones stay."""
        given = {
            "limit_per_tx": limit_per_tx,
            "limit_total": limit_total,
            "limit_daily": limit_daily,
            "limit_weekly": limit_weekly,
            "limit_monthly": limit_monthly,
        }
        body = {k: money_or_none(v) for k, v in given.items() if not isinstance(v, Unset)}
        return await self._request(
            call(
                "PATCH",
                f"/agents/{_p(agent_id)}/wallet/limits",
                m.Wallet,
                json=body,
                idempotency_key=idempotency_key,
            )
        )

    # -- payments ----------------------------------------------------------------------

    async def pay(
        self,
        agent_id: str,
        amount: Money | None = None,
        merchant_id: str | None = None,
        recipient_wallet_id: str | None = None,
        product_id: str | None = None,
        purpose: str | None = None,
        idempotency_key: str | None = None,
        *,
        currency: str | None = None,
    ) -> m.PaymentResult:
        """Pay a merchant, a wallet or a catalog product. A refusal raises (e.g.
        ``InsufficientFundsError``, ``LimitExceededError``) with the failed ``tx_id``."""
        body = {
            "agent_id": agent_id,
            "amount": money_or_none(amount),
            "currency": currency,
            "merchant_id": merchant_id,
            "recipient_wallet_id": recipient_wallet_id,
            "product_id": product_id,
            "purpose": purpose,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call("POST", "/payments", m.PaymentResult, json=body, idempotency_key=idempotency_key)
        )

    async def estimate(self, amount: Money, currency: str = "USDC") -> m.PaymentEstimate:
        """The server's fee and total for paying ``amount``."""
        return await self._request(
            call(
                "GET",
                "/payments/estimate",
                m.PaymentEstimate,
                params={"amount": money(amount), "currency": currency},
            )
        )

    async def can_afford(self, agent_id: str, amount: Money, currency: str | None = None) -> bool:
        """Whether the wallet's available balance covers ``amount`` plus the server's fee
        (``currency`` defaults to the wallet's). Limits are checked at payment time."""
        wallet = await self.get_wallet(agent_id)
        estimate = await self.estimate(amount, currency or wallet.currency)
        if estimate.currency != wallet.currency:
            return False
        return wallet.balance >= estimate.total

    async def get_transaction(self, tx_id: str) -> m.Transaction:
        return await self._request(call("GET", f"/payments/{_p(tx_id)}", m.Transaction))

    def list_transactions(
        self, agent_id: str, *, page_size: int = 50
    ) -> AsyncIterator[m.Transaction]:
        """Every transaction of the agent, newest first, fetched page by page."""
        first = call("GET", f"/agents/{_p(agent_id)}/transactions", list[m.Transaction])
        return self._paginate(Pager(first, "after", page_size, "starting_after", "tx_id"))

    # -- holds -------------------------------------------------------------------------

    async def create_hold(
        self,
        agent_id: str,
        merchant_id: str,
        amount: Money,
        currency: str = "USDC",
        *,
        expires_in_minutes: int | None = None,
        purpose: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.Hold:
        body = {
            "agent_id": agent_id,
            "merchant_id": merchant_id,
            "amount": money(amount),
            "currency": currency,
            "expires_in_minutes": expires_in_minutes,
            "purpose": purpose,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call("POST", "/payments/holds", m.Hold, json=body, idempotency_key=idempotency_key)
        )

    async def capture_hold(
        self, hold_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> m.Hold:
        """Capture up to the held amount (all by default); the rest is released."""
        body = {} if amount is None else {"amount": money(amount)}
        return await self._request(
            call(
                "POST",
                f"/payments/holds/{_p(hold_id)}/capture",
                m.Hold,
                json=body,
                idempotency_key=idempotency_key,
            )
        )

    async def void_hold(self, hold_id: str, *, idempotency_key: str | None = None) -> m.Hold:
        return await self._request(
            call(
                "POST",
                f"/payments/holds/{_p(hold_id)}/void",
                m.Hold,
                idempotency_key=idempotency_key,
            )
        )

    async def get_hold(self, hold_id: str) -> m.Hold:
        return await self._request(call("GET", f"/payments/holds/{_p(hold_id)}", m.Hold))

    # -- refunds -----------------------------------------------------------------------

    async def refund(
        self,
        tx_id: str,
        amount: Money | None = None,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> m.Refund:
        """Refund a payment, all of what remains by default."""
        body = {"amount": money_or_none(amount), "reason": reason}
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call(
                "POST",
                f"/payments/{_p(tx_id)}/refund",
                m.Refund,
                json=body,
                idempotency_key=idempotency_key,
            )
        )

    async def list_refunds(self, tx_id: str) -> list[m.Refund]:
        return await self._request(call("GET", f"/payments/{_p(tx_id)}/refunds", list[m.Refund]))

    # -- payment requests --------------------------------------------------------------

    async def create_payment_request(
        self,
        requester_agent_id: str,
        payer_agent_id: str,
        amount: Money,
        currency: str = "USDC",
        *,
        description: str | None = None,
        expires_in_hours: int | None = None,
        idempotency_key: str | None = None,
    ) -> m.PaymentRequest:
        body = {
            "requester_agent_id": requester_agent_id,
            "payer_agent_id": payer_agent_id,
            "amount": money(amount),
            "currency": currency,
            "description": description,
            "expires_in_hours": expires_in_hours,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call(
                "POST",
                "/payments/request",
                m.PaymentRequest,
                json=body,
                idempotency_key=idempotency_key,
            )
        )

    async def pay_payment_request(
        self, request_id: str, *, idempotency_key: str | None = None
    ) -> m.PaymentResult:
        return await self._request(
            call(
                "POST",
                f"/payments/request/{_p(request_id)}/pay",
                m.PaymentResult,
                idempotency_key=idempotency_key,
            )
        )

    async def cancel_payment_request(
        self, request_id: str, *, idempotency_key: str | None = None
    ) -> m.PaymentRequest:
        return await self._request(
            call(
                "DELETE",
                f"/payments/request/{_p(request_id)}",
                m.PaymentRequest,
                idempotency_key=idempotency_key,
            )
        )

    async def get_payment_request(self, request_id: str) -> m.PaymentRequest:
        return await self._request(
            call("GET", f"/payments/request/{_p(request_id)}", m.PaymentRequest)
        )

    def list_payment_requests(
        self, *, status: str | None = None, role: str | None = None, page_size: int = 50
    ) -> AsyncIterator[m.PaymentRequest]:
        first = call(
            "GET",
            "/payments/request",
            list[m.PaymentRequest],
            params={"status": status, "role": role},
        )
        return self._paginate(Pager(first, "after", page_size, "cursor", "request_id"))

    # -- merchants and catalog ---------------------------------------------------------

    async def create_merchant(
        self,
        name: str,
        *,
        description: str | None = None,
        category: str | None = None,
        currency: str = "USDC",
        idempotency_key: str | None = None,
    ) -> m.Merchant:
        body = {
            "name": name,
            "description": description,
            "category": category,
            "currency": currency,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call("POST", "/merchants", m.Merchant, json=body, idempotency_key=idempotency_key)
        )

    async def get_merchant(self, merchant_id: str) -> m.Merchant:
        return await self._request(call("GET", f"/merchants/{_p(merchant_id)}", m.Merchant))

    def list_merchants(self, *, page_size: int = 50) -> AsyncIterator[m.Merchant]:
        return self._paginate(
            Pager(call("GET", "/merchants", list[m.Merchant]), "offset", page_size)
        )

    async def create_product(
        self,
        merchant_id: str,
        name: str,
        price: Money,
        currency: str = "USDC",
        *,
        description: str | None = None,
        category: str | None = None,
        in_stock: bool | None = None,
        idempotency_key: str | None = None,
    ) -> m.Product:
        body = {
            "merchant_id": merchant_id,
            "name": name,
            "price": money(price),
            "currency": currency,
            "description": description,
            "category": category,
            "in_stock": in_stock,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call("POST", "/catalog/products", m.Product, json=body, idempotency_key=idempotency_key)
        )

    async def get_product(self, product_id: str) -> m.Product:
        return await self._request(call("GET", f"/catalog/products/{_p(product_id)}", m.Product))

    def list_products(
        self,
        *,
        category: str | None = None,
        max_price: Money | None = None,
        in_stock_only: bool | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[m.Product]:
        first = call(
            "GET",
            "/catalog/products",
            list[m.Product],
            params={
                "category": category,
                "max_price": money_or_none(max_price),
                "in_stock_only": in_stock_only,
            },
        )
        return self._paginate(Pager(first, "offset", page_size))

    # -- webhooks ----------------------------------------------------------------------

    async def create_webhook(
        self,
        url: str,
        events: list[str],
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.WebhookCreated:
        """Subscribe ``url``; the answer's ``secret`` (``whsec_…``) is shown only now."""
        body: dict[str, Any] = {"url": url, "events": events}
        if description is not None:
            body["description"] = description
        return await self._request(
            call("POST", "/webhooks", m.WebhookCreated, json=body, idempotency_key=idempotency_key)
        )

    async def list_webhooks(self) -> list[m.Webhook]:
        return await self._request(call("GET", "/webhooks", list[m.Webhook]))

    async def delete_webhook(
        self, subscription_id: str, *, idempotency_key: str | None = None
    ) -> None:
        await self._request(
            call(
                "DELETE",
                f"/webhooks/{_p(subscription_id)}",
                type(None),
                idempotency_key=idempotency_key,
            )
        )

    # -- risk --------------------------------------------------------------------------

    async def get_risk_score(self, agent_id: str) -> m.RiskScore:
        return await self._request(call("GET", f"/risk/agents/{_p(agent_id)}/score", m.RiskScore))

    async def get_risk_profile(self, agent_id: str) -> m.RiskProfile:
        return await self._request(
            call("GET", f"/risk/agents/{_p(agent_id)}/profile", m.RiskProfile)
        )

    async def flag_agent(
        self, agent_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> m.FlagState:
        return await self._request(
            call(
                "POST",
                f"/risk/agents/{_p(agent_id)}/flag",
                m.FlagState,
                json={"reason": reason},
                idempotency_key=idempotency_key,
            )
        )

    async def unflag_agent(
        self, agent_id: str, *, idempotency_key: str | None = None
    ) -> m.FlagState:
        return await self._request(
            call(
                "DELETE",
                f"/risk/agents/{_p(agent_id)}/flag",
                m.FlagState,
                idempotency_key=idempotency_key,
            )
        )

    async def authorize_service(
        self, agent_id: str, service_id: str, *, idempotency_key: str | None = None
    ) -> m.AuthorizedServices:
        return await self._request(
            call(
                "POST",
                f"/risk/agents/{_p(agent_id)}/authorize",
                m.AuthorizedServices,
                json={"service_id": service_id},
                idempotency_key=idempotency_key,
            )
        )

    async def revoke_service(
        self, agent_id: str, service_id: str, *, idempotency_key: str | None = None
    ) -> m.AuthorizedServices:
        return await self._request(
            call(
                "DELETE",
                f"/risk/agents/{_p(agent_id)}/authorize/{_p(service_id)}",
                m.AuthorizedServices,
                idempotency_key=idempotency_key,
            )
        )

    # -- audit -------------------------------------------------------------------------

    def list_audit(self, *, page_size: int = 50) -> AsyncIterator[m.AuditRecord]:
        """Every audit record of the key's owner and mode, by cursor."""
        return self._paginate(Pager(call("GET", "/audit", m.AuditPage), "envelope", page_size))
