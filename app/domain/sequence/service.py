"""The Sequence rail: an owner's gateway to its GetSequence organisation (seed ``000``),
on Sequence's official Platform API (``../shared/sequence/PLATFORM_API.md``), and wallet
funding from a pod.

Every transfer, the gateway's or a funding's, passes the same safeguards: the agent's
state, flag and risk when it funds an agent; the owner's per-transfer limit; and the
day's limit, reserved in a committed database transaction **before** Sequence is called
(a conditional UPDATE of one row: no race can pass it), given back only when Sequence
definitely refused or failed the transfer, kept while the outcome is unknown. The
transfer's Purser id is the ``idempotency-key`` Sequence sees, so a resend — by a retry,
by the client, or by the poller after a crash — can never make a second transfer. The
poller (``resolve_due``) settles what a request left unresolved.

A transfer is therefore one use case in three transactions, on purpose: reserve and
record (committed before the call), the call, then its outcome.
"""

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.domain.agent import service as agent_service
from app.domain.apikey.schemas import Principal
from app.domain.audit import service as audit_service
from app.domain.event import service as event_service
from app.domain.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from app.domain.idempotency.service import fingerprint
from app.domain.ledger import service as ledger
from app.domain.ledger.schemas import Leg
from app.domain.payment import service as payment_service
from app.domain.payment.errors import PaymentRefused
from app.domain.payment.service import CallContext
from app.domain.sequence import repository
from app.domain.sequence.errors import (
    AmbiguousPodName,
    FundingNotFound,
    InstantNotSupported,
    InvalidFunding,
    InvalidTransfer,
    NotConnected,
    PodNotFound,
    SequenceTransferNotFound,
    TransferLimitExceeded,
    TransferRefused,
    UpstreamFailed,
)
from app.domain.sequence.schemas import (
    AccountItem,
    Accounts,
    ActivityPage,
    ActivitySummary,
    ConnectionPut,
    ConnectionRead,
    FundingCreate,
    FundingRead,
    LimitsPut,
    LimitsRead,
    Pod,
    PodDetail,
    TotalBalance,
    TransferCreate,
    TransferResult,
    TransferSummary,
    dollars,
)
from app.domain.wallet import service as wallet_service
from app.integrations.sequence.client import SequenceClient
from app.integrations.sequence.errors import SequenceAmbiguous, SequenceError, SequenceNotFound
from app.integrations.sequence.schemas import TERMINAL_STATUSES, Account, Transfer
from app.kit.encryption import SecretBox
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, scale_of, to_minor
from app.kit.time import window_starts
from app.models.ledger import AccountKind, EntryKind

#: Sequence's production base URL (PLATFORM_API.md §1, §15.10).
PLATFORM_URL = "https://api.getsequence.io/platform/v1"
#: The account wallet fundings go to when ``SEQUENCE_SETTLEMENT_ACCOUNT_ID`` is unset.
SETTLEMENT_ACCOUNT_NAME = "Purser Settlement"
#: Wallet currencies funded at par from dollars (1 cent = 1 cent).
PAR_CURRENCIES = frozenset({"USD", "USDC", "USDT", "PYUSD"})
#: A request still sending its transfer holds it this long; after that a retry or the
#: poller takes over (resending under the same idempotency key, so nothing doubles).
IN_FLIGHT = timedelta(seconds=30)
#: How the poller spaces its checks of one transfer (seconds, by attempt), then hourly
#: (PLATFORM_API.md §5: poll transfers no more than needed).
_BACKOFF = (2, 5, 10, 30, 60, 300, 900)
#: Sequence keeps an idempotency key 24 h (§7): past that a resend could make a second
#: transfer, so an unconfirmed transfer is then failed for an operator to reconcile.
IDEMPOTENCY_WINDOW = timedelta(hours=23)

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Connection:
    source: Literal["owner", "default", "sandbox"]
    api_key: str
    base_url: str


@dataclass
class _Snapshot:
    at: float
    accounts: list[Account]


