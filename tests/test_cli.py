"""The ``purser`` command as a newcomer runs it: a real process serving real HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.postgres import to_libpq_url

PURSER = str(Path(sys.executable).parent / "purser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_serve(
    database_url: str, port: int, *extra: str, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": to_libpq_url(database_url), **(env_extra or {})}
    return subprocess.Popen(
        [PURSER, "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _get_when_up(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET ``url`` as soon as the server answers (within a minute)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return output


def test_migrate_is_idempotent(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": to_libpq_url(database_url)}
    result = subprocess.run(
        [PURSER, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_serve_answers_health_and_stops_cleanly(database_url: str) -> None:
    port = _free_port()
    process = _start_serve(database_url, port)
    try:
        response = _get_when_up(f"http://127.0.0.1:{port}/api/v1/health/ready")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "database": "ok"}
    finally:
        output = _stop(process)
    assert "Application shutdown complete" in output
    assert "Traceback" not in output


def test_serve_with_two_worker_processes(database_url: str) -> None:
    port = _free_port()
    process = _start_serve(database_url, port, "--workers", "2")
    try:
        for _ in range(5):
            response = _get_when_up(f"http://127.0.0.1:{port}/api/v1/health/ready")
            assert response.status_code == 200
    finally:
        output = _stop(process)
    assert output.count("Application startup complete") == 2
    assert "Traceback" not in output


def test_worker_delivers_and_stops_cleanly(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": to_libpq_url(database_url)}
    process = subprocess.Popen(
        [PURSER, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(3)
    assert process.poll() is None, "the worker exited on its own"
    output = _stop(process)
    assert "Traceback" not in output


def test_keys_create_list_revoke(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": to_libpq_url(database_url)}

    def purser(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PURSER, *args], env=env, capture_output=True, text=True, timeout=120)

    created = purser("keys", "create", "--owner", "cli_owner", "--tier", "free", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key_id"].startswith("key_")
    assert key["secret"].startswith("sk_test_")
    assert key["owner_id"] == "cli_owner"
    assert key["tier"] == "free"
    assert "sequence" not in key["scopes"]
    with_sequence = purser(
        "keys", "create", "--owner", "cli_owner", "--scope", "sequence", "--json"
    )
    assert json.loads(with_sequence.stdout)["scopes"] == ["sequence"]
    listed = purser("keys", "list", "--owner", "cli_owner", "--json")
    assert {k["key_id"] for k in json.loads(listed.stdout)} >= {key["key_id"]}
    assert key["secret"] not in listed.stdout
    revoked = purser("keys", "revoke", key["key_id"])
    assert revoked.returncode == 0
    unknown_agent = purser("keys", "create", "--owner", "cli_owner", "--agent", "agent_nope")
    assert unknown_agent.returncode == 2
    assert "not found" in unknown_agent.stderr
    # A lost first key's owner is found without knowing it.
    everyone = purser("keys", "list")
    assert everyone.returncode == 0, everyone.stderr
    assert f"{key['key_id']}  owner=cli_owner" in everyone.stdout
    owners = purser("owners", "list")
    assert "cli_owner  keys=1 active of 2" in owners.stdout


def test_first_sandbox_start_prints_one_key_and_seeds_a_catalog(
    empty_database_url: str,
) -> None:
    port = _free_port()
    process = _start_serve(empty_database_url, port)
    try:
        _get_when_up(f"http://127.0.0.1:{port}/api/v1/health")
    finally:
        output = _stop(process)
    secret = next(word for word in output.split() if word.startswith("sk_test_"))
    # The printed key works and sees the demo catalog; a second start prints no key.
    second = _start_serve(empty_database_url, port)
    try:
        response = _get_when_up(
            f"http://127.0.0.1:{port}/api/v1/catalog/products",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 200
        assert len(response.json()) >= 4
    finally:
        second_output = _stop(second)
    assert "sk_test_" not in second_output


def test_a_busy_port_is_named_in_one_line(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _start_serve(database_url, port)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "PURSER_PORT" in output


def test_a_new_sandbox_owner_gets_the_demo_catalog_unless_told_not_to(database_url: str) -> None:
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    env = {**os.environ, "DATABASE_URL": to_libpq_url(database_url)}
    for owner, flags in (("demo_owner", []), ("bare_owner", ["--no-demo"])):
        created = subprocess.run(
            [PURSER, "keys", "create", "--owner", owner, *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr

    async def merchants(owner: str) -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                count = await connection.scalar(
                    text("SELECT count(*) FROM merchants WHERE owner_id = :o"), {"o": owner}
                )
        finally:
            await engine.dispose()
        return int(count or 0)

    assert asyncio.run(merchants("demo_owner")) == 2
    assert asyncio.run(merchants("bare_owner")) == 0
