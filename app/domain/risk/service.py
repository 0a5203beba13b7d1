"""Risk: the rules applied to an attempt inside the payment pipeline, and the risk
endpoints (score, profile, authorized services, flag) of seed ``003``.

In the pipeline the rules read counters that the payer's lock statement returned with the
wallet (``repository.payer_columns`` / ``payee_columns``) and that the payment's own
statements keep (``repository.spend_ctes``, ``failure_cte``): scoring costs no round trip
unless the lock statement's snapshot was stale (another payment of the agent committed
while this one waited for the lock), when the windows are read again under the lock.
"""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.agent import service as agent_service
from app.domain.agent.schemas import AgentRead
from app.domain.apikey.schemas import Principal
from app.domain.audit import service as audit_service
from app.domain.event import service as event_service
from app.domain.payment.schemas import RiskFactor
from app.domain.risk import repository
from app.domain.risk.errors import InvalidService, ServiceNotFound
from app.domain.risk.rules import Assessment, Attempt, History, RiskRules, assess
from app.domain.risk.schemas import AuthorizedServices, FlagState, RiskProfile, RiskScore
from app.kit.money import Money, format_amount, scale_of


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


async def assess_inflow(
    session: AsyncSession, wallet: Row[Any], amount: Money, now: datetime, rules: RiskRules
) -> Assessment:
    """Score money coming into the locked ``wallet`` (a funding): its amount and the
    agent's history; the recipient rules do not apply (the wallet is the agent's own)."""
    windows: Any = wallet
    if not getattr(wallet, "counters_fresh", False):
        windows = await repository.activity(session, wallet.id, wallet.agent_id, wallet.id, now)
    attempt = Attempt(
        amount=amount.minor,
        scale=scale_of(amount.currency),
        known_recipient=True,
        authorized_recipient=True,
        has_authorized_services=False,
    )
    return assess(_history(wallet, windows), attempt, now, rules)


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


async def _agent(session: AsyncSession, principal: Principal, agent_id: str) -> AgentRead:
    """The agent, if the caller sees it (``AgentNotFound``, 404, otherwise)."""
    return await agent_service.get(session, principal, agent_id)


async def _assess_agent(
    session: AsyncSession, agent: AgentRead, now: datetime, rules: RiskRules
) -> tuple[Assessment, Row[Any]]:
    assert agent.wallet_id is not None
    row = await repository.history(session, agent.wallet_id, now)
    assert row is not None
    history = replace(_history(row, row), is_flagged=row.is_flagged, flag_reason=row.flag_reason)
    return assess(history, None, now, rules), row


async def score(
    session: AsyncSession, principal: Principal, agent_id: str, now: datetime, rules: RiskRules
) -> RiskScore:
    """The agent scored alone at ``now`` (velocity, failures, wallet age, flag): a pure
    reading of stored counters, so reading it twice changes nothing. Raises
    ``AgentNotFound`` (404)."""
    agent = await _agent(session, principal, agent_id)
    assessment, row = await _assess_agent(session, agent, now, rules)
    return RiskScore(
        score=assessment.score,
        level=assessment.level.value,
        factors=[RiskFactor(**factor.as_dict()) for factor in assessment.factors],
        details={
            "payments_last_hour": int(row.last_hour),
            "payments_last_day": int(row.last_day),
            "completed_payments": int(row.risk_payments),
            "refused_attempts": int(row.risk_failures),
            "volume": format_amount(int(row.risk_volume), row.currency),
            "currency": row.currency,
            "wallet_created_at": row.created_at.isoformat(),
            "is_flagged": bool(row.is_flagged),
        },
        is_acceptable=assessment.is_acceptable,
    )


async def profile(
    session: AsyncSession, principal: Principal, agent_id: str, now: datetime, rules: RiskRules
) -> RiskProfile:
    """Seed 003's profile: the current score, and totals counted from the agent's stored
    transactions. Raises ``AgentNotFound`` (404)."""
    agent = await _agent(session, principal, agent_id)
    assessment, row = await _assess_agent(session, agent, now, rules)
    totals = await repository.transaction_totals(session, principal.owner_id, agent_id)
    return RiskProfile(
        agent_id=agent_id,
        current_score=assessment.score,
        current_level=assessment.level.value,
        total_transactions=int(totals.total),
        failed_transactions=int(totals.failed),
        total_volume=format_amount(int(totals.volume), row.currency),
        is_flagged=bool(row.is_flagged),
        flag_reason=row.flag_reason,
        authorized_services=await repository.list_services(session, agent_id),
    )