@dataclass
class Rail:
    """The Sequence rail of one process: resolves owners' connections, keeps one adapter
    client per key (its rate budget is the key's), and caches each owner's account
    balances for ``settings.sequence_cache_seconds`` (Sequence allows 100 requests a
    minute; a balance costs one request per account, §14)."""

    settings: Settings
    box: SecretBox | None
    sandbox_url: str | None = None
    client_factory: Callable[[str, str], SequenceClient] | None = None
    _clients: dict[tuple[str, str], SequenceClient] = field(default_factory=dict)
    _snapshots: dict[str, _Snapshot] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def connection(self, session: AsyncSession, owner_id: str) -> Connection:
        """The owner's connection: its own key, else the deployment's default, else (in
        sandbox) the sandbox Sequence. Raises ``NotConnected`` (409)."""
        row = await repository.get_settings(session, owner_id)
        if row is not None and row.api_key_ciphertext is not None:
            if self.box is None:
                raise NotConnected("the owner's Sequence key cannot be read: no secret key")
            return Connection(
                "owner",
                self.box.decrypt(row.api_key_ciphertext),
                row.base_url or self.settings.sequence_base_url or PLATFORM_URL,
            )
        if self.settings.sequence_api_key:
            return Connection(
                "default",
                self.settings.sequence_api_key,
                self.settings.sequence_base_url or PLATFORM_URL,
            )
        if self.settings.sequence_uses_sandbox and self.sandbox_url is not None:
            return Connection("sandbox", sandbox_key(owner_id, self.settings), self.sandbox_url)
        raise NotConnected(
            "no Sequence connection: PUT /api/v1/sequence/connection with a Platform API key"
        )

    def client(self, connection: Connection) -> SequenceClient:
        key = (connection.base_url, connection.api_key)
        client = self._clients.get(key)
        if client is None:
            factory = self.client_factory or (
                lambda api_key, base_url: SequenceClient(api_key, base_url)
            )
            client = factory(connection.api_key, connection.base_url)
            self._clients[key] = client
        return client

    def forget(self, owner_id: str) -> None:
        self._snapshots.pop(owner_id, None)

    async def accounts(self, connection: Connection, owner_id: str) -> list[Account]:
        """Every active account with its balance, from this process's snapshot if fresh."""
        snapshot = self._snapshots.get(owner_id)
        ttl = self.settings.sequence_cache_seconds
        if snapshot is not None and time.monotonic() - snapshot.at < ttl:
            return snapshot.accounts
        lock = self._locks.setdefault(owner_id, asyncio.Lock())
        async with lock:
            snapshot = self._snapshots.get(owner_id)
            if snapshot is not None and time.monotonic() - snapshot.at < ttl:
                return snapshot.accounts
            client = self.client(connection)
            summaries = await _upstream(client.list_accounts())
            accounts = [await _upstream(client.get_account(item.id)) for item in summaries]
            self._snapshots[owner_id] = _Snapshot(time.monotonic(), accounts)
            return accounts

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def sandbox_key(owner_id: str, settings: Settings) -> str:
    """The sandbox Sequence key of an owner in this mode: one sandbox organisation each."""
    digest = hashlib.sha256(f"{settings.mode.value}\x1f{owner_id}".encode()).hexdigest()
    return f"sk_sandbox_{digest[:32]}"


async def _upstream(call: Awaitable[T]) -> T:
    """An adapter call whose failure is the gateway's 502 (seed ``000``: upstream failure)."""
    try:
        return await call
    except SequenceNotFound:
        raise
    except SequenceError as error:
        raise UpstreamFailed(f"Sequence: {error.code or error.status}: {error.message}") from None


# -- connection and limits -------------------------------------------------------------


async def get_connection(session: AsyncSession, rail: Rail, owner_id: str) -> ConnectionRead:
    row = await repository.get_settings(session, owner_id)
    try:
        connection = await rail.connection(session, owner_id)
    except NotConnected:
        return ConnectionRead(source="none", key_hint=None, base_url=None, updated_at=None)
    return ConnectionRead(
        source=connection.source,
        key_hint=(
            row.key_hint if connection.source == "owner" and row else "…" + connection.api_key[-4:]
        ),
        base_url=connection.base_url,
        updated_at=row.updated_at if row is not None else None,
    )


async def put_connection(
    session: AsyncSession,
    rail: Rail,
    principal: Principal,
    payload: ConnectionPut,
    request_id: str | None,
) -> ConnectionRead:
    """Store the owner's Platform API key, encrypted (``PURSER_SECRET_KEY``)."""
    if rail.box is None:
        raise NotConnected("Sequence keys cannot be stored: PURSER_SECRET_KEY is not set")
    await repository.upsert_settings(
        session,
        principal.owner_id,
        {
            "api_key_ciphertext": rail.box.encrypt(payload.api_key),
            "key_hint": "…" + payload.api_key[-4:],
            "base_url": payload.base_url,
        },
    )
    rail.forget(principal.owner_id)
    await _audit(session, principal, request_id, "sequence_connected", principal.owner_id, {})
    return await get_connection(session, rail, principal.owner_id)


async def delete_connection(
    session: AsyncSession, rail: Rail, principal: Principal, request_id: str | None
) -> ConnectionRead:
    if await repository.delete_settings_key(session, principal.owner_id):
        await _audit(
            session, principal, request_id, "sequence_disconnected", principal.owner_id, {}
        )
    rail.forget(principal.owner_id)
    return await get_connection(session, rail, principal.owner_id)


async def _limits(session: AsyncSession, settings: Settings, owner_id: str) -> tuple[int, int]:
    row = await repository.get_settings(session, owner_id)
    per_transfer = (row.max_transfer_cents if row else None) or settings.sequence_max_transfer_cents
    daily = (
        row.max_daily_transfer_cents if row else None
    ) or settings.sequence_max_daily_transfer_cents
    return per_transfer, daily


def _today(settings: Settings, now: datetime) -> date:
    """The day whose limit a transfer counts in: calendar day in the limits time zone."""
    return window_starts(now, settings.limits_zone)["day"]


async def get_limits(
    session: AsyncSession, settings: Settings, owner_id: str, now: datetime
) -> LimitsRead:
    per_transfer, daily = await _limits(session, settings, owner_id)
    used = await repository.used_on(session, owner_id, _today(settings, now))
    return LimitsRead(
        max_transfer_cents=per_transfer,
        max_daily_transfer_cents=daily,
        used_today_cents=used,
        remaining_today_cents=max(daily - used, 0),
    )


