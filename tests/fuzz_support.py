"""The API fuzzing harness: schemathesis against a real Purser on 127.0.0.1.

The server under the fuzzer runs on a fresh migrated database in sandbox mode, with rate
limits off (the fuzzer is never throttled) and no background work (``run_jobs`` and
``run_webhooks`` off): no webhook is ever delivered, so no URL the fuzzer invents is
called (a run ends by checking that no delivery was attempted). It is seeded through its
own API with a funded agent, a merchant, products, a payment, a hold, a payment request,
a webhook subscription and a spare key; the path ids and body ids of generated cases are
pointed at those half of the time, so requests get past the lookups. Every request
carries a sandbox key with every scope, ``sequence`` included.

Two ways to run it:

- ``tests/test_fuzz_api.py`` (inside ``make test``): schemathesis's pytest integration,
  one test per operation, the server in a thread of the test process; derandomized,
  ``FUZZ_EXAMPLES`` (default 20) examples per operation in the fuzzing phase, after the
  schema's examples and the coverage phase. It stops at an operation's first failure.
- ``make fuzz`` (``python -m tests.fuzz_support``): ``purser serve`` started on a free
  port with those settings, then the schemathesis CLI, which keeps going after failures
  and reports every distinct one: examples, coverage, fuzzing and stateful phases,
  ``FUZZ_EXAMPLES`` (default 300) per operation, ``FUZZ_MAX_TIME`` seconds to spend a
  time budget instead, ``FUZZ_SEED`` for a seeded instead of a derandomized run,
  ``FUZZ_ARGS`` for more ``schemathesis run`` options (``--report json`` …).

The PostgreSQL server is the tests' own: ``TEST_DATABASE_URL``, else the embedded one
under ``$PURSER_DATA_DIR/test-pg``; the database is created for the run and dropped.
"""

import asyncio
import hashlib
import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import schemathesis
import uvicorn
from hypothesis import strategies as st

from app.config import Mode, Settings
from app.db import create_engine, create_sessionmaker
from app.domain.apikey.schemas import Scope, Tier
from app.kit.ids import new_id
from app.main import create_app
from app.migrations import upgrade_to_head
from app.postgres import ensure_database, start_embedded, to_async_url, to_libpq_url
from tests.api.helpers import key_maker

#: Well-formed responses to well-formed requests besides 2xx: a documented refusal (400:
#: insufficient funds or a spending limit; 409: the seeded hold or request already
#: resolved, a product out of stock), an id that does not exist (404), 401 and 403.
POSITIVE_STATUSES = ["2xx", "400", "401", "403", "404", "409"]
#: Where the seeded webhook subscription points: nothing listens there, nothing delivers.
WEBHOOK_URL = "http://127.0.0.1:9/purser-fuzz"
IDEMPOTENCY_HEADERS = ("idempotency-key", "x-idempotency-key")
#: What ``purser serve`` gets for ``make fuzz``; ``fuzz_settings`` for the in-suite run.
SERVER_ENVIRONMENT = {
    "PURSER_MODE": "sandbox",
    "PURSER_RATE_LIMITS": "off",
    "PURSER_RUN_JOBS": "false",
    "PURSER_RUN_WEBHOOKS": "false",
    "PURSER_WORKERS": "1",
    "PURSER_LOG_LEVEL": "warning",
}


def fuzz_settings() -> Settings:
    return Settings(mode=Mode.sandbox, rate_limits="off", run_jobs=False, run_webhooks=False)


