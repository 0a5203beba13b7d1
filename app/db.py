"""Engine, sessions, and the unit-of-work runner.

One use case = one transaction. Services and repositories flush, never commit; the
request dependency (``app.api.deps``) or ``run_in_transaction`` commits in one place.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Mode
from app.models.base import MODE_SETTING

T = TypeVar("T")

#: SQLSTATEs that mean "nothing is wrong with the request, run the transaction again".
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


#: Execution option of an engine naming the mode its connections serve (``session_mode``).
MODE_OPTION = "purser_mode"


def create_engine(
    url: str, *, mode: Mode = Mode.sandbox, pool_size: int = 10, max_overflow: int = 10
) -> AsyncEngine:
    """An engine whose every connection serves ``mode``.

    The mode travels in the connection's startup packet (``purser.mode``): rows the
    connection inserts take it as their ``mode`` by column default, and repositories read
    only rows of it. Setting it once per connection costs no statement on any request.

    Errors never quote a statement's parameters (``hide_parameters``): they are key
    hashes, ciphertexts and owners' data, and an error travels into logs and tracebacks.
    Nothing reads them back from an error: callers look at the SQLSTATE and constraint.
    """
    mode = Mode(mode)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        hide_parameters=True,
        execution_options={MODE_OPTION: mode.value},
        connect_args={"server_settings": {"application_name": "purser", MODE_SETTING: mode.value}},
    )


def session_mode(session: AsyncSession) -> Mode:
    """The mode ``session``'s connections serve, known without asking the database."""
    bind = session.bind
    engine = bind.engine if isinstance(bind, AsyncConnection) else bind
    mode = engine.get_execution_options().get(MODE_OPTION) if engine is not None else None
    if mode is None:
        raise RuntimeError("the session's engine was not made by app.db.create_engine")
    return Mode(mode)


class MixedModes(Exception):
    """The database holds data of the other mode; the message says so on one line."""


#: Agents and merchants are where every owner's data hangs from (wallets, ledger accounts,
#: products, payments, holds, requests): if neither table has a row of a mode, the
#: database holds no data of it. Both tables index ``mode``, so this is two index probes.
_OTHER_MODE_DATA = text(
    "SELECT EXISTS (SELECT 1 FROM agents WHERE mode = :other)"
    " OR EXISTS (SELECT 1 FROM merchants WHERE mode = :other)"
)


async def check_modes_apart(engine: AsyncEngine, mode: Mode, *, allow_mixed: bool) -> None:
    """Refuse to serve ``mode`` from a database holding data of the other mode, unless
    ``allow_mixed`` (``PURSER_ALLOW_MIXED_MODES``). Both ways: a live server on a
    sandbox database would hand real keys a ledger full of play money, and a sandbox
    server on a live database (a forgotten ``PURSER_MODE``) would mint play money next to
    real money. Raises :class:`MixedModes`."""
    if allow_mixed:
        return
    mode = Mode(mode)
    other = Mode.live if mode is Mode.sandbox else Mode.sandbox
    async with engine.connect() as connection:
        found = bool(await connection.scalar(_OTHER_MODE_DATA, {"other": other.value}))
    if found:
        raise MixedModes(
            f"the database holds {other.value} data (agents or merchants created in "
            f"{other.value} mode) and this server is in {mode.value} mode; give it a "
            "database of its own, or set PURSER_ALLOW_MIXED_MODES=true to serve both from "
            "this one (each mode then sees only its own data)"
        )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects returned by a use case stay readable after its commit.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def sqlstate_of(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    return getattr(orig, "sqlstate", None)


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, DBAPIError) and sqlstate_of(error) in RETRYABLE_SQLSTATES


async def run_in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 5,
) -> T:
    """Run ``work`` in one transaction and commit it; rerun it on deadlock or
    serialization failure (bounded, with jittered backoff). Used by workers, the CLI
    and benchmarks; HTTP requests commit through the session dependency instead."""
    for attempt in range(1, attempts + 1):
        async with sessionmaker() as session:
            try:
                result = await work(session)
                await session.commit()
                return result
            except DBAPIError as error:
                await session.rollback()
                if not is_retryable(error) or attempt == attempts:
                    raise
        await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311
    raise AssertionError("unreachable")
