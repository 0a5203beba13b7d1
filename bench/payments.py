"""Payments through the HTTP API: `purser serve` (uvicorn) on loopback, driven by httpx.

Each client is one agent paying in a loop (its own wallet, so payers do not queue on
each other), to a random one of 200 merchants (spread) or to one merchant (hot), for
concurrency 1, 8 and 32; pgbench ``tpcb-like`` runs with the same client counts on the
same cluster. Rate limits are off (PURSER_RATE_LIMITS=off); everything else (auth,
idempotency keys, limits, fees, audit records, outbox events) runs as in production.
Figures, not assertions.
"""

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.config import Mode
from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.apikey import service as apikey_service
from app.migrations import upgrade_to_head
from app.postgres import start_embedded, to_async_url, to_libpq_url
from bench.ledger import BENCH_DB, PGBENCH_DB, Result, pgbench, pgbench_init, recreate_database

PURSER = str(Path(sys.executable).parent / "purser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PURSER, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
    )


async def owner_key(database_url: str) -> str:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        key = await run_in_transaction(
            create_sessionmaker(engine),
            lambda s: apikey_service.create_key(s, owner_id="bench_owner", mode=Mode.sandbox),
        )
    finally:
        await engine.dispose()
    return key.secret


async def wait_until_up(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if (await client.get("/api/v1/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def run_cell(
    client: httpx.AsyncClient,
    label: str,
    agents: list[str],
    merchants: list[str],
    seconds: float,
) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def payer(index: int) -> None:
        nonlocal errors
        rng = random.Random(index)
        while time.monotonic() < deadline:
            body = {
                "agent_id": agents[index],
                "merchant_id": rng.choice(merchants),
                "amount": "1.00",
                "purpose": "bench",
            }
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/payments",
                json=body,
                headers={"Idempotency-Key": f"{index}-{started}"},
            )
            if response.status_code != 200:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(payer(i) for i in range(len(agents))))
    if errors:
        print(f"    {label}: {errors} non-200 responses", flush=True)
    return Result(label, len(agents), len(latencies), time.perf_counter() - began, latencies)


async def main(seconds: float, clients_list: list[int], workers: int) -> None:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        server = to_libpq_url(url)
    else:
        server = start_embedded(Path(os.environ.get("PURSER_DATA_DIR", ".purser")) / "bench-pg")
    await recreate_database(server, BENCH_DB)
    await recreate_database(server, PGBENCH_DB)
    database_url = to_async_url(server, BENCH_DB)
    await asyncio.to_thread(upgrade_to_head, database_url)
    pgbench_init(server, scale=max(clients_list))
    secret = await owner_key(database_url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(database_url),
        "PURSER_RATE_LIMITS": "off",
        "PURSER_LOG_LEVEL": "warning",
        "PURSER_DB_POOL_SIZE": str(max(clients_list)),
    }
    server_process = start_server(port, workers, env)
    rows = []
    try:
        limits = httpx.Limits(
            max_connections=max(clients_list), max_keepalive_connections=max(clients_list)
        )
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {secret}"},
            limits=limits,
            timeout=60,
        ) as client:
            await wait_until_up(client)
            agents = []
            for i in range(max(clients_list)):
                created = await client.post(
                    "/api/v1/agents",
                    json={"name": f"bench agent {i}", "initial_balance": "1000000.00"},
                )
                agents.append(created.json()["agent"]["agent_id"])
            merchants = []
            for i in range(201):
                created = await client.post("/api/v1/merchants", json={"name": f"shop {i}"})
                merchants.append(created.json()["merchant_id"])
            hot, spread = merchants[:1], merchants[1:]
            await run_cell(client, "warmup", agents[:8], spread, 2)
            for clients in clients_list:
                spread_result = await run_cell(client, "spread", agents[:clients], spread, seconds)
                hot_result = await run_cell(client, "hot merchant", agents[:clients], hot, seconds)
                tps, _ = pgbench(server, clients, int(seconds), "-b", "tpcb-like")
                rows.append((clients, spread_result, hot_result, tps))
                print(
                    f"  clients={clients}: spread {spread_result.rate:.0f}/s, "
                    f"hot {hot_result.rate:.0f}/s, pgbench {tps:.0f} tps",
                    flush=True,
                )
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)

    print()
    print("| clients | mode | payments/s | p50 ms | p99 ms | pgbench tpcb tps | payments/s ÷ tps |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for clients, spread_result, hot_result, tps in rows:
        for r in (spread_result, hot_result):
            print(
                f"| {clients} | {r.label} | {r.rate:.0f} | {r.pct(0.5):.1f} | {r.pct(0.99):.1f} "
                f"| {tps:.0f} | {r.rate / tps:.2f} |"
            )
    print()
    print(f"API processes: {workers}")
    for clients, spread_result, hot_result, _ in rows:
        print(f"clients={clients}: hot ÷ spread = {hot_result.rate / spread_result.rate:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=1, help="API processes")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.clients, args.workers))
