"""/docs rendered by a real browser with no network beyond loopback: headless Chromium
(Debian's `chromium`, installed here when missing) loads the page from a Purser served on
127.0.0.1, runs Swagger UI from Purser's own assets and lists the payment routes."""

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.loopback import served_on_loopback

#: Chromium's own network stack would reach the internet for anything not on loopback:
#: a proxy that does not exist makes every such request fail.
NO_NETWORK = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"]


def _chromium() -> str:
    """Chromium's path, installing Debian's package when it is missing (as root, with
    apt); skips the test with the reason where neither is possible."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("headless Chromium is not installed and cannot be here (needs root and apt)")
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("chromium")
    if result.returncode != 0 or found is None:
        pytest.skip(f"could not install chromium with apt-get: {result.stderr[-300:]}")
    return found


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with served_on_loopback(app) as url:
        yield url


async def _render(chromium: str, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=15000",
        "--window-size=1280,2400",
        *NO_NETWORK,
        *extra,
        url,
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    return subprocess.CompletedProcess(
        command, process.returncode or 0, stdout.decode(), stderr.decode()
    )


async def test_docs_render_offline_and_list_the_payment_routes(served: str, tmp_path: Path) -> None:
    chromium = _chromium()
    dom = await _render(chromium, f"{served}/docs", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Swagger UI ran (from Purser's assets) and rendered the operations of the API.
    assert "opblock" in dom.stdout, dom.stdout[:2000]
    assert "/api/v1/payments" in dom.stdout
    assert "/api/v1/payments/holds" in dom.stdout
    shot = tmp_path / "docs.png"
    picture = await _render(chromium, f"{served}/docs", f"--screenshot={shot}")
    assert picture.returncode == 0, picture.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    if os.environ.get("PURSER_UPDATE_SCREENSHOT"):
        shutil.copy(shot, Path(__file__).parents[2] / "docs" / "docs-offline.png")