def _audit(
    principal: Principal, request_id: str | None, event: str, agent_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    return audit_service.record(
        owner_id=principal.owner_id,
        event=event,
        subject_type="agent",
        subject_id=agent_id,
        key_id=principal.key_id,
        request_id=request_id,
        agent_id=agent_id,
        data=data,
    )


async def _record(
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    *,
    audit_event: str,
    event_type: str,
    agent_id: str,
    data: dict[str, Any],
) -> None:
    await audit_service.append(
        session, [_audit(principal, request_id, audit_event, agent_id, data)]
    )
    await event_service.emit(
        session,
        [event_service.event(principal.owner_id, event_type, {"agent_id": agent_id, **data})],
    )


async def authorize_service(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    service_id: str,
    request_id: str | None,
) -> AuthorizedServices:
    """Authorize one of the owner's merchants or wallets for the agent (idempotent: a
    repeat records nothing). Raises ``AgentNotFound`` and ``ServiceNotFound`` (404)."""
    agent = await _agent(session, principal, agent_id)
    if service_id == agent.wallet_id:
        raise InvalidService("an agent's own wallet is not a service it pays", param="service_id")
    if not await repository.service_exists(session, principal.owner_id, service_id):
        raise ServiceNotFound(
            f"No merchant or wallet {service_id} of this owner", param="service_id"
        )
    added = await repository.add_service(
        session, agent_id, service_id, principal.owner_id, principal.key_id
    )
    return await _services_after(
        session, principal, request_id, agent_id, service_id, "authorized" if added else None
    )


async def revoke_service(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    service_id: str,
    request_id: str | None,
) -> AuthorizedServices:
    """Revoke a service's authorization. Raises ``AgentNotFound`` and ``ServiceNotFound``
    (404: not authorized for this agent)."""
    await _agent(session, principal, agent_id)
    if not await repository.remove_service(session, agent_id, service_id):
        raise ServiceNotFound(
            f"{service_id} is not an authorized service of agent {agent_id}",
            param="service_id",
        )
    return await _services_after(session, principal, request_id, agent_id, service_id, "revoked")


async def _services_after(
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    agent_id: str,
    service_id: str,
    change: str | None,
) -> AuthorizedServices:
    """Record a ``change`` (``authorized``, ``revoked``; None: nothing changed) of one
    service (audit ``service_<change>``, event ``service.<change>``), then the agent's
    services as they now are."""
    if change is not None:
        await _record(
            session,
            principal,
            request_id,
            audit_event=f"service_{change}",
            event_type=f"service.{change}",
            agent_id=agent_id,
            data={"service_id": service_id},
        )
    return AuthorizedServices(
        agent_id=agent_id, services=await repository.list_services(session, agent_id)
    )


async def set_flag(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    reason: str | None,
    now: datetime,
    request_id: str | None,
) -> FlagState:
    """Flag the agent with ``reason`` (its next money movement is refused with 403
    ``agent_flagged``), or unflag it (``reason`` None). An owner key flagging again
    replaces the reason; an agent key (it may flag its own agent) never rewrites an
    existing flag. Only a change is recorded (audit, event), once however many requests
    race. Raises ``AgentNotFound`` (404)."""
    await _agent(session, principal, agent_id)
    if reason is None:
        changed_now, previous = await repository.unflag(session, principal.owner_id, agent_id)
        if changed_now:
            await _record(
                session,
                principal,
                request_id,
                audit_event="agent_unflagged",
                event_type="agent.unflagged",
                agent_id=agent_id,
                data={"previous_reason": previous},
            )
        return FlagState(agent_id=agent_id, is_flagged=False, flag_reason=None, flagged_at=None)
    changed = await repository.flag(
        session, principal.owner_id, agent_id, reason, now, replace=principal.agent_id is None
    )
    if changed is None:
        current = await repository.get_agent_row(session, agent_id)
        return FlagState(
            agent_id=agent_id,
            is_flagged=current.is_flagged,
            flag_reason=current.flag_reason,
            flagged_at=current.flagged_at,
        )
    await _record(
        session,
        principal,
        request_id,
        audit_event="agent_flagged",
        event_type="agent.flagged",
        agent_id=agent_id,
        data={"reason": reason},
    )
    return FlagState(
        agent_id=agent_id,
        is_flagged=changed.is_flagged,
        flag_reason=changed.flag_reason,
        flagged_at=changed.flagged_at,
    )


async def prune(session: AsyncSession, now: datetime) -> int:
    """Delete velocity buckets older than the longest window (a day): a periodic job."""
    return await repository.prune_buckets(session, now - timedelta(days=1, hours=1))
