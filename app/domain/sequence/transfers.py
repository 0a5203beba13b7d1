"""Transfers through the Sequence rail — the gateway's (seed ``000`` ``POST
/api/transfers``) and wallet fundings from a pod — and the poller that settles them.

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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.domain.agent import service as agent_service
from app.domain.apikey.schemas import Principal
from app.domain.event import service as event_service
from app.domain.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from app.domain.idempotency.service import fingerprint
from app.domain.ledger import service as ledger
from app.domain.ledger.schemas import Leg
from app.domain.limits import service as limits_service
from app.domain.payment import dry_run
from app.domain.payment import service as payment_service
from app.domain.payment.errors import PaymentRefused
from app.domain.payment.schemas import DryRunResult
from app.domain.payment.service import CallContext
from app.domain.sequence import repository
from app.domain.sequence.errors import (
    FundingNotFound,
    InstantNotSupported,
    InvalidFunding,
    InvalidTransfer,
    NotConnected,
    PodNotFound,
    TransferLimitExceeded,
    TransferRefused,
)
from app.domain.sequence.schemas import (
    FundingCreate,
    FundingRead,
    TransferCreate,
    TransferResult,
)
from app.domain.sequence.service import (
    SETTLEMENT_ACCOUNT_NAME,
    Connection,
    Rail,
    get_limits,
    is_sequence_id,
    limits_of,
    record_audit,
    today,
    upstream,
)
from app.domain.wallet import repository as wallet_repository
from app.domain.wallet import service as wallet_service
from app.domain.wallet.schemas import LimitStateRead
from app.errors import AppError
from app.integrations.sequence.errors import SequenceAmbiguous, SequenceError, SequenceNotFound
from app.integrations.sequence.schemas import TERMINAL_STATUSES, Transfer
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, scale_of, to_minor
from app.models.ledger import AccountKind, EntryKind

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


def _transfer_audit(row: Row[Any]) -> dict[str, Any]:
    return {
        "source": row.source_id,
        "destination": row.destination_id,
        "kind": row.kind,
        "transfer_id": row.sequence_transfer_id,
    }


def _public_status(row: Row[Any]) -> Literal["completed", "pending", "failed"]:
    """What a transfer's answer says of it: ``completed``, ``failed``, else ``pending``
    (reserved, submitted, or sent with no final word yet)."""
    if row.status in ("completed", "failed"):
        return "completed" if row.status == "completed" else "failed"
    return "pending"


def _result(row: Row[Any]) -> TransferResult:
    return TransferResult(
        status=_public_status(row),
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
    per_transfer, daily = await limits_of(session, settings, owner_id)
    if amount > per_transfer:
        raise TransferLimitExceeded(
            f"Amount {amount} cents exceeds per-transfer limit of {per_transfer} cents",
            param=_amount_param(values),
        )
    day = today(settings, now)
    if await repository.reserve(session, owner_id, day, amount, daily) is None:
        remaining = max(daily - await repository.used_on(session, owner_id, day), 0)
        raise TransferLimitExceeded(
            f"Amount {amount} cents exceeds daily remaining limit of {remaining} cents",
            param=_amount_param(values),
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
    await record_audit(
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


def _amount_param(values: dict[str, Any]) -> str:
    """The request field that carries the amount: the gateway's or the funding's."""
    return "amount" if values["kind"] == "funding" else "amount_cents"


async def _existing(
    session: AsyncSession, request: _Request, now: datetime
) -> tuple[Row[Any] | None, bool]:
    """The transfer an earlier request with this Idempotency-Key made, and whether this
    request should (re)send it. Raises ``IdempotencyKeyReused`` (422: another body) and
    ``IdempotencyKeyInUse`` (409: the first request is still sending it)."""
    if request.client_key is None:
        return None, False
    await repository.lock_client_key(session, request.principal.owner_id, request.client_key)
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
    return await _update(
        sessionmaker,
        row,
        {
            "attempts": row.attempts + 1,
            "error_message": f"outcome unknown ({message}); checking again",
            "next_check_at": now + timedelta(seconds=_BACKOFF[0]),
        },
    )


async def _accepted(
    sessionmaker: async_sessionmaker[AsyncSession], row: Row[Any], transfer: Transfer, now: datetime
) -> Row[Any]:
    """Sequence accepted the transfer: its id is recorded before anything else happens."""
    return await _update(
        sessionmaker,
        row,
        {
            "status": "submitted",
            "sequence_transfer_id": transfer.id,
            "sequence_status": transfer.status,
            "error_message": None,
            "attempts": row.attempts + 1,
            "next_check_at": now + timedelta(seconds=_BACKOFF[0]),
        },
    )


async def _update(
    sessionmaker: async_sessionmaker[AsyncSession], row: Row[Any], values: dict[str, Any]
) -> Row[Any]:
    """Change a ``reserved`` transfer in a transaction of its own; the newest row."""
    async with sessionmaker() as session:
        updated = await repository.update_transfer(
            session, row.id, values, from_statuses=["reserved"]
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
    session: AsyncSession,
    row: Row[Any],
    code: str,
    message: str,
    transfer: Transfer | None,
    *,
    release: bool = True,
) -> Row[Any] | None:
    """Fail the transfer (once), give its reservation back (unless ``release`` is off:
    the money may have moved), audit ``transfer_failed``; a funding emits
    ``wallet.funding_failed`` and credits nothing."""
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
    if release:
        await repository.release(session, row.owner_id, row.day, row.amount_cents)
    await record_audit(
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
        await _funding_event(session, "wallet.funding_failed", failed)
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
            "resolved_at": datetime.now(UTC),
        },
        from_statuses=["reserved", "submitted"],
    )
    if completed is None:
        return None
    if row.kind == "funding":
        completed = await _credit(session, completed)
    await record_audit(
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
    await _funding_event(session, "wallet.funded", credited)
    return credited


async def _funding_event(session: AsyncSession, event_type: str, row: Row[Any]) -> None:
    """``wallet.funded`` / ``wallet.funding_failed`` with the funding as ``GET`` shows it."""
    data = {"funding": _funding(row).model_dump(mode="json")}
    await event_service.emit(session, [event_service.event(row.owner_id, event_type, data)])


async def _run_transfer(
    sessionmaker: async_sessionmaker[AsyncSession],
    rail: Rail,
    settings: Settings,
    request: _Request,
    values: dict[str, Any],
    now: datetime,
    *,
    before_reserve: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> tuple[Row[Any], bool]:
    """The three steps of a transfer (module docstring): an earlier request's transfer
    with the same Idempotency-Key is returned (or resent), never made twice. Returns the
    transfer and whether it is an earlier request's."""
    async with sessionmaker() as session:
        connection = await rail.connection(session, request.principal.owner_id)
        existing, resend = await _existing(session, request, now)
        if existing is not None and not resend:
            await session.commit()
            return existing, True
        if existing is None:
            if before_reserve is not None:
                await before_reserve(session)
            row = await _reserve(session, settings, request, values, now)
        else:
            row = existing
        await session.commit()
    return await _send(sessionmaker, rail, connection, row, settings, now), existing is not None


