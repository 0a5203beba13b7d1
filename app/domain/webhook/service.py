"""Webhook subscriptions and the fan-out of outbox events into deliveries."""

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit_service
from app.domain.webhook import repository, urls
from app.domain.webhook.errors import DeliveryNotFound, UnknownEventType, WebhookNotFound
from app.domain.webhook.schemas import (
    EVENT_TYPES,
    DeliveryAttemptRead,
    TestDelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from app.kit.encryption import SecretBox
from app.kit.ids import new_id
from app.kit.signing import new_secret

API_VERSION = "2024-01"
ROTATION_OVERLAP = timedelta(hours=24)


def _read(row: Row[Any]) -> WebhookRead:
    return WebhookRead(
        subscription_id=row.id,
        url=row.url,
        events=list(row.events),
        description=row.description,
        is_active=row.is_active,
        disabled_reason=row.disabled_reason,
        total_deliveries=row.total_deliveries,
        successful_deliveries=row.successful_deliveries,
        failed_deliveries=row.failed_deliveries,
        created_at=row.created_at,
    )


def _audit(
    owner_id: str,
    event: str,
    endpoint_id: str,
    *,
    key_id: str | None,
    request_id: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An audit record of a change to a subscription. ``data`` never holds a secret."""
    return audit_service.record(
        owner_id=owner_id,
        event=event,
        subject_type="webhook",
        subject_id=endpoint_id,
        key_id=key_id,
        request_id=request_id,
        data=data,
    )


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise UnknownEventType(f"events: unknown event type {unknown[0]!r}", param="events")
    return sorted(set(events))


def payload(event_id: str, event_type: str, data: dict[str, Any], created_at: datetime) -> str:
    """The body every attempt of this event sends, as the API reference shows it."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "data": data,
            "created_at": created_at.isoformat().replace("+00:00", "Z"),
            "api_version": API_VERSION,
        },
        separators=(",", ":"),
    )


async def _get(session: AsyncSession, owner_id: str, endpoint_id: str) -> Row[Any]:
    row = await repository.get_endpoint(session, owner_id, endpoint_id)
    if row is None:
        raise WebhookNotFound(f"Webhook {endpoint_id} not found")
    return row


async def create(
    session: AsyncSession,
    owner_id: str,
    data: WebhookCreate,
    box: SecretBox,
    *,
    sandbox: bool,
    key_id: str | None = None,
    request_id: str | None = None,
) -> WebhookCreated:
    """Subscribe ``data.url``; the secret is in the result only. Writes a
    ``webhook_created`` audit record (URL, events, description; never the secret) for
    ``key_id``'s request. Raises ``InvalidWebhookUrl`` / ``UnknownEventType`` (422)."""
    await urls.check_destination(data.url, sandbox=sandbox)
    events = _check_events(data.events)
    secret = new_secret()
    endpoint_id = new_id("whsub")
    await repository.insert_endpoint(
        session,
        {
            "id": endpoint_id,
            "owner_id": owner_id,
            "url": data.url,
            "events": events,
            "description": data.description,
            "secret_encrypted": box.encrypt(secret),
        },
    )
    record = _audit(
        owner_id,
        "webhook_created",
        endpoint_id,
        key_id=key_id,
        request_id=request_id,
        data={"url": data.url, "events": events, "description": data.description},
    )
    await audit_service.append(session, [record])
    return WebhookCreated(
        **_read(await _get(session, owner_id, endpoint_id)).model_dump(), secret=secret
    )


async def get(session: AsyncSession, owner_id: str, endpoint_id: str) -> WebhookRead:
    return _read(await _get(session, owner_id, endpoint_id))


async def list_endpoints(session: AsyncSession, owner_id: str) -> list[WebhookRead]:
    return [_read(row) for row in await repository.list_endpoints(session, owner_id)]


async def update(
    session: AsyncSession,
    owner_id: str,
    endpoint_id: str,
    data: WebhookUpdate,
    *,
    sandbox: bool,
    key_id: str | None = None,
    request_id: str | None = None,
) -> WebhookRead:
    """Change what ``data`` sets; a change writes a ``webhook_updated`` audit record with
    each changed field's value before and after. Raises ``WebhookNotFound`` (404),
    ``InvalidWebhookUrl`` / ``UnknownEventType`` (422)."""
    row = await _get(session, owner_id, endpoint_id)
    changes = data.model_dump(include=data.model_fields_set)
    for field in ("url", "events", "is_active"):
        if field in changes and changes[field] is None:
            changes.pop(field)
    if "url" in changes:
        await urls.check_destination(changes["url"], sandbox=sandbox)
    if "events" in changes:
        changes["events"] = _check_events(changes["events"])
    if changes.get("is_active"):
        changes.update(failing_since=None, disabled_reason=None)
    if changes:
        await repository.update_endpoint(session, owner_id, endpoint_id, changes)
        audited = {
            field: {"from": _jsonable(getattr(row, field)), "to": _jsonable(changes[field])}
            for field in ("url", "events", "description", "is_active")
            if field in changes and _jsonable(getattr(row, field)) != _jsonable(changes[field])
        }
        if audited:
            record = _audit(
                owner_id,
                "webhook_updated",
                endpoint_id,
                key_id=key_id,
                request_id=request_id,
                data={"changes": audited},
            )
            await audit_service.append(session, [record])
    return await get(session, owner_id, endpoint_id)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