async def put_limits(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    payload: LimitsPut,
    now: datetime,
    request_id: str | None,
) -> LimitsRead:
    """Override the owner's limits (``null``: back to the settings' defaults)."""
    values = {
        "max_transfer_cents": payload.max_transfer_cents,
        "max_daily_transfer_cents": payload.max_daily_transfer_cents,
    }
    await repository.upsert_settings(session, principal.owner_id, values)
    await _audit(
        session, principal, request_id, "sequence_limits_changed", principal.owner_id, values
    )
    return await get_limits(session, settings, principal.owner_id, now)


# -- gateway reads -----------------------------------------------------------------------


def _balance(account: Account) -> int | None:
    return None if account.balance is None else account.balance.balance_in_cents


def _pod(account: Account) -> Pod:
    cents = _balance(account)
    return Pod(
        id=account.id,
        name=account.name,
        balance_cents=cents,
        balance=None if cents is None else dollars(cents),
    )


async def pods(rail: Rail, connection: Connection, owner_id: str) -> list[Pod]:
    return [_pod(a) for a in await rail.accounts(connection, owner_id) if a.type == "POD"]


async def total_balance(rail: Rail, connection: Connection, owner_id: str) -> TotalBalance:
    """The sum over pods with a known balance; ``pod_count`` counts every pod."""
    found = await pods(rail, connection, owner_id)
    total = sum(pod.balance_cents or 0 for pod in found)
    return TotalBalance(
        total_balance_cents=total, total_balance=dollars(total), pod_count=len(found)
    )


