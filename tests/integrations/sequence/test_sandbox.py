"""The sandbox's wire contract, checked with a bare httpx client: the envelopes, the
plain-text 404, validation (§13.8), existence errors, its own rate limit (§13.6) and
the control endpoints' refusals."""

from typing import Any

import httpx
import pytest

from tests.integrations.sequence.conftest import Accounts, Sandbox


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/platform/v1/nope"),
        ("DELETE", "/platform/v1/accounts"),
        ("PUT", "/platform/v1/transfers"),
        ("POST", "/platform/v1/accounts"),
        ("GET", "/platform/v1/rules"),
    ],
)
async def test_unknown_paths_and_methods_get_a_plain_text_404(
    sandbox: Sandbox, key: str, method: str, path: str
) -> None:
    response = await sandbox.control.request(method, path, headers=_auth(key))

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Not Found"


async def test_success_and_error_envelopes_carry_a_fresh_request_id(
    sandbox: Sandbox, key: str
) -> None:
    first = await sandbox.control.get("/platform/v1/accounts", headers=_auth(key))
    second = await sandbox.control.get("/platform/v1/accounts", headers={"Authorization": "x"})

    assert set(first.json()) == {"data", "requestId"}
    assert set(first.json()["data"]) == {"items", "pagination"}
    assert first.json()["data"]["pagination"] == {"page": 1, "pageSize": 10, "hasNextPage": False}
    assert second.status_code == 401
    assert second.json()["error"] == {"code": "UNAUTHORIZED", "message": "Unauthorized"}
    assert first.json()["requestId"] != second.json()["requestId"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amountInCents": 99}, "amountInCents"),
        ({"amountInCents": "100"}, "amountInCents"),
        ({"amountInCents": 100.5}, "amountInCents"),
        ({"description": "Elevenchars"}, "description"),
        ({"description": "Rent!"}, "description"),
        ({"simulation": "yes"}, "simulation"),
        ({"sourceAccountId": None}, "sourceAccountId"),
    ],
)
async def test_transfer_bodies_are_validated(
    sandbox: Sandbox, key: str, accounts: Accounts, changes: dict[str, Any], field: str
) -> None:
    body = {
        "sourceAccountId": accounts["Agent Budget"],
        "destinationAccountId": accounts["Groceries"],
        "amountInCents": 100,
        **changes,
    }
    response = await sandbox.control.post("/platform/v1/transfers", json=body, headers=_auth(key))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_PARAMETERS"
    assert field in response.json()["error"]["message"]


async def test_unknown_accounts_and_bad_keys_are_400s(
    sandbox: Sandbox, key: str, accounts: Accounts
) -> None:
    body = {
        "sourceAccountId": "00000000-0000-4000-8000-000000000000",
        "destinationAccountId": accounts["Groceries"],
        "amountInCents": 100,
    }
    unknown = await sandbox.control.post("/platform/v1/transfers", json=body, headers=_auth(key))
    deleted = await sandbox.control.post(
        "/platform/v1/transfers",
        json={
            **body,
            "sourceAccountId": accounts["Groceries"],
            "destinationAccountId": accounts["Old Car Fund"],
        },
        headers=_auth(key),
    )
    bad_key = await sandbox.control.post(
        "/platform/v1/transfers",
        json=body,
        headers={**_auth(key), "idempotency-key": "not a key!"},
    )

    assert unknown.json()["error"]["code"] == "TRANSFER_SOURCE_NOT_FOUND"
    assert deleted.json()["error"]["code"] == "TRANSFER_DESTINATION_NOT_FOUND"
    assert bad_key.json()["error"]["code"] == "INVALID_PARAMETERS"
    assert "idempotency-key" in bad_key.json()["error"]["message"]


@pytest.mark.parametrize(
    "query",
    [
        "pageSize=101",
        "pageSize=0",
        "page=0",
        "status=DONE",
        "status=COMPLETE&status=PENDING",
        "from=2026-01-01T00:00:00",
        "accountRole=SOURCE",
    ],
)
async def test_list_queries_are_validated(
    sandbox: Sandbox, key: str, accounts: Accounts, query: str
) -> None:
    path = f"/platform/v1/accounts/{accounts['Groceries']}/transfers?{query}"
    response = await sandbox.control.get(path, headers=_auth(key))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_PARAMETERS"


async def test_transfers_list_needs_account_ids(sandbox: Sandbox, key: str) -> None:
    response = await sandbox.control.get("/platform/v1/transfers", headers=_auth(key))

    assert response.status_code == 400
    assert "accountIds" in response.json()["error"]["message"]


async def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox, key: str) -> None:
    limited = await sandbox.control.post("/_fake/rate_limit", json={"per_minute": 2, "key": key})
    assert limited.status_code == 200

    answers = [
        await sandbox.control.get("/platform/v1/accounts", headers=_auth(key)) for _ in range(3)
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60


async def test_control_refuses_what_it_cannot_do(sandbox: Sandbox, key: str) -> None:
    bad_fault = await sandbox.control.post("/_fake/faults", json={"kind": "418"})
    bad_state = await sandbox.control.get("/_fake/state", params={"key": "sk_live_nope"})
    unknown = await sandbox.control.post(
        "/_fake/transfers/00000000-0000-4000-8000-000000000000", json={"status": "COMPLETE"}
    )
    seeded = (await sandbox.control.get("/_fake/state", params={"key": key})).json()["data"]
    final = await sandbox.control.post(
        f"/_fake/transfers/{seeded['transfers'][0]['id']}", json={"status": "ERROR"}
    )

    assert [r.status_code for r in (bad_fault, bad_state, unknown, final)] == [400, 400, 404, 409]


async def test_sandbox_serves_only_loopback_in_tests(sandbox: Sandbox) -> None:
    assert httpx.URL(sandbox.root).host == "127.0.0.1"
