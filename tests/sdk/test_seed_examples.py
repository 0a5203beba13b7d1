"""The seed documents' examples, run against the real server over loopback HTTP.

``seeds/`` holds the two documents verbatim (a test compares them with the originals when
``PURSER_SEEDS_DIR`` names their folder). Each example is read out of the document at
test time and run with only these changes, each listed where it is made:

* the client's name (``sardis_sdk.SardisClient`` -> ``purser.PurserClient``);
* the key: ``PURSER_API_KEY`` in the environment for the Python client, an
  ``Authorization`` header added to seed 003's cURL and fetch examples (they send none),
  ``$KEY`` / ``your-key`` in seed 000's;
* the host: ``localhost:8000`` / ``localhost:8720`` -> the test server's loopback URL;
* placeholder ids the documents assume exist (``merchant_123``, ``agent_xxx``,
  ``pod-uuid``…) -> ids this test created or read, in ``SUBSTITUTIONS`` tables below.

Every change is asserted to apply (a changed document fails here, it is not run half
substituted). The key's owner is the document's (``dev_123``, ``dev``): Purser refuses an
``owner_id`` other than the key's.
"""

import asyncio
import json
import os
import re
import shlex
import shutil
import tempfile
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from purser import AsyncPurserClient

from app.domain.apikey.schemas import Scope
from tests.api.helpers import MakeKey
from tests.sdk.conftest import DeliverWebhooks
from tests.webhook_receiver import Receiver

SEEDS = Path(__file__).parent / "seeds"
WALLET_API = SEEDS / "003_8cf3a4b8a943b0b1.txt"
GATEWAY = SEEDS / "000_f7ecc7d1fe531d71.txt"


# -- reading the documents --------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block and the headings it sits under (``## …``, ``### …``)."""

    lang: str
    text: str
    section: str
    heading: str


def blocks(document: Path) -> list[Block]:
    found: list[Block] = []
    section = heading = ""
    lines = iter(document.read_text().splitlines())
    for line in lines:
        if line.startswith("## "):
            section, heading = line[3:].strip(), ""
        elif line.startswith("### "):
            heading = line[4:].strip()
        elif line.startswith("```"):
            body: list[str] = []
            for inner in lines:
                if inner.startswith("```"):
                    break
                body.append(inner)
            found.append(Block(line[3:].strip(), "\n".join(body) + "\n", section, heading))
    return found


def block(document: Path, heading: str, lang: str, index: int = 0) -> Block:
    """The ``index``-th ``lang`` block under the ``### heading`` (or, for a ``## section``
    without subheadings, under the section)."""
    matching = [
        b
        for b in blocks(document)
        if b.lang == lang and (b.heading == heading or (not b.heading and b.section == heading))
    ]
    return matching[index]


def documented_json(document: Path, heading: str, index: int = 0) -> Any:
    """The ``index``-th JSON block under ``heading``; ``[...]`` (the document's "and so
    on") read as an empty list."""
    return json.loads(block(document, heading, "json", index).text.replace("[...]", "[]"))


def substitute(text: str, substitutions: list[tuple[str, str]]) -> str:
    """Each (old, new) in order; every one must apply."""
    for old, new in substitutions:
        assert old in text, f"the document no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def curl_commands(text: str) -> list[str]:
    """The curl commands of a shell block: continuation lines joined, a quoted argument
    running over several lines kept whole, comments and other commands dropped."""
    commands: list[str] = []
    pending = ""
    for line in text.replace("\\\n", " ").splitlines():
        pending = f"{pending}\n{line}" if pending else line.strip()
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quotation still open: the command goes on
            continue
        if pending.startswith("curl "):
            commands.append(pending)
        pending = ""
    assert not pending, f"unterminated command: {pending!r}"
    return commands


