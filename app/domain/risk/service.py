"""Risk: the rules applied to an attempt inside the payment pipeline, and the risk
endpoints (score, profile, authorized services, flag) of seed ``003``.

In the pipeline the rules read counters that the payer's lock statement returned with the
wallet (``repository.payer_columns`` / ``payee_columns``) and that the payment's own
statements keep (``repository.spend_ctes``, ``failure_cte``): scoring costs no round trip
unless the lock statement's snapshot was stale (another payment of the agent committed
while this one waited for the lock), when the windows are read again under the lock.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.risk import repository
from app.domain.risk.rules import Assessment, Attempt, History, RiskRules, assess
from app.kit.money import Money, scale_of


def _history(wallet: Row[Any], windows: Any) -> History:
    return History(
        payments=int(wallet.risk_payments),
        volume=int(wallet.risk_volume),
        failures=int(wallet.risk_failures),
        last_hour=int(windows.last_hour or 0),
        last_day=int(windows.last_day or 0),
        wallet_created_at=wallet.created_at,
    )


async def assess_attempt(
    session: AsyncSession,
    wallet: Row[Any],
    payee_wallet: Row[Any],
    amount: Money,
    now: datetime,
    rules: RiskRules,
) -> tuple[Assessment, bool]:
    """Score an outflow of ``amount`` from the locked payer ``wallet`` (a row of
    ``wallet.repository.lock_agent_wallet_with_payee``) to ``payee_wallet`` (its payee
    row) at ``now``; also say whether the payee is one of the agent's authorized
    services. Read-only: the counters move with the payment's own statements."""
    payer_side: Any = wallet
    payee_side: Any = payee_wallet
    if not getattr(wallet, "counters_fresh", False):
        fresh = await repository.activity(session, wallet.id, wallet.agent_id, payee_wallet.id, now)
        payer_side = payee_side = fresh
    attempt = Attempt(
        amount=amount.minor,
        scale=scale_of(amount.currency),
        known_recipient=bool(payee_side.known_recipient),
        authorized_recipient=bool(payee_side.authorized_recipient),
        has_authorized_services=bool(payer_side.has_authorized_services),
    )
    return assess(_history(wallet, payer_side), attempt, now, rules), attempt.authorized_recipient


async def count_refusal(session: AsyncSession, wallet_id: str) -> None:
    """Count a refused attempt of ``wallet_id`` whose refusal writes no transaction row
    (a hold): one statement. A payment's refusal is counted by its row's statement."""
    await repository.count_failure(session, wallet_id)


def alert_data(
    wallet: Row[Any], subject_id: str, amount: Money, assessment: Assessment
) -> dict[str, Any]:
    """The data of a ``risk.alert`` event about an attempt."""
    return {
        "agent_id": wallet.agent_id,
        "wallet_id": wallet.id,
        "subject_id": subject_id,
        "amount": str(amount),
        "currency": amount.currency,
        **assessment.as_record(),
    }
