"""The ``purser`` command."""

import asyncio
import contextlib
import copy
import json
import logging
import logging.config
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, TypeVar

import typer
import uvicorn
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncSession
from uvicorn.supervisors import Multiprocess

from app.config import Mode, Settings, get_settings
from app.db import (
    MixedModes,
    check_modes_apart,
    create_engine,
    create_sessionmaker,
    run_in_transaction,
)
from app.domain.agent import service as agent_service
from app.domain.apikey import service as apikey_service
from app.domain.apikey.schemas import OWNER_DEFAULT_SCOPES, ApiKeyCreated, Principal, Scope, Tier
from app.domain.audit import service as audit_service
from app.domain.journal import service as journal_service
from app.domain.sandbox import service as sandbox_service
from app.errors import AppError
from app.kit.money import format_amount
from app.migrations import (
    DatabaseUnreachable,
    SchemaState,
    alembic_config,
    applied_revisions,
    schema_status,
    upgrade_to_head,
)
from app.postgres import prepare_database

T = TypeVar("T")

cli = typer.Typer(
    help="Purser: agent wallets on a PostgreSQL double-entry ledger.", no_args_is_help=True
)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
owners_cli = typer.Typer(help="Owners (whoever has API keys).", no_args_is_help=True)
cli.add_typer(owners_cli, name="owners")
audit_cli = typer.Typer(help="The audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


# --- Logging: no secret reaches a log line ----------------------------------------------

#: What stands in a log line for whatever was removed.
REDACTED: Final = "***"
# A whole API key, a webhook secret, and a hex digest of 64 digits (a key's secret or its
# stored SHA-256): nothing a log reader needs, anything an attacker would.
_KEY_LIKE: Final = re.compile(r"\b(sk_(?:test|live)|whsec)_[A-Za-z0-9_+/=-]+")
_HEX_64: Final = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
# A Fernet token (an encrypted webhook secret): version byte 0x80, base64url.
_FERNET: Final = re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}")
# What a database error quotes of the row or statement: SQLAlchemy's ``[parameters: …]``
# and PostgreSQL's ``DETAIL: Key (column)=(value)`` and ``Failing row contains (…)``.
_SQL_PARAMETERS: Final = re.compile(r"\[parameters: [^\n]*\]")
_SQL_KEY_DETAIL: Final = re.compile(r"(Key \([^)\n]*\)=\()[^\n]*?(\) (?:already exists|is not))")
_SQL_FAILING_ROW: Final = re.compile(r"(Failing row contains \()[^\n]*(\))")
# A query parameter name kept in an access log line: letters and underscores, short.
_PLAIN_NAME: Final = re.compile(r"[A-Za-z_]{1,32}")


def redact_secrets(text: str) -> str:
    """``text`` without API keys, webhook secrets, 64-digit hex digests, Fernet tokens and
    the values a database error quotes."""
    text = _KEY_LIKE.sub(rf"\1_{REDACTED}", text)
    text = _HEX_64.sub(REDACTED, text)
    text = _FERNET.sub(REDACTED, text)
    text = _SQL_PARAMETERS.sub(f"[parameters: {REDACTED}]", text)
    text = _SQL_KEY_DETAIL.sub(rf"\g<1>{REDACTED}\g<2>", text)
    return _SQL_FAILING_ROW.sub(rf"\g<1>{REDACTED}\g<2>", text)


def redact_target(target: str) -> str:
    """A request target as an access log may show it: every query value replaced by
    ``***``, a parameter name kept only if it is letters and underscores (at most 32), the
    path cleared of anything shaped like a secret. A client that puts its key in the query
    string (``?api_key=sk_test_…``, ``?sk_test_…``, percent-encoded or not) leaves no trace
    of it."""
    path, mark, query = target.partition("?")
    path = redact_secrets(path)
    if not mark:
        return path
    pairs: list[str] = []
    for pair in query.split("&"):
        if not pair:
            pairs.append(pair)
            continue
        name, equals, _ = pair.partition("=")
        shown = name if _PLAIN_NAME.fullmatch(name) else REDACTED
        pairs.append(f"{shown}={REDACTED}" if equals else shown)
    return f"{path}?{'&'.join(pairs)}"


