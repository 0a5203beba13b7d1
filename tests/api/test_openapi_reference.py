"""``/docs`` as a reference: every operation of ``/api/v1`` has a summary, a description,
its error responses and examples of its request and responses
(``app/api/openapi_examples.py``), and the examples are true:

- each request example passes the pydantic model the route validates its body with, and
  each 2xx example is exactly what the route's response model writes back;
- each error example is a problem body of the status it is shown under, with a code the
  server really answers;
- the request examples of the key operations are posted to the running app (with the ids
  it created put in place of the examples' own) and succeed, with the documented shape;
- Swagger UI, run in a real browser, shows them.

A route added without examples fails here, naming what it lacks.
"""

import html
import json
import re
import types
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, TypeAdapter

import app.api.edge
from app.api import openapi_examples as docs
from app.api.problems import PROBLEM_JSON, Problem
from app.errors import AppError
from app.kit.schemas import RequestSchema
from app.main import create_app
from tests.api.helpers import MakeKey, bearer
from tests.api.test_docs_in_browser import _chromium, _render, served  # noqa: F401 - fixture

Json = Any

# The document and the routes, as the app builds them (building them needs no database).
APP = create_app(database_url="postgresql+asyncpg://docs.invalid/unused")
DOCUMENT: dict[str, Json] = APP.openapi()
ROUTES: dict[str, Any] = {
    route.operation_id or route.unique_id: route
    for route in iter_route_contexts(APP.routes)
    if isinstance(route.original_route, APIRoute)
}
OPERATIONS = [
    pytest.param(path, method, operation, id=f"{method.upper()} {path}")
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]
API_OPERATIONS = [op for op in OPERATIONS if op.values[0].startswith("/api/v1/")]
#: Codes answered by the edge itself, not through an ``AppError`` (``app.api.edge``).
EDGE_CODES = {"body_too_large", "internal_error", "invalid_framing"}


