"""The sandbox's memory: organisations, their accounts, transfers and idempotency records
(spec §13.2), advanced lazily from the sandbox's clock (§13.5).

Nothing here runs in the background. Each transfer carries the schedule of its future
statuses; before any request reads or writes an organisation, ``Organization.advance``
applies every step that has fallen due, oldest first, so balances are exactly what they
would have been had a worker moved each transfer on time. Amounts are integer cents.

Money moves as §13.5 describes, with one simplification:

- accepting a live transfer places a **hold** on the source (its available balance drops)
  when the funds are there; otherwise the transfer is scheduled to end ``INCOMPLETE`` with
  ``INSUFFICIENT_FUNDS`` (a source with no balance at all: ``ERROR`` / ``NULL_BALANCE``);
- an internal transfer debits the source and credits the destination on ``COMPLETE``;
- a transfer to or from an external account debits the source on ``PENDING`` and credits
  the destination on ``COMPLETE`` (the simplification: the external account's balance
  moves too, at once, where Sequence would wait for its daily refresh, so that a caller can
  watch its settlement account fill);
- a failure (``INCOMPLETE``, ``ERROR``, ``CANCELLED``) releases the hold, and gives the
  money back to the source if it had been debited;
- a liability's balance is what is owed: paying it lowers the balance (§10.3).

Simulated transfers (§9) take the same funds check and never touch a balance.
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from app.integrations.sequence.schemas import MANAGED_ACCOUNT_TYPES, TERMINAL_STATUSES

#: ``error_code`` given by default when a transfer is forced into a failed status.
DEFAULT_ERROR_CODES: dict[str, str | None] = {
    "INCOMPLETE": "INSUFFICIENT_FUNDS",
    "ERROR": "PAYMENT_FAILED",
    "CANCELLED": None,
}


def wire_time(value: datetime) -> str:
    """A datetime as the API writes it: UTC, milliseconds, ``Z`` (§1)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _wire_time_or_none(value: datetime | None) -> str | None:
    return wire_time(value) if value is not None else None


@dataclass
class AccountRecord:
    """Every field of ``Account`` (§10.2) plus the internal ones of §13.2. Balances in
    cents; ``available_in_cents`` is the ledger less holds. ``statement`` holds a
    liability's statement fields under their wire names."""

    id: str
    name: str
    type: str
    created_at: datetime
    external_account_type: str | None = None
    description: str | None = None
    beneficiary_name: str | None = None
    institution_name: str | None = None
    can_be_source: bool = True
    can_be_destination: bool = True
    deleted_at: datetime | None = None
    routing_number: str | None = None
    bank_account_number: str | None = None
    savings_target_in_cents: int | None = None
    balance_in_cents: int | None = 0
    available_in_cents: int | None = 0
    statement: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
    balance_updated_at: datetime | None = None

    @property
    def managed(self) -> bool:
        """A pod or income source: money Sequence holds (§10.1)."""
        return self.type in MANAGED_ACCOUNT_TYPES

    @property
    def liability(self) -> bool:
        return self.external_account_type == "LIABILITY"

    def summary(self) -> dict[str, Any]:
        """``AccountSummary`` on the wire (§10.1)."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "externalAccountType": self.external_account_type,
            "beneficiaryName": self.beneficiary_name,
            "institutionName": self.institution_name,
            "canBeSource": self.can_be_source,
            "canBeDestination": self.can_be_destination,
            "linkedAccount": None,
            "createdAt": wire_time(self.created_at),
            "updatedAt": wire_time(self.updated_at or self.created_at),
            "deletedAt": _wire_time_or_none(self.deleted_at),
        }

    def detail(self) -> dict[str, Any]:
        """``Account`` on the wire (§10.2), with its ``Balance`` (§10.3)."""
        balance = {
            "balanceInCents": self.balance_in_cents,
            "availableBalanceInCents": self.available_in_cents,
            "lastStatementBalanceInCents": None,
            "lastStatementDate": None,
            "nextPaymentMinimumInCents": None,
            "nextPaymentDueDate": None,
            "balanceLastUpdatedAt": wire_time(self.balance_updated_at or self.created_at),
            "error": None,
            "interestRatePercentage": None,
            "originalLoanAmountInCents": None,
        }
        balance.update(self.statement)
        return {
            **self.summary(),
            "routingNumber": self.routing_number,
            "bankAccountNumber": self.bank_account_number,
            "balance": balance,
            "savingsTargetInCents": self.savings_target_in_cents,
        }

    def party(self) -> dict[str, Any]:
        """The account as a transfer's ``TransferAccountRef`` (§10.4)."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "isDeleted": self.deleted_at is not None,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """A status a transfer enters at ``at`` (with ``error_code`` for a failure)."""

    at: datetime
    status: str
    error_code: str | None = None


