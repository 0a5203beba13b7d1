"""Starting and stopping Purser as an operator does: real processes, real PostgreSQL.

A database named by ``DATABASE_URL`` that is not migrated stops every command that needs
its tables with one line asking for ``purser migrate``; the embedded database is migrated
on the spot. A ``purser serve`` killed with SIGKILL does not keep the embedded server
alive past the next clean exit.
"""

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command

from app.migrations import alembic_config
from app.postgres import (
    HANDLE_PIDS_FILE,
    HANDLE_STARTS_FILE,
    ensure_database,
    process_start_time,
    prune_dead_users,
    to_async_url,
    to_libpq_url,
)
from tests.test_cli import PURSER, _free_port, _get_when_up, _stop

#: The commands that read or write Purser's tables.
SCHEMA_COMMANDS = [
    ["serve", "--host", "127.0.0.1", "--port", "0"],
    ["worker"],
    ["keys", "create", "--owner", "lifecycle_owner"],
    ["keys", "list", "--owner", "lifecycle_owner"],
    ["keys", "revoke", "key_0000000000000000"],
    ["audit", "seal"],
    ["audit", "verify"],
]


@pytest.fixture
def scratch_database_url(server_url: str) -> Iterator[str]:
    """libpq URL of a new database without any table, dropped afterwards."""
    name = f"purser_lifecycle_{secrets.token_hex(4)}"
    asyncio.run(ensure_database(server_url, name))
    yield to_libpq_url(server_url, name)

    async def drop() -> None:
        conn = await asyncpg.connect(to_libpq_url(server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def _run_all(commands: list[list[str]], env: dict[str, str]) -> list[tuple[int, str, str]]:
    """Run each ``purser`` command at once (they are independent) and return the exit
    code, stdout and stderr of each, in order."""
    processes = [
        subprocess.Popen(
            [PURSER, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        results.append((process.returncode, out, err))
    return results


def _assert_one_line_error(result: tuple[int, str, str], *, says: str) -> None:
    code, out, err = result
    assert code != 0, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert says in lines[0]


def _external_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url}


def test_commands_on_an_empty_external_database_ask_for_migrate(
    scratch_database_url: str,
) -> None:
    results = _run_all(SCHEMA_COMMANDS, _external_env(scratch_database_url))
    for args, result in zip(SCHEMA_COMMANDS, results, strict=True):
        assert "Traceback" not in result[1] + result[2], args
        _assert_one_line_error(result, says="has no Purser tables; run `purser migrate`")


def test_serve_on_an_external_database_behind_on_migrations_asks_for_migrate(
    scratch_database_url: str,
) -> None:
    command.upgrade(alembic_config(to_async_url(scratch_database_url)), "+1")
    env = _external_env(scratch_database_url)
    [serve] = _run_all([SCHEMA_COMMANDS[0]], env)
    _assert_one_line_error(serve, says="is behind this version of Purser; run `purser migrate`")
    # `purser migrate` is the way out, and afterwards the same check passes.
    [migrate] = _run_all([["migrate"]], env)
    assert migrate[0] == 0, migrate
    [keys] = _run_all([SCHEMA_COMMANDS[3]], env)
    assert keys[0] == 0, keys


def test_serve_on_an_unreachable_database_says_so_in_one_line() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/purser"
    [serve, migrate] = _run_all([SCHEMA_COMMANDS[0], ["migrate"]], _external_env(url))
    _assert_one_line_error(serve, says="cannot connect to the database")
    _assert_one_line_error(migrate, says="cannot connect to the database")


@pytest.fixture
def embedded_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder of its own for the embedded server; whatever server a test leaves
    running in it is stopped afterwards."""
    yield tmp_path
    postmaster = _postmaster_pid(tmp_path)
    if postmaster is not None and process_start_time(postmaster) is not None:
        os.kill(postmaster, signal.SIGTERM)
        _wait_until_gone(postmaster)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _wait_until_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while process_start_time(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _start_embedded_serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PURSER_DATABASE_URL")}
    env["PURSER_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [PURSER, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_on_an_empty_embedded_data_dir_migrates_and_serves(
    embedded_data_dir: Path,
) -> None:
    port = _free_port()
    process = _start_embedded_serve(embedded_data_dir, port)
    try:
        response = _get_when_up(f"http://127.0.0.1:{port}/api/v1/health/ready")
        assert response.status_code == 200
        postmaster = _postmaster_pid(embedded_data_dir)
    finally:
        output = _stop(process)
    assert "Migrated the embedded database to the newest schema." in output
    assert "sk_test_" in output
    assert "Traceback" not in output
    # The only user exited cleanly: the server is stopped with it.
    assert postmaster is not None
    assert _wait_until_gone(postmaster)


def test_clean_exit_after_a_killed_serve_stops_the_embedded_server(
    embedded_data_dir: Path,
) -> None:
    port = _free_port()
    killed = _start_embedded_serve(embedded_data_dir, port)
    try:
        _get_when_up(f"http://127.0.0.1:{port}/api/v1/health/ready")
    finally:
        killed.kill()
        killed.communicate(timeout=30)
    postmaster = _postmaster_pid(embedded_data_dir)
    assert postmaster is not None
    assert process_start_time(postmaster) is not None, "the server should outlive a SIGKILL"

    process = _start_embedded_serve(embedded_data_dir, port)
    try:
        response = _get_when_up(f"http://127.0.0.1:{port}/api/v1/health/ready")
        assert response.status_code == 200
        # The same server, joined rather than started anew.
        assert _postmaster_pid(embedded_data_dir) == postmaster
    finally:
        output = _stop(process)
    assert "Traceback" not in output
    assert _wait_until_gone(postmaster), "the embedded server outlived its last user"
    assert not (embedded_data_dir / "pg" / "postmaster.pid").exists()


def test_pruning_keeps_live_users_and_drops_dead_and_reused_pids(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    reused = subprocess.Popen(["sleep", "30"])
    unrecorded = subprocess.Popen(["sleep", "30"])
    try:
        me = os.getpid()
        reused_start = process_start_time(reused.pid)
        assert reused_start is not None
        (tmp_path / HANDLE_PIDS_FILE).write_text(
            f"[{dead.pid}, {me}, {reused.pid}, {unrecorded.pid}]"
        )
        # `reused` holds a pid recorded for a process that started a minute earlier.
        (tmp_path / HANDLE_STARTS_FILE).write_text(
            f'{{"{reused.pid}": {reused_start - 60_000}, "{dead.pid}": 1}}'
        )
        assert prune_dead_users(tmp_path, register=True) == [me, unrecorded.pid]
        assert (tmp_path / HANDLE_PIDS_FILE).read_text() == f"[{me}, {unrecorded.pid}]"
        assert str(me) in (tmp_path / HANDLE_STARTS_FILE).read_text()
        prune_dead_users(tmp_path, forget=True)
        assert (tmp_path / HANDLE_STARTS_FILE).read_text() == "{}"
    finally:
        for process in (reused, unrecorded):
            process.kill()
            process.wait()


def test_migrate_says_what_it_applied(scratch_database_url: str) -> None:
    env = _external_env(scratch_database_url)
    first = subprocess.run(
        [PURSER, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert "Migrated the database from an empty database to revision" in first.stdout
    again = subprocess.run(
        [PURSER, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert "up to date (revision" in again.stdout
