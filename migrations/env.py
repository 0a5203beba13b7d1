import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import get_settings
from app.models import Base
from app.postgres import prepare_database

target_metadata = Base.metadata


def _do_run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_do_run)
    await engine.dispose()


def run_migrations_online() -> None:
    url = context.config.attributes.get("database_url")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _do_run(connection)
        return
    if url is None:
        settings = get_settings()
        url = asyncio.run(prepare_database(settings.database_url, settings.data_dir))
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run `purser migrate`.")
run_migrations_online()
