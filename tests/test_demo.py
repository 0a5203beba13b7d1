"""``purser demo`` as a newcomer runs it: ``purser serve`` started on a database that has
never been used (so it prints its first key and seeds the demo catalog), then ``purser
demo`` with that key, both real processes talking HTTP on loopback. Webhooks are delivered
by the server's own loop, as in any ``purser serve``."""

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.demo import DemoFailure, WebhookReceiver
from app.kit.ids import new_id
from app.kit.signing import new_secret, signature_headers
from app.kit.time import utc_now
from app.migrations import upgrade_to_head
from app.postgres import ensure_database, to_async_url, to_libpq_url

PURSER = str(Path(sys.executable).parent / "purser")


@dataclass(frozen=True)
class Sandbox:
    base_url: str
    #: The key ``purser serve`` printed at its first start.
    key: str

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.get(f"{self.base_url}/api/v1{path}", headers=headers, timeout=10)

    def issue_key(self, **body: object) -> dict[str, str]:
        """A further key of the sandbox owner, through ``POST /keys``."""
        response = httpx.post(
            f"{self.base_url}/api/v1/keys",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        issued: dict[str, str] = response.json()
        return issued


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def first_start_database(server_url: str) -> Iterator[str]:
    """A migrated database of this module's own, with no key in it yet."""
    name = f"purser_demo_{secrets.token_hex(4)}"
    asyncio.run(ensure_database(server_url, name))
    url = to_async_url(server_url, name)
    upgrade_to_head(url)
    yield url

    async def drop() -> None:
        conn = await asyncpg.connect(to_libpq_url(server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="module")
def sandbox(
    first_start_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """``purser serve`` in sandbox mode with webhook delivery on (the defaults, stated so
    that a developer's environment cannot turn them off), until the module ends."""
    port = _free_port()
    log = tmp_path_factory.mktemp("demo") / "serve.log"
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(first_start_database),
        "PURSER_MODE": "sandbox",
        "PURSER_RUN_JOBS": "true",
        "PURSER_RUN_WEBHOOKS": "true",
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [PURSER, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        key = next(word for word in log.read_text().split() if word.startswith("sk_test_"))
        yield Sandbox(base_url, key)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert "Traceback" not in log.read_text()


def run_demo(sandbox: Sandbox, key: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PURSER_API_KEY", "PURSER_BASE_URL")}
    return subprocess.run(
        [PURSER, "demo", "--base-url", sandbox.base_url, "--api-key", key],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def fact(output: str, title: str) -> str:
    """What the ✓ line of step ``title`` says."""
    prefix = f"✓ {title}: "
    lines = [line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    return lines[0]


def test_demo_passes_every_step_with_the_first_start_key(sandbox: Sandbox) -> None:
    result = run_demo(sandbox, sandbox.key)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "✗" not in output
    assert "Traceback" not in output
    assert "✓ Receive and verify the webhooks: 3 signatures verified" in result.stdout
    assert "Demo complete: every step passed." in result.stdout

    # What the server itself now holds: the endpoint is gone, the purchase is recorded, and
    # the buyer's wallet paid the cheapest in-stock product and the 7.50 invoice, each with
    # the default 0.10 fee.
    assert sandbox.get("/webhooks").json() == []
    buyer_id = fact(result.stdout, "Create the buyer agent with a funded wallet").split(",")[0]
    tx_id = fact(result.stdout, "Buy the product").split(":")[0]
    purchase = sandbox.get(f"/payments/{tx_id}").json()
    assert (purchase["agent_id"], purchase["status"]) == (buyer_id, "completed")
    in_stock = sandbox.get("/catalog/products?in_stock_only=true").json()
    cheapest = min(Decimal(product["price"]) for product in in_stock)
    assert Decimal(purchase["amount"]) == cheapest
    wallet = sandbox.get(f"/agents/{buyer_id}/wallet").json()
    expected = Decimal("100.00") - (cheapest + Decimal("0.10")) - Decimal("7.60")
    assert Decimal(wallet["balance"]) == expected
    assert fact(result.stdout, "Read the final wallet balance").startswith(f"{expected:f} USDC")


def test_a_revoked_key_fails_with_the_servers_code_and_no_traceback(sandbox: Sandbox) -> None:
    issued = sandbox.issue_key(name="revoked before the demo")
    revoked = httpx.delete(
        f"{sandbox.base_url}/api/v1/keys/{issued['key_id']}",
        headers={"Authorization": f"Bearer {sandbox.key}"},
        timeout=10,
    )
    assert revoked.status_code in (200, 204), revoked.text
    result = run_demo(sandbox, issued["secret"])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "✗ Register the webhook endpoint: invalid_api_key (401): Invalid API key" in output
    assert "Demo failed." in result.stdout
    assert "Traceback" not in output


def test_a_step_refused_midway_still_deletes_the_endpoint(sandbox: Sandbox) -> None:
    # Everything the scenario needs but paying.
    issued = sandbox.issue_key(
        name="cannot pay",
        scopes=["webhooks", "agents:read", "agents:write", "wallet:read", "catalog:read"],
    )
    result = run_demo(sandbox, issued["secret"])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "✓ Create the buyer agent with a funded wallet" in output
    assert "✗ Buy the product: insufficient_scope (403)" in output
    assert "✓ Delete the webhook endpoint" in output
    assert "Traceback" not in output
    assert sandbox.get("/webhooks").json() == []


def test_without_a_key_one_line_names_both_ways_to_give_it() -> None:
    result = CliRunner().invoke(
        cli, ["demo"], env={"PURSER_API_KEY": None, "PURSER_BASE_URL": None}
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "--api-key" in lines[0]
    assert "PURSER_API_KEY" in lines[0]


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    running = WebhookReceiver(0, asyncio.get_running_loop())
    running.start()
    try:
        yield running
    finally:
        await running.stop()


def _signed(secret: str, event: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    """A delivery as Purser's webhook worker signs it."""
    body = json.dumps(event).encode()
    return body, signature_headers([secret], new_id("msg"), utc_now(), body)


async def test_the_receiver_verifies_deliveries_and_refuses_a_forged_one(
    receiver: WebhookReceiver,
) -> None:
    receiver.secret = new_secret()
    paid = {"type": "invoice.paid", "data": {"payment_request": {"request_id": "preq_1"}}}
    async with httpx.AsyncClient(timeout=5) as client:
        body, headers = _signed(receiver.secret, {"id": "evt_1", **paid})
        elsewhere = await client.post(
            receiver.url.replace(receiver.path, "/other"), content=body, headers=headers
        )
        assert elsewhere.status_code == 404
        assert (await client.post(receiver.url, content=body, headers=headers)).status_code == 204
        verified = await receiver.collect({("invoice.paid", "preq_1")}, 5)
        assert [d.event for d in verified] == [{"id": "evt_1", **paid}]

        completed = {"type": "payment.completed", "data": {"transaction": {"tx_id": "tx_1"}}}
        body, headers = _signed(new_secret(), {"id": "evt_2", **completed})
        forged = await client.post(receiver.url, content=body, headers=headers)
        assert forged.status_code == 400
        with pytest.raises(DemoFailure, match="failed signature verification"):
            await receiver.collect({("payment.completed", "tx_1")}, 5)


async def test_the_receiver_names_what_did_not_arrive(receiver: WebhookReceiver) -> None:
    receiver.secret = new_secret()
    with pytest.raises(DemoFailure, match=r"not received within 0\.2 s: invoice\.paid preq_9"):
        await receiver.collect({("invoice.paid", "preq_9")}, 0.2)
