from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_bootstrap(session: AsyncSession) -> None:
    """Serialise first-start bootstrapping between processes (until the transaction ends)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('purser.bootstrap'))"))
