"""The requests of the calls that offer a dry run (``Dry-Run: true``), built once for the
real method (``pay``) and its twin (``dry_run_pay``, through ``as_dry_run``), so the two
can never send different bodies. Shared by the async and the sync client."""

from __future__ import annotations

from typing import Any

from purser import models as m
from purser._core import Call, Money, call, money, money_or_none
from purser._core import segment as _p


def payment(
    *,
    agent_id: str,
    amount: Money | None,
    merchant_id: str | None,
    recipient_wallet_id: str | None,
    product_id: str | None,
    purpose: str | None,
    currency: str | None,
    idempotency_key: str | None,
) -> Call[m.PaymentResult]:
    """``POST /payments``: members left ``None`` are not sent (the server's defaults)."""
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
    return call("POST", "/payments", m.PaymentResult, json=body, idempotency_key=idempotency_key)


def hold(
    *,
    agent_id: str,
    merchant_id: str,
    amount: Money,
    currency: str,
    expires_in_minutes: int | None,
    purpose: str | None,
    idempotency_key: str | None,
) -> Call[m.Hold]:
    """``POST /payments/holds``."""
    body = {
        "agent_id": agent_id,
        "merchant_id": merchant_id,
        "amount": money(amount),
        "currency": currency,
        "expires_in_minutes": expires_in_minutes,
        "purpose": purpose,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return call("POST", "/payments/holds", m.Hold, json=body, idempotency_key=idempotency_key)


def capture(*, hold_id: str, amount: Money | None, idempotency_key: str | None) -> Call[m.Hold]:
    """``POST /payments/holds/{hold_id}/capture``: no ``amount`` captures all of it."""
    body = {} if amount is None else {"amount": money(amount)}
    return call(
        "POST",
        f"/payments/holds/{_p(hold_id)}/capture",
        m.Hold,
        json=body,
        idempotency_key=idempotency_key,
    )


def request_payment(*, request_id: str, idempotency_key: str | None) -> Call[m.PaymentResult]:
    """``POST /payments/request/{request_id}/pay``."""
    return call(
        "POST",
        f"/payments/request/{_p(request_id)}/pay",
        m.PaymentResult,
        idempotency_key=idempotency_key,
    )


def refund(
    *, tx_id: str, amount: Money | None, reason: str | None, idempotency_key: str | None
) -> Call[m.Refund]:
    """``POST /payments/{tx_id}/refund``: no ``amount`` refunds all that remains."""
    body = {"amount": money_or_none(amount), "reason": reason}
    body = {k: v for k, v in body.items() if v is not None}
    return call(
        "POST",
        f"/payments/{_p(tx_id)}/refund",
        m.Refund,
        json=body,
        idempotency_key=idempotency_key,
    )


def transfer(
    *,
    source_id: str,
    destination_id: str,
    amount_cents: int,
    source_type: str | None,
    destination_type: str | None,
    description: str | None,
    instant: bool | None,
    kyc_id: str | None,
    idempotency_key: str | None,
) -> Call[m.TransferResult]:
    """``POST /sequence/transfers``: ``amount_cents`` an ``int`` (a float or a bool is
    refused here, before anything is sent); members left ``None`` are not sent."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError("amount_cents is an int number of cents")
    body: dict[str, Any] = {
        "source_id": source_id,
        "destination_id": destination_id,
        "amount_cents": amount_cents,
        "source_type": source_type,
        "destination_type": destination_type,
        "description": description,
        "instant": instant,
        "kyc_id": kyc_id,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return call(
        "POST", "/sequence/transfers", m.TransferResult, json=body, idempotency_key=idempotency_key
    )


def funding(
    *, agent_id: str, pod_id: str, amount: Money, source: str, idempotency_key: str | None
) -> Call[m.Funding]:
    """``POST /agents/{agent_id}/wallet/fund``: ``amount`` in the wallet's dollars."""
    body = {"source": source, "pod_id": pod_id, "amount": money(amount)}
    return call(
        "POST",
        f"/agents/{_p(agent_id)}/wallet/fund",
        m.Funding,
        json=body,
        idempotency_key=idempotency_key,
    )
