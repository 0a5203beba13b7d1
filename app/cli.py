"""The ``purser`` command."""

import asyncio
import signal
import sys
from typing import Annotated

import typer
import uvicorn

from app.config import get_settings
from app.migrations import upgrade_to_head
from app.postgres import prepare_database

cli = typer.Typer(
    help="Purser: agent wallets on a PostgreSQL double-entry ledger.", no_args_is_help=True
)


def _database_url() -> str:
    settings = get_settings()
    return asyncio.run(prepare_database(settings.database_url, settings.data_dir))


@cli.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    upgrade_to_head(_database_url())
    typer.echo("Database is up to date.")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (PURSER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (PURSER_PORT).")] = None,
) -> None:
    """Serve the HTTP API."""
    from app.main import create_app

    settings = get_settings()
    app = create_app(database_url=_database_url(), settings=settings)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with this handler in place
    # that becomes a normal exit, so the embedded PostgreSQL is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
    )


def main() -> None:
    cli()
