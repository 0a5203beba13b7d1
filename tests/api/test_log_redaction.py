"""Logs never carry API keys, key hashes or ciphertexts: not from a query string or path
in the access log of a real ``purser serve``, not from a database error's traceback."""

import asyncio
import hashlib
import io
import logging
import traceback
from collections.abc import Iterator

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli import RedactingFilter, log_config, redact_target
from tests.api.helpers import MakeKey, bearer
from tests.test_cli import _free_port, _get_when_up, _start_serve, _stop


def secrets_of(secret: str) -> list[str]:
    """The key, its secret part and the SHA-256 Purser stores: none may be logged."""
    part = secret.rsplit("_", 1)[1]
    return [secret, part, hashlib.sha256(part.encode()).hexdigest()]


async def test_access_log_of_purser_serve_shows_no_key(
    database_url: str, make_key: MakeKey
) -> None:
    key = await make_key()
    encoded = "".join(f"%{byte:02X}" for byte in key.secret.encode())
    port = _free_port()
    process = await asyncio.to_thread(
        lambda: _start_serve(database_url, port, env_extra={"PURSER_ACCESS_LOG": "on"})
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(_get_when_up, f"{url}/api/v1/health")
        async with httpx.AsyncClient(base_url=url) as client:
            listed = await client.get(f"/api/v1/agents?limit=5&api_key={key.secret}")
            assert listed.status_code == 401
            listed = await client.get(f"/api/v1/agents?{key.secret}", headers=bearer(key))
            assert listed.status_code == 200
            listed = await client.get(f"/api/v1/agents?token={encoded}", headers=bearer(key))
            assert listed.status_code == 200
            missing = await client.get(f"/api/v1/agents/{key.secret}", headers=bearer(key))
            assert missing.status_code == 404
    finally:
        output = await asyncio.to_thread(_stop, process)
    for secret in secrets_of(key.secret):
        assert secret not in output
        assert secret.lower() not in output.lower().replace("%", "")
    # The lines are there, redacted: names kept, values gone.
    assert '"GET /api/v1/agents?limit=***&api_key=*** HTTP/1.1" 401' in output
    assert '"GET /api/v1/agents?*** HTTP/1.1" 200' in output
    assert '"GET /api/v1/agents?token=*** HTTP/1.1" 200' in output
    assert '"GET /api/v1/agents/sk_test_*** HTTP/1.1" 404' in output


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("/api/v1/agents", "/api/v1/agents"),
        ("/api/v1/audit?limit=5&cursor=aud_9", "/api/v1/audit?limit=***&cursor=***"),
        ("/x?api_key=sk_live_0123456789abcdef_ff", "/x?api_key=***"),
        ("/x?sk_test_0123456789abcdef_ff&a", "/x?***&a"),
        ("/x?9f86d081884c7d659a2feaa0c55ad015=1", "/x?***=***"),
        ("/x?", "/x?"),
        ("/keys/whsec_c2VjcmV0", "/keys/whsec_***"),
    ],
)
def test_request_targets_keep_names_and_drop_values(target: str, shown: str) -> None:
    assert redact_target(target) == shown


@pytest.fixture
def filtered_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through ``RedactingFilter`` into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("purser.test_log_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


async def test_a_database_error_logs_no_hash_or_ciphertext(
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: MakeKey,
    filtered_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = filtered_log
    key = await make_key()
    ciphertext = Fernet(Fernet.generate_key()).encrypt(b"whsec_secret").decode()
    async with sessionmaker() as session:
        for value in [*secrets_of(key.secret), ciphertext]:
            try:
                # PostgreSQL quotes the value in its message; SQLAlchemy would in its
                # [parameters], but the engine hides them.
                await session.execute(
                    text("SELECT CAST(CAST(:value AS text) AS integer)"), {"value": value}
                )
            except DBAPIError:
                logger.exception("unhandled error with %s", value)
            await session.rollback()
    written = stream.getvalue()
    assert written.count("unhandled error with") == 4
    assert "invalid input syntax for type integer" in written
    assert "[SQL parameters hidden due to hide_parameters=True]" in written
    assert "[parameters:" not in written
    for value in [*secrets_of(key.secret), ciphertext]:
        assert value not in written


async def test_a_database_error_carries_no_parameter_even_unfiltered(
    sessionmaker: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    # The error itself, before any log filter: what an exception handler, a test report
    # or an error tracker would see. PostgreSQL's own message does not quote the value here.
    key = await make_key()
    ciphertext = Fernet(Fernet.generate_key()).encrypt(b"whsec_secret").decode()
    async with sessionmaker() as session:
        for value in [*secrets_of(key.secret), ciphertext]:
            with pytest.raises(DBAPIError) as raised:
                await session.execute(
                    text("SELECT length(CAST(:value AS text)) / 0"), {"value": value}
                )
            await session.rollback()
            shown = "".join(traceback.format_exception(raised.value))
            assert "division by zero" in shown
            assert "SQL parameters hidden" in shown
            assert value not in shown


def test_serve_and_worker_write_every_record_through_the_filter() -> None:
    config = log_config()
    assert config["filters"]["redact"]["()"] == "app.cli.RedactingFilter"
    assert {name: handler["filters"] for name, handler in config["handlers"].items()} == {
        "default": ["redact"],
        "access": ["redact"],
    }
    # Purser's own records (and any library's) reach the root logger's filtered handler;
    # uvicorn's loggers write through theirs.
    assert config["root"]["handlers"] == ["default"]
    for name in ("uvicorn", "uvicorn.access"):
        assert set(config["loggers"][name]["handlers"]) <= {"default", "access"}
