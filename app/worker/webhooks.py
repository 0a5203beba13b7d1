"""The webhook loop: fan committed outbox events out to subscribed endpoints, then
deliver what is due. Several copies (processes or tasks) may run: both steps lease rows
with SKIP LOCKED."""

import asyncio
import logging

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.kit.encryption import SecretBox
from app.kit.time import utc_now

logger = logging.getLogger("purser.webhooks")


async def run_webhook_loop(
    sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox, *, sandbox: bool
) -> None:
    async with httpx.AsyncClient(timeout=delivery.TIMEOUT_SECONDS, follow_redirects=False) as http:
        while True:
            try:
                fanned = await run_in_transaction(
                    sessionmaker, lambda session: webhook_service.fan_out(session, utc_now())
                )
                sent = await delivery.deliver_due(
                    sessionmaker, http, box, now=utc_now(), sandbox=sandbox
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook loop failed; retrying")
                fanned = sent = 0
            if not fanned and not sent:
                await asyncio.sleep(0.5)
