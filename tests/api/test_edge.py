"""The edge refuses every byte it did not expect, on every route.

The cases are generated from the OpenAPI document, not from a hand list: every string
field of every request body, every path and query parameter, every amount, boolean and
integer. A route added later is covered without touching this file.
"""

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.domain.apikey.schemas import Scope
from app.kit.money import (
    AMOUNT_OR_ZERO_PATTERN,
    AMOUNT_PATTERN,
    MAX_AMOUNT_TEXT,
    POSITIVE_AMOUNT_PATTERN,
)
from app.main import create_app
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


@pytest.fixture
async def headers(make_key: MakeKey) -> dict[str, str]:
    return bearer(await make_key(scopes=list(Scope)))


def _operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _body_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    body = operation.get("requestBody")
    if body is None:
        return None
    return _resolve(document, body["content"]["application/json"]["schema"])


def _variants(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a property's schema."""
    schema = _resolve(document, schema)
    options = schema.get("anyOf", [schema])
    return [_resolve(document, o) for o in options if o.get("type") != "null"]


def _fields(document: dict[str, Any], kind: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(method, path, field, schema)`` of every body property of type ``kind``."""
    found = []
    for method, path, operation in _operations(document):
        schema = _body_schema(document, operation)
        if schema is None:
            continue
        for name, prop in schema.get("properties", {}).items():
            for variant in _variants(document, prop):
                if variant.get("type") == kind:
                    found.append((method, path, name, variant))
                    break
    return found


def _url(path: str, fill: str = "unknown_id_0000") -> str:
    parts = [fill if part.startswith("{") else part for part in path.split("/")]
    return "/".join(parts)


async def _send(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(
        method,
        _url(path),
        content=json.dumps(body),
        headers={**headers, "content-type": "application/json"},
    )


def _names(response: httpx.Response, field: str) -> bool:
    problem = response.json()
    return problem.get("param") == field or any(
        error["loc"][-1] == field or field in error["loc"] for error in problem.get("errors", [])
    )


async def test_every_string_field_refuses_nul_lone_surrogates_and_overlong_text(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    fields = _fields(document, "string")
    assert len(fields) > 30, "the document lists the request bodies' string fields"
    for method, path, field, schema in fields:
        assert "maxLength" in schema or "enum" in schema or "format" in schema, (path, field)
        bad_values = ["ab\x00cd", "ab\ud800cd"]
        if "maxLength" in schema:
            bad_values.append("1" * (schema["maxLength"] + 1))
        for value in bad_values:
            response = await _send(client, method, path, {field: value}, headers)
            assert response.status_code == 422, (method, path, field, value, response.text)
            expected = PROBLEM if path.startswith("/api/v1/") else "application/json"
            assert response.headers["content-type"] == expected
            assert _names(response, field), (method, path, field, response.text)


async def test_every_path_and_query_parameter_refuses_nul(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    checked = 0
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                url = path.replace("{" + parameter["name"] + "}", "bad%00id")
                url = _url(url)
            elif parameter["in"] == "query":
                url = _url(path) + f"?{parameter['name']}=a%00b"
            else:
                continue
            response = await client.request(method, url, headers=headers)
            assert response.status_code == 422, (method, url, response.text)
            assert response.json()["param"] == parameter["name"], (method, url, response.text)
            checked += 1
    assert checked > 30


async def test_ids_that_cannot_exist_are_404(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    for fill in ("x" * 300, "agent_\u00fcn\u00efc\u00f6d\u00e9", "%FF%FE", "1' OR '1'='1"):
        for method, path, _ in _operations(document):
            if method != "GET" or "{" not in path:
                continue
            response = await client.get(_url(path, fill), headers=headers)
            assert response.status_code == 404, (path, fill, response.text)


_BAD_AMOUNT_TEXT = ("1e3", "5\u0660\u0660", "\uff11\uff10", " 5", "-5", "1_000", "1e400000")


async def test_every_amount_field_speaks_one_grammar(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    patterns = (AMOUNT_PATTERN, POSITIVE_AMOUNT_PATTERN, AMOUNT_OR_ZERO_PATTERN)
    fields = [f for f in _fields(document, "string") if f[3].get("pattern") in patterns]
    # amount (payments, holds, captures, refunds, requests), price (x2), initial_balance,
    # five limits (x2).
    assert len(fields) >= 15
    for method, path, field, schema in fields:
        assert schema["maxLength"] == MAX_AMOUNT_TEXT
        for value in (
            5.0,
            15.99,
            10,
            True,
            "1e3",
            "5\u0660\u0660",
            "\uff11\uff10",
            " 5",
            "-5",
            "1_000",
            "1e400000",
        ):
            response = await _send(client, method, path, {field: value}, headers)
            assert response.status_code == 422, (method, path, field, value, response.text)
            assert _names(response, field), (method, path, field, value, response.text)
        number = await _send(client, method, path, {field: 5.0000000000000001}, headers)
        assert "decimal string" in number.text


async def test_amount_query_parameters_speak_the_grammar_too(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for bad in ("1e3", "5%D9%A0%D9%A0", "1e1000000", "-1", "1" * 41):
        estimate = await client.get(f"/api/v1/payments/estimate?amount={bad}", headers=headers)
        assert estimate.status_code == 422, (bad, estimate.text)
        assert estimate.json()["param"] == "amount"
        products = await client.get(f"/api/v1/catalog/products?max_price={bad}", headers=headers)
        assert products.status_code == 422, (bad, products.text)
        assert products.json()["param"] == "max_price"
    # Within the grammar, however large: no int64 overflow.
    huge = await client.get("/api/v1/catalog/products?max_price=" + "9" * 40, headers=headers)
    assert huge.status_code == 200, huge.text


async def test_booleans_and_integers_are_strict_json_types(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    booleans = _fields(document, "boolean")
    integers = _fields(document, "integer")
    assert booleans
    assert integers
    cases = ((booleans, [0, 1, "false", "true", "0"]), (integers, ["5", 5.0, True, "1e3"]))
    for fields, bad_values in cases:
        for method, path, field, _ in fields:
            for value in bad_values:
                response = await _send(client, method, path, {field: value}, headers)
                assert response.status_code == 422, (method, path, field, value, response.text)
                assert _names(response, field), (method, path, field, value, response.text)


async def test_unknown_members_are_refused_by_name(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    checked = 0
    for method, path, operation in _operations(document):
        if _body_schema(document, operation) is None:
            continue
        body = {"limit_per_txn": "5.00", "extra_field": 1}
        response = await _send(client, method, path, body, headers)
        assert response.status_code == 422, (method, path, response.text)
        problem = response.json()
        assert "limit_per_txn" in problem["detail"]
        assert "extra_field" in problem["detail"]
        assert problem["param"] in ("limit_per_txn", "extra_field")
        checked += 1
    assert checked >= 12


async def test_a_misspelt_limit_leaves_no_agent_without_its_limit(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/agents",
        json={"name": "careful_agent", "initial_balance": "10", "limit_per_txn": "5.00"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["param"] == "limit_per_txn"
    assert (await client.get("/api/v1/agents", headers=headers)).json() == []


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b'{"amount": "1.00", "amount": "1000.00"}', "amount", "more than once"),
        (b'{"a": {"b": 1, "b": 2}}', "b", "more than once"),
        (b'{"agent_id": "x",\n "amount": }', "body", "line 2 column 12"),
        (b'{"amount": NaN}', "body", "NaN"),
        (b'{"amount": Infinity}', "body", "Infinity"),
        (b'{"amount": "1"', "body", "line 1"),
        (b"\xff\xfe{}", "body", "UTF-8"),
        (b"[" * 100_000, "body", "nested too deeply"),
        (b'{"amount": ' + b"9" * 5000 + b"}", "body", "invalid JSON"),
    ],
)
async def test_bodies_are_strict_json(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes, param: str, fragment: str
) -> None:
    response = await client.post(
        "/api/v1/payments", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["param"] == param
    assert fragment in response.json()["detail"]


async def test_query_numbers_stay_in_range(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    checked = 0
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            schema = _variants(document, parameter["schema"])[0]
            if parameter["in"] != "query" or schema.get("type") != "integer":
                continue
            assert "maximum" in schema, (path, parameter["name"])
            assert "minimum" in schema, (path, parameter["name"])
            for value in (2**63, -(2**63) - 1, 10**30, schema["maximum"] + 1, -1):
                url = _url(path) + f"?{parameter['name']}={value}"
                response = await client.request(method, url, headers=headers)
                assert response.status_code == 422, (url, response.text)
                assert response.json()["param"] == parameter["name"]
            checked += 1
    assert checked >= 5


async def test_differing_idempotency_keys_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1"}
    both = {**headers, "Idempotency-Key": "key-a", "X-Idempotency-Key": "key-b"}
    response = await client.post("/api/v1/payments", json=body, headers=both)
    assert response.status_code == 400
    assert response.json()["code"] == "conflicting_idempotency_keys"
    same = {**headers, "Idempotency-Key": "key-c", "X-Idempotency-Key": "key-c"}
    assert (await client.post("/api/v1/payments", json=body, headers=same)).status_code == 200


@pytest.mark.parametrize(
    "name", ["Authorization", "X-API-Key", "Idempotency-Key", "X-Idempotency-Key", "Dry-Run"]
)
async def test_a_deciding_header_sent_twice_is_refused_before_anything_happens(
    client: httpx.AsyncClient, headers: dict[str, str], make_key: MakeKey, name: str
) -> None:
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1"}
    other = (await make_key()).secret
    values = {
        # Two keys of two owners: whichever copy counted, the request would act for one.
        "Authorization": [headers["Authorization"], f"Bearer {other}"],
        "X-API-Key": [headers["Authorization"].removeprefix("Bearer "), other],
        "Idempotency-Key": ["key-1", "key-1"],
        "X-Idempotency-Key": ["key-2", "key-3"],
        "Dry-Run": ["true", "false"],
    }[name]
    sent = [(key, value) for key, value in headers.items() if key != name]
    sent += [(name, value) for value in values]
    response = await client.post(
        "/api/v1/payments",
        content=json.dumps(body),
        headers=[("content-type", "application/json"), *sent],
    )
    assert response.status_code == 400, response.text
    assert (response.json()["code"], response.json()["param"]) == (
        "repeated_header",
        name.lower(),
    )
    wallet = await client.get(f"/api/v1/agents/{agent['agent_id']}/wallet", headers=headers)
    assert wallet.json()["spent_total"] == "0.00"


async def test_method_not_allowed_says_what_is(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/payments")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/problem+json"
    # Every route of the path counts, not only the first one the router tried.
    assert (await client.put("/api/v1/agents")).headers["allow"] == "GET, POST"
    assert (await client.post("/api/v1/webhooks/x")).headers["allow"] == "GET, PATCH, DELETE"


PROBLEM = "application/problem+json"


def test_every_error_is_documented_as_problem_json(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert ("500" in responses and "422" in responses) or not operation.get("parameters")
        if operation.get("requestBody"):
            assert {"400", "413", "422"} <= responses.keys(), (method, path)
        if operation.get("security"):
            assert {"401", "403", "429"} <= responses.keys(), (method, path)
        # The seed gateway's own paths answer errors as application/json (the issue's
        # requirement for its clients); every other path as problem+json.
        expected = "application/json" if not path.startswith("/api/v1/") else PROBLEM
        for status, response in responses.items():
            if int(status) >= 400:
                assert list(response["content"]) == [expected], (path, status)


# --- Bodies over the cap, and the 500 path, on a real server over loopback -------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[str]:
    """A real server on loopback (so connections and framing are real) with one route
    that raises, standing for any bug a request can reach."""
    app = create_app(
        database_url=database_url, settings=Settings(run_jobs=False, max_body_bytes=4096)
    )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected bug with secret bytes \x01\x02")

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_an_unexpected_error_is_one_problem_and_keeps_the_connection(
    served: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="purser.api")
    async with httpx.AsyncClient(base_url=served) as client:
        failed = await client.get("/boom")
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        problem = failed.json()
        assert problem["code"] == "internal_error"
        assert problem["request_id"] == failed.headers["request-id"]
        assert "secret bytes" not in failed.text
        assert "Traceback" not in failed.text
        # The same keep-alive connection answers the next request.
        streams_before = len(client._transport._pool.connections)  # type: ignore[attr-defined]
        after = await client.get("/api/v1/health")
        assert after.status_code == 200
        assert len(client._transport._pool.connections) == streams_before == 1  # type: ignore[attr-defined]
    records = [r for r in caplog.records if r.name == "purser.api"]
    assert len(records) == 1
    assert problem["request_id"] in records[0].getMessage()
    assert records[0].exc_info is not None


async def test_a_body_over_the_cap_is_413_before_it_is_read(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        declared = await client.post(
            "/api/v1/payments",
            content=b"{" + b" " * 5000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert declared.status_code == 413
        assert declared.json()["code"] == "body_too_large"
        assert declared.headers["content-type"] == "application/problem+json"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b" " * 1000

        streamed = await client.post(
            "/api/v1/payments", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        small = await client.post(
            "/api/v1/payments", content=b"{}", headers={"content-type": "application/json"}
        )
        assert small.status_code == 401  # under the cap: on to authentication


async def test_no_response_may_be_cached(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await client.post("/api/v1/keys", json={"name": "second"}, headers=headers)
    assert created.status_code == 201
    assert created.json()["secret"].startswith("sk_test_")
    assert created.headers["cache-control"] == "no-store"
    for response in (
        await client.get("/api/v1/agents", headers=headers),
        await client.get("/api/v1/agents/unknown", headers=headers),
        await client.get("/api/v1/health"),
    ):
        assert response.headers["cache-control"] == "no-store"


async def test_the_largest_amount_is_a_refusal_for_funds_not_a_posting_error(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    for path in ("/api/v1/payments", "/api/v1/payments/holds"):
        body = {
            "agent_id": agent["agent_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": "100000000000.0000",
        }
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "insufficient_funds"


async def test_two_different_keys_in_one_request_are_refused(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    first, second = await make_key(), await make_key()
    both = {"X-API-Key": first.secret, "Authorization": f"Bearer {second.secret}"}
    response = await client.get("/api/v1/agents", headers=both)
    assert response.status_code == 400
    assert response.json()["code"] == "conflicting_credentials"
    same = {"X-API-Key": first.secret, "Authorization": f"Bearer {first.secret}"}
    assert (await client.get("/api/v1/agents", headers=same)).status_code == 200


async def test_an_empty_idempotency_key_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = {"name": "TechStore Electronics"}
    for name in ("Idempotency-Key", "X-Idempotency-Key"):
        response = await client.post("/api/v1/merchants", json=body, headers={**headers, name: ""})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_idempotency_key"
    assert (await client.get("/api/v1/merchants", headers=headers)).json() == []


async def test_a_union_field_is_named_plainly(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    merchant = await create_merchant(client, headers)
    product = await client.post(
        "/api/v1/catalog/products",
        json={"merchant_id": merchant["merchant_id"], "name": "cable", "price": "5"},
        headers=headers,
    )
    for price in ("-1", 5):
        response = await client.patch(
            f"/api/v1/catalog/products/{product.json()['product_id']}",
            json={"price": price},
            headers=headers,
        )
        assert response.status_code == 422
        assert response.json()["param"] == "price"
        assert response.json()["detail"].startswith("price: ")


def test_idempotent_operations_document_409(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        names = {p["name"] for p in operation.get("parameters", [])}
        if "Idempotency-Key" in names:
            assert "409" in operation["responses"], (method, path)


async def test_a_declared_body_that_never_comes_gets_its_413_in_bounded_time(
    served: str,
) -> None:
    host, port = served.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 9999999\r\n\r\n{}"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer


async def test_every_route_that_reads_no_body_refuses_one(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    routes = [
        (method, context.path)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.route, APIRoute)
        and context.route.body_field is None
        and context.path is not None
        for method in sorted(context.methods or ())
        if method in ("POST", "PUT", "PATCH")
    ]
    assert ("POST", "/api/v1/unfreeze") in routes
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", "x", path)
        refused = await client.request(method, url, json={"release_holds": True}, headers=headers)
        assert refused.status_code == 422, (method, path, refused.text)
        assert (refused.json()["code"], refused.json()["param"]) == ("unexpected_body", "body")
    # No body, or an empty object, is no body.
    for body in (None, {}):
        response = await client.post("/api/v1/unfreeze", json=body, headers=headers)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/health", "/api/v1/agents"])
async def test_a_dry_run_where_none_is_offered_is_refused_on_every_route(
    client: httpx.AsyncClient, headers: dict[str, str], path: str
) -> None:
    response = await client.get(path, headers={**headers, "Dry-Run": "true"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "dry_run_not_supported"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/json, text/plain",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded",
    ],
)
async def test_a_body_is_read_only_as_json_in_utf8(
    client: httpx.AsyncClient, headers: dict[str, str], content_type: str
) -> None:
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1"}
    response = await client.post(
        "/api/v1/payments",
        content=json.dumps(body),
        headers={**headers, "Content-Type": content_type},
    )
    assert response.status_code == 415, response.text
    assert (response.json()["code"], response.json()["param"]) == (
        "unsupported_media_type",
        "Content-Type",
    )
    wallet = await client.get(f"/api/v1/agents/{agent['agent_id']}/wallet", headers=headers)
    assert wallet.json()["spent_total"] == "0.00"
    fine = await client.post(
        "/api/v1/payments",
        content=json.dumps(body),
        headers={**headers, "Content-Type": "application/json; charset=UTF-8"},
    )
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "", "Bearer", "Token abc"])
async def test_an_authorization_header_that_names_no_key_is_refused_not_skipped(
    client: httpx.AsyncClient, headers: dict[str, str], authorization: str
) -> None:
    key = headers["Authorization"].removeprefix("Bearer ")
    response = await client.get(
        "/api/v1/agents", headers={"X-API-Key": key, "Authorization": authorization}
    )
    assert response.status_code == 401, response.text
    assert (response.json()["code"], response.json()["param"]) == (
        "invalid_api_key",
        "Authorization",
    )
