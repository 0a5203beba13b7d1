"""Application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app.api.edge import BodyLimitMiddleware, FramingMiddleware, UnexpectedErrorMiddleware
from app.api.openapi import install_openapi
from app.api.openapi_examples import install_examples
from app.api.problems import install_problem_handlers
from app.api.request_context import RequestContextMiddleware
from app.api.retry import RetryOnConflictMiddleware
from app.api.router import api_router
from app.api.v1.sequence import seed_router as seed_gateway_router
from app.config import Mode, Settings, get_settings
from app.db import check_modes_apart, create_engine, create_sessionmaker
from app.domain.sequence.service import Rail
from app.kit.encryption import SecretBox, SecretsUnavailable, load_secret_box
from app.kit.rate_limit import RateLimiter
from app.kit.time import utc_now
from app.worker.runner import background_work


def secret_box_or_none(settings: Settings) -> SecretBox | None:
    """The box for webhook secrets; None (webhook routes answer 503) in live mode without
    PURSER_SECRET_KEY."""
    try:
        return load_secret_box(
            settings.secret_key, sandbox=settings.mode is Mode.sandbox, data_dir=settings.data_dir
        )
    except SecretsUnavailable:
        return None


def create_app(*, database_url: str, settings: Settings | None = None) -> FastAPI:
    """Build the API bound to ``database_url`` (SQLAlchemy asyncpg form)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            database_url,
            mode=settings.mode,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        try:
            # `purser serve` checks first and says so in one line; this covers every
            # other way of starting the app.
            await check_modes_apart(engine, settings.mode, allow_mixed=settings.allow_mixed_modes)
        except BaseException:
            await engine.dispose()
            raise
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.rate_limiter = (
            RateLimiter(settings.redis_url) if settings.rate_limits == "on" else None
        )
        app.state.secret_box = secret_box_or_none(settings)
        app.state.sequence = Rail(
            settings, app.state.secret_box, sandbox_url=settings.sequence_sandbox_url
        )
        try:
            if settings.run_jobs:
                async with background_work(
                    app.state.sessionmaker,
                    app.state.secret_box if settings.run_webhooks else None,
                    sandbox=settings.mode is Mode.sandbox,
                    rail=app.state.sequence,
                ):
                    yield
            else:
                yield
        finally:
            await app.state.sequence.close()
            await engine.dispose()

    # Swagger UI and ReDoc from assets shipped with the package (fastapi-offline), not a
    # CDN: /docs works on a machine without internet.
    app = FastAPIOffline(
        title="Purser",
        version="0.1.0",
        summary="Agent wallets on a PostgreSQL double-entry ledger.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.risk_rules = settings.risk_rules
    app.state.clock = utc_now
    # Order: the last added runs first. A rerun keeps the request id of the request; the
    # body cap runs before the rerun middleware buffers the body; an unexpected error is
    # answered inside the request context, so its 500 carries the request id.
    app.add_middleware(RetryOnConflictMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(UnexpectedErrorMiddleware)
    # Ambiguous framing is refused before anything reads the body or its length.
    app.add_middleware(FramingMiddleware)
    app.add_middleware(RequestContextMiddleware)
    install_problem_handlers(app)
    app.include_router(api_router)
    app.include_router(seed_gateway_router)

    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, str]:
        """Where to go from the bare address (no key needed)."""
        return {"name": "Purser", "docs": "/docs", "openapi": "/openapi.json", "api": "/api/v1"}

    install_openapi(app)
    install_examples(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` worker processes: ``DATABASE_URL`` names the
    database (``purser serve`` sets it, also for its embedded PostgreSQL)."""
    from app.postgres import to_async_url

    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for worker processes")
    return create_app(database_url=to_async_url(settings.database_url), settings=settings)
