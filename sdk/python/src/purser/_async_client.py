"""The asynchronous client. ``_sync_client.py`` is generated from this file by
``sdk/python/scripts/unasync.py``: edit here, then run the script."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from purser import _calls
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
    as_dry_run,
    call,
    connection_error,
    headers_for,
    is_retryable,
    money,
    money_or_none,
    operation,
    resolve_settings,
    wait_for,
)
from purser._core import segment as _p
from purser.errors import error_from_response

T = TypeVar("T")


def _joined(values: Iterable[str] | None) -> str | None:
    """A filter as the gateway takes it: comma-separated (a str is sent as given)."""
    if values is None or isinstance(values, str):
        return values
    return ",".join(values)


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
            retry=retry_if_exception(lambda error: is_retryable(error, c)),
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

    # -- health ------------------------------------------------------------------------

    @operation("GET /health")
    async def health(self) -> m.Health:
        """Liveness: ``status == "ok"`` while the process is up (needs no key)."""
        return await self._request(call("GET", "/health", m.Health))

    @operation("GET /health/ready")
    async def readiness(self) -> m.Readiness:
        """Readiness: the database answers (else 503, an ``InternalServerError``)."""
        return await self._request(call("GET", "/health/ready", m.Readiness))

    # -- API keys ----------------------------------------------------------------------

    @operation("POST /keys")
    async def create_key(
        self,
        name: str | None = None,
        *,
        agent_id: str | None = None,
        scopes: Iterable[str] | None = None,
        tier: str | None = None,
        expires_at: datetime | None = None,
    ) -> m.ApiKeyCreated:
        """Issue a key for the caller's owner, within the calling key's powers (its scopes,
        its agent if it is restricted to one, a tier no higher — ``free`` < ``standard`` <
        ``enterprise`` — and an expiry no later); omitted fields stay within them. The
        answer's ``secret`` is the whole key, shown only now. Past the ceiling:
        ``PermissionDeniedError`` with code ``key_ceiling_exceeded``. The server keeps no
        copy of the answer to replay, so a request whose answer was lost is not resent."""
        body: dict[str, Any] = {
            "name": name,
            "agent_id": agent_id,
            "scopes": None if scopes is None else list(scopes),
            "tier": tier,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call("POST", "/keys", m.ApiKeyCreated, json=body, resendable=False)
        )

    @operation("GET /keys")
    async def list_keys(self) -> list[m.ApiKey]:
        """The owner's keys of the calling key's mode, without their secrets."""
        return await self._request(call("GET", "/keys", list[m.ApiKey]))

    @operation("DELETE /keys/{key_id}")
    async def revoke_key(self, key_id: str) -> m.ApiKey:
        """Revoke a key (at once; revoking twice is harmless)."""
        return await self._request(call("DELETE", f"/keys/{_p(key_id)}", m.ApiKey))

    # -- agents and wallets ------------------------------------------------------------

    @operation("POST /agents")
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

    @operation("GET /agents/{agent_id}")
    async def get_agent(self, agent_id: str) -> m.Agent:
        return await self._request(call("GET", f"/agents/{_p(agent_id)}", m.Agent))

    @operation("PATCH /agents/{agent_id}")
    async def update_agent(
        self,
        agent_id: str,
        *,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        is_active: bool | Unset = UNSET,
        enforce_authorized_services: bool | Unset = UNSET,
    ) -> m.Agent:
        """Change the fields given; omitted ones stay. ``is_active=False`` stops the agent
        paying; ``enforce_authorized_services=True`` lets it pay only its authorized
        services (``authorize_service``)."""
        given = {
            "name": name,
            "description": description,
            "is_active": is_active,
            "enforce_authorized_services": enforce_authorized_services,
        }
        body = {k: v for k, v in given.items() if not isinstance(v, Unset)}
        return await self._request(call("PATCH", f"/agents/{_p(agent_id)}", m.Agent, json=body))

    @operation("GET /agents")
    def list_agents(self, *, page_size: int = 50) -> AsyncIterator[m.Agent]:
        """Every agent of the key's owner, fetched page by page."""
        return self._paginate(Pager(call("GET", "/agents", list[m.Agent]), "offset", page_size))

    @operation("GET /agents/{agent_id}/wallet")
    async def get_wallet(self, agent_id: str) -> m.Wallet:
        return await self._request(call("GET", f"/agents/{_p(agent_id)}/wallet", m.Wallet))

    @operation("PATCH /agents/{agent_id}/wallet/limits")
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

    # -- the wallet's journal ----------------------------------------------------------

    @operation("GET /agents/{agent_id}/wallet/entries")
    def list_wallet_entries(
        self,
        agent_id: str,
        *,
        account: str | None = None,
        starting_after: str | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[m.WalletEntry]:
        """The postings of the wallet, newest first, every page (by ``starting_after``:
        the last ``entry_id``; ``page_size`` at most 200). Each has its signed ``amount``
        and the account's ``balance_after`` it: the newest one's is the wallet's
        ``balance``. ``account="held"`` lists the account pending holds reserve instead
        (its newest ``balance_after`` is the ``held_balance``; default ``available``).
        ``starting_after`` (an ``entry_id`` of this listing) starts after that posting."""
        first = call(
            "GET",
            f"/agents/{_p(agent_id)}/wallet/entries",
            list[m.WalletEntry],
            params={"account": account, "starting_after": starting_after},
        )
        return self._paginate(Pager(first, "after", page_size, "starting_after", "entry_id"))

    @operation("GET /journal/entries/{entry_id}")
    async def get_journal_entry(self, entry_id: str) -> m.JournalEntry:
        """A journal entry with all its postings (they sum to zero), each naming its
        account's owner. Found only if it posts to one of the key's accounts."""
        return await self._request(call("GET", f"/journal/entries/{_p(entry_id)}", m.JournalEntry))

    # -- freezing ----------------------------------------------------------------------

    @operation("POST /agents/{agent_id}/freeze")
    async def freeze_agent(
        self, agent_id: str, *, release_holds: bool = False, idempotency_key: str | None = None
    ) -> m.FreezeResult:
        """Freeze an agent: from the next request on, its payments, holds, captures,
        request pays and fundings raise ``WalletFrozenError`` (recorded as failed
        attempts) until ``unfreeze_agent``. ``release_holds=True`` also voids its pending
        holds (``holds_released``). A key with ``agents:write`` or ``payments:write`` may
        pull this brake, one restricted to the agent included; freezing a frozen agent
        changes nothing (``changed`` is ``False``)."""
        return await self._request(
            call(
                "POST",
                f"/agents/{_p(agent_id)}/freeze",
                m.FreezeResult,
                json={"release_holds": release_holds},
                idempotency_key=idempotency_key,
            )
        )

    @operation("POST /agents/{agent_id}/unfreeze")
    async def unfreeze_agent(
        self, agent_id: str, *, idempotency_key: str | None = None
    ) -> m.FreezeResult:
        """Unfreeze an agent frozen on its own (an owner key only: an agent's key may
        freeze it, never unfreeze it). While ``freeze_all`` holds, it stays frozen."""
        return await self._request(
            call(
                "POST",
                f"/agents/{_p(agent_id)}/unfreeze",
                m.FreezeResult,
                idempotency_key=idempotency_key,
            )
        )

    @operation("POST /freeze")
    async def freeze_all(
        self, *, release_holds: bool = False, idempotency_key: str | None = None
    ) -> m.FreezeResult:
        """Freeze every agent of the key's owner, and every agent created until
        ``unfreeze_all`` (an owner key only). ``release_holds=True`` voids every pending
        hold of the owner's agents."""
        return await self._request(
            call(
                "POST",
                "/freeze",
                m.FreezeResult,
                json={"release_holds": release_holds},
                idempotency_key=idempotency_key,
            )
        )

    @operation("POST /unfreeze")
    async def unfreeze_all(self, *, idempotency_key: str | None = None) -> m.FreezeResult:
        """Lift the owner-wide freeze; agents frozen on their own (``freeze_agent``) stay
        frozen."""
        return await self._request(
            call("POST", "/unfreeze", m.FreezeResult, idempotency_key=idempotency_key)
        )

    # -- payments ----------------------------------------------------------------------

    @operation("POST /payments")
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
        ``InsufficientFundsError``, ``LimitExceededError``, ``WalletFrozenError``) with the
        failed ``tx_id``. ``dry_run_pay`` asks what this would do, paying nothing."""
        return await self._request(
            _calls.payment(
                agent_id=agent_id,
                amount=amount,
                merchant_id=merchant_id,
                recipient_wallet_id=recipient_wallet_id,
                product_id=product_id,
                purpose=purpose,
                currency=currency,
                idempotency_key=idempotency_key,
            )
        )

    @operation("POST /payments")
    async def dry_run_pay(
        self,
        agent_id: str,
        amount: Money | None = None,
        merchant_id: str | None = None,
        recipient_wallet_id: str | None = None,
        product_id: str | None = None,
        purpose: str | None = None,
        *,
        currency: str | None = None,
    ) -> m.DryRunResult:
        """What ``pay`` with these arguments would do, paying nothing: the server runs the
        whole payment (key, agent state, risk, limits, fee, funds) and rolls it back.
        A refusal (funds, limits, freeze, flag, risk) is a ``deny`` answer with its
        ``reasons``, not an exception; a request the server cannot run at all (an unknown
        agent, an invalid field) raises as ``pay`` would."""
        return await self._request(
            as_dry_run(
                _calls.payment(
                    agent_id=agent_id,
                    amount=amount,
                    merchant_id=merchant_id,
                    recipient_wallet_id=recipient_wallet_id,
                    product_id=product_id,
                    purpose=purpose,
                    currency=currency,
                    idempotency_key=None,
                ),
                m.DryRunResult,
            )
        )

    @operation("GET /payments/estimate")
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

    @operation("GET /agents/{agent_id}/wallet", "GET /payments/estimate")
    async def can_afford(self, agent_id: str, amount: Money, currency: str | None = None) -> bool:
        """Whether the wallet's available balance covers ``amount`` plus the server's fee
        (``currency`` defaults to the wallet's). Limits are checked at payment time."""
        wallet = await self.get_wallet(agent_id)
        estimate = await self.estimate(amount, currency or wallet.currency)
        if estimate.currency != wallet.currency:
            return False
        return wallet.balance >= estimate.total

    @operation("GET /payments/{tx_id}")
    async def get_transaction(self, tx_id: str) -> m.Transaction:
        return await self._request(call("GET", f"/payments/{_p(tx_id)}", m.Transaction))

    @operation("GET /agents/{agent_id}/transactions")
    def list_transactions(
        self, agent_id: str, *, page_size: int = 50
    ) -> AsyncIterator[m.Transaction]:
        """Every transaction of the agent, newest first, fetched page by page."""
        first = call("GET", f"/agents/{_p(agent_id)}/transactions", list[m.Transaction])
        return self._paginate(Pager(first, "after", page_size, "starting_after", "tx_id"))

    # -- holds -------------------------------------------------------------------------

    @operation("POST /payments/holds")
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
        """Reserve ``amount`` (plus the fee) of the agent's wallet for a merchant until it
        is captured, voided or expires. ``dry_run_create_hold`` asks what this would do."""
        return await self._request(
            _calls.hold(
                agent_id=agent_id,
                merchant_id=merchant_id,
                amount=amount,
                currency=currency,
                expires_in_minutes=expires_in_minutes,
                purpose=purpose,
                idempotency_key=idempotency_key,
            )
        )

    @operation("POST /payments/holds")
    async def dry_run_create_hold(
        self,
        agent_id: str,
        merchant_id: str,
        amount: Money,
        currency: str = "USDC",
        *,
        expires_in_minutes: int | None = None,
        purpose: str | None = None,
    ) -> m.DryRunResult:
        """What ``create_hold`` would do, holding nothing (``status_code`` 201 when
        allowed; ``projected_held_balance`` with the hold)."""
        return await self._request(
            as_dry_run(
                _calls.hold(
                    agent_id=agent_id,
                    merchant_id=merchant_id,
                    amount=amount,
                    currency=currency,
                    expires_in_minutes=expires_in_minutes,
                    purpose=purpose,
                    idempotency_key=None,
                ),
                m.DryRunResult,
            )
        )

    @operation("POST /payments/holds/{hold_id}/capture")
    async def capture_hold(
        self, hold_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> m.Hold:
        """Capture up to the held amount (all by default); the rest is released."""
        return await self._request(
            _calls.capture(hold_id=hold_id, amount=amount, idempotency_key=idempotency_key)
        )

    @operation("POST /payments/holds/{hold_id}/capture")
    async def dry_run_capture_hold(
        self, hold_id: str, amount: Money | None = None
    ) -> m.DryRunResult:
        """What ``capture_hold`` would do, capturing nothing (the hold stays pending)."""
        return await self._request(
            as_dry_run(
                _calls.capture(hold_id=hold_id, amount=amount, idempotency_key=None),
                m.DryRunResult,
            )
        )

    @operation("POST /payments/holds/{hold_id}/void")
    async def void_hold(self, hold_id: str, *, idempotency_key: str | None = None) -> m.Hold:
        return await self._request(
            call(
                "POST",
                f"/payments/holds/{_p(hold_id)}/void",
                m.Hold,
                idempotency_key=idempotency_key,
            )
        )

    @operation("GET /payments/holds/{hold_id}")
    async def get_hold(self, hold_id: str) -> m.Hold:
        return await self._request(call("GET", f"/payments/holds/{_p(hold_id)}", m.Hold))

    @operation("GET /agents/{agent_id}/holds")
    def list_holds(self, agent_id: str, *, page_size: int = 50) -> AsyncIterator[m.Hold]:
        """Every hold of the agent, newest first, fetched page by page."""
        first = call("GET", f"/agents/{_p(agent_id)}/holds", list[m.Hold])
        return self._paginate(Pager(first, "offset", page_size))

    # -- refunds -----------------------------------------------------------------------

    @operation("POST /payments/{tx_id}/refund")
    async def refund(
        self,
        tx_id: str,
        amount: Money | None = None,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> m.Refund:
        """Refund a payment, all of what remains by default."""
        return await self._request(
            _calls.refund(
                tx_id=tx_id, amount=amount, reason=reason, idempotency_key=idempotency_key
            )
        )

    @operation("POST /payments/{tx_id}/refund")
    async def dry_run_refund(
        self, tx_id: str, amount: Money | None = None, reason: str | None = None
    ) -> m.DryRunResult:
        """What ``refund`` would do, refunding nothing (``projected_balance``: the paying
        wallet's balance with the refund; ``risk`` is ``None``: refunds are not scored)."""
        return await self._request(
            as_dry_run(
                _calls.refund(tx_id=tx_id, amount=amount, reason=reason, idempotency_key=None),
                m.DryRunResult,
            )
        )

    @operation("GET /payments/{tx_id}/refunds")
    async def list_refunds(self, tx_id: str) -> list[m.Refund]:
        return await self._request(call("GET", f"/payments/{_p(tx_id)}/refunds", list[m.Refund]))

    # -- payment requests --------------------------------------------------------------

    @operation("POST /payments/request")
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

    @operation("POST /payments/request/{request_id}/pay")
    async def pay_payment_request(
        self, request_id: str, *, idempotency_key: str | None = None
    ) -> m.PaymentResult:
        """Pay a payment request from its payer's wallet; a refusal raises as ``pay``'s."""
        return await self._request(
            _calls.request_payment(request_id=request_id, idempotency_key=idempotency_key)
        )

    @operation("POST /payments/request/{request_id}/pay")
    async def dry_run_pay_payment_request(self, request_id: str) -> m.DryRunResult:
        """What ``pay_payment_request`` would do, paying nothing (the request stays
        pending)."""
        return await self._request(
            as_dry_run(
                _calls.request_payment(request_id=request_id, idempotency_key=None),
                m.DryRunResult,
            )
        )

    @operation("DELETE /payments/request/{request_id}")
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

    @operation("GET /payments/request/{request_id}")
    async def get_payment_request(self, request_id: str) -> m.PaymentRequest:
        return await self._request(
            call("GET", f"/payments/request/{_p(request_id)}", m.PaymentRequest)
        )

    @operation("GET /payments/request")
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

    @operation("POST /merchants")
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

    @operation("GET /merchants/{merchant_id}")
    async def get_merchant(self, merchant_id: str) -> m.Merchant:
        return await self._request(call("GET", f"/merchants/{_p(merchant_id)}", m.Merchant))

    @operation("GET /merchants/{merchant_id}/wallet")
    async def get_merchant_wallet(self, merchant_id: str) -> m.MerchantWallet:
        """The merchant's wallet and balance (what its payments brought in)."""
        return await self._request(
            call("GET", f"/merchants/{_p(merchant_id)}/wallet", m.MerchantWallet)
        )

    @operation("GET /merchants")
    def list_merchants(self, *, page_size: int = 50) -> AsyncIterator[m.Merchant]:
        return self._paginate(
            Pager(call("GET", "/merchants", list[m.Merchant]), "offset", page_size)
        )

    @operation("POST /catalog/products")
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

    @operation("GET /catalog/products/{product_id}")
    async def get_product(self, product_id: str) -> m.Product:
        return await self._request(call("GET", f"/catalog/products/{_p(product_id)}", m.Product))

    @operation("PATCH /catalog/products/{product_id}")
    async def update_product(
        self,
        product_id: str,
        *,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        price: Money | Unset = UNSET,
        category: str | Unset | None = UNSET,
        in_stock: bool | Unset = UNSET,
    ) -> m.Product:
        """Change the fields given (``None`` clears ``description`` or ``category``)."""
        given: dict[str, Any] = {
            "name": name,
            "description": description,
            "price": price if isinstance(price, Unset) else money(price),
            "category": category,
            "in_stock": in_stock,
        }
        body = {k: v for k, v in given.items() if not isinstance(v, Unset)}
        return await self._request(
            call("PATCH", f"/catalog/products/{_p(product_id)}", m.Product, json=body)
        )

    @operation("GET /catalog/products")
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

    @operation("POST /webhooks")
    async def create_webhook(
        self,
        url: str,
        events: list[str],
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.WebhookCreated:
        """Subscribe ``url`` to ``events`` (``list_event_types``); the answer's ``secret``
        (``whsec_…``) is shown only now. The server does not replay this request, so one
        whose answer was lost is not resent (that would subscribe twice)."""
        body: dict[str, Any] = {"url": url, "events": list(events)}
        if description is not None:
            body["description"] = description
        return await self._request(
            call(
                "POST",
                "/webhooks",
                m.WebhookCreated,
                json=body,
                idempotency_key=idempotency_key,
                resendable=False,
            )
        )

    @operation("GET /webhooks")
    async def list_webhooks(self) -> list[m.Webhook]:
        return await self._request(call("GET", "/webhooks", list[m.Webhook]))

    @operation("GET /webhooks/events/types")
    async def list_event_types(self) -> list[m.EventType]:
        """Every event type a subscription can receive, with what it means."""
        return await self._request(call("GET", "/webhooks/events/types", list[m.EventType]))

    @operation("GET /webhooks/{subscription_id}")
    async def get_webhook(self, subscription_id: str) -> m.Webhook:
        """A subscription and its delivery counts (never its secret)."""
        return await self._request(call("GET", f"/webhooks/{_p(subscription_id)}", m.Webhook))

    @operation("PATCH /webhooks/{subscription_id}")
    async def update_webhook(
        self,
        subscription_id: str,
        *,
        url: str | Unset = UNSET,
        events: Iterable[str] | Unset = UNSET,
        description: str | Unset | None = UNSET,
        is_active: bool | Unset = UNSET,
    ) -> m.Webhook:
        """Change the fields given; ``is_active=True`` re-enables a disabled subscription."""
        given: dict[str, Any] = {
            "url": url,
            "events": events if isinstance(events, Unset) else list(events),
            "description": description,
            "is_active": is_active,
        }
        body = {k: v for k, v in given.items() if not isinstance(v, Unset)}
        return await self._request(
            call("PATCH", f"/webhooks/{_p(subscription_id)}", m.Webhook, json=body)
        )

    @operation("POST /webhooks/{subscription_id}/test")
    async def test_webhook(self, subscription_id: str) -> m.TestDelivery:
        """Queue a ``webhook.test`` event for this subscription only (202)."""
        return await self._request(
            call(
                "POST",
                f"/webhooks/{_p(subscription_id)}/test",
                m.TestDelivery,
                resendable=False,
            )
        )

    @operation("POST /webhooks/{subscription_id}/rotate-secret")
    async def rotate_webhook_secret(self, subscription_id: str) -> m.WebhookCreated:
        """A new ``secret``, shown only now; the previous one keeps signing beside it for
        24 hours (``webhooks.verify`` accepts either)."""
        return await self._request(
            call(
                "POST",
                f"/webhooks/{_p(subscription_id)}/rotate-secret",
                m.WebhookCreated,
                resendable=False,
            )
        )

    @operation("GET /webhooks/{subscription_id}/deliveries")
    async def list_webhook_deliveries(
        self, subscription_id: str, *, limit: int = 50
    ) -> list[m.DeliveryAttempt]:
        """The subscription's latest delivery attempts (at most ``limit``, up to 200),
        newest first: status code, latency, error, next retry. The route does not page."""
        return await self._request(
            call(
                "GET",
                f"/webhooks/{_p(subscription_id)}/deliveries",
                list[m.DeliveryAttempt],
                params={"limit": limit},
            )
        )

    @operation("POST /webhooks/{subscription_id}/deliveries/{event_id}/replay")
    async def replay_webhook_delivery(self, subscription_id: str, event_id: str) -> m.TestDelivery:
        """Deliver an event to this subscription again (dead-lettered ones too), 202."""
        return await self._request(
            call(
                "POST",
                f"/webhooks/{_p(subscription_id)}/deliveries/{_p(event_id)}/replay",
                m.TestDelivery,
                resendable=False,
            )
        )

    @operation("DELETE /webhooks/{subscription_id}")
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

    @operation("GET /risk/agents/{agent_id}/score")
    async def get_risk_score(self, agent_id: str) -> m.RiskScore:
        return await self._request(call("GET", f"/risk/agents/{_p(agent_id)}/score", m.RiskScore))

    @operation("GET /risk/agents/{agent_id}/profile")
    async def get_risk_profile(self, agent_id: str) -> m.RiskProfile:
        return await self._request(
            call("GET", f"/risk/agents/{_p(agent_id)}/profile", m.RiskProfile)
        )

    @operation("POST /risk/agents/{agent_id}/flag")
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

    @operation("DELETE /risk/agents/{agent_id}/flag")
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

    @operation("POST /risk/agents/{agent_id}/authorize")
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

    @operation("DELETE /risk/agents/{agent_id}/authorize/{service_id}")
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

    # -- the Sequence gateway (amounts in integer cents, as Sequence's) -----------------

    @operation("GET /sequence/pods")
    async def list_pods(self) -> list[m.Pod]:
        """Every pod of the owner's Sequence organisation, with its balance."""
        return await self._request(call("GET", "/sequence/pods", list[m.Pod]))

    @operation("GET /sequence/pods/balance")
    async def get_total_balance(self) -> m.TotalBalance:
        """The total over all pods, and how many there are."""
        return await self._request(call("GET", "/sequence/pods/balance", m.TotalBalance))

    @operation("GET /sequence/pods/{pod_name}/balance")
    async def get_pod_balance(self, pod_name: str) -> m.Pod:
        """A pod by name: case-insensitive, else the one pod whose name contains it
        (``NotFoundError`` if none, ``ConflictError`` if several)."""
        return await self._request(call("GET", f"/sequence/pods/{_p(pod_name)}/balance", m.Pod))

    @operation("GET /sequence/pods/detail/{pod_id}", "GET /sequence/pods/{org_id}/{pod_id}")
    async def get_pod(self, pod_id: str, *, org_id: str | None = None) -> m.PodDetail:
        """One pod with its recent transfers. ``org_id`` (accepted and ignored by the
        server: a Sequence key belongs to one organisation) selects the gateway's
        ``/pods/{org_id}/{pod_id}`` form."""
        path = (
            f"/sequence/pods/detail/{_p(pod_id)}"
            if org_id is None
            else f"/sequence/pods/{_p(org_id)}/{_p(pod_id)}"
        )
        return await self._request(call("GET", path, m.PodDetail))

    @operation("GET /sequence/accounts")
    async def get_sequence_accounts(self) -> m.SequenceAccounts:
        """Pods, ports (income sources) and external accounts, with balances."""
        return await self._request(call("GET", "/sequence/accounts", m.SequenceAccounts))

    @operation("GET /sequence/activity/summary")
    async def get_activity_summary(self) -> m.ActivitySummary:
        """This month's transfer count, rule executions and completed income."""
        return await self._request(call("GET", "/sequence/activity/summary", m.ActivitySummary))

    @operation("GET /sequence/activity")
    def list_activity(
        self,
        *,
        statuses: Iterable[str] | None = None,
        directions: Iterable[str] | None = None,
        activity_types: Iterable[str] | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[m.TransferSummary]:
        """Transfers across the organisation's accounts, newest first, every page (by
        ``end_cursor``; ``page_size`` at most 100). Filters in the gateway's words
        (``statuses=["COMPLETE"]``, ``directions=["INCOMING"]``…)."""
        first = call(
            "GET",
            "/sequence/activity",
            m.ActivityPage,
            params={
                "statuses": _joined(statuses),
                "directions": _joined(directions),
                "activity_types": _joined(activity_types),
            },
        )
        return self._paginate(
            Pager(
                first,
                "connection",
                page_size,
                param="after",
                size_param="first",
                items_attr="transfers",
            )
        )

    @operation(
        "GET /sequence/transfers/{transfer_id}", "GET /sequence/activity/{org_id}/{transfer_id}"
    )
    async def get_transfer(
        self, transfer_id: str, *, org_id: str | None = None
    ) -> m.TransferSummary:
        """A transfer by Sequence's id or Purser's (``seqt_…``, ``fund_…``); ``org_id``
        (ignored by the server) selects the ``/activity/{org_id}/{transfer_id}`` form."""
        path = (
            f"/sequence/transfers/{_p(transfer_id)}"
            if org_id is None
            else f"/sequence/activity/{_p(org_id)}/{_p(transfer_id)}"
        )
        return await self._request(call("GET", path, m.TransferSummary))

    @operation("POST /sequence/transfers")
    async def create_transfer(
        self,
        source_id: str,
        destination_id: str,
        amount_cents: int,
        *,
        source_type: str | None = None,
        destination_type: str | None = None,
        description: str | None = None,
        instant: bool | None = None,
        kyc_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.TransferResult:
        """Move ``amount_cents`` (at least 100) between the organisation's accounts, through
        the per-transfer and daily limits. ``status`` is ``completed`` when Sequence
        finished within the server's wait, else ``pending`` (answered 202; follow it with
        ``get_transfer``). A limit or Sequence's refusal raises ``BadRequestError``. The
        idempotency key makes a retry return the same transfer, never a second one.
        ``instant`` and ``kyc_id`` are the gateway's fields: ``kyc_id`` is accepted and
        ignored, ``instant=True`` is refused (``BadRequestError``: Sequence's Platform API
        has no instant transfers). ``dry_run_create_transfer`` asks what this would do."""
        return await self._request(
            _calls.transfer(
                source_id=source_id,
                destination_id=destination_id,
                amount_cents=amount_cents,
                source_type=source_type,
                destination_type=destination_type,
                description=description,
                instant=instant,
                kyc_id=kyc_id,
                idempotency_key=idempotency_key,
            )
        )

    @operation("POST /sequence/transfers")
    async def dry_run_create_transfer(
        self,
        source_id: str,
        destination_id: str,
        amount_cents: int,
        *,
        source_type: str | None = None,
        destination_type: str | None = None,
        description: str | None = None,
        instant: bool | None = None,
        kyc_id: str | None = None,
    ) -> m.DryRunResult:
        """What ``create_transfer`` would do, moving nothing: the server runs its checks and
        the limits' reservation and rolls them back, without calling Sequence. Unlike the
        gateway's cents, the answer is in dollars (``currency`` ``USD``): ``amount``, and
        ``limits`` ``sequence_per_transfer`` and ``sequence_daily`` as they would stand.
        ``status_code`` is 202 when allowed (whether Sequence completes it within the
        wait is known only then); a limit is a ``deny`` (``transfer_limit_exceeded``); a
        request the server cannot run (``instant=True``, the same source and destination,
        no Sequence connection) raises as ``create_transfer`` would."""
        return await self._request(
            as_dry_run(
                _calls.transfer(
                    source_id=source_id,
                    destination_id=destination_id,
                    amount_cents=amount_cents,
                    source_type=source_type,
                    destination_type=destination_type,
                    description=description,
                    instant=instant,
                    kyc_id=kyc_id,
                    idempotency_key=None,
                ),
                m.DryRunResult,
            )
        )

    @operation("GET /sequence/connection")
    async def get_sequence_connection(self) -> m.SequenceConnection:
        """Which Sequence organisation the owner's gateway talks to."""
        return await self._request(call("GET", "/sequence/connection", m.SequenceConnection))

    @operation("PUT /sequence/connection")
    async def set_sequence_connection(
        self, api_key: str, *, base_url: str | None = None
    ) -> m.SequenceConnection:
        """Store the owner's Sequence Platform API key (encrypted; shown back by its last
        four characters), and optionally the API's URL. ``ConflictError`` while a
        transfer's outcome is unknown."""
        body = {"api_key": api_key, "base_url": base_url}
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            call("PUT", "/sequence/connection", m.SequenceConnection, json=body)
        )

    @operation("DELETE /sequence/connection")
    async def delete_sequence_connection(self) -> m.SequenceConnection:
        """Forget the owner's key; the deployment's default (or the sandbox) applies again."""
        return await self._request(call("DELETE", "/sequence/connection", m.SequenceConnection))

    @operation("GET /sequence/limits")
    async def get_sequence_limits(self) -> m.SequenceLimits:
        """The per-transfer and daily limits (cents) and today's use."""
        return await self._request(call("GET", "/sequence/limits", m.SequenceLimits))

    @operation("PUT /sequence/limits")
    async def set_sequence_limits(
        self,
        *,
        max_transfer_cents: int | Unset | None = UNSET,
        max_daily_transfer_cents: int | Unset | None = UNSET,
    ) -> m.SequenceLimits:
        """Change the limits given (cents); ``None`` goes back to the deployment's default,
        omitted ones stay."""
        given = {
            "max_transfer_cents": max_transfer_cents,
            "max_daily_transfer_cents": max_daily_transfer_cents,
        }
        body = {k: v for k, v in given.items() if not isinstance(v, Unset)}
        return await self._request(call("PUT", "/sequence/limits", m.SequenceLimits, json=body))

    # -- wallet funding ----------------------------------------------------------------

    @operation("POST /agents/{agent_id}/wallet/fund")
    async def fund_wallet(
        self,
        agent_id: str,
        pod_id: str,
        amount: Money,
        *,
        source: str = "sequence",
        idempotency_key: str | None = None,
    ) -> m.Funding:
        """Fund a dollar wallet from a Sequence pod (at par). The wallet is credited only
        once Sequence completes the transfer (``status`` ``completed``, else ``pending``:
        follow it with ``get_funding``), never twice, also when a retry resends it. A
        failure credits nothing and raises ``BadRequestError`` naming the ``fund_…`` id.
        ``dry_run_fund_wallet`` asks what this would do."""
        return await self._request(
            _calls.funding(
                agent_id=agent_id,
                pod_id=pod_id,
                amount=amount,
                source=source,
                idempotency_key=idempotency_key,
            )
        )

    @operation("POST /agents/{agent_id}/wallet/fund")
    async def dry_run_fund_wallet(
        self, agent_id: str, pod_id: str, amount: Money, *, source: str = "sequence"
    ) -> m.DryRunResult:
        """What ``fund_wallet`` would do, moving nothing: the server runs its checks
        (Sequence is asked about the pod), the agent's policy (freeze, flag, risk) and the
        Sequence limits' reservation, rolls them back and makes no transfer.
        ``projected_balance`` is the wallet's once the funding is credited (its balance
        as it is when denied); ``limits`` the Sequence limits as they would stand, in
        dollars (``sequence_per_transfer``, ``sequence_daily``); ``status_code`` 202 when
        allowed. An unknown agent or pod, or an invalid amount, raises as ``fund_wallet``
        would."""
        return await self._request(
            as_dry_run(
                _calls.funding(
                    agent_id=agent_id,
                    pod_id=pod_id,
                    amount=amount,
                    source=source,
                    idempotency_key=None,
                ),
                m.DryRunResult,
            )
        )

    @operation("GET /fundings/{funding_id}")
    async def get_funding(self, funding_id: str) -> m.Funding:
        """A wallet funding and its state."""
        return await self._request(call("GET", f"/fundings/{_p(funding_id)}", m.Funding))

    # -- the sandbox test clock ---------------------------------------------------------

    @operation("GET /test/clock")
    async def get_test_clock(self) -> m.TestClock:
        """The owner's sandbox now and how far it runs ahead of the server's clock
        (``NotFoundError`` in live mode: there is no test clock)."""
        return await self._request(call("GET", "/test/clock", m.TestClock))

    @operation("POST /test/clock/advance")
    async def advance_test_clock(
        self, seconds: int, *, idempotency_key: str | None = None
    ) -> m.TestClock:
        """Move the owner's sandbox clock forward by ``seconds`` (1 to 31 536 000, a year):
        every request of the owner's keys then runs at the new now (limit windows roll,
        holds and payment requests expire, in this call already). Other owners' clocks do
        not move. Sent with an ``Idempotency-Key``: a retry after a lost answer is replayed
        by the server, never moves the clock twice."""
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise TypeError("seconds is an int number of seconds")
        return await self._request(
            call(
                "POST",
                "/test/clock/advance",
                m.TestClock,
                json={"seconds": seconds},
                idempotency_key=idempotency_key,
            )
        )

    # -- audit -------------------------------------------------------------------------

    @operation("GET /audit")
    def list_audit(self, *, page_size: int = 50) -> AsyncIterator[m.AuditRecord]:
        """Every audit record of the key's owner and mode, by cursor."""
        return self._paginate(Pager(call("GET", "/audit", m.AuditPage), "envelope", page_size))