def _subclasses(cls: type[AppError]) -> Iterator[type[AppError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


KNOWN_CODES = {error.code for error in _subclasses(AppError)} | EDGE_CODES


def _examples(media: dict[str, Json]) -> list[Json]:
    """The examples a media type shows: ``example``, or the values of ``examples``."""
    found = [media["example"]] if "example" in media else []
    return found + [entry["value"] for entry in media.get("examples", {}).values()]


def _statuses(operation: dict[str, Json], first: str) -> dict[str, dict[str, Json]]:
    return {s: r for s, r in operation["responses"].items() if s.startswith(first)}


def _errors(operation: dict[str, Json]) -> dict[str, dict[str, Json]]:
    return {s: r for s, r in operation["responses"].items() if s[0] in "45"}


# --- (a) every operation documented --------------------------------------------------------


@pytest.mark.parametrize(("path", "method", "operation"), API_OPERATIONS)
def test_every_operation_is_a_documented_reference(
    path: str, method: str, operation: dict[str, Json]
) -> None:
    missing = []
    if not operation.get("summary"):
        missing.append("summary")
    if not operation.get("description"):
        missing.append("description")
    if not _statuses(operation, "4"):
        missing.append("a 4xx response")
    body = operation.get("requestBody", {}).get("content", {})
    if body and not all(_examples(media) for media in body.values()):
        missing.append("a request example")
    successes = _statuses(operation, "2")
    if not successes:
        missing.append("a 2xx response")
    for status, response in successes.items():
        # A 204 has no body, hence nothing to show.
        for media_type, media in (response.get("content") or {}).items():
            if not _examples(media):
                missing.append(f"an example of its {status} {media_type}")
    unanswered = docs.UNANSWERED.get(operation["operationId"], {})
    for status, response in _errors(operation).items():
        for media_type, media in (response.get("content") or {}).items():
            if not _examples(media) and status not in unanswered:
                missing.append(f"an example of its {status} {media_type}")
    assert not missing, (
        f"{method.upper()} {path} ({operation['operationId']}) lacks: {', '.join(missing)}; "
        "see app/api/openapi_examples.py"
    )


def test_the_tables_name_only_what_exists() -> None:
    """A renamed route or model must not leave its examples silently unused."""
    operation_ids = {op.values[2]["operationId"] for op in OPERATIONS}
    tables = {
        "UNANSWERED": docs.UNANSWERED,
        "OPERATION_EXAMPLES": docs.OPERATION_EXAMPLES,
        "OPERATION_ERRORS": docs.OPERATION_ERRORS,
        "EXTRA_RESPONSES": docs.EXTRA_RESPONSES,
    }
    for table, entries in tables.items():
        unknown = set(entries) - operation_ids
        assert not unknown, f"{table} names no operation: {sorted(unknown)}"
    components = set(DOCUMENT["components"]["schemas"])
    assert not set(docs.SCHEMA_EXAMPLES) - components
    path_parameters = {
        parameter["name"]
        for item in DOCUMENT["paths"].values()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] in ("path", "query")
    }
    assert not set(docs.NOT_FOUND_BY_PARAMETER) - path_parameters


def test_unanswered_statuses_are_still_documented_and_without_examples() -> None:
    """An entry of ``UNANSWERED`` goes once the route stops documenting the status."""
    for path, method, operation in (op.values for op in OPERATIONS):
        for status in docs.UNANSWERED.get(operation["operationId"], {}):
            assert status in operation["responses"], f"{method.upper()} {path}: {status}"
            content = operation["responses"][status]["content"].values()
            assert not any(_examples(media) for media in content)


def test_each_operations_own_errors_are_under_a_documented_status() -> None:
    for path, method, operation in (op.values for op in OPERATIONS):
        own = docs.OPERATION_ERRORS.get(operation["operationId"], [])
        for example in own:
            status = str(example["status"])
            assert status in operation["responses"], (
                f"{method.upper()} {path} documents no {status} for {example['code']}"
            )
            shown = operation["responses"][status]["content"]
            assert any(example in _examples(media) for media in shown.values())


# --- (b) every example true ------------------------------------------------------------


def _body_type(route: Any) -> Any:
    assert route.body_field is not None, "the operation documents a body the route does not read"
    return route.body_field.field_info.annotation


def _response_type(route: Any, status: str) -> Any:
    if int(status) == (route.status_code or 200):
        return route.response_model
    declared = route.responses.get(int(status)) or route.responses.get(status) or {}
    return declared.get("model")


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS)
def test_request_examples_pass_the_routes_model(
    path: str, method: str, operation: dict[str, Json]
) -> None:
    body = operation.get("requestBody", {}).get("content", {})
    if not body:
        pytest.skip("no request body")
    adapter = TypeAdapter(_body_type(ROUTES[operation["operationId"]]))
    for media in body.values():
        for example in _examples(media):
            # As the server reads it: JSON text, parsed, then validated.
            adapter.validate_python(json.loads(json.dumps(example)))


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS)
def test_response_examples_are_what_the_route_writes(
    path: str, method: str, operation: dict[str, Json]
) -> None:
    route = ROUTES[operation["operationId"]]
    checked = 0
    for status, response in _statuses(operation, "2").items():
        for media in (response.get("content") or {}).values():
            model = _response_type(route, status)
            assert model is not None, f"{status}: no response model to check its example with"
            adapter = TypeAdapter(model)
            for example in _examples(media):
                written = adapter.dump_python(adapter.validate_python(example), mode="json")
                # Every field, none the model would drop: the example is the whole body.
                assert written == example, status
                checked += 1
    if not checked:
        pytest.skip("no response body (204)")


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS)
def test_error_examples_are_problems_of_their_status(
    path: str, method: str, operation: dict[str, Json]
) -> None:
    seed_path = not path.startswith("/api/v1/")
    for status, response in _errors(operation).items():
        for media_type, media in (response.get("content") or {}).items():
            assert media_type == ("application/json" if seed_path else PROBLEM_JSON)
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}
            for example in _examples(media):
                problem = Problem.model_validate(example)
                assert str(problem.status) == status, (status, problem.code)
                assert problem.code in KNOWN_CODES, problem.code
                assert problem.type == f"https://purser.dev/problems/{problem.code}"
                assert problem.request_id is not None
                assert problem.request_id.startswith("req_")


