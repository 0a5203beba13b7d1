"""The OpenAPI document says what the server does: every status an operation can answer,
and every error as ``application/problem+json`` with the ``Problem`` schema.

FastAPI documents what each route declares; the statuses that come from shared machinery
are added here, where that machinery's rules are known:

- ``400``: a malformed header (``Idempotency-Key``) or a body that cannot be read, on
  every operation with a body or an idempotency key;
- ``401``, ``403``, ``429``: every operation that needs an API key;
- ``404``: every operation with a path parameter or a cursor (an id that does not
  exist, or is not the caller's);
- ``409``: every operation taking an ``Idempotency-Key`` (the key is in use by a request
  still running);
- ``413``: every operation with a body (``PURSER_MAX_BODY_BYTES``);
- ``422``: every operation with a body or parameters (``param`` names the field);
- ``500``: every operation (one problem, with the request id).
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.api.problems import PROBLEM_JSON, SEED_GATEWAY_PREFIX, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_COMMON: dict[str, str] = {
    "400": "Bad request: a malformed header, or a body that cannot be read",
    "401": "Missing, invalid, revoked or expired API key",
    "403": "The key lacks the scope, or may not act for this agent",
    "404": "Not found (or another owner's)",
    "409": "The same Idempotency-Key is in use by a request still running",
    "413": "The request body is larger than PURSER_MAX_BODY_BYTES",
    "422": "Invalid request; `param` names the field",
    "429": "Rate limit exceeded; retry after `Retry-After` seconds",
    "500": "Internal error; nothing is reported beyond the request id",
}


def _statuses(operation: dict[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    # A path id, or a cursor naming a row, that does not exist (or is not the caller's).
    has_path = any(
        p.get("in") == "path" or p.get("name") in ("cursor", "starting_after") for p in parameters
    )
    idempotent = any(
        p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters
    )
    statuses = ["500"]
    if has_body or idempotent:
        statuses.append("400")
    if operation.get("security"):
        statuses += ["401", "403", "429"]
    if has_path:
        statuses.append("404")
    if idempotent:
        statuses.append("409")
    if has_body:
        statuses.append("413")
    if has_body or parameters:
        statuses.append("422")
    return statuses


def document_errors(schema: dict[str, Any]) -> None:
    """Add the shared error statuses to every operation of ``schema`` and document every
    error response (status >= 400) as ``application/problem+json`` — as
    ``application/json`` on the seed gateway's own paths (``media_type_for``)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, item in schema.get("paths", {}).items():
        seed_path = path.startswith(SEED_GATEWAY_PREFIX) and not path.startswith("/api/v1/")
        error_type = "application/json" if seed_path else PROBLEM_JSON
        for operation in item.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in _statuses(operation):
                responses.setdefault(status, {"description": _COMMON[status]})
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                content = response.get("content") or {}
                media = content.pop("application/json", None) or content.get(PROBLEM_JSON)
                documented = (media or {}).get("schema")
                if not documented or documented.get("$ref", "").endswith("ValidationError"):
                    documented = _PROBLEM_REF
                response["content"] = {error_type: {"schema": documented}}
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with its errors documented (built once)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