@dataclass
class TransferRecord:
    """Every field of ``Transfer`` (§10.6) plus the internal ones of §13.2: the
    description sent on create, ``visible_at`` (reads before it answer 404, §8.4), the
    schedule of future statuses, the idempotency key, and where its money stands
    (``held`` on the source, ``debited`` from it, ``credited`` to the destination)."""

    id: str
    amount_in_cents: int
    direction: str
    origin: str
    source: AccountRecord | None
    destination: AccountRecord | None
    status: str
    created_at: datetime
    visible_at: datetime
    execution_mode: str = "LIVE"
    error_code: str | None = None
    completed_at: datetime | None = None
    rule_id: str | None = None
    rule_execution_id: str | None = None
    description: str | None = None
    idempotency_key: str | None = None
    schedule: list[Step] = field(default_factory=list)
    seeded: bool = False
    held: bool = False
    debited: bool = False
    credited: bool = False

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def live(self) -> bool:
        return self.execution_mode == "LIVE"

    def wire(self) -> dict[str, Any]:
        """``Transfer`` on the wire (§10.6); no description (§10.6 says none is echoed)."""
        return {
            "id": self.id,
            "amountInCents": self.amount_in_cents,
            "direction": self.direction,
            "origin": self.origin,
            "source": self.source.party() if self.source is not None else None,
            "destination": self.destination.party() if self.destination is not None else None,
            "status": self.status,
            "executionMode": self.execution_mode,
            "ruleId": self.rule_id,
            "ruleExecutionId": self.rule_execution_id,
            "errorCode": self.error_code,
            "createdAt": wire_time(self.created_at),
            "completedAt": _wire_time_or_none(self.completed_at),
        }

    def internal(self) -> dict[str, Any]:
        """The transfer as ``GET /_fake/state`` shows it: the wire form plus the internals."""
        return {
            **self.wire(),
            "description": self.description,
            "idempotencyKey": self.idempotency_key,
            "visibleAt": wire_time(self.visible_at),
            "seeded": self.seeded,
            "held": self.held,
            "debited": self.debited,
            "credited": self.credited,
            "schedule": [
                {"at": wire_time(step.at), "status": step.status, "errorCode": step.error_code}
                for step in self.schedule
            ],
        }


@dataclass
class IdempotencyRecord:
    """What §13.2 keeps per idempotency key: the body's fingerprint, whether the first
    request is still running, and once done the response to replay (status and the
    envelope without its ``requestId``, which each response gets anew, §13.3)."""

    fingerprint: str
    expires_at: datetime
    state: Literal["in_flight", "done"] = "in_flight"
    status: int = 0
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Timings:
    """How long transfers take, in seconds of the sandbox clock (§13.5)."""

    settle_seconds: float
    ach_settle_seconds: float
    simulation_seconds: float
    read_after_write_delay: float