def _transfer_values(payload: TransferCreate) -> dict[str, Any]:
    """The transfer row a gateway request asks for. Raises ``InstantNotSupported`` and
    ``InvalidTransfer`` (422)."""
    if payload.instant:
        raise InstantNotSupported(
            "instant transfers are not offered by Sequence's Platform API (ACH only)",
            param="instant",
        )
    if payload.source_id == payload.destination_id:
        raise InvalidTransfer("source_id and destination_id must differ", param="destination_id")
    return {
        "id": new_id("seqt", 12),
        "kind": "transfer",
        "source_id": payload.source_id,
        "destination_id": payload.destination_id,
        "amount_cents": payload.amount_cents,
        "description": payload.description or None,
    }


async def dry_run_transfer(
    session: AsyncSession,
    rail: Rail,
    settings: Settings,
    context: CallContext,
    payload: TransferCreate,
    *,
    server_now: datetime,
) -> DryRunResult:
    """``Dry-Run: true`` of ``create_transfer``: its checks and the limits' reservation,
    in ``session`` (which the caller rolls back), without calling Sequence. Raises as
    ``create_transfer`` does for a malformed request and ``NotConnected`` (409)."""
    values = _transfer_values(payload)
    await rail.connection(session, context.principal.owner_id)
    request = _Request(context.principal, context.request_id, None, b"")
    return await _dry_run(
        session, settings, context, request, values, policy=None, server_now=server_now
    )


