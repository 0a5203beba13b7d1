"""Runs the periodic jobs of ``registry`` inside the API process (one task per job)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.worker.registry import JOBS, PeriodicJob

logger = logging.getLogger("purser.worker")


async def _loop(sessionmaker: async_sessionmaker[AsyncSession], job: PeriodicJob) -> None:
    while True:
        try:
            await run_in_transaction(sessionmaker, job.run)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("periodic job %s failed; will run again", job.name)
        await asyncio.sleep(job.every_seconds)


@asynccontextmanager
async def periodic_jobs(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(_loop(sessionmaker, job), name=job.name) for job in JOBS]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