def check_shape(
    actual: Any, documented: Any, *, nullable: frozenset[str] = frozenset(), path: str = "$"
) -> None:
    """``actual`` has every member the document shows, with the document's JSON types
    (members of ``nullable`` may be null where the document shows a value, each for a
    reason given where the set is made). Lists: the first item, when both have one."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for name, value in documented.items():
            assert name in actual, f"{path}.{name} is missing from {sorted(actual)}"
            check_shape(actual[name], value, nullable=nullable, path=f"{path}.{name}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not a list"
        if documented and actual:
            check_shape(actual[0], documented[0], nullable=nullable, path=f"{path}[0]")
    elif documented is not None:
        if actual is None:
            assert path.rsplit(".", 1)[-1] in nullable, f"{path} is null, documented {documented!r}"
            return
        kinds: dict[type, tuple[type, ...]] = {bool: (bool,), int: (int,), float: (int, float)}
        expected = kinds.get(type(documented), (type(documented),))
        assert isinstance(actual, expected), f"{path}: {actual!r} is not like {documented!r}"
        assert not isinstance(actual, bool) or isinstance(documented, bool), path


# -- running a cURL command -------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any


def parse_curl(command: str, env: dict[str, str]) -> tuple[str, str, dict[str, str], str | None]:
    """Method, URL, headers and body of a curl command line (the options the documents
    use: ``-X``, ``-H``, ``-d``), ``$NAME`` expanded from ``env`` as a shell would."""
    words = shlex.split(re.sub(r"\$(\w+)", lambda m: env[m.group(1)], command))
    assert words[0] == "curl"
    method, url, headers, data = None, None, {}, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(rest)
        else:
            assert not word.startswith("-"), f"option {word} is not understood here"
            url = word
    assert url is not None
    return method or ("POST" if data is not None else "GET"), url, headers, data


async def run_curl(command: str, env: dict[str, str], interface: str | None = None) -> Answer:
    """The command run by the real ``curl`` through ``bash`` (with ``env``), capturing the
    status and body; without a ``curl`` on the machine, the same request sent by httpx."""
    if shutil.which("curl") is None:
        method, url, headers, data = parse_curl(command, env)
        transport = httpx.AsyncHTTPTransport(local_address=interface)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.request(method, url, headers=headers, content=data)
        return Answer(response.status_code, response.json())
    with tempfile.NamedTemporaryFile() as out:
        capture = f" --silent --show-error --output {out.name} --write-out '%{{http_code}}'"
        if interface is not None:
            capture += f" --interface {interface}"
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command + capture,
            env={"PATH": os.environ["PATH"], **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        return Answer(int(stdout), json.loads(out.read()))


def test_the_curl_parser_reads_every_seed_command() -> None:
    """The fallback for machines without curl reads each command as curl would."""
    env = {"KEY": "k"}
    commands = [
        c
        for document in (WALLET_API, GATEWAY)
        for b in blocks(document)
        if b.lang == "bash"
        for c in curl_commands(b.text)
    ]
    assert len(commands) == 15
    parsed = [parse_curl(c, env) for c in commands]
    transfer = next(p for p in parsed if p[1].endswith("/api/transfers"))
    assert transfer[0] == "POST"
    assert transfer[2] == {"X-API-Key": "k", "Content-Type": "application/json"}
    assert json.loads(transfer[3] or "") == {
        "source_id": "source-pod-uuid",
        "destination_id": "dest-pod-uuid",
        "amount_cents": 5000,
    }
    activity = next(p for p in parsed if "/api/activity?" in p[1])
    assert activity[:2] == (
        "GET",
        "http://localhost:8720/api/activity?first=10&statuses=COMPLETE&directions=INCOMING",
    )


def test_the_copies_are_the_seed_documents() -> None:
    originals = os.environ.get("PURSER_SEEDS_DIR")
    if not originals:
        pytest.skip("PURSER_SEEDS_DIR is not set: the copies in tests/sdk/seeds are used as is")
    for copy in (WALLET_API, GATEWAY):
        assert (Path(originals) / copy.name).read_bytes() == copy.read_bytes(), copy.name


# -- seed 003: the agent-wallet API -----------------------------------------------------


@pytest.fixture
async def merchant_of(base_url: str, make_key: MakeKey) -> Callable[[str], Any]:
    """A key of the owner the document names, and a merchant of that owner."""

    async def make(owner: str) -> tuple[str, str]:
        key = (await make_key(owner=owner)).secret
        async with AsyncPurserClient(api_key=key, base_url=base_url) as client:
            merchant = await client.create_merchant("Seed Example Shop")
        return key, merchant.merchant_id

    return make


async def test_the_python_sdk_example_runs(
    base_url: str, merchant_of: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    example = block(WALLET_API, "Python", "python")
    assert example.section == "SDK Examples"
    key, merchant_id = await merchant_of("dev_123")
    code = substitute(
        example.text,
        [
            ("sardis_sdk", "purser"),  # the client's name
            ("SardisClient", "PurserClient"),
            ("http://localhost:8000", base_url),  # the host
            ('"merchant_123"', f'"{merchant_id}"'),  # a merchant of the key's owner
        ],
    )
    monkeypatch.setenv("PURSER_API_KEY", key)  # the key, where the client looks for it
    namespace: dict[str, Any] = {}
    # The example uses the sync client; the server runs on this thread's event loop.
    await asyncio.to_thread(
        exec, compile(code, "seed 003: SDK Examples, Python", "exec"), namespace
    )

    agent, result, client = namespace["agent"], namespace["result"], namespace["client"]
    assert agent.agent.owner_id == "dev_123"
    assert agent.wallet.limit_per_tx == Decimal("20.00")
    assert result.success
    # The document's numbers: 15.99 plus the 0.10 fee is 16.09.
    assert (result.transaction.amount, result.transaction.fee) == (Decimal("15.99"), Decimal("0.1"))
    assert result.transaction.total_cost == Decimal("16.09")
    assert result.transaction.merchant_id == merchant_id
    wallet = await asyncio.to_thread(client.get_wallet, agent.agent.agent_id)
    assert wallet.balance == Decimal("83.91")
    client.close()


async def test_the_curl_examples_run(base_url: str, merchant_of: Callable[[str], Any]) -> None:
    example = block(WALLET_API, "cURL", "bash")
    assert example.section == "SDK Examples"
    key, merchant_id = await merchant_of("dev")
    create_agent, make_payment = curl_commands(example.text)
    env = {"KEY": key}
    # The key: seed 003's commands send none; Purser needs one (`Authorization: Bearer`).
    with_key = [("curl -X POST", 'curl -H "Authorization: Bearer $KEY" -X POST')]
    host = [("http://localhost:8000", base_url)]

    created = await run_curl(substitute(create_agent, with_key + host), env)
    assert created.status == 201, created.body
    check_shape(
        created.body,
        documented_json(WALLET_API, "Create Agent", 1),
        nullable=frozenset(
            # The documented answer is to the documented request, which gave a description
            # and limits; this command gives neither, so they are null.
            {"description", "limit_per_tx", "limit_total", "remaining_limit"}
            # No virtual card is issued: Purser moves money on its ledger only, and says
            # so with null rather than an invented card number.
            | {"virtual_card"}
        ),
    )
    assert created.body["wallet"]["balance"] == "100.00"
    agent_id = created.body["agent"]["agent_id"]

    paid = await run_curl(
        substitute(
            make_payment,
            [*with_key, *host, ("agent_xxx", agent_id), ("merchant_yyy", merchant_id)],
        ),
        env,
    )
    assert paid.status == 200, paid.body
    # As above: the documented request gave a purpose, this command gives none.
    check_shape(
        paid.body,
        documented_json(WALLET_API, "Create Payment", 1),
        nullable=frozenset({"purpose"}),
    )
    assert paid.body["transaction"]["amount"] == "10.00"
    assert paid.body["transaction"]["total_cost"] == "10.10"


async def test_the_typescript_example_runs(
    base_url: str, merchant_of: Callable[[str], Any]
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the fetch example needs a JavaScript runtime")
    example = block(WALLET_API, "TypeScript", "typescript")
    key, _ = await merchant_of("dev_123")
    code = substitute(
        example.text,
        [
            ("http://localhost:8000", base_url),
            # The key, as a header beside the document's one.
            (
                "headers: { 'Content-Type': 'application/json' }",
                "headers: { 'Content-Type': 'application/json', "
                "'Authorization': `Bearer ${process.env.KEY}` }",
            ),
        ],
    )
    # What the example destructures, printed for this test to read.
    code += "console.log(JSON.stringify({ status: response.status, agent, wallet }));\n"
    process = await asyncio.create_subprocess_exec(
        node,
        "--input-type=module",
        "-e",
        code,
        env={"PATH": os.environ["PATH"], "KEY": key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    printed = json.loads(stdout)
    assert printed["status"] == 201
    assert printed["agent"]["name"] == "my_agent"
    assert (printed["wallet"]["balance"], printed["wallet"]["limit_per_tx"]) == (
        "100.00",
        "20.00",
    )


async def test_the_signature_snippet_accepts_a_real_delivery_and_rejects_a_tampered_one(
    client: AsyncPurserClient, receiver: Receiver, deliver_webhooks: DeliverWebhooks
) -> None:
    snippet = block(WALLET_API, "Create Webhook", "python")
    definition, handler = snippet.text.split("# In your webhook handler:\n")
    namespace: dict[str, Any] = {}
    exec(compile(definition, "seed 003: Verifying Signatures", "exec"), namespace)
    # The handler's lines `return`: they need a function around them to run.
    body = "def handler(request, webhook_secret, Response):\n" + textwrap.indent(handler, "    ")
    exec(compile(body, "seed 003: Verifying Signatures, handler", "exec"), namespace)

    hook = await client.create_webhook(receiver.url, ["payment.completed"])
    merchant = await client.create_merchant("Signed Shop")
    agent = await client.register_agent("signed", initial_balance=Decimal("20"))
    await client.pay(agent.agent.agent_id, Decimal("15.99"), merchant_id=merchant.merchant_id)
    assert await deliver_webhooks() >= 1
    (delivered,) = receiver.requests
    assert json.loads(delivered.body)["type"] == "payment.completed"

    def handle(body: bytes) -> Any:
        # A request as web frameworks give it: case-insensitive headers, the body as text.
        request = types.SimpleNamespace(
            headers=httpx.Headers(delivered.headers), body=body.decode()
        )
        return namespace["handler"](request, hook.secret, lambda status: ("refused", status))

    assert handle(delivered.body) is None  # verified: the handler goes on
    tampered = delivered.body.replace(b'"15.99"', b'"99.99"')
    assert tampered != delivered.body
    assert handle(tampered) == ("refused", 401)


# -- seed 000: the Sequence gateway, at its own paths -----------------------------------


@pytest.fixture
async def gateway(base_url: str, make_key: MakeKey) -> tuple[str, dict[str, str]]:
    """A key with the `sequence` scope, and the ids seed 000's examples stand in for."""
    key = (await make_key(scopes=list(Scope))).secret
    async with AsyncPurserClient(api_key=key, base_url=base_url) as client:
        pods = {pod.name: pod.id for pod in await client.list_pods()}
        history = [t async for t in client.list_activity(statuses=["COMPLETE"])]
    ids = {
        "emergency": pods["Emergency Fund"],
        "source": pods["Vacation"],
        "destination": pods["Groceries"],
        "transfer": history[0].id,
    }
    return key, ids


