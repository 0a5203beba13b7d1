from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, column, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from app.models.payment import AuditRecord, IdempotencyRecord, OutboxEvent

_audit = cast(Table, AuditRecord.__table__)
_events = cast(Table, OutboxEvent.__table__)
_idempotency = cast(Table, IdempotencyRecord.__table__)

#: Idempotency columns a new record replaces in an expired one of the same key.
_IDEMPOTENCY_REPLACED = (
    "fingerprint",
    "key_id",
    "agent_id",
    "scopes",
    "status_code",
    "content_type",
    "body",
    "expires_at",
)
_AUDIT_TEXT = (
    "owner_id",
    "event",
    "key_id",
    "request_id",
    "subject_type",
    "subject_id",
    "agent_id",
    "currency",
)
_EVENT_TEXT = ("id", "owner_id", "type")


def _from_json_rows(table: Table, name: str, text_columns: tuple[str, ...], extra: Any) -> Any:
    """``INSERT INTO table ... SELECT`` the rows of a JSON array parameter ``name``, in
    array order. The SQL is the same whatever the number of rows (a multi-row ``VALUES``
    would be compiled anew for every call)."""
    rows = (
        func.jsonb_array_elements(bindparam(name, type_=JSONB))
        .table_valued(column("value", JSONB), with_ordinality="ord")
        .render_derived()
    )
    columns = [rows.c.value[column].astext.label(column) for column in text_columns]
    columns += [expression(rows.c.value).label(column) for column, expression in extra]
    select_rows = select(*columns).order_by(rows.c.ord)
    return insert(table).from_select([column.name for column in columns], select_rows)


_AUDIT_INSERT = _from_json_rows(
    _audit,
    "audit",
    _AUDIT_TEXT,
    [
        ("amount", lambda value: value["amount"].astext.cast(BigInteger)),
        ("data", lambda value: value["data"]),
    ],
)
_EVENTS_INSERT = _from_json_rows(
    _events,
    "events",
    _EVENT_TEXT,
    [
        ("data", lambda value: value["data"]),
        # When the event is written, at its transaction's commit — not when that
        # transaction began (``now()``), which would date a payment's events before it.
        ("created_at", lambda value: func.clock_timestamp()),
    ],
)


#: The columns of an idempotency record as ``write`` receives them.
_IDEMPOTENCY_COLUMNS = ("owner_id", "method", "path", "key", *_IDEMPOTENCY_REPLACED)


def _idempotency_upsert() -> Any:
    """The record's insert, replacing an expired one of its key (parameters
    ``idempotency_<column>``)."""
    upsert = insert(_idempotency).values(
        {
            column: bindparam(f"idempotency_{column}", type_=_idempotency.c[column].type)
            for column in _IDEMPOTENCY_COLUMNS
        }
    )
    return upsert.on_conflict_do_update(
        index_elements=["owner_id", "mode", "method", "path", "key"],
        set_={column: upsert.excluded[column] for column in _IDEMPOTENCY_REPLACED}
        | {"created_at": func.now()},
    )


def _statement(audit: bool, events: bool, idempotency: bool) -> Any:
    statement = select(literal(1))
    if audit:
        statement = statement.add_cte(_AUDIT_INSERT.cte("audit_rows"))
    if events:
        statement = statement.add_cte(_EVENTS_INSERT.cte("event_rows"))
    if idempotency:
        statement = statement.add_cte(_idempotency_upsert().cte("idempotency_row"))
    return statement


#: One statement per combination of parts, built once: a commit builds no SQL.
_STATEMENTS = {
    (audit, events, idempotency): _statement(audit, events, idempotency)
    for audit in (False, True)
    for events in (False, True)
    for idempotency in (False, True)
}


def write(
    session: Session,
    audit: list[dict[str, Any]],
    events: list[dict[str, Any]],
    idempotency: dict[str, Any] | None,
) -> None:
    """Insert audit rows, outbox events and at most one idempotency record in ONE
    statement: each an ``INSERT ... SELECT`` from a JSON array (or the record's values),
    a data-modifying CTE of one ``SELECT``. Every row takes the connection's mode (the
    columns' default). An idempotency record replaces an expired one of its key and mode
    (a live one is never there: the key's claim found none).

    Synchronous: it runs from the session's ``before_commit`` hook (inside the async
    session's greenlet, so the driver is still awaited)."""
    if not (audit or events or idempotency is not None):
        return
    params: dict[str, Any] = {}
    if audit:
        params["audit"] = audit
    if events:
        params["events"] = events
    if idempotency is not None:
        params.update(
            {f"idempotency_{column}": idempotency[column] for column in _IDEMPOTENCY_COLUMNS}
        )
    session.execute(_STATEMENTS[bool(audit), bool(events), idempotency is not None], params)