class RedactingFilter(logging.Filter):
    """A handler filter that rewrites each record before it is written: the request target
    of uvicorn's access lines through ``redact_target``, every other message and every
    traceback through ``redact_secrets``. Rejects nothing."""

    _formatter: Final = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            # (client address, method, path with query string, HTTP version, status)
            record.args = (*args[:2], redact_target(str(args[2])), *args[3:])
        else:
            message = record.getMessage()
            cleaned = redact_secrets(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        return True


def log_config() -> dict[str, Any]:
    """The logging of ``purser serve`` and ``purser worker``: uvicorn's own configuration,
    with ``RedactingFilter`` on both its handlers, and the root logger (Purser's records,
    warnings and up, and any library's) written through the same filtered handler."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    # By its import path: worker processes of `purser serve --workers` build it anew.
    config["filters"] = {"redact": {"()": "app.cli.RedactingFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config


def server_options(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> dict[str, Any]:
    """The uvicorn options ``purser serve`` runs with (its tests serve with them too)."""
    return {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": settings.log_level,
        "log_config": log_config(),
        "access_log": settings.access_log == "on",
        "proxy_headers": False,
    }


def _database_url() -> str:
    settings = get_settings()
    return asyncio.run(prepare_database(settings.database_url, settings.data_dir))


def _fail(message: str) -> typer.Exit:
    """Print ``message`` as the one line on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _schema_state(url: str) -> SchemaState:
    """Where the database at ``url`` stands against this version's migrations; an
    unreachable database ends the command with one line saying why."""
    try:
        return asyncio.run(schema_status(url)).state
    except DatabaseUnreachable as error:
        raise _fail(f"cannot connect to the database: {error}") from None


def _ready_database_url() -> str:
    """The URL of a database at the newest schema, for commands that use Purser's tables.

    The embedded server is Purser's own, so it is brought up to date here. A database
    named by ``DATABASE_URL`` belongs to whoever runs it, who decides when its schema
    changes: if it is not up to date the command stops with one line asking for
    ``purser migrate``, rather than failing later on a missing table.
    """
    external = bool(get_settings().database_url)
    url = _database_url()
    state = _schema_state(url)
    if state is SchemaState.current:
        return url
    if state is SchemaState.unknown:
        raise _fail(
            "the database was migrated by a newer version of Purser; run that version "
            "(or upgrade this one)"
        )
    if external:
        if state is SchemaState.empty:
            raise _fail("the database at DATABASE_URL has no Purser tables; run `purser migrate`")
        raise _fail(
            "the database at DATABASE_URL is behind this version of Purser; run `purser migrate`"
        )
    upgrade_to_head(url)
    typer.echo("Migrated the embedded database to the newest schema.", err=True)
    return url


def _check_modes_apart(url: str) -> None:
    """End the command with one line if the database holds data of the mode this server
    does not serve (unless ``PURSER_ALLOW_MIXED_MODES``); see ``check_modes_apart``."""
    settings = get_settings()

    async def run() -> None:
        engine = create_engine(url, mode=settings.mode, pool_size=1, max_overflow=0)
        try:
            await check_modes_apart(engine, settings.mode, allow_mixed=settings.allow_mixed_modes)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except MixedModes as error:
        raise _fail(str(error)) from None


def _in_transaction(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(url, mode=get_settings().mode, pool_size=1, max_overflow=0)
        try:
            return await run_in_transaction(create_sessionmaker(engine), work)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except AppError as error:
        raise _fail(error.detail) from None


@cli.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    url = _database_url()
    state = _schema_state(url)
    if state is SchemaState.unknown:
        raise _fail("the database was migrated by a newer version of Purser")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if state is SchemaState.current:
        typer.echo(f"Database is up to date (revision {head}).")
        return
    before = sorted(asyncio.run(applied_revisions(url))) or ["an empty database"]
    upgrade_to_head(url)
    typer.echo(f"Migrated the database from {', '.join(before)} to revision {head}.")


def _with_sequence_sandbox(settings: Settings) -> Settings:
    """In sandbox (``SEQUENCE_MODE``), start the sandbox Sequence in a thread of this
    process on 127.0.0.1 and point every API process at it, unless a default connection
    or a sandbox URL of one's own is configured. Owners with a key of their own still use
    theirs."""
    if (
        not settings.sequence_uses_sandbox
        or settings.sequence_api_key
        or settings.sequence_sandbox_url
    ):
        return settings
    from app.integrations.sequence.sandbox import create_sandbox_app

    port = settings.sequence_sandbox_port or _free_loopback_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    threading.Thread(target=server.run, name="sequence-sandbox", daemon=True).start()
    url = f"http://127.0.0.1:{port}/platform/v1"
    # Worker processes read their settings from the environment.
    os.environ["PURSER_SEQUENCE_SANDBOX_URL"] = url
    typer.echo(f"  Sandbox Sequence: {url}", err=True)
    return settings.model_copy(update={"sequence_sandbox_url": url})


def _check_port_free(host: str, port: int) -> None:
    """Stop with one line naming the port (and how to choose another) if it is taken,
    instead of uvicorn's bare ``[Errno 98]`` after start-up."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise _fail(
                f"cannot listen on {host}:{port} ({error.strerror}); stop what uses it, or "
                "choose another port with --port or PURSER_PORT"
            ) from None


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (PURSER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (PURSER_PORT).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="API processes (PURSER_WORKERS); default: one per core with DATABASE_URL "
            "and shared rate limits, else 1.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API. On the first start of an empty sandbox, print a new API key."""
    from app.main import create_app

    settings = get_settings()
    _check_port_free(host or settings.host, port or settings.port)
    url = _ready_database_url()
    _check_modes_apart(url)
    key = _in_transaction(url, lambda session: sandbox_service.bootstrap(session, settings.mode))
    if key is not None:
        typer.echo(
            "\n  Sandbox ready. Your API key (shown once, store it now):\n\n"
            f"    {key.secret}\n\n"
            f"  owner_id: {key.owner_id}; a demo catalog and two merchants were created.\n"
            f"  Try: curl -H 'Authorization: Bearer {key.secret}' "
            f"http://{host or settings.host}:{port or settings.port}/api/v1/catalog/products\n"
        )
    settings = _with_sequence_sandbox(settings)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with this handler in place
    # that becomes a normal exit, so the embedded PostgreSQL is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    options = server_options(settings, host=host, port=port)
    processes = workers or settings.workers or settings.default_workers()
    if processes > 1 and not settings.shared_rate_limits:
        typer.echo(
            f"  Note: {processes} API processes count rate limits each on its own; set "
            "REDIS_URL for one budget per key across them.",
            err=True,
        )
    if processes == 1:
        uvicorn.run(create_app(database_url=url, settings=settings), **options)
        return
    # Worker processes build their app from the environment; they share this process's
    # database (the embedded server stays owned by this process).
    os.environ["DATABASE_URL"] = url
    config = uvicorn.Config(
        "app.main:create_app_from_env",
        factory=True,
        workers=processes,
        **options,
    )
    listener = config.bind_socket()
    # NOTE: uvicorn binds the shared listener with proto 0, so asyncio never turns Nagle
    # off on accepted sockets and each keep-alive response waits ~40 ms for a delayed ACK
    # (Kludex/uvicorn#3149). Accepted sockets inherit TCP_NODELAY from the listener.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[listener]).run()


@cli.command()
def worker() -> None:
    """Run background work without the API: webhook delivery, the periodic jobs and the
    Sequence poller."""
    from app.main import secret_box_or_none
    from app.worker.runner import background_work

    settings = get_settings()
    url = _ready_database_url()
    _check_modes_apart(url)
    box = secret_box_or_none(settings)
    if box is None:
        typer.echo("error: webhook delivery needs PURSER_SECRET_KEY in live mode", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        from app.domain.sequence.service import Rail

        engine = create_engine(url, mode=settings.mode, pool_size=4, max_overflow=4)
        # The Sequence poller too; a sandbox Sequence it reaches through
        # PURSER_SEQUENCE_SANDBOX_URL (the one `purser serve` printed).
        rail = Rail(settings, box, sandbox_url=settings.sequence_sandbox_url)
        try:
            async with background_work(
                create_sessionmaker(engine),
                box,
                sandbox=settings.mode is Mode.sandbox,
                rail=rail,
            ):
                await asyncio.Event().wait()
        finally:
            await rail.close()
            await engine.dispose()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    logging.config.dictConfig(log_config())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@keys_cli.command("create")
def keys_create(
    owner: Annotated[str, typer.Option(help="Owner the key acts for.")],
    agent: Annotated[str | None, typer.Option(help="Restrict the key to this agent.")] = None,
    scope: Annotated[
        list[Scope] | None,
        typer.Option(
            help="Scope to grant (repeatable); default: all but sequence (with --agent: "
            "wallet:read and payments:write)."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "api key",
    tier: Annotated[Tier, typer.Option(help="Rate-limit tier.")] = Tier.standard,
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="Expire after N days.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    demo: Annotated[
        bool, typer.Option(help="In sandbox, give a new owner the demo merchants and catalog.")
    ] = True,
) -> None:
    """Create an API key and print it (the only time it is shown). A new sandbox owner
    gets the demo merchants and catalog, as the first start's owner does (``--no-demo``:
    none)."""
    settings = get_settings()
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None

    async def work(session: AsyncSession) -> ApiKeyCreated:
        if agent is not None:
            owner_view = Principal(
                "cli", owner, settings.mode.value, OWNER_DEFAULT_SCOPES, None, tier
            )
            await agent_service.get(session, owner_view, agent)
        new_owner = not await apikey_service.list_keys(session, owner)
        created = await apikey_service.create_key(
            session,
            owner_id=owner,
            mode=Mode(settings.mode),
            name=name,
            agent_id=agent,
            scopes=scope,
            tier=tier,
            expires_at=expires_at,
        )
        if demo and new_owner and settings.mode is Mode.sandbox:
            await sandbox_service.seed_demo(session, owner)
        return created

    created = _in_transaction(_ready_database_url(), work)
    if as_json:
        typer.echo(created.model_dump_json())
    else:
        typer.echo(f"{created.key_id}  owner={created.owner_id}  scopes={','.join(created.scopes)}")
        typer.echo(created.secret)


@keys_cli.command("list")
def keys_list(
    owner: Annotated[str | None, typer.Option(help="Whose keys (default: every owner's).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List keys (never their secrets): an owner's, or every owner's — a lost first key's
    owner is found here."""
    keys = _in_transaction(_ready_database_url(), lambda s: apikey_service.list_keys(s, owner))
    if as_json:
        typer.echo(json.dumps([json.loads(key.model_dump_json()) for key in keys]))
        return
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        typer.echo(
            f"{key.key_id}  owner={key.owner_id}  {key.mode}  {state}  {key.name}  "
            f"agent={key.agent_id or '-'}  tier={key.tier}"
        )


@owners_cli.command("list")
def owners_list() -> None:
    """Every owner that has a key, with how many keys it has (active of all)."""
    keys = _in_transaction(_ready_database_url(), lambda s: apikey_service.list_keys(s, None))
    counts: dict[str, list[int]] = {}
    for key in keys:
        active_total = counts.setdefault(key.owner_id, [0, 0])
        active_total[0] += key.revoked_at is None
        active_total[1] += 1
    for owner_id, (active, total) in counts.items():
        typer.echo(f"{owner_id}  keys={active} active of {total}")


@keys_cli.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once."""
    _in_transaction(
        _ready_database_url(), lambda s: apikey_service.revoke_key(s, key_id, owner_id=None)
    )
    typer.echo(f"{key_id} revoked")


@audit_cli.command("seal")
def audit_seal() -> None:
    """Give every committed, unsealed audit record its place in the hash chain."""
    url = _ready_database_url()
    total = 0
    while sealed := _in_transaction(url, audit_service.seal):
        total += sealed
    typer.echo(f"sealed {total} audit records")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 at the first record that does not match."""
    result = _in_transaction(_ready_database_url(), audit_service.verify)
    if result.bad_seq is not None:
        typer.echo(
            f"audit chain broken at record seq={result.bad_seq}: {result.reason} "
            f"({result.checked} records verified before it)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(
        f"audit chain intact: {result.checked} records verified, {result.unsealed} not sealed yet"
    )


@cli.command()
def reconcile(
    agent: Annotated[str, typer.Option(help="The agent whose wallet to check (any owner's).")],
) -> None:
    """Check an agent's wallet against the journal: for its available and held accounts,
    the balance (the ledger's balance projection), the sum of the account's postings and
    the difference. Exit 1 if a difference is not 0. Reads the mode the server runs in
    (PURSER_MODE)."""
    result = _in_transaction(
        _ready_database_url(),
        lambda session: journal_service.reconcile_agent_wallet(session, agent),
    )
    typer.echo(f"agent {result.agent_id}  owner={result.owner_id}  wallet={result.wallet_id}")
    for line in result.accounts:
        typer.echo(
            f"{line.account.value:<9}  balance={format_amount(line.balance, line.currency)}  "
            f"postings={format_amount(line.postings_total, line.currency)}  "
            f"difference={format_amount(line.difference, line.currency)}  {line.currency}"
        )
    if not result.balanced:
        typer.echo(
            "the wallet's balance differs from the sum of its postings: the ledger's balance "
            "projection is wrong",
            err=True,
        )
        raise typer.Exit(1)


@cli.command("sequence-sandbox")
def sequence_sandbox(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8800,
    settle_seconds: Annotated[
        float,
        typer.Option(min=0, help="Seconds for a transfer between pods: PROCESSING to COMPLETE."),
    ] = 2.0,
) -> None:
    """Serve a fake GetSequence Platform API (accounts and transfers) for local runs.

    Each key sk_sandbox_<name> is an organisation; /_fake/... controls faults and the clock.
    """
    from app.integrations.sequence.sandbox import run_sandbox

    typer.echo(
        f"\n  Sequence sandbox: http://{host}:{port}/platform/v1\n"
        "  Any bearer key sk_sandbox_<name> is its own organisation (seeded on first use).\n",
        err=True,
    )
    run_sandbox(host, port, settle_seconds=settle_seconds)


@cli.command()
def demo(
    base_url: Annotated[
        str, typer.Option(envvar="PURSER_BASE_URL", help="The Purser to run against.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="PURSER_API_KEY",
            show_default=False,
            help="A sandbox key (sk_test_…), e.g. the one `purser serve` printed at first start.",
        ),
    ] = None,
    receiver_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Port of the local webhook receiver on 127.0.0.1 (0: any free)."
        ),
    ] = 0,
) -> None:
    """Run a scripted scenario against a running sandbox: an agent created and funded, a
    catalog product bought, an invoice paid, the webhooks received locally and verified.
    Exit 1 if a step fails."""
    from app.demo import run_demo

    raise typer.Exit(run_demo(base_url=base_url, api_key=api_key, receiver_port=receiver_port))


def main() -> None:
    cli()
