from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    any_,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import CURRENT_MODE_SQL, current_mode
from app.models.payment import OutboxEvent
from app.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

_endpoints = cast(Table, WebhookEndpoint.__table__)
_deliveries = cast(Table, WebhookDelivery.__table__)
_attempts = cast(Table, WebhookAttempt.__table__)
_events = cast(Table, OutboxEvent.__table__)


# Endpoints, and through them their deliveries and attempts, keep to the connection's
# mode: an endpoint of the other mode answers exactly like one that does not exist, and a
# worker fans out and delivers only its own mode's events.


def _endpoint_of(owner_id: str, endpoint_id: str) -> ColumnElement[bool]:
    return and_(
        _endpoints.c.owner_id == owner_id,
        _endpoints.c.id == endpoint_id,
        _endpoints.c.mode == current_mode(),
    )


def _delivery_of_this_mode() -> ColumnElement[bool]:
    """The delivery's endpoint is of the connection's mode (deliveries have no mode of
    their own: they belong to their endpoint's)."""
    return exists().where(
        _endpoints.c.id == _deliveries.c.endpoint_id, _endpoints.c.mode == current_mode()
    )


def _with_counts() -> Any:
    counts = (
        select(
            _deliveries.c.endpoint_id,
            func.count().label("total"),
            func.count().filter(_deliveries.c.status == "succeeded").label("succeeded"),
            func.count().filter(_deliveries.c.status == "failed").label("failed"),
        )
        .group_by(_deliveries.c.endpoint_id)
        .subquery()
    )
    return select(
        _endpoints,
        func.coalesce(counts.c.total, 0).label("total_deliveries"),
        func.coalesce(counts.c.succeeded, 0).label("successful_deliveries"),
        func.coalesce(counts.c.failed, 0).label("failed_deliveries"),
    ).outerjoin(counts, counts.c.endpoint_id == _endpoints.c.id)


async def insert_endpoint(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(_endpoints).values(**values))


