"""The freeze ladder: an owner (or an agent's own key) stops an agent's money at once, or
every agent of the owner, including agents created while frozen.

A frozen agent's every money call (payment, hold, capture, request pay, funding) is refused
with 403 ``wallet_frozen`` and recorded as a failed attempt: the pipeline's state step
reads both flags from the payer's locked wallet row (``app.domain.payment.service.
check_policy``). Each flag is written by an UPDATE of the wallet rows, which waits for the
payments holding them, so a freeze is effective for the next payment in every process and
no payment that had not taken its wallet's lock before the freeze committed gets through.
"""

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.agent import service as agent_service
from app.domain.audit import service as audit_service
from app.domain.event import service as event_service
from app.domain.freeze import repository
from app.domain.freeze.errors import ReleaseHoldsNotAllowed
from app.domain.freeze.schemas import FreezeRead
from app.domain.hold import service as hold_service
from app.domain.payment.service import CallContext


def _events(
    owner_id: str, frozen: bool, agent_ids: list[str], data: dict[str, Any]
) -> list[dict[str, Any]]:
    type_ = "agent.frozen" if frozen else "agent.unfrozen"
    return [
        event_service.event(owner_id, type_, {"agent_id": agent_id, **data})
        for agent_id in agent_ids
    ]


async def set_agent(
    session: AsyncSession,
    agent_id: str,
    context: CallContext,
    *,
    frozen: bool,
    release_holds: bool = False,
) -> FreezeRead:
    """Freeze (``frozen``) or unfreeze agent ``agent_id`` on its own; with
    ``release_holds``, void its pending holds too. The answer's ``frozen`` is the agent's
    state after the call, which an owner-wide freeze also holds (``frozen_by``): unfreezing
    an agent the owner froze changes nothing it can do. ``agent.frozen`` /
    ``agent.unfrozen`` only when that state changes; audit ``agent_frozen`` /
    ``agent_unfrozen`` naming the key when the agent's own flag changes. Raises
    ``AgentNotFound`` (404) for an agent the caller does not see, and
    ``ReleaseHoldsNotAllowed`` (403) for ``release_holds`` from an agent key (voiding is
    the owner's decision). The route decides who may unfreeze (owner keys only)."""
    principal = context.principal
    if release_holds and principal.agent_id is not None:
        raise ReleaseHoldsNotAllowed(
            "release_holds voids holds, which only owner keys may do; freeze without it",
            param="release_holds",
        )
    await agent_service.get(session, principal, agent_id)
    was_own, owner_frozen = await repository.set_agent_frozen(
        session, principal.owner_id, agent_id, frozen=frozen
    )
    released = (
        await hold_service.void_pending(session, context, [agent_id]) if release_holds else []
    )
    own_changed = was_own != frozen
    now_frozen = owner_frozen or frozen
    changed = (owner_frozen or was_own) != now_frozen
    data = {"scope": "agent", "key_id": principal.key_id, "holds_released": released}
    if own_changed or released:
        await audit_service.append(
            session,
            [
                audit_service.record(
                    owner_id=principal.owner_id,
                    event="agent_frozen" if frozen else "agent_unfrozen",
                    subject_type="agent",
                    subject_id=agent_id,
                    key_id=principal.key_id,
                    request_id=context.request_id,
                    agent_id=agent_id,
                    data={**data, "owner_frozen": owner_frozen},
                )
            ],
        )
    if changed:
        await event_service.emit(session, _events(principal.owner_id, now_frozen, [agent_id], data))
    frozen_by: list[Literal["agent", "owner"]] = []
    if frozen:
        frozen_by.append("agent")
    if owner_frozen:
        frozen_by.append("owner")
    return FreezeRead(
        scope="agent",
        agent_id=agent_id,
        frozen=now_frozen,
        frozen_by=frozen_by,
        changed=changed,
        agent_ids=[agent_id] if changed else [],
        holds_released=released,
    )


async def set_owner(
    session: AsyncSession, context: CallContext, *, frozen: bool, release_holds: bool = False
) -> FreezeRead:
    """Freeze (or unfreeze) every agent of the caller's owner, and every agent created
    while frozen (``agent.service.create`` reads the owner's row); with ``release_holds``,
    void every pending hold of the owner's agents. An agent frozen on its own stays frozen
    after the owner unfreezes. Audit ``owner_frozen`` / ``owner_unfrozen``; one
    ``agent.frozen`` / ``agent.unfrozen`` event per agent whose state changed (an agent
    frozen on its own gets none)."""
    principal = context.principal
    owner_id = principal.owner_id
    was_frozen = await repository.lock_owner_row(session, owner_id, exclusive=True)
    agent_ids = await repository.set_owner_frozen(
        session, owner_id, frozen=frozen, key_id=principal.key_id, at=context.now
    )
    released = await hold_service.void_pending(session, context, None) if release_holds else []
    changed = was_frozen != frozen
    data = {"scope": "owner", "key_id": principal.key_id, "holds_released": released}
    if changed or released:
        await audit_service.append(
            session,
            [
                audit_service.record(
                    owner_id=owner_id,
                    event="owner_frozen" if frozen else "owner_unfrozen",
                    subject_type="owner",
                    subject_id=owner_id,
                    key_id=principal.key_id,
                    request_id=context.request_id,
                    data={**data, "agent_ids": agent_ids},
                )
            ],
        )
    await event_service.emit(session, _events(owner_id, frozen, agent_ids, data))
    return FreezeRead(
        scope="owner",
        agent_id=None,
        frozen=frozen,
        frozen_by=["owner"] if frozen else [],
        changed=changed,
        agent_ids=agent_ids,
        holds_released=released,
    )
