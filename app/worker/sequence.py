"""The Sequence poller: settles transfers a request left unresolved (``resolve_due``)."""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.sequence.service import Rail
from app.domain.sequence.transfers import resolve_due
from app.kit.time import utc_now

logger = logging.getLogger("purser.worker")

#: Seconds between polls when nothing was due (each transfer has its own backoff).
IDLE_SECONDS = 1.0


async def run_sequence_loop(sessionmaker: async_sessionmaker[AsyncSession], rail: Rail) -> None:
    while True:
        try:
            busy = await resolve_due(sessionmaker, rail, utc_now())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the Sequence poller failed; will run again")
            busy = 0
        if not busy:
            await asyncio.sleep(IDLE_SECONDS)