async def _dry_run(
    session: AsyncSession,
    settings: Settings,
    context: CallContext,
    request: _Request,
    values: dict[str, Any],
    *,
    policy: Callable[[AsyncSession], Awaitable[None]] | None,
    server_now: datetime,
) -> DryRunResult:
    """The steps a transfer takes before Sequence is called — the agent's policy for a
    funding, then ``_reserve`` (limits, the row, the audit) — run for real in ``session``
    (rolled back by the caller), and what they leave: the decision, and the owner's
    Sequence limits as they would stand (amounts in dollars). A funding's projected
    balance is the wallet's once Sequence completes it (its credit comes then)."""
    owner_id = context.principal.owner_id
    refusal: AppError | None = None
    try:
        if policy is not None:
            await policy(session)
        await _reserve(session, settings, request, values, server_now)
    except (PaymentRefused, TransferLimitExceeded) as error:
        refusal = error
    state = await get_limits(session, settings, owner_id, server_now)
    resets_at = limits_service.next_window_starts(server_now, settings.limits_zone)["day"]
    limits = {
        "sequence_per_transfer": LimitStateRead(
            limit=format_amount(state.max_transfer_cents, "USD"),
            used="0.00",
            remaining=format_amount(state.max_transfer_cents, "USD"),
            resets_at=None,
        ),
        "sequence_daily": LimitStateRead(
            limit=format_amount(state.max_daily_transfer_cents, "USD"),
            used=format_amount(state.used_today_cents, "USD"),
            remaining=format_amount(state.remaining_today_cents, "USD"),
            resets_at=resets_at,
        ),
    }
    projected = None
    wallet_id = values.get("wallet_id")
    currency = values.get("credit_currency", "USD")
    amount = values.get("credit_amount", values["amount_cents"])
    if wallet_id is not None:
        wallet = await wallet_repository.get_wallet_by_id(
            session, owner_id=owner_id, wallet_id=wallet_id
        )
        assert wallet is not None
        balance = (await ledger.balances_of(session, [wallet.available_account_id])).get(
            wallet.available_account_id, 0
        )
        projected = format_amount(balance + (amount if refusal is None else 0), currency)
    trace = context.trace
    return DryRunResult(
        **dry_run.decided(refusal, 202),
        wallet_id=wallet_id,
        amount=format_amount(amount, currency),
        fee=None,
        currency=currency,
        projected_balance=projected,
        projected_held_balance=None,
        limits=limits,
        risk=None if trace is None or trace.risk is None else trace.risk.as_record(),
    )


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
) -> tuple[TransferResult, bool]:
    """Seed ``000`` ``POST /api/transfers`` through the safeguards. Returns the result
    (``completed``; ``pending`` when Sequence has not said yet — the route answers 202)
    and whether it is an earlier request's (same Idempotency-Key).
    Raises ``InstantNotSupported``, ``TransferLimitExceeded``, ``TransferRefused`` (400:
    Sequence refused or failed it; the reservation given back), ``InvalidTransfer`` (422),
    ``NotConnected`` (409)."""
    request = _Request(principal, request_id, client_key, body)
    row, replayed = await _run_transfer(
        sessionmaker, rail, settings, request, _transfer_values(payload), now
    )
    rail.forget(principal.owner_id)
    if row.status == "failed":
        raise TransferRefused(f"{row.error_message or 'Transfer failed'} (transfer {row.id})")
    return _result(row), replayed


# -- funding -----------------------------------------------------------------------------


def _funding(row: Row[Any]) -> FundingRead:
    status = _public_status(row)
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


async def _settlement_account(rail: Rail, connection: Connection, settings: Settings) -> str:
    """The account fundings go to: ``SEQUENCE_SETTLEMENT_ACCOUNT_ID``, else the external
    account named ``SETTLEMENT_ACCOUNT_NAME`` (one list request: no balances needed)."""
    if settings.sequence_settlement_account:
        return settings.sequence_settlement_account
    found = await upstream(rail.client(connection).list_accounts(type="EXTERNAL_ACCOUNT"))
    for account in found:
        if account.name == SETTLEMENT_ACCOUNT_NAME:
            return account.id
    raise NotConnected(
        f"no Sequence account named '{SETTLEMENT_ACCOUNT_NAME}' to fund wallets into; "
        "set SEQUENCE_SETTLEMENT_ACCOUNT_ID"
    )


async def _check_pod(rail: Rail, connection: Connection, pod_id: str) -> str:
    """``pod_id`` as Sequence writes it, if it is a pod of the owner's organisation.
    Raises ``PodNotFound`` (404) or ``InvalidFunding`` (422: an account, not a pod)."""
    if not is_sequence_id(pod_id):
        raise PodNotFound(f"Pod {pod_id} not found", param="pod_id")
    try:
        account = await upstream(rail.client(connection).get_account(pod_id.lower()))
    except SequenceNotFound:
        raise PodNotFound(f"Pod {pod_id} not found", param="pod_id") from None
    if account.type != "POD":
        raise InvalidFunding(f"{pod_id} is not a pod ({account.type})", param="pod_id")
    return account.id


@dataclass(frozen=True, slots=True)
class _Funding:
    """A funding request checked: the transfer row it asks for, and the agent's policy."""

    values: dict[str, Any]
    context: CallContext

    async def refusal(self, session: AsyncSession) -> PaymentRefused | None:
        """The agent's state, flag and risk for this inflow (``inflow_refusal``)."""
        return await payment_service.inflow_refusal(
            session,
            self.context,
            self.values["agent_id"],
            Money(self.values["credit_amount"], self.values["credit_currency"]),
        )