class Organization:
    """One API key's organisation (``sk_sandbox_<name>``): its accounts in seed order, its
    transfers, its idempotency records and its rate-limit window."""

    def __init__(
        self, key: str, accounts: list[AccountRecord], transfers: list[TransferRecord]
    ) -> None:
        self.key = key
        self.accounts: dict[str, AccountRecord] = {account.id: account for account in accounts}
        self.transfers: dict[str, TransferRecord] = {t.id: t for t in transfers}
        self.idempotency: dict[str, IdempotencyRecord] = {}
        #: A per-key limit set through ``/_fake/rate_limit`` (else the sandbox's).
        self.rate_limit: int | None = None
        self._window = -1
        self._window_count = 0

    # --- Rate limit (§13.6, mode A) ---------------------------------------------------------

    def spend_request(self, now: datetime, limit: int) -> int | None:
        """Count one request in the calendar minute of ``now``; return ``None`` if within
        ``limit``, else the seconds until the window resets (rounded up, at least 1), the
        ``Retry-After`` of the 429 (§5)."""
        epoch = now.timestamp()
        window = int(epoch // 60)
        if window != self._window:
            self._window, self._window_count = window, 0
        self._window_count += 1
        if self._window_count <= limit:
            return None
        return max(1, math.ceil((window + 1) * 60 - epoch))

    # --- Reads ----------------------------------------------------------------------------

    def visible_transfers(self, now: datetime) -> list[TransferRecord]:
        """Transfers a list may show (past their read-after-write delay), newest first."""
        shown = [t for t in self.transfers.values() if t.visible_at <= now]
        return sorted(shown, key=lambda t: (t.created_at, t.id), reverse=True)

    def active_account(self, account_id: str) -> AccountRecord | None:
        account = self.accounts.get(account_id)
        return account if account is not None and account.deleted_at is None else None

    # --- Writes ---------------------------------------------------------------------------

    def accept(
        self,
        *,
        transfer_id: str,
        source: AccountRecord,
        destination: AccountRecord,
        amount_in_cents: int,
        description: str | None,
        simulation: bool,
        idempotency_key: str | None,
        now: datetime,
        timings: Timings,
    ) -> TransferRecord:
        """Create a transfer from a commit of ``POST /transfers`` (§13.5), ``PROCESSING``,
        with its schedule; place the hold of a live transfer that has the funds.

        Raises ``ValueError`` if neither account is managed by Sequence (the caller turns
        it into 400 ``INVALID_PARAMETERS``).
        """
        if source.managed and destination.managed:
            direction, origin = "INTERNAL", "USER"
        elif source.managed:
            direction, origin = "MONEY_OUT", "USER"
        elif destination.managed:
            direction, origin = "MONEY_IN", "USER_PULL"
        else:
            raise ValueError("a transfer needs a pod or income source on one side")
        transfer = TransferRecord(
            id=transfer_id,
            amount_in_cents=amount_in_cents,
            direction=direction,
            origin=origin,
            source=source,
            destination=destination,
            status="PROCESSING",
            created_at=now,
            visible_at=now + timedelta(seconds=timings.read_after_write_delay),
            execution_mode="SIMULATION" if simulation else "LIVE",
            description=description,
            idempotency_key=idempotency_key,
        )
        available = source.available_in_cents
        shortfall: tuple[str, str] | None = None
        if available is None:
            shortfall = ("ERROR", "NULL_BALANCE")
        elif available < amount_in_cents:
            shortfall = ("INCOMPLETE", "INSUFFICIENT_FUNDS")
        settle = timings.settle_seconds if direction == "INTERNAL" else timings.ach_settle_seconds
        if simulation:
            end = now + timedelta(seconds=timings.simulation_seconds)
            transfer.schedule = [Step(end, *shortfall) if shortfall else Step(end, "COMPLETE")]
        elif shortfall is not None:
            # Found short where PROCESSING would have ended: the failure is asynchronous.
            transfer.schedule = [Step(now + timedelta(seconds=settle / 2), *shortfall)]
        else:
            self._hold(transfer, now)
            transfer.schedule = [
                Step(now + timedelta(seconds=settle / 2), "PENDING"),
                Step(now + timedelta(seconds=settle), "COMPLETE"),
            ]
        self.transfers[transfer.id] = transfer
        return transfer

    def advance(self, now: datetime) -> None:
        """Apply every scheduled step due by ``now``, across transfers, oldest first."""
        due = [
            (step.at, transfer.created_at, transfer.id, step)
            for transfer in self.transfers.values()
            for step in transfer.schedule
            if step.at <= now
        ]
        for _, _, transfer_id, step in sorted(due, key=lambda item: item[:3]):
            transfer = self.transfers[transfer_id]
            transfer.schedule.remove(step)
            self._enter(transfer, step.status, step.error_code, step.at)

    def force(
        self, transfer: TransferRecord, status: str, error_code: str | None, now: datetime
    ) -> None:
        """Move a non-terminal transfer to ``status`` at once (§13.5's control endpoint);
        its remaining schedule is dropped, so a forced ``PENDING`` or ``PENDING_APPROVAL``
        stays there until forced again. Raises ``ValueError`` for a terminal transfer
        (terminal means frozen)."""
        if transfer.terminal:
            raise ValueError(f"transfer {transfer.id} is {transfer.status}, which is final")
        transfer.schedule = []
        if error_code is None:
            error_code = DEFAULT_ERROR_CODES.get(status)
        self._enter(transfer, status, error_code, now)

    # --- Money ----------------------------------------------------------------------------

    def _enter(
        self, transfer: TransferRecord, status: str, error_code: str | None, at: datetime
    ) -> None:
        transfer.status = status
        if status == "PENDING":
            if transfer.live and transfer.direction != "INTERNAL":
                self._debit(transfer, at)
        elif status == "COMPLETE":
            if transfer.live:
                self._debit(transfer, at)
                self._credit(transfer, at)
            transfer.completed_at = at
        elif status in TERMINAL_STATUSES:
            transfer.error_code = error_code
            if transfer.live:
                self._release(transfer, at)

    @staticmethod
    def _move(account: AccountRecord | None, cents: int, at: datetime, *, ledger: bool) -> None:
        """Add ``cents`` (negative: take) to what ``account`` holds: to its available
        balance, and to its ledger balance too when ``ledger``. A liability's balance is
        what is owed, so it moves the other way; it has no available balance."""
        if account is None:
            return
        if account.liability:
            if ledger and account.balance_in_cents is not None:
                account.balance_in_cents -= cents
        else:
            if ledger and account.balance_in_cents is not None:
                account.balance_in_cents += cents
            if account.available_in_cents is not None:
                account.available_in_cents += cents
        account.balance_updated_at = at

    def _hold(self, transfer: TransferRecord, at: datetime) -> None:
        self._move(transfer.source, -transfer.amount_in_cents, at, ledger=False)
        transfer.held = True

    def _debit(self, transfer: TransferRecord, at: datetime) -> None:
        if transfer.debited:
            return
        if transfer.held:
            # The available balance already went down with the hold.
            source = transfer.source
            if source is not None and source.balance_in_cents is not None:
                source.balance_in_cents += (
                    transfer.amount_in_cents if source.liability else -transfer.amount_in_cents
                )
                source.balance_updated_at = at
        else:
            self._move(transfer.source, -transfer.amount_in_cents, at, ledger=True)
        transfer.held, transfer.debited = False, True

    def _credit(self, transfer: TransferRecord, at: datetime) -> None:
        if not transfer.credited:
            self._move(transfer.destination, transfer.amount_in_cents, at, ledger=True)
            transfer.credited = True

    def _release(self, transfer: TransferRecord, at: datetime) -> None:
        if transfer.held:
            self._move(transfer.source, transfer.amount_in_cents, at, ledger=False)
            transfer.held = False
        if transfer.debited and not transfer.credited:
            # Debited, then failed before reaching the destination: the money returns.
            self._move(transfer.source, transfer.amount_in_cents, at, ledger=True)
            transfer.debited = False
