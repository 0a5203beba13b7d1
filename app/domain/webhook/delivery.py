"""Delivering webhooks: lease due deliveries, send them signed, record every attempt,
retry with backoff and jitter, dead-letter after the last attempt, disable endpoints that
fail for days. At least once: a delivery is leased, not deleted, until an attempt lands."""

import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.webhook import repository, urls
from app.domain.webhook.errors import InvalidWebhookUrl
from app.kit.encryption import SecretBox
from app.kit.signing import signature_headers
from app.kit.time import utc_now

#: Delay before each retry; after the last one the delivery is dead-lettered.
RETRY_SCHEDULE: Final = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
TIMEOUT_SECONDS: Final = 10.0
LEASE: Final = timedelta(seconds=60)
DISABLE_AFTER: Final = timedelta(days=5)


def live_secrets(endpoint: Row[Any], box: SecretBox, now: datetime) -> list[str]:
    secrets = [box.decrypt(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > now:
        secrets.append(box.decrypt(endpoint.previous_secret_encrypted))
    return secrets


async def _send(
    http: httpx.AsyncClient,
    endpoint: Row[Any],
    delivery: Row[Any],
    box: SecretBox,
    *,
    now: datetime,
    sandbox: bool,
) -> tuple[int | None, int, str | None]:
    """One attempt: (status code, latency ms, error)."""
    started = time.perf_counter()
    body = delivery.payload.encode()
    try:
        await urls.check_destination(endpoint.url, sandbox=sandbox)
        headers = signature_headers(
            live_secrets(endpoint, box, now), delivery.event_id, utc_now(), body
        )
        headers["content-type"] = "application/json"
        headers["user-agent"] = "Purser-Webhooks/1"
        response = await http.post(endpoint.url, content=body, headers=headers)
    except InvalidWebhookUrl as error:
        return None, 0, error.detail
    except httpx.HTTPError as error:
        latency = int((time.perf_counter() - started) * 1000)
        return None, latency, f"{type(error).__name__}: {error}"[:500]
    latency = int((time.perf_counter() - started) * 1000)
    failure = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return response.status_code, latency, failure


def _outcome(delivery: Row[Any], ok: bool, now: datetime, rng: random.Random) -> dict[str, Any]:
    attempts = delivery.attempts + 1
    if ok:
        return {"status": "succeeded", "attempts": attempts, "delivered_at": now}
    if attempts > len(RETRY_SCHEDULE):
        return {"status": "failed", "attempts": attempts}
    delay = RETRY_SCHEDULE[attempts - 1] * rng.uniform(0.9, 1.1)
    return {"status": "pending", "attempts": attempts, "next_attempt_at": now + delay}


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    box: SecretBox,
    *,
    now: datetime,
    sandbox: bool,
    batch: int = 50,
    rng: random.Random | None = None,
) -> int:
    """Lease up to ``batch`` due deliveries and attempt each once; returns how many."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security

    async def claim(session: AsyncSession) -> tuple[Sequence[Row[Any]], dict[str, Row[Any]]]:
        rows = await repository.claim_due(session, now, now + LEASE, batch)
        endpoints = await repository.endpoints_by_id(session, sorted({r.endpoint_id for r in rows}))
        return rows, endpoints

    deliveries, endpoints = await run_in_transaction(sessionmaker, claim)
    for delivery in deliveries:
        endpoint = endpoints[delivery.endpoint_id]
        status_code, latency, error = await _send(
            http, endpoint, delivery, box, now=now, sandbox=sandbox
        )
        ok = error is None
        values = _outcome(delivery, ok, now, rng)

        async def record(
            session: AsyncSession,
            delivery: Row[Any] = delivery,
            values: dict[str, Any] = values,
            status_code: int | None = status_code,
            latency: int = latency,
            error: str | None = error,
            ok: bool = ok,
        ) -> None:
            await repository.record_attempt(
                session,
                delivery.id,
                {
                    "attempt": values["attempts"],
                    "status_code": status_code,
                    "latency_ms": latency,
                    "error": error,
                    "next_retry_at": values.get("next_attempt_at"),
                },
                values,
            )
            await repository.mark_endpoint_health(
                session, delivery.endpoint_id, ok=ok, now=now, disable_after=DISABLE_AFTER
            )

        await run_in_transaction(sessionmaker, record)
    return len(deliveries)