async def delete(
    session: AsyncSession,
    owner_id: str,
    endpoint_id: str,
    *,
    key_id: str | None = None,
    request_id: str | None = None,
) -> None:
    """Delete a subscription and its deliveries; writes a ``webhook_deleted`` audit
    record (its URL and events). Raises ``WebhookNotFound`` (404)."""
    row = await repository.get_endpoint(session, owner_id, endpoint_id)
    if row is None or not await repository.delete_endpoint(session, owner_id, endpoint_id):
        raise WebhookNotFound(f"Webhook {endpoint_id} not found")
    record = _audit(
        owner_id,
        "webhook_deleted",
        endpoint_id,
        key_id=key_id,
        request_id=request_id,
        data={"url": row.url, "events": list(row.events)},
    )
    await audit_service.append(session, [record])


async def rotate_secret(
    session: AsyncSession,
    owner_id: str,
    endpoint_id: str,
    box: SecretBox,
    now: datetime,
    *,
    key_id: str | None = None,
    request_id: str | None = None,
) -> WebhookCreated:
    """A new secret, shown once; the previous one keeps signing alongside it for 24 h.
    Writes a ``webhook_secret_rotated`` audit record (when the previous secret stops
    signing; neither secret). Raises ``WebhookNotFound`` (404)."""
    row = await _get(session, owner_id, endpoint_id)
    secret = new_secret()
    previous_expires_at = now + ROTATION_OVERLAP
    await repository.update_endpoint(
        session,
        owner_id,
        endpoint_id,
        {
            "secret_encrypted": box.encrypt(secret),
            "previous_secret_encrypted": row.secret_encrypted,
            "previous_secret_expires_at": previous_expires_at,
        },
    )
    record = _audit(
        owner_id,
        "webhook_secret_rotated",
        endpoint_id,
        key_id=key_id,
        request_id=request_id,
        data={"previous_secret_expires_at": previous_expires_at.isoformat()},
    )
    await audit_service.append(session, [record])
    return WebhookCreated(
        **_read(await _get(session, owner_id, endpoint_id)).model_dump(), secret=secret
    )


async def send_test(
    session: AsyncSession, owner_id: str, endpoint_id: str, now: datetime
) -> TestDelivery:
    """Queue a ``webhook.test`` event for this endpoint only."""
    await _get(session, owner_id, endpoint_id)
    event_id = new_id("evt", 10)
    body = payload(event_id, "webhook.test", {"subscription_id": endpoint_id}, now)
    await repository.insert_deliveries(
        session,
        [_delivery(endpoint_id, owner_id, event_id, "webhook.test", now, body)],
    )
    return TestDelivery(event_id=event_id)


def _delivery(
    endpoint_id: str, owner_id: str, event_id: str, event_type: str, created_at: datetime, body: str
) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "owner_id": owner_id,
        "event_id": event_id,
        "event_type": event_type,
        "event_created_at": created_at,
        "payload": body,
        "status": "pending",
        "next_attempt_at": created_at,
    }


async def list_attempts(
    session: AsyncSession, owner_id: str, endpoint_id: str, limit: int
) -> list[DeliveryAttemptRead]:
    await _get(session, owner_id, endpoint_id)
    return [
        DeliveryAttemptRead(
            event_id=row.event_id,
            event_type=row.event_type,
            attempt=row.attempt,
            status_code=row.status_code,
            latency_ms=row.latency_ms,
            error=row.error,
            next_retry_at=row.next_retry_at,
            attempted_at=row.created_at,
            delivery_status=row.delivery_status,
        )
        for row in await repository.list_attempts(session, owner_id, endpoint_id, limit)
    ]


async def replay(
    session: AsyncSession, owner_id: str, endpoint_id: str, event_id: str, now: datetime
) -> TestDelivery:
    """Deliver an event again (also a dead-lettered one), with a fresh retry schedule."""
    await _get(session, owner_id, endpoint_id)
    if not await repository.reschedule(session, owner_id, endpoint_id, event_id, now):
        raise DeliveryNotFound(f"No delivery of {event_id} to {endpoint_id}")
    return TestDelivery(event_id=event_id)


async def fan_out(session: AsyncSession, now: datetime, *, batch: int = 500) -> int:
    """Turn committed outbox events into deliveries for the endpoints subscribed to them
    (the periodic job; SKIP LOCKED lets several workers share it). Only events of the
    session's mode, each to endpoints of its own mode."""
    events = await repository.claim_unfanned_events(session, batch)
    # Every event's endpoints in one query (not one per event: the fan-out keeps up with
    # the payments), and a body only for events someone subscribed to.
    endpoints: dict[str, list[str]] = {}
    for pair in await repository.subscriptions(session, [event.id for event in events]):
        endpoints.setdefault(pair.event_id, []).append(pair.endpoint_id)
    rows = []
    for event in events:
        if event.id not in endpoints:
            continue
        body = payload(event.id, event.type, event.data, event.created_at)
        for endpoint_id in endpoints[event.id]:
            rows.append(
                _delivery(endpoint_id, event.owner_id, event.id, event.type, event.created_at, body)
            )
    await repository.insert_deliveries(session, rows)
    await repository.mark_fanned_out(session, [event.id for event in events], now)
    return len(events)