async def _funding_rows(
    session: AsyncSession, rail: Rail, context: CallContext, agent_id: str
) -> tuple[Any, Row[Any], Connection]:
    """The agent (``AgentNotFound``, 404), its wallet and the owner's connection
    (``NotConnected``, 409): Purser's part of a funding's checks."""
    principal = context.principal
    agent = await agent_service.get(session, principal, agent_id)
    wallet = await wallet_service.get_agent_wallet(session, principal.owner_id, agent_id)
    connection = await rail.connection(session, principal.owner_id)
    return agent, wallet, connection


async def _prepare_funding(
    rows: tuple[Any, Row[Any], Connection],
    rail: Rail,
    settings: Settings,
    context: CallContext,
    payload: FundingCreate,
) -> _Funding:
    """Check a funding request (``fund_wallet``'s raises, up to the policy) against
    ``_funding_rows`` and build its transfer row; the pod and the settlement account are
    asked of Sequence (reads)."""
    agent, wallet, connection = rows
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
    pod_id = await _check_pod(rail, connection, payload.pod_id)
    destination = await _settlement_account(rail, connection, settings)
    return _Funding(
        {
            "id": new_id("fund", 12),
            "kind": "funding",
            "source_id": pod_id,
            "destination_id": destination,
            "amount_cents": cents,
            "description": "Purser",
            "agent_id": agent.agent_id,
            "wallet_id": wallet.id,
            "credit_amount": minor,
            "credit_currency": wallet.currency,
        },
        context,
    )


async def dry_run_funding(
    session: AsyncSession,
    rail: Rail,
    settings: Settings,
    context: CallContext,
    agent_id: str,
    payload: FundingCreate,
    *,
    server_now: datetime,
) -> DryRunResult:
    """``Dry-Run: true`` of ``fund_wallet``: its checks (Sequence is asked about the pod,
    a read), the agent's policy and the limits' reservation in ``session`` (rolled back by
    the caller), without the transfer. Raises as ``fund_wallet`` does for a malformed
    request or an unknown agent or pod."""
    rows = await _funding_rows(session, rail, context, agent_id)
    prepared = await _prepare_funding(rows, rail, settings, context, payload)
    request = _Request(context.principal, context.request_id, None, b"")

    async def policy(session: AsyncSession) -> None:
        refusal = await prepared.refusal(session)
        if refusal is not None:
            raise refusal

    return await _dry_run(
        session, settings, context, request, prepared.values, policy=policy, server_now=server_now
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
    server_now: datetime,
) -> tuple[FundingRead, bool]:
    """Fund an agent's wallet from one of the owner's pods: a Sequence transfer from the
    pod to the settlement account, through the same limits and audit as the gateway's,
    after the agent's state, flag and risk (an inflow still needs an agent allowed to
    hold money). The wallet is credited only once Sequence reports ``COMPLETE`` (here, or
    by the poller). USD-family wallets at par; others (EURC) 400. The rail keeps the
    server's time (``server_now``: the daily limit's day, the poller's schedule) — an
    owner's sandbox test clock moves the agent's policy (``context.now``), not Sequence.
    Returns the funding and whether it is an earlier request's (same Idempotency-Key).
    Raises ``AgentNotFound`` / ``PodNotFound`` (404), ``InvalidFunding`` (422),
    ``TransferLimitExceeded``, ``TransferRefused`` (400: also Sequence refused or failed
    it, nothing credited), ``PaymentRefused`` subclasses (403 flag, state, risk)."""
    principal = context.principal
    async with sessionmaker() as session:
        rows = await _funding_rows(session, rail, context, agent_id)
    # No connection is held while Sequence answers.
    prepared = await _prepare_funding(rows, rail, settings, context, payload)

    async def policy(session: AsyncSession) -> None:
        refusal = await prepared.refusal(session)
        if refusal is not None:
            await _refused(sessionmaker, context, agent_id, payload, refusal)
            raise refusal

    request = _Request(principal, context.request_id, client_key, body)
    row, replayed = await _run_transfer(
        sessionmaker,
        rail,
        settings,
        request,
        prepared.values,
        server_now,
        before_reserve=policy,
    )
    rail.forget(principal.owner_id)
    if row.status == "failed":
        raise TransferRefused(f"{row.error_message} (funding {row.id}: nothing credited)")
    return _funding(row), replayed


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
        await record_audit(
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
                    release=False,
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
            "error_message": None,
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