#: Seed 000 documents no body for these; what they must hold is checked per example.
GATEWAY_EXAMPLES = 13


async def test_the_gateway_curl_examples_run_at_the_seeds_paths(
    base_url: str, gateway: tuple[str, dict[str, str]]
) -> None:
    key, ids = gateway
    substitutions = [
        ("http://localhost:8720", base_url),  # the host
        ("your-key", "$KEY"),  # the key, as the other examples send it
        # Ids the document assumes; longest first ("pod-uuid" is inside the others).
        ("source-pod-uuid", ids["source"]),
        ("dest-pod-uuid", ids["destination"]),
        ("pod-uuid", ids["emergency"]),
        ("transfer-uuid", ids["transfer"]),
        # "org-uuid" stays: Purser accepts and ignores it (a Sequence key is one org).
    ]
    text = "\n".join(b.text for b in blocks(GATEWAY) if b.lang == "bash" and "curl" in b.text)
    for old, new in substitutions:
        assert old in text, f"the document no longer contains {old!r}"
        text = text.replace(old, new)
    commands = curl_commands(text)
    assert len(commands) == GATEWAY_EXAMPLES
    env = {"KEY": key}
    answers: dict[str, Answer] = {}
    for command in commands:
        target = re.search(r"https?://[^\s'\"]+", command)
        assert target is not None
        route = ("POST " if "-X POST" in command else "GET ") + target.group(0).removeprefix(
            base_url
        )
        answers[route] = await run_curl(command, env)
        assert answers[route].status in (200, 202), (route, answers[route].body)

    # Purser's deliberate difference: one Sequence key is one organisation, so there is
    # no organisation id to show (`organization_id: null`, said so in the API reference).
    org_free = frozenset({"organization_id"})
    pods = answers["GET /api/pods"]
    check_shape(pods.body, documented_json(GATEWAY, "GET /api/pods"), nullable=org_free)
    balance = answers["GET /api/pods/balance"].body
    check_shape(balance, documented_json(GATEWAY, "GET /api/pods/balance"))
    assert balance["pod_count"] == len(pods.body)
    assert balance["total_balance_cents"] == sum(p["balance_cents"] for p in pods.body)
    assert re.fullmatch(r"\$[0-9,]+\.[0-9]{2}", balance["total_balance"])
    by_name = answers["GET /api/pods/emergency/balance"].body
    check_shape(by_name, documented_json(GATEWAY, "GET /api/pods")[0], nullable=org_free)
    assert (by_name["name"], by_name["id"]) == ("Emergency Fund", ids["emergency"])
    for route in (
        f"GET /api/pods/detail/{ids['emergency']}",
        f"GET /api/pods/org-uuid/{ids['emergency']}",
    ):
        detail = answers[route].body
        assert (detail["id"], detail["balance_cents"]) == (
            ids["emergency"],
            by_name["balance_cents"],
        )
        assert isinstance(detail["recent_transfers"], list)  # "including recent transfers"
    accounts = answers["GET /api/accounts"].body
    check_shape(accounts, documented_json(GATEWAY, "GET /api/accounts"))
    assert {a["id"] for a in accounts["pods"]} == {p["id"] for p in pods.body}
    summary = answers["GET /api/activity/summary"].body
    check_shape(summary, documented_json(GATEWAY, "GET /api/activity/summary"))
    activity = answers["GET /api/activity?first=10&statuses=COMPLETE&directions=INCOMING"].body
    assert 0 < len(activity["transfers"]) <= 10
    # The filters take the document's words; each transfer says Sequence's (MONEY_IN).
    assert {(t["status"], t["direction"]) for t in activity["transfers"]} == {
        ("COMPLETE", "MONEY_IN")
    }
    for route in (
        f"GET /api/transfers/{ids['transfer']}",
        f"GET /api/activity/org-uuid/{ids['transfer']}",
    ):
        assert answers[route].body["id"] == ids["transfer"]
    health = answers["GET /api/health"]
    assert health.body == {"status": "ok"}  # no key sent, none needed
    moved = answers["POST /api/transfers"]
    assert moved.status == 200, moved.body
    assert (moved.body["status"], moved.body["amount_cents"]) == ("completed", 5000)
    assert (moved.body["source_id"], moved.body["destination_id"]) == (
        ids["source"],
        ids["destination"],
    )


async def test_the_gateway_refuses_a_wrong_key_as_documented(base_url: str) -> None:
    """The authentication example with its placeholder key left in: 401 and the body the
    document shows. From an address of its own (failed authentications are throttled per
    client address, and other suites share 127.0.0.1)."""
    (command,) = curl_commands(block(GATEWAY, "Authentication", "bash").text)
    assert "your-key" in command
    refused = await run_curl(
        substitute(command, [("http://localhost:8720", base_url)]), {}, interface="127.0.0.4"
    )
    assert refused.status == 401
    documented = json.loads(block(GATEWAY, "Authentication", "json").text)
    assert documented == {"detail": "Invalid API key"}
    check_shape(refused.body, documented)
    assert refused.body["detail"] == documented["detail"]