async def get_endpoint(session: AsyncSession, owner_id: str, endpoint_id: str) -> Row[Any] | None:
    statement = _with_counts().where(_endpoint_of(owner_id, endpoint_id))
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def list_endpoints(session: AsyncSession, owner_id: str) -> Sequence[Row[Any]]:
    statement = (
        _with_counts()
        .where(_endpoints.c.owner_id == owner_id, _endpoints.c.mode == current_mode())
        .order_by(_endpoints.c.created_at)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


async def update_endpoint(
    session: AsyncSession, owner_id: str, endpoint_id: str, values: dict[str, Any]
) -> bool:
    result = await session.execute(
        update(_endpoints)
        .where(_endpoint_of(owner_id, endpoint_id))
        .values(**values, updated_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_endpoint(session: AsyncSession, owner_id: str, endpoint_id: str) -> bool:
    result = await session.execute(delete(_endpoints).where(_endpoint_of(owner_id, endpoint_id)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_unfanned_events(session: AsyncSession, limit: int) -> Sequence[Row[Any]]:
    """Events of the connection's mode not fanned out yet, oldest first, locked (SKIP
    LOCKED: workers share them). The other mode's events wait for a worker of that mode."""
    statement = (
        select(_events)
        .where(_events.c.fanned_out_at.is_(None), _events.c.mode == current_mode())
        .order_by(_events.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


#: How much older than a subscription an event may be and still reach it (see
#: ``subscriptions``): a delivery of an event of the minute before the subscription is
#: harmless, a missed one is not.
SUBSCRIPTION_GRACE: Final = timedelta(minutes=1)


async def subscriptions(session: AsyncSession, event_ids: list[str]) -> Sequence[Row[Any]]:
    """``(event_id, endpoint_id)`` for every event of ``event_ids`` and every endpoint it
    goes to, in one query: the event's owner's active endpoints of the event's mode (a
    sandbox event never reaches a live endpoint, nor the reverse) subscribed to its type,
    that existed when the event was written, give or take ``SUBSCRIPTION_GRACE``: a
    subscription never receives an older backlog, however late the fan-out runs, and never
    misses an event whose transaction committed after it was created (an endpoint is dated
    by its transaction's start, an event when written at its transaction's commit; the
    grace covers a commit that stalls across the endpoint's whole creation)."""
    if not event_ids:
        return []
    statement = (
        select(_events.c.id.label("event_id"), _endpoints.c.id.label("endpoint_id"))
        .join(
            _endpoints,
            (_endpoints.c.owner_id == _events.c.owner_id)
            & (_endpoints.c.mode == _events.c.mode)
            & _endpoints.c.is_active.is_(True)
            & (_events.c.type == any_(_endpoints.c.events))
            & (_endpoints.c.created_at <= _events.c.created_at + SUBSCRIPTION_GRACE),
        )
        .where(_events.c.id.in_(event_ids))
    )
    return cast(Sequence[Row[Any]], (await session.execute(statement)).all())


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        statement = pg_insert(_deliveries).on_conflict_do_nothing(
            index_elements=["endpoint_id", "event_id"]
        )
        await session.execute(statement, rows)


async def mark_fanned_out(session: AsyncSession, event_ids: list[str], now: datetime) -> None:
    if event_ids:
        await session.execute(
            update(_events).where(_events.c.id.in_(event_ids)).values(fanned_out_at=now)
        )


# The mode is the connection's setting, spelled by a constant: nothing of a request's is
# formatted into this SQL.
_CLAIM = text(
    f"""
    WITH busy AS (
        SELECT b.endpoint_id, b.running
          FROM unnest(CAST(:busy_ids AS text[]), CAST(:busy_counts AS integer[]))
               AS b(endpoint_id, running)
    ),
    ranked AS MATERIALIZED (
        SELECT d2.id,
               row_number() OVER (PARTITION BY d2.endpoint_id
                                  ORDER BY d2.event_created_at, d2.id)
                 + coalesce(busy.running, 0) AS slot
          FROM webhook_deliveries d2
          JOIN webhook_endpoints e ON e.id = d2.endpoint_id AND e.is_active
                                   AND e.mode = {CURRENT_MODE_SQL}
          LEFT JOIN busy ON busy.endpoint_id = d2.endpoint_id
         WHERE d2.status = 'pending' AND d2.next_attempt_at <= :now
    ),
    due AS (
        SELECT d3.id
          FROM ranked r
          JOIN webhook_deliveries d3 ON d3.id = r.id
         WHERE r.slot <= :per_endpoint
           AND d3.status = 'pending' AND d3.next_attempt_at <= :now
         ORDER BY r.slot, d3.event_created_at, d3.id
         LIMIT :limit
           FOR UPDATE OF d3 SKIP LOCKED
    )
    UPDATE webhook_deliveries d
       SET next_attempt_at = :lease_until
      FROM due
     WHERE d.id = due.id
    RETURNING d.*
    """  # noqa: S608 - a constant, see above
)


async def claim_due(
    session: AsyncSession,
    now: datetime,
    lease_until: datetime,
    limit: int,
    *,
    per_endpoint: int,
    busy: Mapping[str, int] | None = None,
) -> Sequence[Row[Any]]:
    """Lease up to ``limit`` due deliveries to this worker: the lease moves
    ``next_attempt_at`` ahead, so no other worker takes them until it runs out (a crashed
    worker's leases do).

    Only deliveries to endpoints of the connection's mode: a worker never sends the
    other mode's events.

    Fair across endpoints: at most ``per_endpoint`` deliveries of one endpoint, counting
    the ``busy`` ones (endpoint id -> attempts this worker still runs), its oldest first;
    every endpoint's first due delivery comes before any endpoint's second. Rows come
    back oldest event first."""
    busy = busy or {}
    params = {
        "now": now,
        "lease_until": lease_until,
        "limit": limit,
        "per_endpoint": per_endpoint,
        "busy_ids": list(busy),
        "busy_counts": list(busy.values()),
    }
    rows: Sequence[Row[Any]] = (await session.execute(_CLAIM, params)).all()
    return sorted(rows, key=lambda row: (row.event_created_at, row.id))


async def endpoints_by_id(session: AsyncSession, ids: list[str]) -> dict[str, Row[Any]]:
    statement = select(_endpoints).where(
        _endpoints.c.id.in_(ids), _endpoints.c.mode == current_mode()
    )
    return {row.id: row for row in (await session.execute(statement)).all()}


async def record_attempt(
    session: AsyncSession,
    delivery_id: int,
    attempt: dict[str, Any],
    delivery_values: dict[str, Any],
) -> None:
    await session.execute(insert(_attempts).values(delivery_id=delivery_id, **attempt))
    await session.execute(
        update(_deliveries).where(_deliveries.c.id == delivery_id).values(**delivery_values)
    )


async def mark_endpoint_health(
    session: AsyncSession, endpoint_id: str, *, ok: bool, now: datetime, disable_after: Any
) -> None:
    """Clear ``failing_since`` on success; set it on a first failure; disable the endpoint
    once it has failed for ``disable_after`` without a success."""
    if ok:
        await session.execute(
            update(_endpoints).where(_endpoints.c.id == endpoint_id).values(failing_since=None)
        )
        return
    await session.execute(
        update(_endpoints)
        .where(_endpoints.c.id == endpoint_id, _endpoints.c.failing_since.is_(None))
        .values(failing_since=now)
    )
    await session.execute(
        update(_endpoints)
        .where(
            _endpoints.c.id == endpoint_id,
            _endpoints.c.is_active.is_(True),
            _endpoints.c.failing_since <= now - disable_after,
        )
        .values(
            is_active=False,
            disabled_reason=f"disabled at {now.isoformat()}: every delivery failed for "
            f"{disable_after.days} days",
        )
    )


async def list_attempts(
    session: AsyncSession, owner_id: str, endpoint_id: str, limit: int
) -> Sequence[Row[Any]]:
    statement = (
        select(
            _attempts,
            _deliveries.c.event_id,
            _deliveries.c.event_type,
            _deliveries.c.status.label("delivery_status"),
        )
        .join(_deliveries, _deliveries.c.id == _attempts.c.delivery_id)
        .where(
            _deliveries.c.owner_id == owner_id,
            _deliveries.c.endpoint_id == endpoint_id,
            _delivery_of_this_mode(),
        )
        .order_by(_attempts.c.id.desc())
        .limit(limit)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


async def reschedule(
    session: AsyncSession, owner_id: str, endpoint_id: str, event_id: str, now: datetime
) -> bool:
    result = await session.execute(
        update(_deliveries)
        .where(
            and_(
                _deliveries.c.owner_id == owner_id,
                _deliveries.c.endpoint_id == endpoint_id,
                _deliveries.c.event_id == event_id,
                _delivery_of_this_mode(),
            )
        )
        .values(status="pending", next_attempt_at=now, attempts=0)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
