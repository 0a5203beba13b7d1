"""Apply Alembic migrations programmatically (``purser migrate``, tests, ``make run``), and
tell whether a database is at the newest schema before a command relies on its tables."""

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import NullPool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.postgres import to_async_url, to_libpq_url

ROOT = Path(__file__).resolve().parent.parent

#: Key of the transaction-level advisory lock held while migrating, so that two processes
#: migrating one database at once (two first starts on an empty embedded cluster) take
#: turns: the second finds the schema at head and has nothing to do.
MIGRATION_LOCK_KEY = 0x7075_7273_6572  # "purser"

#: How long to wait for a database to answer before calling it unreachable.
CONNECT_TIMEOUT_SECONDS = 10.0


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic's configuration for this project, bound to ``database_url`` if given."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """Apply every pending migration to ``database_url`` in one transaction.

    The transaction first takes an advisory lock, so concurrent upgrades of one database
    run one after the other instead of failing on each other's half-created tables.
    """
    asyncio.run(_upgrade_to_head(database_url))


async def _upgrade_to_head(database_url: str) -> None:
    engine = create_async_engine(to_async_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            # migrations/env.py runs on a connection it is handed; as this one is already
            # in a transaction, Alembic leaves committing it to us.
            await connection.run_sync(_upgrade_on)
            await connection.commit()
    finally:
        await engine.dispose()


def _upgrade_on(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class SchemaState(StrEnum):
    """Where a database stands relative to this version's migrations."""

    #: At the newest migration: ready to use.
    current = "current"
    #: No migration was ever applied (no ``alembic_version`` table, or an empty one).
    empty = "empty"
    #: At an older migration of this version: ``purser migrate`` brings it up to date.
    behind = "behind"
    #: At a migration this version does not know: a newer Purser migrated it.
    unknown = "unknown"


@dataclass(frozen=True)
class SchemaStatus:
    """The database's applied revisions and the newest ones of this version."""

    state: SchemaState
    revisions: frozenset[str]
    heads: frozenset[str]


class DatabaseUnreachable(Exception):
    """The database could not be connected to; the message says why, on one line."""


async def applied_revisions(database_url: str) -> frozenset[str]:
    """The revisions recorded in the database's ``alembic_version`` table (none if absent).

    Raises :class:`DatabaseUnreachable` when the server does not answer, refuses the
    login or has no such database.
    """
    try:
        conn = await asyncpg.connect(to_libpq_url(database_url), timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # Driver messages may span lines (hints, details); the caller prints one line.
        raise DatabaseUnreachable(" ".join(str(error).split()) or type(error).__name__) from None
    try:
        if await conn.fetchval("SELECT to_regclass('alembic_version')") is None:
            return frozenset()
        rows = await conn.fetch("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    return frozenset(str(row["version_num"]) for row in rows)


def classify(revisions: frozenset[str], script: ScriptDirectory) -> SchemaStatus:
    """Compare a database's applied ``revisions`` with the migrations in ``script``."""
    heads = frozenset(script.get_heads())
    if revisions == heads:
        state = SchemaState.current
    elif not revisions:
        state = SchemaState.empty
    else:
        try:
            for revision in revisions:
                script.get_revision(revision)
        except CommandError:
            state = SchemaState.unknown
        else:
            state = SchemaState.behind
    return SchemaStatus(state, revisions, heads)


async def schema_status(database_url: str) -> SchemaStatus:
    """Whether ``database_url`` is migrated to this version's newest schema."""
    revisions = await applied_revisions(database_url)
    return classify(revisions, ScriptDirectory.from_config(alembic_config()))
