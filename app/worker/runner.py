"""Runs the periodic jobs of ``registry`` inside the API process (one task per job)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.sequence.service import Rail
from app.kit.encryption import SecretBox
from app.worker.registry import JOBS, PeriodicJob
from app.worker.sequence import run_sequence_loop
from app.worker.webhooks import run_webhook_loop

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
async def background_work(
    sessionmaker: async_sessionmaker[AsyncSession],
    webhook_box: SecretBox | None,
    *,
    sandbox: bool,
    rail: Rail | None = None,
) -> AsyncIterator[None]:
    """Run every periodic job, the webhook loop when given a secret box and the Sequence
    poller when given a rail, until exit."""
    tasks = [asyncio.create_task(_loop(sessionmaker, job), name=job.name) for job in JOBS]
    if rail is not None:
        tasks.append(asyncio.create_task(run_sequence_loop(sessionmaker, rail), name="sequence"))
    if webhook_box is not None:
        tasks.append(
            asyncio.create_task(
                run_webhook_loop(sessionmaker, webhook_box, sandbox=sandbox), name="webhooks"
            )
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