def test_the_edge_codes_are_the_edges() -> None:
    source = Path(app.api.edge.__file__).read_text(encoding="utf-8")
    for code in EDGE_CODES:
        assert f'"{code}"' in source, code


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """Every pydantic model ``annotation`` names, nested ones too."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models(field.annotation)
    elif get_origin(annotation) in (list, dict, Union, types.UnionType) or get_args(annotation):
        for argument in get_args(annotation):
            yield from _models(argument)


def _route_models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for route in ROUTES.values():
        annotations = [route.response_model]
        annotations += [r.get("model") for r in route.responses.values()]
        if route.body_field is not None:
            annotations.append(route.body_field.field_info.annotation)
        for annotation in annotations:
            for model in _models(annotation):
                found[model.__name__] = model
    return found


@pytest.mark.parametrize("name", sorted(docs.SCHEMA_EXAMPLES))
def test_component_examples_pass_their_model(name: str) -> None:
    models = _route_models()
    assert name in models, f"no route reads or writes a model named {name}"
    model = models[name]
    example = docs.SCHEMA_EXAMPLES[name]
    validated = model.model_validate(json.loads(json.dumps(example)))
    if not issubclass(model, RequestSchema):
        assert validated.model_dump(mode="json") == example
    assert DOCUMENT["components"]["schemas"][name]["examples"] == [example]


# --- (c) the request examples work --------------------------------------------------------


def _operation(path: str, method: str) -> dict[str, Json]:
    operation: dict[str, Json] = DOCUMENT["paths"][path][method]
    return operation


def _request_examples(path: str, method: str) -> dict[str, Json]:
    media = _operation(path, method)["requestBody"]["content"]["application/json"]
    if "example" in media:
        return {"example": media["example"]}
    return {name: entry["value"] for name, entry in media["examples"].items()}


def _success_example(path: str, method: str, status: int) -> Json:
    return _operation(path, method)["responses"][str(status)]["content"]["application/json"][
        "example"
    ]


def _put(ids: dict[str, str], value: Json) -> Json:
    """``value`` with every string naming an example id replaced by the created one's."""
    if isinstance(value, dict):
        return {key: _put(ids, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_put(ids, item) for item in value]
    return ids.get(value, value) if isinstance(value, str) else value


def _example_ids() -> set[str]:
    return {
        value
        for name, value in vars(docs).items()
        if name.isupper() and name.endswith("_ID") and isinstance(value, str)
    }


def _assert_same_shape(actual: Json, documented: Json, where: str = "body") -> None:
    """The members of ``actual`` are those of ``documented``, at every level (a ``null``
    on either side stands for any value)."""
    if isinstance(documented, dict) and isinstance(actual, dict):
        assert set(actual) == set(documented), (where, set(actual) ^ set(documented))
        for key in documented:
            _assert_same_shape(actual[key], documented[key], f"{where}.{key}")
    elif isinstance(documented, list) and isinstance(actual, list) and documented and actual:
        _assert_same_shape(actual[0], documented[0], f"{where}[0]")


def _strings(value: Json) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


async def _post(
    client: httpx.AsyncClient, path: str, body: Json, headers: dict[str, str], status: int
) -> Json:
    leftover = _example_ids() & set(_strings(body))
    assert not leftover, f"no created id put in place of {leftover}"
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == status, (path, body, response.text)
    return response.json()


async def test_the_documented_requests_work(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    """Create an agent, a merchant, a product, payments, a hold and a payment request with
    the documented request bodies, exactly as /docs shows them but for the ids."""
    headers = bearer(await make_key())
    ids: dict[str, str] = {}

    [agent_body] = _request_examples("/api/v1/agents", "post").values()
    created = await _post(client, "/api/v1/agents", agent_body, headers, 201)
    _assert_same_shape(created, _success_example("/api/v1/agents", "post", 201))
    other = await _post(
        client, "/api/v1/agents", {**agent_body, "name": "research_agent"}, headers, 201
    )
    ids[docs.AGENT_ID] = created["agent"]["agent_id"]
    ids[docs.OTHER_AGENT_ID] = other["agent"]["agent_id"]
    ids[docs.OTHER_WALLET_ID] = other["wallet"]["wallet_id"]

    [merchant_body] = _request_examples("/api/v1/merchants", "post").values()
    merchant = await _post(client, "/api/v1/merchants", merchant_body, headers, 201)
    ids[docs.MERCHANT_ID] = merchant["merchant_id"]
    [product_body] = _request_examples("/api/v1/catalog/products", "post").values()
    product = await _post(client, "/api/v1/catalog/products", _put(ids, product_body), headers, 201)
    _assert_same_shape(product, _success_example("/api/v1/catalog/products", "post", 201))
    ids[docs.PRODUCT_ID] = product["product_id"]

    payments = _request_examples("/api/v1/payments", "post")
    assert len(payments) == 3
    for name, body in payments.items():
        paid = await _post(client, "/api/v1/payments", _put(ids, body), headers, 200)
        assert paid["success"] is True, name
        _assert_same_shape(paid, _success_example("/api/v1/payments", "post", 200), name)
        if name == "pay a merchant":
            ids[docs.TX_ID] = paid["transaction"]["tx_id"]

    refund_path = "/api/v1/payments/{tx_id}/refund"
    [refund_body] = _request_examples(refund_path, "post").values()
    refund = await _post(
        client, f"/api/v1/payments/{ids[docs.TX_ID]}/refund", refund_body, headers, 201
    )
    _assert_same_shape(refund, _success_example(refund_path, "post", 201))

    [hold_body] = _request_examples("/api/v1/payments/holds", "post").values()
    hold = await _post(client, "/api/v1/payments/holds", _put(ids, hold_body), headers, 201)
    _assert_same_shape(hold, _success_example("/api/v1/payments/holds", "post", 201))
    capture_path = "/api/v1/payments/holds/{hold_id}/capture"
    [capture_body] = _request_examples(capture_path, "post").values()
    captured = await _post(
        client, f"/api/v1/payments/holds/{hold['hold_id']}/capture", capture_body, headers, 200
    )
    assert captured["status"] == "captured"
    _assert_same_shape(captured, _success_example(capture_path, "post", 200))

    [request_body] = _request_examples("/api/v1/payments/request", "post").values()
    asked = await _post(client, "/api/v1/payments/request", _put(ids, request_body), headers, 201)
    _assert_same_shape(asked, _success_example("/api/v1/payments/request", "post", 201))


def _error_example(path: str, method: str, status: int, name: str) -> Json:
    media = _operation(path, method)["responses"][str(status)]["content"]
    [examples] = [entry["examples"] for entry in media.values()]
    return examples[name]["value"]


async def test_documented_errors_are_what_the_server_answers(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    headers = bearer(await make_key())
    [agent_body] = _request_examples("/api/v1/agents", "post").values()
    agent = await _post(client, "/api/v1/agents", agent_body, headers, 201)
    [merchant_body] = _request_examples("/api/v1/merchants", "post").values()
    merchant = await _post(client, "/api/v1/merchants", merchant_body, headers, 201)
    ids = {docs.AGENT_ID: agent["agent"]["agent_id"], docs.MERCHANT_ID: merchant["merchant_id"]}
    [payment] = [
        body
        for name, body in _request_examples("/api/v1/payments", "post").items()
        if name == "pay a merchant"
    ]
    # Above the example agent's per-transaction limit (50.00).
    over_limit = {**_put(ids, payment), "amount": "60.00"}
    refused = await client.post("/api/v1/payments", json=over_limit, headers=headers)
    documented = _error_example("/api/v1/payments", "post", 400, "limit_exceeded")
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    assert refused.json()["code"] == documented["code"]
    _assert_same_shape(refused.json(), documented)

    missing = await client.get(f"/api/v1/agents/{docs.AGENT_ID}", headers=headers)
    documented = _error_example("/api/v1/agents/{agent_id}", "get", 404, "agent_not_found")
    assert missing.status_code == 404
    assert missing.json()["detail"] == documented["detail"]
    _assert_same_shape(missing.json(), documented)

    unauthenticated = await client.get("/api/v1/agents")
    documented = _error_example("/api/v1/agents", "get", 401, "invalid_api_key")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["detail"] == documented["detail"]


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/health/ready"])
async def test_the_health_checks_documented_errors_are_real(
    client: httpx.AsyncClient, path: str
) -> None:
    """The two operations no route declares a 4xx for: what every route refuses."""
    unstorable = await client.get(path, params={"q": "\x00"})
    assert unstorable.status_code == 422
    documented = _error_example(path, "get", 422, "invalid_text")
    assert unstorable.json()["detail"] == documented["detail"]
    _assert_same_shape(unstorable.json(), documented)
    too_large = await client.request("GET", path, content=b"x" * 1_048_577)
    assert too_large.status_code == 413
    documented = _error_example(path, "get", 413, "body_too_large")
    assert too_large.json()["detail"] == documented["detail"]
    _assert_same_shape(too_large.json(), documented)


def test_the_examples_are_not_shared_state() -> None:
    """A document built twice shows the same examples: building one changes no table."""
    before = deepcopy(docs.SCHEMA_EXAMPLES)
    again = create_app(database_url="postgresql+asyncpg://docs.invalid/unused").openapi()
    assert again == DOCUMENT
    assert before == docs.SCHEMA_EXAMPLES


# --- Swagger UI shows them ---------------------------------------------------------------


async def test_swagger_ui_shows_the_payment_examples(served: str) -> None:  # noqa: F811
    """``/docs`` deep-linked to ``POST /api/v1/payments`` in headless Chromium: Swagger UI
    opens the operation and shows its request example with the named alternatives, its
    200 example and the refusal examples."""
    chromium = _chromium()
    operation_id = _operation("/api/v1/payments", "post")["operationId"]
    dom = await _render(chromium, f"{served}/docs#/payments/{operation_id}", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    block = re.search(
        rf'<div class="opblock opblock-post is-open" id="operations-payments-{operation_id}"'
        r".*?(?=<div class=\"opblock opblock-)",
        dom.stdout,
        re.DOTALL,
    )
    assert block is not None, "the operation is not open on the page"
    text = html.unescape(re.sub(r"<[^>]+>", "", block.group(0)))
    shown = [
        '"amount": "15.99"',  # the request example Swagger UI fills in
        f'"merchant_id": "{docs.MERCHANT_ID}"',
        f'"tx_id": "{docs.TX_ID}"',  # the 200 example
        "pay a merchant",  # the request examples' names
        "buy a catalog product",
        "insufficient_funds",  # the refusals' names
        "risk_denied",
    ]
    assert [item for item in shown if item not in text] == []
