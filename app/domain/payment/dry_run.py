"""A dry run's answer (``Dry-Run: true``): the real call ran through the whole pipeline in
the request's transaction, which is then rolled back instead of committed; this reads, in
that same transaction before the rollback, what the call would have left behind."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.ledger import service as ledger
from app.domain.payment.errors import PaymentRefused
from app.domain.payment.schemas import DryRunReason, DryRunResult
from app.domain.payment.service import CallContext
from app.domain.wallet import repository as wallet_repository
from app.domain.wallet import service as wallet_service
from app.domain.wallet.schemas import LimitStateRead
from app.errors import AppError
from app.kit.money import format_amount


def decided(refusal: AppError | None, status_code: int) -> dict[str, Any]:
    """A dry run's decision members: ``deny`` with the refusal's code, message and status,
    or ``allow`` with ``status_code`` (what the real call would answer)."""
    if refusal is None:
        return {"decision": "allow", "status_code": status_code, "reasons": []}
    return {
        "decision": "deny",
        "status_code": refusal.status_code,
        "reasons": [DryRunReason(code=refusal.code, message=refusal.detail)],
    }


async def report(
    session: AsyncSession, context: CallContext, refusal: PaymentRefused | None, status_code: int
) -> DryRunResult:
    """The decision (``deny`` with the refusal's code, else ``allow``) and the state the
    call leaves: the wallet's balances and limits read after the call ran (projected: the
    transaction is rolled back after), the fee and risk the steps noted in
    ``context.trace``. ``status_code``: what the real call would answer."""
    trace = context.trace
    assert trace is not None, "a dry run's context carries a trace"
    wallet = None
    if trace.wallet_id is not None:
        wallet = await wallet_repository.get_wallet_by_id(
            session, owner_id=context.principal.owner_id, wallet_id=trace.wallet_id
        )
    balances: dict[str, int] = {}
    limits: dict[str, LimitStateRead] = {}
    currency = None
    if wallet is not None:
        currency = wallet.currency
        accounts = [wallet.available_account_id]
        if wallet.held_account_id is not None:
            accounts.append(wallet.held_account_id)
        balances = await ledger.balances_of(session, accounts)
        if wallet.agent_id is not None:
            limits = await wallet_service.read_limits(
                session, wallet, now=context.now, tz=context.tz
            )
    elif trace.amount is not None:
        currency = trace.amount.currency
    return DryRunResult(
        **decided(refusal, status_code),
        wallet_id=trace.wallet_id,
        amount=None if trace.amount is None else str(trace.amount),
        fee=None if trace.fee is None else str(trace.fee),
        currency=currency,
        projected_balance=None
        if wallet is None
        else format_amount(balances.get(wallet.available_account_id, 0), wallet.currency),
        projected_held_balance=None
        if wallet is None or wallet.held_account_id is None
        else format_amount(balances.get(wallet.held_account_id, 0), wallet.currency),
        limits=limits,
        risk=None if trace.risk is None else trace.risk.as_record(),
    )