async def pod_by_name(rail: Rail, connection: Connection, owner_id: str, name: str) -> Pod:
    """The pod named ``name`` (case-insensitive), else the one pod whose name contains it
    (seed ``000``). Raises ``PodNotFound`` (404) or ``AmbiguousPodName`` (409)."""
    found = await pods(rail, connection, owner_id)
    wanted = name.casefold()
    exact = [pod for pod in found if pod.name.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [pod for pod in found if wanted in pod.name.casefold()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise PodNotFound(f"Pod '{name}' not found")
    names = ", ".join(sorted(pod.name for pod in partial))
    raise AmbiguousPodName(f"Pod name '{name}' matches several pods: {names}")


def _summary(transfer: Transfer) -> TransferSummary:
    def party(ref: Any) -> dict[str, Any] | None:
        return None if ref is None else {"id": ref.id, "name": ref.name, "type": ref.type}

    return TransferSummary(
        id=transfer.id,
        status=transfer.status,
        amount_cents=transfer.amount_in_cents,
        amount=dollars(transfer.amount_in_cents),
        direction=transfer.direction,
        activity_type=transfer.origin,
        source=party(transfer.source),
        destination=party(transfer.destination),
        error_reason=transfer.error_code,
        created_at=transfer.created_at,
        completed_at=transfer.completed_at,
    )


def is_sequence_id(value: str) -> bool:
    """Whether ``value`` can be a Sequence id: ids are UUIDs (PLATFORM_API.md §13.3), so
    anything else is answered 404 without asking Sequence."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


async def pod_detail(rail: Rail, connection: Connection, pod_id: str) -> PodDetail:
    """One pod, read now, with its five most recent transfers. Raises ``PodNotFound``."""
    if not is_sequence_id(pod_id):
        raise PodNotFound(f"Pod {pod_id} not found")
    client = rail.client(connection)
    try:
        account = await _upstream(client.get_account(pod_id))
    except SequenceNotFound:
        raise PodNotFound(f"Pod {pod_id} not found") from None
    if account.type != "POD":
        raise PodNotFound(f"Pod {pod_id} not found")
    recent = await _upstream(client.list_account_transfers(pod_id, page_size=5))
    pod = _pod(account)
    balance = account.balance
    return PodDetail(
        **pod.model_dump(),
        description=account.description,
        goal_amount_cents=account.savings_target_in_cents,
        available_balance_cents=None if balance is None else balance.available_balance_in_cents,
        balance_last_updated_at=None if balance is None else balance.balance_last_updated_at,
        recent_transfers=[_summary(t) for t in recent.items],
    )


def _item(account: Account) -> AccountItem:
    cents = _balance(account)
    return AccountItem(
        id=account.id,
        name=account.name,
        type=account.type,
        institution=account.institution_name,
        external_account_type=account.external_account_type,
        balance_cents=cents,
        balance=None if cents is None else dollars(cents),
    )


async def accounts(rail: Rail, connection: Connection, owner_id: str) -> Accounts:
    found = await rail.accounts(connection, owner_id)
    return Accounts(
        pods=[_item(a) for a in found if a.type == "POD"],
        ports=[_item(a) for a in found if a.type == "INCOME_SOURCE"],
        accounts=[_item(a) for a in found if a.type == "EXTERNAL_ACCOUNT"],
    )


#: The seed's (the webapp's) activity words, as Platform API values (§14.1).
_STATUS_WORDS = {"FAILED": {"INCOMPLETE", "ERROR"}}
_DIRECTION_WORDS = {"INCOMING": {"MONEY_IN"}, "OUTGOING": {"MONEY_OUT"}}
_TYPE_WORDS = {
    "ONE_TIME_TRANSFER": {"USER", "USER_PULL"},
    "PULLED_FROM_SEQUENCE": {"EXTERNAL_PULL"},
    "MONEY_IN": {"DIRECT_DEPOSIT", "CHECK_DEPOSIT", "USER_PULL"},
}
#: Most transfers the activity routes read upstream for one answer (pages of 100).
_MAX_ACTIVITY_PAGES = 10


def _words(values: str | None, table: dict[str, set[str]]) -> set[str] | None:
    if not values:
        return None
    found: set[str] = set()
    for word in (part.strip().upper() for part in values.split(",")):
        if word:
            found |= table.get(word, {word})
    return found or None


async def _all_transfers(
    client: SequenceClient, account_ids: list[str], *, since: datetime | None
) -> list[Transfer]:
    seen: dict[str, Transfer] = {}
    for page in range(1, _MAX_ACTIVITY_PAGES + 1):
        result = await _upstream(
            client.list_transfers(account_ids, from_=since, page=page, page_size=100)
        )
        for transfer in result.items:
            seen.setdefault(transfer.id, transfer)
        if not result.has_next_page or not result.items:
            break
    return sorted(seen.values(), key=lambda t: t.created_at or _EPOCH, reverse=True)


async def activity_summary(
    rail: Rail, connection: Connection, owner_id: str, now: datetime
) -> ActivitySummary:
    """This calendar month (UTC): transfers, distinct rule executions among them, and the
    completed incoming total. An approximation of the webapp's summary, which the Platform
    API does not offer (§14)."""
    client = rail.client(connection)
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ids = [a.id for a in await rail.accounts(connection, owner_id)]
    transfers = await _all_transfers(client, ids, since=start) if ids else []
    incoming = sum(
        t.amount_in_cents for t in transfers if t.direction == "MONEY_IN" and t.status == "COMPLETE"
    )
    return ActivitySummary(
        transfer_count=len(transfers),
        rule_executions=len({t.rule_execution_id for t in transfers if t.rule_execution_id}),
        total_incoming_cents=incoming,
        total_incoming=dollars(incoming),
        period_start=start,
    )


async def activity(
    rail: Rail,
    connection: Connection,
    owner_id: str,
    *,
    first: int,
    after: str | None,
    statuses: str | None,
    directions: str | None,
    activity_types: str | None,
) -> ActivityPage:
    """Transfers across the owner's accounts, newest first, ``first`` at a time; ``after``
    is the previous page's ``end_cursor``. Filters are comma-separated, in the seed's or
    Sequence's words, applied to each page (Sequence filters take one value each)."""
    page = 1
    if after is not None:
        if not after.isdigit() or not 1 <= int(after) <= 10_000:
            raise InvalidTransfer("after must be an end_cursor of this listing", param="after")
        page = int(after)
    client = rail.client(connection)
    ids = [a.id for a in await rail.accounts(connection, owner_id)]
    if not ids:
        return ActivityPage(transfers=[], has_next_page=False, end_cursor=None)
    result = await _upstream(client.list_transfers(ids, page=page, page_size=first))
    wanted = (
        _words(statuses, _STATUS_WORDS),
        _words(directions, _DIRECTION_WORDS),
        _words(activity_types, _TYPE_WORDS),
    )
    items = [
        t
        for t in result.items
        if (wanted[0] is None or t.status in wanted[0])
        and (wanted[1] is None or t.direction in wanted[1])
        and (wanted[2] is None or t.origin in wanted[2])
    ]
    return ActivityPage(
        transfers=[_summary(t) for t in items],
        has_next_page=result.has_next_page,
        end_cursor=str(page + 1) if result.has_next_page else None,
    )


async def sequence_id_of(session: AsyncSession, owner_id: str, transfer_id: str) -> str:
    """Sequence's id of a transfer named by Purser's id (``seqt_…``, ``fund_…``) once
    Sequence accepted it, or ``transfer_id`` itself. Raises ``SequenceTransferNotFound``."""
    if not transfer_id.startswith(("seqt_", "fund_")):
        return transfer_id
    row = await repository.get_transfer(session, owner_id, transfer_id)
    if row is None or row.sequence_transfer_id is None:
        raise SequenceTransferNotFound(f"Transfer {transfer_id} not found")
    sequence_id: str = row.sequence_transfer_id
    return sequence_id


async def transfer_detail(rail: Rail, connection: Connection, transfer_id: str) -> TransferSummary:
    """A transfer by Sequence's id. Raises ``SequenceTransferNotFound`` (404)."""
    if not is_sequence_id(transfer_id):
        raise SequenceTransferNotFound(f"Transfer {transfer_id} not found")
    try:
        transfer = await _upstream(rail.client(connection).get_transfer(transfer_id))
    except SequenceNotFound:
        raise SequenceTransferNotFound(f"Transfer {transfer_id} not found") from None
    return _summary(transfer)


# -- transfers ---------------------------------------------------------------------------


async def _audit(
    session: AsyncSession,
    principal: Principal | None,
    request_id: str | None,
    event: str,
    owner_id: str,
    data: dict[str, Any],
    *,
    subject_id: str | None = None,
    amount: int | None = None,
    agent_id: str | None = None,
) -> None:
    await audit_service.append(
        session,
        [
            audit_service.record(
                owner_id=owner_id,
                event=event,
                subject_type="sequence_transfer" if subject_id else "sequence",
                subject_id=subject_id or owner_id,
                key_id=principal.key_id if principal else "system",
                request_id=request_id,
                agent_id=agent_id,
                amount=amount,
                currency="USD" if amount is not None else None,
                data=data,
            )
        ],
    )


def _transfer_audit(row: Row[Any]) -> dict[str, Any]:
    return {
        "source": row.source_id,
        "destination": row.destination_id,
        "kind": row.kind,
        "transfer_id": row.sequence_transfer_id,
    }


def _result(row: Row[Any]) -> TransferResult:
    status: Literal["completed", "pending", "failed"] = (
        "completed"
        if row.status == "completed"
        else "failed"
        if row.status == "failed"
        else "pending"
    )
    return TransferResult(
        status=status,
        transfer_id=row.sequence_transfer_id,
        id=row.id,
        amount_cents=row.amount_cents,
        source_id=row.source_id,
        destination_id=row.destination_id,
        sequence_status=row.sequence_status,
        error=row.error_message,
    )


@dataclass(frozen=True, slots=True)
class _Request:
    """What a transfer asks, and who asked."""

    principal: Principal
    request_id: str | None
    client_key: str | None
    body: bytes


async def _reserve(
    session: AsyncSession,
    settings: Settings,
    request: _Request,
    values: dict[str, Any],
    now: datetime,
) -> Row[Any]:
    """Check the per-transfer limit, reserve the day's, record the transfer (``reserved``)
    and audit ``transfer_requested``. Raises ``TransferLimitExceeded`` (400, the seed's
    messages), recording nothing."""
    owner_id = request.principal.owner_id
    amount = values["amount_cents"]
    per_transfer, daily = await _limits(session, settings, owner_id)
    if amount > per_transfer:
        raise TransferLimitExceeded(
            f"Amount {amount} cents exceeds per-transfer limit of {per_transfer} cents",
            param="amount_cents",
        )
    day = _today(settings, now)
    if await repository.reserve(session, owner_id, day, amount, daily) is None:
        remaining = max(daily - await repository.used_on(session, owner_id, day), 0)
        raise TransferLimitExceeded(
            f"Amount {amount} cents exceeds daily remaining limit of {remaining} cents",
            param="amount_cents",
        )
    row = await repository.insert_transfer(
        session,
        {
            **values,
            "owner_id": owner_id,
            "day": day,
            "status": "reserved",
            "client_key": request.client_key,
            "fingerprint": fingerprint(request.body) if request.client_key else None,
            "key_id": request.principal.key_id,
            "request_id": request.request_id,
            "next_check_at": now + IN_FLIGHT,
        },
    )
    await _audit(
        session,
        request.principal,
        request.request_id,
        "transfer_requested",
        owner_id,
        _transfer_audit(row),
        subject_id=row.id,
        amount=amount,
        agent_id=row.agent_id,
    )
    return row


async def _existing(
    session: AsyncSession, request: _Request, now: datetime
) -> tuple[Row[Any] | None, bool]:
    """The transfer an earlier request with this Idempotency-Key made, and whether this
    request should (re)send it. Raises ``IdempotencyKeyReused`` (422: another body) and
    ``IdempotencyKeyInUse`` (409: the first request is still sending it)."""
    if request.client_key is None:
        return None, False
    row = await repository.get_by_client_key(
        session, request.principal.owner_id, request.client_key, lock=True
    )
    if row is None:
        return None, False
    if row.fingerprint != fingerprint(request.body) or row.key_id != request.principal.key_id:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request", param="Idempotency-Key"
        )
    if row.status != "reserved":
        return row, False
    if row.updated_at > now - IN_FLIGHT and row.attempts == 0:
        raise IdempotencyKeyInUse(
            "A transfer with this Idempotency-Key is still being sent; retry shortly",
            param="Idempotency-Key",
        )
    return row, True


async def _send(
    sessionmaker: async_sessionmaker[AsyncSession],
    rail: Rail,
    connection: Connection,
    row: Row[Any],
    settings: Settings,
    now: datetime,
) -> Row[Any]:
    """Send ``row`` to Sequence under its id as idempotency key, wait up to
    ``sequence_wait_seconds`` for a final status, and record what is known."""
    client = rail.client(connection)
    try:
        transfer = await client.create_transfer(
            idempotency_key=row.id,
            source_account_id=row.source_id,
            destination_account_id=row.destination_id,
            amount_in_cents=row.amount_cents,
            description=row.description or None,
        )
    except SequenceAmbiguous as error:
        return await _note_unknown(
            sessionmaker, row, f"{error.code or 'no answer'}: {error.message}", now
        )
    except SequenceError as error:
        if not error.definite:
            return await _note_unknown(sessionmaker, row, error.message, now)
        return await _fail(sessionmaker, row, error.code or "REFUSED", error.message, None)
    # The poller leaves it to this request while the request waits for it.
    row = await _accepted(
        sessionmaker, row, transfer, now + timedelta(seconds=settings.sequence_wait_seconds)
    )
    if transfer.status not in TERMINAL_STATUSES and settings.sequence_wait_seconds > 0:
        try:
            transfer = await client.wait_for_transfer(
                transfer.id, timeout=settings.sequence_wait_seconds
            )
        except SequenceError:
            return row  # the poller follows it up
    async with sessionmaker() as session:
        resolved = None
        if transfer.status in TERMINAL_STATUSES:
            resolved = await settle(session, row, transfer, now=now)
        # Settled here, or by the poller meanwhile: answer with the newest state.
        resolved = resolved or await repository.get_transfer(session, row.owner_id, row.id)
        await session.commit()
    return resolved or row


async def _note_unknown(
    sessionmaker: async_sessionmaker[AsyncSession], row: Row[Any], message: str, now: datetime
) -> Row[Any]:
    """No definite answer: the reservation stays, the poller resends the same key soon."""
    async with sessionmaker() as session:
        updated = await repository.update_transfer(
            session,
            row.id,
            {
                "attempts": row.attempts + 1,
                "error_message": f"outcome unknown ({message}); checking again",
                "next_check_at": now + timedelta(seconds=_BACKOFF[0]),
            },
            from_statuses=["reserved"],
        )
        await session.commit()
    return updated or row


async def _accepted(
    sessionmaker: async_sessionmaker[AsyncSession], row: Row[Any], transfer: Transfer, now: datetime
) -> Row[Any]:
    async with sessionmaker() as session:
        updated = await repository.update_transfer(
            session,
            row.id,
            {
                "status": "submitted",
                "sequence_transfer_id": transfer.id,
                "sequence_status": transfer.status,
                "error_message": None,
                "attempts": row.attempts + 1,
                "next_check_at": now + timedelta(seconds=_BACKOFF[0]),
            },
            from_statuses=["reserved"],
        )
        await session.commit()
    return updated or row


async def _fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    row: Row[Any],
    code: str,
    message: str,
    transfer: Transfer | None,
) -> Row[Any]:
    async with sessionmaker() as session:
        failed = await _mark_failed(session, row, code, message, transfer)
        await session.commit()
    return failed or row


