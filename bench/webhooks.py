"""Webhook deliveries per second to a local receiver, with 1 and 2 workers.

N events for one owner are fanned out to one subscription; the workers (asyncio tasks in
this process, each with its own HTTP client and database connections, leasing due
deliveries with SKIP LOCKED and starting attempts as slots free up, exactly as `purser
worker` does) deliver them to a uvicorn receiver on loopback that answers 200. Every
attempt is signed and logged as in production.
"""

import argparse
import asyncio
import os
import time
from pathlib import Path

from cryptography.fernet import Fernet

from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.event import service as event_service
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.domain.webhook.schemas import WebhookCreate
from app.kit.encryption import SecretBox
from app.kit.time import utc_now
from app.migrations import upgrade_to_head
from app.postgres import start_embedded, to_async_url, to_libpq_url
from bench.ledger import BENCH_DB, recreate_database
from tests.webhook_receiver import running_receiver


async def run(events: int, workers: int, box: SecretBox, database_url: str) -> tuple[float, int]:
    engine = create_engine(database_url, pool_size=workers * 2 + 2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    owner = f"bench_{workers}_{time.time_ns()}"
    async with running_receiver() as receiver:
        await run_in_transaction(
            sessionmaker,
            lambda s: webhook_service.create(
                s,
                owner,
                WebhookCreate(url=receiver.url, events=["agent.updated"]),
                box,
                sandbox=True,
            ),
        )

        async def emit(session):  # type: ignore[no-untyped-def]
            await event_service.emit(
                session,
                [event_service.event(owner, "agent.updated", {"n": n}) for n in range(events)],
            )

        await run_in_transaction(sessionmaker, emit)
        while await run_in_transaction(
            sessionmaker, lambda s: webhook_service.fan_out(s, utc_now(), batch=1000)
        ):
            pass

        async def worker() -> None:
            async with delivery.Sender(sandbox=True) as sender:
                dispatcher = delivery.Dispatcher(sessionmaker, sender, box)
                try:
                    while len(receiver.requests) < events:
                        if not await dispatcher.dispatch(utc_now()):
                            await dispatcher.wait(0.05)
                    await dispatcher.drain()
                finally:
                    await dispatcher.aclose()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        elapsed = time.perf_counter() - started
        received = len(receiver.requests)
    await engine.dispose()
    return received / elapsed, received


async def main(events: int) -> None:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        server = to_libpq_url(url)
    else:
        server = start_embedded(Path(os.environ.get("PURSER_DATA_DIR", ".purser")) / "bench-pg")
    await recreate_database(server, BENCH_DB)
    database_url = to_async_url(server, BENCH_DB)
    await asyncio.to_thread(upgrade_to_head, database_url)
    box = SecretBox(Fernet.generate_key())
    print("| workers | events | delivered | deliveries/s |")
    print("|---:|---:|---:|---:|")
    for workers in (1, 2):
        rate, received = await run(events, workers, box, database_url)
        print(f"| {workers} | {events} | {received} | {rate:.0f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.events))