@dataclass(frozen=True, slots=True)
class Seeded:
    """The fuzzer's own owner and what it starts with."""

    key: str
    key_id: str
    spare_key_id: str
    payer_agent_id: str
    #: PATCHes (deactivate, limits) go to this agent, so the payer keeps paying.
    patched_agent_id: str
    patched_agent_wallet_id: str
    merchant_id: str
    product_id: str
    #: PATCHes (price, out of stock) go to this product.
    patched_product_id: str
    tx_id: str
    hold_id: str
    request_id: str
    subscription_id: str
    event_id: str

    def path_ids(self, method: str) -> dict[str, str]:
        patch = method.upper() == "PATCH"
        return {
            "agent_id": self.patched_agent_id if patch else self.payer_agent_id,
            "merchant_id": self.merchant_id,
            "product_id": self.patched_product_id if patch else self.product_id,
            "tx_id": self.tx_id,
            "hold_id": self.hold_id,
            "request_id": self.request_id,
            "subscription_id": self.subscription_id,
            "event_id": self.event_id,
            "key_id": self.spare_key_id,
        }

    def body_ids(self) -> dict[str, str]:
        return {
            "agent_id": self.payer_agent_id,
            "payer_agent_id": self.payer_agent_id,
            "requester_agent_id": self.patched_agent_id,
            "recipient_wallet_id": self.patched_agent_wallet_id,
            "merchant_id": self.merchant_id,
            "product_id": self.product_id,
        }


# --- the server -------------------------------------------------------------------------


