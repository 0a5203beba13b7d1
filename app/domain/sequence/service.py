"""The Sequence rail: an owner's gateway to its GetSequence organisation (seed ``000``),
on Sequence's official Platform API (``../shared/sequence/PLATFORM_API.md``): connections,
limits and the gateway's reads here; transfers, wallet funding and the poller in
``transfers``.

One ``Rail`` per process resolves connections and caches balances; no database
connection is held while Sequence answers.
"""

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Mode, Settings
from app.domain.apikey.schemas import Principal
from app.domain.audit import service as audit_service
from app.domain.sequence import repository
from app.domain.sequence.errors import (
    AmbiguousPodName,
    ConnectionBusy,
    InvalidConnection,
    InvalidTransfer,
    NotConnected,
    PodNotFound,
    SequenceTransferNotFound,
    UpstreamFailed,
)
from app.domain.sequence.schemas import (
    AccountItem,
    Accounts,
    ActivityPage,
    ActivitySummary,
    ConnectionPut,
    ConnectionRead,
    LimitsPut,
    LimitsRead,
    Pod,
    PodDetail,
    TotalBalance,
    TransferSummary,
    dollars,
)
from app.domain.webhook.errors import InvalidWebhookUrl
from app.domain.webhook.urls import check_destination
from app.integrations.sequence.client import SequenceClient
from app.integrations.sequence.errors import SequenceError, SequenceNotFound
from app.integrations.sequence.schemas import Account, Transfer
from app.kit.encryption import SecretBox
from app.kit.time import window_starts

#: Sequence's production base URL (PLATFORM_API.md §1, §15.10).
PLATFORM_URL = "https://api.getsequence.io/platform/v1"
#: The account wallet fundings go to when ``SEQUENCE_SETTLEMENT_ACCOUNT_ID`` is unset.
SETTLEMENT_ACCOUNT_NAME = "Purser Settlement"

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
            summaries = await upstream(client.list_accounts())
            accounts = [await upstream(client.get_account(item.id)) for item in summaries]
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


async def upstream(call: Awaitable[T]) -> T:
    """An adapter call whose failure is the gateway's 502 (seed ``000``: upstream failure)."""
    try:
        return await call
    except SequenceNotFound:
        raise
    except SequenceError as error:
        raise UpstreamFailed(upstream_detail(error)) from None


def upstream_detail(error: SequenceError) -> str:
    """What the caller is told of Sequence's failure: its error code and message when
    Sequence answered with its JSON envelope, else only the HTTP status or that nothing
    answered (a body from elsewhere is not repeated)."""
    if error.code:
        return f"Sequence: {error.code}: {error.message}"
    if error.status:
        return f"Sequence answered HTTP {error.status}"
    return "Sequence did not answer"


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
    """Store the owner's Platform API key, encrypted (``PURSER_SECRET_KEY``). A
    ``base_url`` follows the webhook URL rules (in live mode: https, a public host).
    Raises ``ConnectionBusy`` (409) while the owner has transfers whose outcome is not
    known: they are followed up through the connection they were sent on."""
    if rail.box is None:
        raise NotConnected("Sequence keys cannot be stored: PURSER_SECRET_KEY is not set")
    await _not_busy(session, principal.owner_id)
    if payload.base_url is not None:
        try:
            await check_destination(payload.base_url, sandbox=rail.settings.mode is Mode.sandbox)
        except InvalidWebhookUrl as error:
            raise InvalidConnection(
                error.detail.replace("url", "base_url", 1), param="base_url"
            ) from None
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
    await record_audit(session, principal, request_id, "sequence_connected", principal.owner_id, {})
    return await get_connection(session, rail, principal.owner_id)


async def _not_busy(session: AsyncSession, owner_id: str) -> None:
    unresolved = await repository.unresolved_count(session, owner_id)
    if unresolved:
        raise ConnectionBusy(
            f"{unresolved} Sequence transfer(s) of this owner are not settled yet; change the "
            "connection once they are (GET /api/v1/sequence/activity)"
        )


async def delete_connection(
    session: AsyncSession, rail: Rail, principal: Principal, request_id: str | None
) -> ConnectionRead:
    await _not_busy(session, principal.owner_id)
    if await repository.delete_settings_key(session, principal.owner_id):
        await record_audit(
            session, principal, request_id, "sequence_disconnected", principal.owner_id, {}
        )
    rail.forget(principal.owner_id)
    return await get_connection(session, rail, principal.owner_id)


async def limits_of(session: AsyncSession, settings: Settings, owner_id: str) -> tuple[int, int]:
    row = await repository.get_settings(session, owner_id)
    per_transfer = (row.max_transfer_cents if row else None) or settings.sequence_max_transfer_cents
    daily = (
        row.max_daily_transfer_cents if row else None
    ) or settings.sequence_max_daily_transfer_cents
    return per_transfer, daily


def today(settings: Settings, now: datetime) -> date:
    """The day whose limit a transfer counts in: calendar day in the limits time zone."""
    return window_starts(now, settings.limits_zone)["day"]


async def get_limits(
    session: AsyncSession, settings: Settings, owner_id: str, now: datetime
) -> LimitsRead:
    per_transfer, daily = await limits_of(session, settings, owner_id)
    used = await repository.used_on(session, owner_id, today(settings, now))
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
    """Override the owner's limits named in ``payload`` (``null``: back to the settings'
    default; a limit left out keeps its value)."""
    values = payload.model_dump(include=payload.model_fields_set)
    await repository.upsert_settings(session, principal.owner_id, values)
    await record_audit(
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


def _canonical(value: str) -> str:
    """A Sequence id as Sequence writes it (lowercase, §13.3)."""
    return value.lower()


async def pod_detail(rail: Rail, connection: Connection, pod_id: str) -> PodDetail:
    """One pod, read now, with its five most recent transfers. Raises ``PodNotFound``."""
    if not is_sequence_id(pod_id):
        raise PodNotFound(f"Pod {pod_id} not found")
    client = rail.client(connection)
    pod_id = _canonical(pod_id)
    try:
        account = await upstream(client.get_account(pod_id))
    except SequenceNotFound:
        raise PodNotFound(f"Pod {pod_id} not found") from None
    if account.type != "POD":
        raise PodNotFound(f"Pod {pod_id} not found")
    recent = await upstream(client.list_account_transfers(pod_id, page_size=5))
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
        result = await upstream(
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
    result = await upstream(client.list_transfers(ids, page=page, page_size=first))
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
    transfer_id = _canonical(transfer_id)
    try:
        transfer = await upstream(rail.client(connection).get_transfer(transfer_id))
    except SequenceNotFound:
        raise SequenceTransferNotFound(f"Transfer {transfer_id} not found") from None
    return _summary(transfer)


# -- audit ------------------------------------------------------------------------------


async def record_audit(
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
