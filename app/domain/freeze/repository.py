"""SQL of the freeze ladder: the owner's row of ``owner_controls`` and the two freeze flags
every agent wallet carries (``is_active`` for the agent's own freeze, ``owner_frozen`` for
the owner's)."""

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import CURRENT_MODE_SQL

# The owner's row, made if missing. Two writers that both find it missing meet on the
# primary key: the second waits for the first to commit, so that whoever locks the row
# next reads the committed freeze.
_ENSURE_OWNER_ROW: Final = text(
    f"""
    INSERT INTO owner_controls (owner_id, mode) VALUES (:owner_id, {CURRENT_MODE_SQL})
    ON CONFLICT (owner_id, mode) DO NOTHING
    """  # noqa: S608
)

_LOCK_OWNER_ROW: Final = {
    mode: text(
        f"""
        SELECT frozen_at FROM owner_controls
         WHERE owner_id = :owner_id AND mode = {CURRENT_MODE_SQL}
           FOR {mode}
        """  # noqa: S608
    )
    for mode in ("SHARE", "UPDATE")
}

_SET_OWNER_FROZEN: Final = text(
    f"""
    UPDATE owner_controls
       SET frozen_at = CASE WHEN :frozen THEN coalesce(frozen_at, :at) END,
           frozen_by_key_id = CASE WHEN :frozen THEN coalesce(frozen_by_key_id, :key_id) END,
           updated_at = :at
     WHERE owner_id = :owner_id AND mode = {CURRENT_MODE_SQL}
    """  # noqa: S608
)

# Every agent wallet of the owner whose flag changes, with its agent and whether the agent
# is frozen on its own (``is_active`` false: its state does not change with the owner's).
# The UPDATE locks each wallet row as a payment does, so it waits for the payments holding
# them, and a payment that waits for it reads the new flag from the row it then locks.
_SET_WALLETS_OWNER_FROZEN: Final = text(
    f"""
    UPDATE wallets SET owner_frozen = :frozen
     WHERE owner_id = :owner_id AND mode = {CURRENT_MODE_SQL}
       AND agent_id IS NOT NULL AND owner_frozen <> :frozen
    RETURNING agent_id, is_active
    """  # noqa: S608
)

# One agent's own flag, and the wallet's flags before the change (RETURNING sees only the
# new row: the old values come from the locked row the CTE read).
_SET_AGENT_FROZEN: Final = text(
    f"""
    WITH before AS (
        SELECT id, is_active FROM wallets
         WHERE owner_id = :owner_id AND agent_id = :agent_id AND mode = {CURRENT_MODE_SQL}
           FOR NO KEY UPDATE
    )
    UPDATE wallets AS w SET is_active = NOT :frozen
      FROM before
     WHERE w.id = before.id
    RETURNING before.is_active AS was_active, w.owner_frozen
    """  # noqa: S608
)


async def lock_owner_row(session: AsyncSession, owner_id: str, *, exclusive: bool) -> bool:
    """Lock the owner's row (made if missing) and say whether its agents are frozen.
    ``exclusive``: FOR UPDATE (a freeze or unfreeze); else FOR SHARE (an agent created:
    a concurrent owner-wide freeze then waits for it, and its UPDATE sees the new wallet)."""
    await session.execute(_ENSURE_OWNER_ROW, {"owner_id": owner_id})
    statement = _LOCK_OWNER_ROW["UPDATE" if exclusive else "SHARE"]
    frozen_at = (await session.execute(statement, {"owner_id": owner_id})).scalar_one()
    return frozen_at is not None


async def set_owner_frozen(
    session: AsyncSession, owner_id: str, *, frozen: bool, key_id: str, at: Any
) -> list[str]:
    """Freeze (or unfreeze) every agent of the owner, ``lock_owner_row`` having locked its
    row: the owner's row, then each agent wallet's ``owner_frozen``. Returns the agents
    whose state changed: those not frozen on their own."""
    params = {"owner_id": owner_id, "frozen": frozen, "key_id": key_id, "at": at}
    await session.execute(_SET_OWNER_FROZEN, params)
    rows: Sequence[Row[Any]] = (
        await session.execute(_SET_WALLETS_OWNER_FROZEN, {"owner_id": owner_id, "frozen": frozen})
    ).all()
    return sorted(row.agent_id for row in rows if row.is_active)


async def set_agent_frozen(
    session: AsyncSession, owner_id: str, agent_id: str, *, frozen: bool
) -> tuple[bool, bool]:
    """Freeze (or unfreeze) one agent's own flag, its wallet row locked as a payment locks
    it. Returns ``(was_frozen_on_its_own, owner_frozen)``."""
    row = (
        await session.execute(
            _SET_AGENT_FROZEN, {"owner_id": owner_id, "agent_id": agent_id, "frozen": frozen}
        )
    ).one()
    return not row.was_active, bool(row.owner_frozen)