@contextmanager
def serve_in_thread(database_url: str) -> Iterator[str]:
    """Purser (uvicorn) on 127.0.0.1 in a thread of this process; yields its base URL."""
    app = create_app(database_url=database_url, settings=fuzz_settings())
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="purser-fuzz-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fuzzed server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_process(database_url: str, log: Path) -> Iterator[str]:
    """``purser serve`` on 127.0.0.1 (a free port), its output in ``log``; yields its
    base URL."""
    port = _free_port()
    env = {**os.environ, **SERVER_ENVIRONMENT, "DATABASE_URL": to_libpq_url(database_url)}
    purser = str(Path(sys.executable).parent / "purser")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [purser, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"purser serve did not start; its output: {log}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- the seed ---------------------------------------------------------------------------


async def _issue_key(database_url: str, owner_id: str) -> tuple[str, str]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        created = await key_maker(create_sessionmaker(engine))(
            owner_id, name="fuzzer", scopes=list(Scope), tier=Tier.enterprise
        )
    finally:
        await engine.dispose()
    return created.secret, created.key_id


def seed_owner(database_url: str, base_url: str) -> Seeded:
    """A new owner with a key of every scope and something to act on."""
    key, key_id = asyncio.run(_issue_key(database_url, new_id("owner")))
    with httpx.Client(
        base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:

        def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            response = api.post(path, json=body)
            assert response.status_code < 300, (path, response.status_code, response.text)
            created: dict[str, Any] = response.json()
            return created

        payer = post("/agents", {"name": "fuzz payer", "initial_balance": "1000000.00"})
        patched = post("/agents", {"name": "fuzz patched", "initial_balance": "1000.00"})
        payer_id = payer["agent"]["agent_id"]
        patched_id = patched["agent"]["agent_id"]
        merchant = post("/merchants", {"name": "Fuzz Store", "category": "electronics"})
        merchant_id = merchant["merchant_id"]

        def product(name: str) -> str:
            body = {"merchant_id": merchant_id, "name": name, "price": "9.99", "category": "misc"}
            return str(post("/catalog/products", body)["product_id"])

        payment = post(
            "/payments", {"agent_id": payer_id, "merchant_id": merchant_id, "amount": "5.00"}
        )
        hold = post(
            "/payments/holds", {"agent_id": payer_id, "merchant_id": merchant_id, "amount": "3.00"}
        )
        request = post(
            "/payments/request",
            {"requester_agent_id": patched_id, "payer_agent_id": payer_id, "amount": "2.00"},
        )
        subscription = post("/webhooks", {"url": WEBHOOK_URL, "events": ["payment.completed"]})
        subscription_id = subscription["subscription_id"]
        return Seeded(
            key=key,
            key_id=key_id,
            spare_key_id=post("/keys", {"name": "spare"})["key_id"],
            payer_agent_id=payer_id,
            patched_agent_id=patched_id,
            patched_agent_wallet_id=patched["wallet"]["wallet_id"],
            merchant_id=merchant_id,
            product_id=product("fuzz product"),
            patched_product_id=product("fuzz patched product"),
            tx_id=payment["transaction"]["tx_id"],
            hold_id=hold["hold_id"],
            request_id=request["request_id"],
            subscription_id=subscription_id,
            event_id=post(f"/webhooks/{subscription_id}/test")["event_id"],
        )


class Target:
    """The server the fuzzer is pointed at, while a run is under way."""

    base_url: str | None = None
    seeded: Seeded | None = None

    @classmethod
    def current(cls) -> tuple[str, Seeded]:
        if cls.base_url is None or cls.seeded is None:
            raise RuntimeError("no fuzz target is running")
        return cls.base_url, cls.seeded


async def _delivery_attempts(database_url: str) -> int:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM webhook_attempts"))
    finally:
        await conn.close()


@contextmanager
def running_target(
    database_url: str,
    serve: Callable[[str], AbstractContextManager[str]] = serve_in_thread,
) -> Iterator[tuple[str, Seeded]]:
    """A seeded Purser on ``database_url`` (fresh, migrated): (base URL, the seed).
    Afterwards, no webhook delivery may have been attempted."""
    with serve(database_url) as base_url:
        seeded = seed_owner(database_url, base_url)
        Target.base_url, Target.seeded = base_url, seeded
        try:
            yield base_url, seeded
        finally:
            Target.base_url = Target.seeded = None
    attempts = asyncio.run(_delivery_attempts(database_url))
    assert attempts == 0, f"the fuzzed server attempted {attempts} webhook deliveries"


# --- schemathesis -----------------------------------------------------------------------


def config_dict(*, max_examples: int, seed: int | None) -> dict[str, Any]:
    """Every check; positive and negative data; derandomized unless a seed is given."""
    config: dict[str, Any] = {
        "request-timeout": 30,
        # Stored failures would name a server and a database that are gone after the run.
        "cache": {"enabled": False},
        "generation": {
            "mode": "all",
            "max-examples": max_examples,
            "deterministic": seed is None,
            "database": "none",
            # The key goes with every request; generated credentials would compete with it.
            "with-security-parameters": False,
        },
        "checks": {
            "enabled": True,
            "positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES},
        },
    }
    if seed is not None:
        config["seed"] = seed
    return config


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the app the fuzzer runs (building it needs no database)."""
    app = create_app(
        database_url="postgresql+asyncpg://fuzz.invalid/unused", settings=fuzz_settings()
    )
    return app.openapi()


def _pointed(ids: dict[str, str], values: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(values, dict):
        return None
    pointed = {
        name: ids[name] if name in ids and isinstance(value, str) else value
        for name, value in values.items()
    }
    return pointed if pointed != values else None


def point_case(ctx: schemathesis.HookContext, case: schemathesis.Case) -> st.SearchStrategy[Any]:
    """``flatmap_case``: the case as generated, or with its path ids and JSON body ids
    replaced by the seeded ones.

    The case is changed after it was generated, so schemathesis validates the changed
    parts again before sending it: a negative case whose only invalid value was an id
    becomes a positive one. Nothing is seeded while pytest collects the tests (the
    schema's examples and the coverage cases are built then); those keep their ids.
    """
    seeded = Target.seeded
    if seeded is None:
        return st.just(case)
    path = _pointed(seeded.path_ids(case.method), case.path_parameters)
    body = _pointed(seeded.body_ids(), case.body)
    if path is None and body is None:
        return st.just(case)

    def point(yes: bool) -> schemathesis.Case:
        if yes and path is not None:
            case.path_parameters = path
        if yes and body is not None:
            case.body = body
        return case

    return st.booleans().map(point)


#: Problem codes of a ``422`` that depends on what the server holds (the hold's amount, the
#: product's merchant, the wallet's currency, an earlier request with the same key).
STATE_DEPENDENT_CODES = frozenset(
    {
        "capture_exceeds_hold",
        "product_merchant_mismatch",
        "currency_mismatch",
        "idempotency_key_reused",
    }
)


#: What ``keep_failure`` dropped in this process, and why (printed by ``make fuzz``).
DROPPED: Counter[str] = Counter()


def _json_object(response: Any) -> dict[str, Any]:
    try:
        problem = response.json()
    except ValueError:
        return {}
    return problem if isinstance(problem, dict) else {}


def inexpressible_refusal(case: schemathesis.Case, response: Any) -> str | None:
    """Why a ``422`` to a schema-valid request is no schema mismatch, if it is one of the
    refusals no JSON Schema can state: they depend on server state, the clock, another
    field's value, or on how a JSON number is written. ``None`` for every other response.
    """
    if response.status_code != 422:
        return None
    problem = _json_object(response)
    code, param, detail = problem.get("code"), problem.get("param"), problem.get("detail", "")
    body = case.body if isinstance(case.body, dict) else {}
    if code in STATE_DEPENDENT_CODES:
        return f"{code} depends on stored state"
    if param == "cursor":
        return "a cursor is opaque: only one the API returned is valid"
    if param == "expires_at" and "future" in str(detail):
        return "a time in the past depends on the clock"
    if code == "invalid_amount" and "decimal places" in str(detail):
        return "the decimals allowed depend on the currency (another field, or the wallet's)"
    if code == "invalid_payment":
        return "amount or product_id, and one payee: relations between fields"
    if code in ("invalid_webhook_url", "invalid_connection"):
        return "a URL's host, port and address are checked beyond what a pattern can say"
    if "cannot be granted" in str(detail):
        return "the scopes a key may grant depend on the calling key and on agent_id"
    if code == "invalid_transfer" and "must differ" in str(detail):
        return "a transfer's source and destination must differ: a relation between two values"
    if "cannot pay its own wallet" in str(detail) or "from itself" in str(detail):
        return "payer and payee must differ: a relation between two values"
    value = body.get(param) if isinstance(param, str) else None
    if isinstance(value, float) and value.is_integer():
        return "an integral float is an integer to JSON Schema, not to the API (strict types)"
    return None


def keep_failure(
    ctx: schemathesis.HookContext, failure: Any, case: schemathesis.Case, response: Any
) -> bool:
    """``filter_failure``: drop what the checks get wrong about this API, nothing else
    (each drop is counted in ``DROPPED``).

    - a schema-valid request refused for a reason no schema can state
      (``inexpressible_refusal``): ``positive_data_acceptance`` cannot know it;
    - ``DELETE /payments/request/{id}`` cancels: the request stays readable, ``cancelled``,
      which ``use_after_free`` takes for a deleted resource still served.
    """
    from schemathesis.openapi.checks import RejectedPositiveData, UseAfterFree

    reason = None
    if isinstance(failure, RejectedPositiveData):
        reason = inexpressible_refusal(case, response)
    elif isinstance(failure, UseAfterFree):
        cancelled = _json_object(response).get("status") == "cancelled"
        if failure.free.startswith("DELETE /api/v1/payments/request/") and cancelled:
            reason = "DELETE cancels a payment request, which stays readable"
    if reason is not None:
        DROPPED[f"{failure.operation}: {reason}"] += 1
    return reason is None


def _body_digest(case: schemathesis.Case) -> str:
    text = json.dumps(case.body, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def prepare(case: schemathesis.Case, seeded: Seeded) -> None:
    """Keep the run about the API, not about the fuzzer's own bookkeeping.

    The fuzzer's key is never the one a generated ``DELETE /keys/{key_id}`` revokes (an id
    read back from ``GET /keys`` would otherwise end the run in 401s). An idempotency key
    the server accepts (printable ASCII, at most 255) gets a suffix naming the body: two
    generated requests that draw the same key with different bodies would be a correct
    ``422 idempotency_key_reused``, a property of the run, not of the request. Keys the
    server refuses are sent as generated.
    """
    if case.path_parameters and case.path_parameters.get("key_id") == seeded.key_id:
        case.path_parameters["key_id"] = seeded.spare_key_id
    for name in list(case.headers or {}):
        value = case.headers[name]
        if name.lower() not in IDEMPOTENCY_HEADERS or not isinstance(value, str):
            continue
        if value and len(value) <= 240 and value.isascii() and value.isprintable():
            case.headers[name] = f"{value}.{_body_digest(case)}"


def build_schema(
    document: dict[str, Any], *, max_examples: int, seed: int | None = None
) -> schemathesis.BaseSchema:
    """The schema for the pytest run, with the seeded-id hooks."""
    config = schemathesis.Config.from_dict(config_dict(max_examples=max_examples, seed=seed))
    schema = schemathesis.openapi.from_dict(document, config=config)
    schema.hook("flatmap_case")(point_case)
    schema.hook("filter_failure")(keep_failure)
    return schema


def call_kwargs(case: schemathesis.Case) -> dict[str, Any]:
    """Prepare ``case`` for the running target; the arguments of its ``call_and_validate``.

    The key goes in as an explicit header, so the checks know it for the credentials the
    server must accept (``ignored_auth`` then sends the request without it, and with a
    wrong one).
    """
    base_url, seeded = Target.current()
    prepare(case, seeded)
    return {"base_url": base_url, "headers": {"Authorization": f"Bearer {seeded.key}"}}


# --- make fuzz --------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(config: dict[str, Any], prefix: str = "") -> str:
    """``config_dict`` as a ``schemathesis.toml`` (scalars, lists and nested tables)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for name, table in config.items():
        if isinstance(table, dict):
            full = f"{prefix}{name}"
            lines += ["", f"[{full}]", to_toml(table, f"{full}.")]
    return "\n".join(lines)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A migrated database of its own on ``server_url``, dropped afterwards."""
    name = f"purser_fuzz_{secrets.token_hex(4)}"
    asyncio.run(ensure_database(server_url, name))
    url = to_async_url(server_url, name)
    try:
        upgrade_to_head(url)
        yield url
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(to_libpq_url(server_url, "postgres"))
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())


def main() -> int:
    from schemathesis.cli import schemathesis as cli

    max_examples = int(os.environ.get("FUZZ_EXAMPLES") or 300)
    seed = int(os.environ["FUZZ_SEED"]) if os.environ.get("FUZZ_SEED") else None
    data_dir = Path(os.environ.get("PURSER_DATA_DIR", ".purser"))
    if url := os.environ.get("TEST_DATABASE_URL"):
        server_url = to_libpq_url(url)
    else:
        server_url = start_embedded(data_dir / "test-pg")
    log = data_dir / "fuzz-server.log"

    with (
        fresh_database(server_url) as database_url,
        running_target(database_url, lambda url: serve_process(url, log)) as (base_url, seeded),
        tempfile.TemporaryDirectory(prefix="purser-fuzz-") as workdir,
    ):
        config = Path(workdir) / "schemathesis.toml"
        config.write_text(to_toml(config_dict(max_examples=max_examples, seed=seed)) + "\n")
        schemathesis.hook("flatmap_case")(point_case)
        schemathesis.hook("filter_failure")(keep_failure)

        @schemathesis.hook
        def before_call(
            ctx: schemathesis.HookContext, case: schemathesis.Case, kwargs: Any
        ) -> None:
            prepare(case, seeded)

        args = ["--config-file", str(config), "run", f"{base_url}/openapi.json"]
        args += ["--header", f"Authorization: Bearer {seeded.key}", "--workers", "1"]
        args += ["--continue-on-failure"]
        if max_time := os.environ.get("FUZZ_MAX_TIME"):
            args += ["--max-time", max_time]
        args += shlex.split(os.environ.get("FUZZ_ARGS", ""))
        print(f"Fuzzing {base_url} (purser serve, sandbox, webhooks and jobs off)", flush=True)
        try:
            cli.main(args, prog_name="schemathesis", standalone_mode=False)
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
    if DROPPED:
        print("Not counted as failures (refusals no schema can state, see keep_failure):")
        for line, count in sorted(DROPPED.items()):
            print(f"  {count:5d}  {line}")
    print(f"Server log (tracebacks of any 5xx): {log}")
    return code


if __name__ == "__main__":
    sys.exit(main())