async def _mark_failed(
    session: AsyncSession, row: Row[Any], code: str, message: str, transfer: Transfer | None
) -> Row[Any] | None:
    """Fail the transfer (once), give its reservation back, audit ``transfer_failed``; a
    funding emits ``wallet.funding_failed`` and credits nothing."""
    failed = await repository.update_transfer(
        session,
        row.id,
        {
            "status": "failed",
            "error_code": code,
            "error_message": f"Transfer failed: {code}: {message}"
            if message
            else f"Transfer failed: {code}",
            "sequence_status": transfer.status if transfer else row.sequence_status,
            "resolved_at": datetime.now(UTC),
        },
        from_statuses=["reserved", "submitted"],
    )
    if failed is None:
        return None
    await repository.release(session, row.owner_id, row.day, row.amount_cents)
    await _audit(
        session,
        None,
        row.request_id,
        "transfer_failed",
        row.owner_id,
        {**_transfer_audit(failed), "error": failed.error_message},
        subject_id=row.id,
        amount=row.amount_cents,
        agent_id=row.agent_id,
    )
    if row.kind == "funding":
        await event_service.emit(
            session,
            [
                event_service.event(
                    row.owner_id,
                    "wallet.funding_failed",
                    {"funding": _funding(failed).model_dump(mode="json")},
                )
            ],
        )
    return failed


