"""The webhook loop: fan committed outbox events out to subscribed endpoints, then
start the deliveries that are due, without waiting for those already under way (a slow
endpoint holds its own slots, never the loop). Several copies (processes or tasks) may
run: both steps lease rows with SKIP LOCKED."""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.kit.encryption import SecretBox
from app.kit.time import utc_now

logger = logging.getLogger("purser.webhooks")

#: Longest pause when nothing is due and no attempt finishes.
IDLE_SECONDS = 0.5


async def run_webhook_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    *,
    sandbox: bool,
    limits: delivery.DeliveryLimits | None = None,
) -> None:
    """Run until cancelled; attempts still running then are cancelled too (their
    deliveries go out again once their leases run out)."""
    async with delivery.Sender(sandbox=sandbox, limits=limits) as sender:
        dispatcher = delivery.Dispatcher(sessionmaker, sender, box)
        try:
            while True:
                try:
                    fanned = await run_in_transaction(
                        sessionmaker, lambda session: webhook_service.fan_out(session, utc_now())
                    )
                    started = await dispatcher.dispatch(utc_now())
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("webhook loop failed; retrying")
                    fanned = started = 0
                if not fanned and not started:
                    await dispatcher.wait(IDLE_SECONDS)
        finally:
            await dispatcher.aclose()
