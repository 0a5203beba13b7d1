"""Engine, sessions, and the unit-of-work runner.

One use case = one transaction. Services and repositories flush, never commit; the
request dependency (``app.api.deps``) or ``run_in_transaction`` commits in one place.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")

#: SQLSTATEs that mean "nothing is wrong with the request, run the transaction again".
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "purser"}},
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