async def settle(
    session: AsyncSession, row: Row[Any], transfer: Transfer, *, now: datetime
) -> Row[Any] | None:
    """Record a final status of Sequence's: ``COMPLETE`` completes the transfer (audit
    ``transfer_completed`` with Sequence's id; a funding credits its wallet from the rail
    clearing account, ``wallet.funded``), anything else fails it. Exactly once: the status
    moves by a conditional UPDATE and the credit's ledger reference is the funding's id.
    None if another resolver got there first."""
    if transfer.status != "COMPLETE":
        return await _mark_failed(
            session, row, transfer.error_code or transfer.status, transfer.status, transfer
        )
    completed = await repository.update_transfer(
        session,
        row.id,
        {
            "status": "completed",
            "sequence_transfer_id": transfer.id,
            "sequence_status": transfer.status,
            "error_message": None,
            "resolved_at": now,
        },
        from_statuses=["reserved", "submitted"],
    )
    if completed is None:
        return None
    if row.kind == "funding":
        completed = await _credit(session, completed)
    await _audit(
        session,
        None,
        row.request_id,
        "transfer_completed",
        row.owner_id,
        _transfer_audit(completed),
        subject_id=row.id,
        amount=row.amount_cents,
        agent_id=row.agent_id,
    )
    return completed


async def _credit(session: AsyncSession, row: Row[Any]) -> Row[Any]:
    amount = Money(row.credit_amount, row.credit_currency)
    clearing = await ledger.system_account_id(session, AccountKind.rail_clearing, amount.currency)
    wallet = await wallet_service.get_agent_wallet(session, row.owner_id, row.agent_id)
    entry = await ledger.post_entry(
        session,
        kind=EntryKind.funding,
        legs=[
            Leg(clearing, Money(-amount.minor, amount.currency)),
            Leg(wallet.available_account_id, amount),
        ],
        reference=f"funding:{row.id}",
        description=f"Sequence transfer {row.sequence_transfer_id}",
    )
    credited = await repository.update_transfer(
        session, row.id, {"entry_id": entry.id}, from_statuses=["completed"]
    )
    assert credited is not None
    await event_service.emit(
        session,
        [
            event_service.event(
                row.owner_id,
                "wallet.funded",
                {"funding": _funding(credited).model_dump(mode="json")},
            )
        ],
    )
    return credited


