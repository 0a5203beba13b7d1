"""The ``purser`` command as a newcomer runs it: a real process serving real HTTP."""

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


def test_migrate_is_idempotent(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": to_libpq_url(database_url)}
    result = subprocess.run(
        [PURSER, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_serve_answers_health_and_stops_cleanly(database_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": to_libpq_url(database_url)}
    process = subprocess.Popen(
        [PURSER, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health/ready", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response is not None, "server did not start"
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "database": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