async def _run_transfer(
    sessionmaker: async_sessionmaker[AsyncSession],
    rail: Rail,
    settings: Settings,
    request: _Request,
    values: dict[str, Any],
    now: datetime,
    *,
    before_reserve: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> Row[Any]:
    """The three steps of a transfer (module docstring): an earlier request's transfer
    with the same Idempotency-Key is returned (or resent), never made twice."""
    async with sessionmaker() as session:
        connection = await rail.connection(session, request.principal.owner_id)
        existing, resend = await _existing(session, request, now)
        if existing is not None and not resend:
            await session.commit()
            return existing
        if existing is None:
            if before_reserve is not None:
                await before_reserve(session)
            row = await _reserve(session, settings, request, values, now)
        else:
            row = existing
        await session.commit()
    return await _send(sessionmaker, rail, connection, row, settings, now)


async def create_transfer(
    sessionmaker: async_sessionmaker[AsyncSession],
    rail: Rail,
    settings: Settings,
    principal: Principal,
    payload: TransferCreate,
    *,
    client_key: str | None,
    body: bytes,
    request_id: str | None,
    now: datetime,
) -> TransferResult:
    """Seed ``000`` ``POST /api/transfers`` through the safeguards. Returns the result
    (``completed``; ``pending`` when Sequence has not said yet — the route answers 202).
    Raises ``InstantNotSupported``, ``TransferLimitExceeded``, ``TransferRefused`` (400:
    Sequence refused or failed it; the reservation given back), ``InvalidTransfer`` (422),
    ``NotConnected`` (409)."""
    if payload.instant:
        raise InstantNotSupported(
            "instant transfers are not offered by Sequence's Platform API (ACH only)",
            param="instant",
        )
    if payload.source_id == payload.destination_id:
        raise InvalidTransfer("source_id and destination_id must differ", param="destination_id")
    request = _Request(principal, request_id, client_key, body)
    row = await _run_transfer(
        sessionmaker,
        rail,
        settings,
        request,
        {
            "id": new_id("seqt", 12),
            "kind": "transfer",
            "source_id": payload.source_id,
            "destination_id": payload.destination_id,
            "amount_cents": payload.amount_cents,
            "description": payload.description or None,
        },
        now,
    )
    rail.forget(principal.owner_id)
    if row.status == "failed":
        raise TransferRefused(row.error_message or "Transfer failed")
    return _result(row)


# -- funding -----------------------------------------------------------------------------


def _funding(row: Row[Any]) -> FundingRead:
    status: Literal["pending", "completed", "failed"] = (
        "completed"
        if row.status == "completed"
        else "failed"
        if row.status == "failed"
        else "pending"
    )
    return FundingRead(
        funding_id=row.id,
        agent_id=row.agent_id,
        wallet_id=row.wallet_id,
        status=status,
        amount=format_amount(row.credit_amount, row.credit_currency),
        currency=row.credit_currency,
        pod_id=row.source_id,
        transfer_id=row.sequence_transfer_id,
        error=row.error_message if row.status == "failed" else None,
        created_at=row.created_at,
        completed_at=row.resolved_at if row.status == "completed" else None,
    )


async def _settlement_account(
    session: AsyncSession, rail: Rail, settings: Settings, owner_id: str
) -> str:
    if settings.sequence_settlement_account:
        return settings.sequence_settlement_account
    connection = await rail.connection(session, owner_id)
    for account in await rail.accounts(connection, owner_id):
        if account.name == SETTLEMENT_ACCOUNT_NAME:
            return account.id
    raise NotConnected(
        f"no Sequence account named '{SETTLEMENT_ACCOUNT_NAME}' to fund wallets into; "
        "set SEQUENCE_SETTLEMENT_ACCOUNT_ID"
    )


async def fund_wallet(
    sessionmaker: async_sessionmaker[AsyncSession],
    rail: Rail,
    settings: Settings,
    context: CallContext,
    agent_id: str,
    payload: FundingCreate,
    *,
    client_key: str | None,
    body: bytes,
) -> FundingRead:
    """Fund an agent's wallet from one of the owner's pods: a Sequence transfer from the
    pod to the settlement account, through the same limits and audit as the gateway's,
    after the agent's state, flag and risk (an inflow still needs an agent allowed to
    hold money). The wallet is credited only once Sequence reports ``COMPLETE`` (here, or
    by the poller). USD-family wallets at par; others (EURC) 400. Raises
    ``AgentNotFound`` (404), ``InvalidFunding`` (422), ``TransferLimitExceeded``,
    ``TransferRefused`` (400), ``PaymentRefused`` subclasses (403 flag, state, risk)."""
    principal = context.principal
    async with sessionmaker() as session:
        agent = await agent_service.get(session, principal, agent_id)
        wallet = await wallet_service.get_agent_wallet(session, principal.owner_id, agent_id)
        destination = await _settlement_account(session, rail, settings, principal.owner_id)
    if wallet.currency not in PAR_CURRENCIES:
        raise TransferRefused(
            f"wallet {wallet.id} holds {wallet.currency}: only dollar wallets are funded "
            "from Sequence",
            param="agent_id",
        )
    minor = to_minor(payload.amount, wallet.currency, param="amount")
    cents = to_minor(payload.amount, "USD", param="amount")
    if cents * 10 ** (scale_of(wallet.currency) - 2) != minor:
        raise InvalidFunding("amount must be whole cents", param="amount")
    if cents < 100:
        raise InvalidFunding("amount must be at least 1.00 (Sequence's minimum)", param="amount")
    if payload.pod_id == destination:
        raise InvalidFunding("pod_id is the settlement account itself", param="pod_id")

    async def policy(session: AsyncSession) -> None:
        refusal = await payment_service.inflow_refusal(
            session, context, agent.agent_id, Money(minor, wallet.currency)
        )
        if refusal is not None:
            await _refused(sessionmaker, context, agent.agent_id, payload, refusal)
            raise refusal

    request = _Request(principal, context.request_id, client_key, body)
    row = await _run_transfer(
        sessionmaker,
        rail,
        settings,
        request,
        {
            "id": new_id("fund", 12),
            "kind": "funding",
            "source_id": payload.pod_id,
            "destination_id": destination,
            "amount_cents": cents,
            "description": "Purser",
            "agent_id": agent.agent_id,
            "wallet_id": wallet.id,
            "credit_amount": minor,
            "credit_currency": wallet.currency,
        },
        context.now,
        before_reserve=policy,
    )
    rail.forget(principal.owner_id)
    return _funding(row)


async def _refused(
    sessionmaker: async_sessionmaker[AsyncSession],
    context: CallContext,
    agent_id: str,
    payload: FundingCreate,
    refusal: PaymentRefused,
) -> None:
    """Record a funding the agent's policy refused (its own transaction: the request's
    rolls back with the refusal)."""
    async with sessionmaker() as session:
        await _audit(
            session,
            context.principal,
            context.request_id,
            "funding_refused",
            context.principal.owner_id,
            {
                "pod_id": payload.pod_id,
                "amount": str(payload.amount),
                "code": refusal.code,
                "reason": refusal.detail,
            },
            agent_id=agent_id,
        )
        await session.commit()


async def get_funding(session: AsyncSession, principal: Principal, funding_id: str) -> FundingRead:
    row = await repository.get_transfer(session, principal.owner_id, funding_id)
    if row is None or row.kind != "funding" or not principal.sees_agent(row.agent_id):
        raise FundingNotFound(f"Funding {funding_id} not found")
    return _funding(row)


# -- the poller --------------------------------------------------------------------------


async def resolve_due(
    sessionmaker: async_sessionmaker[AsyncSession], rail: Rail, now: datetime, *, batch: int = 20
) -> int:
    """Settle unresolved transfers whose check is due: resend an unconfirmed one under its
    idempotency key (Sequence answers with the transfer it made, or makes it once), read a
    submitted one's status. Several processes share the work (SKIP LOCKED). Returns how
    many were looked at."""
    async with sessionmaker() as session:
        rows = await repository.due_for_check(session, now, batch)
        for row in rows:
            await _check(session, rail, row, now)
        await session.commit()
    return len(rows)


async def _check(session: AsyncSession, rail: Rail, row: Row[Any], now: datetime) -> None:
    try:
        connection = await rail.connection(session, row.owner_id)
        client = rail.client(connection)
        if row.status == "reserved":
            if row.created_at < now - IDEMPOTENCY_WINDOW:
                await _mark_failed(
                    session,
                    row,
                    "UNCONFIRMED",
                    "no answer from Sequence within its idempotency window; reconcile by hand",
                    None,
                )
                return
            transfer = await client.create_transfer(
                idempotency_key=row.id,
                source_account_id=row.source_id,
                destination_account_id=row.destination_id,
                amount_in_cents=row.amount_cents,
                description=row.description or None,
            )
        else:
            transfer = await client.get_transfer(row.sequence_transfer_id)
    except NotConnected:
        await _later(session, row, now)
        return
    except SequenceError as error:
        if error.definite and row.status == "reserved" and not isinstance(error, SequenceNotFound):
            await _mark_failed(session, row, error.code or "REFUSED", error.message, None)
        else:
            await _later(session, row, now)
        return
    if transfer.status in TERMINAL_STATUSES:
        await settle(session, row, transfer, now=now)
        rail.forget(row.owner_id)
        return
    await repository.update_transfer(
        session,
        row.id,
        {
            "status": "submitted",
            "sequence_transfer_id": transfer.id,
            "sequence_status": transfer.status,
            "attempts": row.attempts + 1,
            "next_check_at": now
            + timedelta(seconds=_BACKOFF[min(row.attempts, len(_BACKOFF) - 1)]),
        },
        from_statuses=["reserved", "submitted"],
    )


async def _later(session: AsyncSession, row: Row[Any], now: datetime) -> None:
    delay = _BACKOFF[min(row.attempts, len(_BACKOFF) - 1)]
    await repository.update_transfer(
        session,
        row.id,
        {"attempts": row.attempts + 1, "next_check_at": now + timedelta(seconds=delay)},
        from_statuses=["reserved", "submitted"],
    )
