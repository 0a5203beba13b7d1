"""Risk: flags that block, the authorized services as an allowlist, explainable rules in
every outflow, and the seed's risk endpoints. Against the real database, through the API."""

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.apikey.schemas import Scope
from app.domain.risk.rules import RiskRules
from app.kit.time import utc_now
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of
from tests.api.v1.test_webhooks import pump, subscribe
from tests.webhook_receiver import running_receiver

PAY = "/api/v1/payments"


@contextmanager
def rules(app: FastAPI, **changes: Any) -> Iterator[RiskRules]:
    """Run with these risk settings (the server's, as ``PURSER_RISK_*`` would set them)."""
    saved = app.state.risk_rules
    app.state.risk_rules = replace(saved, **changes)
    try:
        yield app.state.risk_rules
    finally:
        app.state.risk_rules = saved


@contextmanager
def clock(app: FastAPI, moment: datetime) -> Iterator[None]:
    saved = app.state.clock
    app.state.clock = lambda: moment
    try:
        yield
    finally:
        app.state.clock = saved


@pytest.fixture
async def owner(client: httpx.AsyncClient, make_key: MakeKey) -> dict[str, Any]:
    key = await make_key(scopes=list(Scope))
    headers = bearer(key)
    agent = await create_agent(client, headers, initial_balance="500.00")
    merchant = await create_merchant(client, headers)
    return {
        "key": key,
        "headers": headers,
        "agent_id": agent["agent"]["agent_id"],
        "wallet_id": agent["wallet"]["wallet_id"],
        "merchant_id": merchant["merchant_id"],
    }


async def pay(
    client: httpx.AsyncClient, o: dict[str, Any], amount: str = "1.00", **fields: Any
) -> httpx.Response:
    body = {"agent_id": o["agent_id"], "merchant_id": o["merchant_id"], "amount": amount}
    return await client.post(PAY, json={**body, **fields}, headers=o["headers"])


async def entries_of(sessionmaker: async_sessionmaker[AsyncSession], wallet_id: str) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM postings p JOIN wallets w"
                " ON p.account_id IN (w.available_account_id, w.held_account_id)"
                " WHERE w.id = :id"
            ),
            {"id": wallet_id},
        )
    return int(count or 0)


async def test_a_flagged_agent_moves_no_money_until_unflagged(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o, headers = owner, owner["headers"]
    requester = (await create_agent(client, headers, name="requesting agent"))["agent"]
    request = await client.post(
        "/api/v1/payments/request",
        json={
            "requester_agent_id": requester["agent_id"],
            "payer_agent_id": o["agent_id"],
            "amount": "2.00",
        },
        headers=headers,
    )
    assert request.status_code == 201, request.text
    flagged = await client.post(
        f"/api/v1/risk/agents/{o['agent_id']}/flag", json={"reason": "odd pattern"}, headers=headers
    )
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["is_flagged"] is True
    before = await wallet_of(client, headers, o["agent_id"])
    postings = await entries_of(sessionmaker, o["wallet_id"])

    paid = await pay(client, o)
    assert paid.status_code == 403
    assert paid.json()["code"] == "agent_flagged"
    assert "odd pattern" in paid.json()["detail"]
    tx = await client.get(f"{PAY}/{paid.json()['tx_id']}", headers=headers)
    assert tx.json()["status"] == "failed"  # the attempt is recorded
    hold = await client.post(
        "/api/v1/payments/holds",
        json={"agent_id": o["agent_id"], "merchant_id": o["merchant_id"], "amount": "3"},
        headers=headers,
    )
    assert hold.status_code == 403
    assert hold.json()["code"] == "agent_flagged"
    request_pay = await client.post(
        f"/api/v1/payments/request/{request.json()['request_id']}/pay", headers=headers
    )
    assert request_pay.status_code == 403
    assert request_pay.json()["code"] == "agent_flagged"
    assert await wallet_of(client, headers, o["agent_id"]) == before
    assert await entries_of(sessionmaker, o["wallet_id"]) == postings

    score = await client.get(f"/api/v1/risk/agents/{o['agent_id']}/score", headers=headers)
    flag = next(f for f in score.json()["factors"] if f["name"] == "flagged")
    assert flag == {"name": "flagged", "points": 75, "reason": "agent flagged: odd pattern"}
    assert score.json()["is_acceptable"] is False
    profile = await client.get(f"/api/v1/risk/agents/{o['agent_id']}/profile", headers=headers)
    assert profile.json()["is_flagged"] is True
    assert profile.json()["flag_reason"] == "odd pattern"
    unflagged = await client.delete(f"/api/v1/risk/agents/{o['agent_id']}/flag", headers=headers)
    assert unflagged.status_code == 200
    assert unflagged.json()["is_flagged"] is False
    assert (await pay(client, o)).status_code == 200
    audit = await client.get("/api/v1/audit", params={"limit": 200}, headers=headers)
    events = [record["event"] for record in audit.json()["data"]]
    assert "agent_flagged" in events
    assert "agent_unflagged" in events


async def test_reading_the_score_changes_nothing_and_the_same_history_scores_the_same(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    o = owner
    for _ in range(3):
        assert (await pay(client, o)).status_code == 200
    assert (await pay(client, o, amount="9999.00")).status_code == 400  # refused: funds
    url = f"/api/v1/risk/agents/{o['agent_id']}/score"
    scores = [(await client.get(url, headers=o["headers"])).json() for _ in range(5)]
    assert all(score == scores[0] for score in scores)  # no ratchet
    first = scores[0]
    assert first["details"]["completed_payments"] == 3
    assert first["details"]["refused_attempts"] == 1
    assert first["is_acceptable"] is (first["score"] < 75)
    # A wallet created just now is young: the factor and its reason are shown.
    names = {factor["name"]: factor for factor in first["factors"]}
    assert names["young_wallet"]["points"] == 10
    assert "younger than 24 hours" in names["young_wallet"]["reason"]
    assert first["score"] == sum(factor["points"] for factor in first["factors"])
    assert first["level"] == "low"
    profile = (
        await client.get(f"/api/v1/risk/agents/{o['agent_id']}/profile", headers=o["headers"])
    ).json()
    assert profile == {
        "agent_id": o["agent_id"],
        "current_score": first["score"],
        "current_level": "low",
        "total_transactions": 4,
        "failed_transactions": 1,
        "total_volume": "3.00",
        "is_flagged": False,
        "flag_reason": None,
        "authorized_services": [],
    }


async def test_the_velocity_window_slides(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    o = owner
    start = utc_now()
    url = f"/api/v1/risk/agents/{o['agent_id']}/score"
    with rules(app, velocity_per_hour=2, velocity_per_day=3):
        with clock(app, start):
            for _ in range(3):
                assert (await pay(client, o)).status_code == 200
            now = (await client.get(url, headers=o["headers"])).json()
            assert now["details"]["payments_last_hour"] == 3
            assert "velocity_hour" in {factor["name"] for factor in now["factors"]}
            fourth = await pay(client, o)
            risk = (
                await client.get(
                    f"{PAY}/{fourth.json()['transaction']['tx_id']}", headers=o["headers"]
                )
            ).json()["risk"]
            velocity = next(f for f in risk["factors"] if f["name"] == "velocity_hour")
            assert velocity["reason"] == "4 payments in the last hour (more than 2)"
        with clock(app, start + timedelta(minutes=30)):
            half = (await client.get(url, headers=o["headers"])).json()
            assert half["details"]["payments_last_hour"] == 4
        with clock(app, start + timedelta(hours=1, minutes=2)):
            later = (await client.get(url, headers=o["headers"])).json()
            assert later["details"]["payments_last_hour"] == 0
            assert later["details"]["payments_last_day"] == 4
            names = {factor["name"]: factor for factor in later["factors"]}
            assert "velocity_hour" not in names
            # The day still holds them all.
            assert names["velocity_day"]["reason"] == "4 payments in the last day (more than 3)"
        with clock(app, start + timedelta(days=1, hours=1, minutes=1)):
            next_day = (await client.get(url, headers=o["headers"])).json()
            assert next_day["details"]["payments_last_day"] == 0
            assert "velocity_day" not in {factor["name"] for factor in next_day["factors"]}


async def test_each_payment_factor_appears_with_its_reason(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any], make_key: MakeKey
) -> None:
    o = owner
    other = await create_merchant(client, o["headers"])
    with rules(
        app, large_amount=50, very_large_amount=400, anomaly_min_history=2, anomaly_multiple=3
    ):
        first = await pay(client, o)
        factors = {f["name"]: f for f in first.json()["transaction"]["risk"]["factors"]}
        assert factors["new_recipient"]["reason"].startswith("first payment to this recipient")
        assert "young_wallet" in factors
        assert (await pay(client, o)).status_code == 200
        second = await pay(client, o)
        assert "new_recipient" not in {
            f["name"] for f in second.json()["transaction"]["risk"]["factors"]
        }
        large = await pay(client, o, amount="60.00")
        names = {f["name"]: f for f in large.json()["transaction"]["risk"]["factors"]}
        assert names["large_amount"]["reason"] == "amount at or above 50"
        assert (
            names["amount_anomaly"]["reason"]
            == "amount more than 3 times the agent's average payment"
        )
        very = await pay(client, o, amount="400.00", merchant_id=other["merchant_id"])
        names = {f["name"]: f for f in very.json()["transaction"]["risk"]["factors"]}
        assert "very_large_amount" in names
        assert "large_amount" not in names
        assert "new_recipient" in names
    # Refusals count: enough of them and the failure ratio shows.
    for _ in range(5):
        assert (await pay(client, o, amount="9999.00")).status_code == 400
    score = (
        await client.get(f"/api/v1/risk/agents/{o['agent_id']}/score", headers=o["headers"])
    ).json()
    failure = next(f for f in score["factors"] if f["name"] == "failure_ratio")
    assert failure["reason"] == "5 of 10 attempts refused (more than 30%)"


async def test_authorized_services_are_an_allowlist_when_enforced(
    client: httpx.AsyncClient, owner: dict[str, Any], make_key: MakeKey
) -> None:
    o, headers = owner, owner["headers"]
    allowed = o["merchant_id"]
    other = (await create_merchant(client, headers))["merchant_id"]
    base = f"/api/v1/risk/agents/{o['agent_id']}/authorize"
    added = await client.post(base, json={"service_id": allowed}, headers=headers)
    assert added.status_code == 200, added.text
    assert added.json() == {"agent_id": o["agent_id"], "services": [allowed]}
    # Authorized: no new-recipient factor even on the first payment.
    first = await pay(client, o)
    assert "new_recipient" not in {
        f["name"] for f in first.json()["transaction"]["risk"]["factors"]
    }
    # Not enforced: another merchant is paid, with the unauthorized factor.
    elsewhere = await pay(client, o, merchant_id=other)
    assert elsewhere.status_code == 200
    assert "unauthorized_recipient" in {
        f["name"] for f in elsewhere.json()["transaction"]["risk"]["factors"]
    }
    enforced = await client.patch(
        f"/api/v1/agents/{o['agent_id']}",
        json={"enforce_authorized_services": True},
        headers=headers,
    )
    assert enforced.json()["enforce_authorized_services"] is True
    refused = await pay(client, o, merchant_id=other)
    assert refused.status_code == 403
    assert refused.json()["code"] == "merchant_not_authorized"
    assert (await pay(client, o)).status_code == 200
    revoked = await client.delete(f"{base}/{allowed}", headers=headers)
    assert revoked.json() == {"agent_id": o["agent_id"], "services": []}
    assert (await pay(client, o)).json()["code"] == "merchant_not_authorized"
    assert (await client.delete(f"{base}/{allowed}", headers=headers)).status_code == 404
    # Only the owner's own merchants and wallets can be authorized.
    stranger = bearer(await make_key(scopes=list(Scope)))
    foreign = (await create_merchant(client, stranger))["merchant_id"]
    unknown = await client.post(base, json={"service_id": foreign}, headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["param"] == "service_id"
    # A wallet id counts too.
    peer = (await create_agent(client, headers, name="peer agent"))["wallet"]["wallet_id"]
    wallet = await client.post(base, json={"service_id": peer}, headers=headers)
    assert wallet.json()["services"] == [peer]


async def test_agent_keys_may_flag_their_agent_but_not_unflag_it_or_change_services(
    client: httpx.AsyncClient, owner: dict[str, Any], make_key: MakeKey
) -> None:
    o = owner
    agent_key = bearer(
        await make_key(
            owner=o["key"].owner_id,
            agent_id=o["agent_id"],
            scopes=["wallet:read", "payments:write"],
        )
    )
    base = f"/api/v1/risk/agents/{o['agent_id']}"
    assert (await client.get(f"{base}/score", headers=agent_key)).status_code == 200
    assert (
        await client.post(f"{base}/flag", json={"reason": "I am confused"}, headers=agent_key)
    ).status_code == 200
    for method, path, body in (
        ("DELETE", "/flag", None),
        ("POST", "/authorize", {"service_id": o["merchant_id"]}),
        ("DELETE", f"/authorize/{o['merchant_id']}", None),
    ):
        response = await client.request(method, f"{base}{path}", json=body, headers=agent_key)
        assert response.status_code == 403, (path, response.text)
    # Another owner's key sees no such agent.
    stranger = bearer(await make_key(scopes=list(Scope)))
    assert (await client.get(f"{base}/score", headers=stranger)).status_code == 404
    assert (await client.delete(f"{base}/flag", headers=stranger)).status_code == 404


async def test_deny_refuses_records_and_alerts_a_real_receiver(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o = owner
    async with running_receiver() as receiver:
        await subscribe(client, o["headers"], receiver.url, ["risk.alert", "payment.failed"])
        with rules(app, block_score=20, review_score=15):
            # young wallet (10) + new recipient (10) = 20: deny
            refused = await pay(client, o)
        assert refused.status_code == 403
        body = refused.json()
        assert body["code"] == "risk_denied"
        assert "Risk score 20 reaches the block score 20" in body["detail"]
        tx = (await client.get(f"{PAY}/{body['tx_id']}", headers=o["headers"])).json()
        assert tx["status"] == "failed"
        assert tx["risk"]["decision"] == "deny"
        assert tx["risk"]["score"] == 20
        await pump(app, sessionmaker)
        types = [json.loads(r.body)["type"] for r in receiver.requests]
        assert sorted(types) == ["payment.failed", "risk.alert"]
        alert = next(
            json.loads(r.body)
            for r in receiver.requests
            if json.loads(r.body)["type"] == "risk.alert"
        )
        assert alert["data"]["decision"] == "deny"
        assert alert["data"]["subject_id"] == body["tx_id"]
        assert {f["name"] for f in alert["data"]["factors"]} == {"young_wallet", "new_recipient"}
        # review: allowed, recorded and alerted.
        with rules(app, block_score=90, review_score=15):
            reviewed = await pay(client, o)
        assert reviewed.status_code == 200
        assert reviewed.json()["transaction"]["risk"]["decision"] == "review"
        await pump(app, sessionmaker)
        alerts = [
            json.loads(r.body)
            for r in receiver.requests
            if json.loads(r.body)["type"] == "risk.alert"
        ]
        assert [a["data"]["decision"] for a in alerts] == ["deny", "review"]


async def test_concurrent_payments_count_in_the_velocity_window_as_sequential_ones(
    app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    headers = bearer(await make_key(scopes=list(Scope)))
    merchant = (await create_merchant(client, headers))["merchant_id"]
    counts = []
    for concurrent in (False, True):
        agent = (await create_agent(client, headers, initial_balance="500.00"))["agent"]["agent_id"]
        o = {"agent_id": agent, "merchant_id": merchant, "headers": headers}
        if concurrent:
            responses = await asyncio.gather(*(pay(client, o) for _ in range(50)))
        else:
            responses = [await pay(client, o) for _ in range(50)]
        assert [r.status_code for r in responses] == [200] * 50
        score = (await client.get(f"/api/v1/risk/agents/{agent}/score", headers=headers)).json()
        counts.append(
            (score["details"]["payments_last_hour"], score["details"]["completed_payments"])
        )
    assert counts == [(50, 50), (50, 50)]


async def test_a_flag_stops_payments_already_waiting_for_the_wallet_lock(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o = owner
    finished: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    async def timed(name: str, call: Any) -> httpx.Response:
        response = await call
        finished[name] = loop.time()
        return response

    async with sessionmaker() as holder:
        # Another transaction holds the payer's wallet row: the payment queues behind it.
        await holder.execute(
            text("SELECT id FROM wallets WHERE id = :id FOR NO KEY UPDATE"), {"id": o["wallet_id"]}
        )
        paying = asyncio.create_task(timed("payment", pay(client, o)))
        await asyncio.sleep(0.3)
        flagging = asyncio.create_task(
            timed(
                "flag",
                client.post(
                    f"/api/v1/risk/agents/{o['agent_id']}/flag",
                    json={"reason": "compromised"},
                    headers=o["headers"],
                ),
            )
        )
        await asyncio.sleep(0.3)
        await holder.commit()
    paid, flagged = await paying, await flagging
    assert flagged.status_code == 200
    if paid.status_code == 200:
        # Money moved only if the payment finished before the flag took effect.
        assert finished["payment"] <= finished["flag"]
    else:
        assert paid.json()["code"] == "agent_flagged"
    # Whatever the order, nothing moves once the flag has answered.
    assert (await pay(client, o)).json()["code"] == "agent_flagged"


async def test_lifetime_counters_stop_at_the_largest_value_instead_of_failing(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o = owner
    top = 2**63 - 1
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE wallets SET spent_total = :near, risk_volume = :near,"
                " risk_payments = :top WHERE id = :id"
            ),
            {"near": top - 50, "top": top, "id": o["wallet_id"]},
        )
        await session.commit()
    assert (await pay(client, o, amount="2.00")).status_code == 200
    async with sessionmaker() as session:
        row = (
            await session.execute(
                text("SELECT spent_total, risk_volume, risk_payments FROM wallets WHERE id = :id"),
                {"id": o["wallet_id"]},
            )
        ).one()
    assert tuple(row) == (top, top, top)


async def test_a_hold_leaves_the_risk_counters_with_what_it_did_not_move(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    o, headers = owner, owner["headers"]
    url = f"/api/v1/risk/agents/{o['agent_id']}/score"
    holds = "/api/v1/payments/holds"
    body = {"agent_id": o["agent_id"], "merchant_id": o["merchant_id"]}
    first = await client.post(holds, json={**body, "amount": "10"}, headers=headers)
    assert (
        await client.post(f"{holds}/{first.json()['hold_id']}/void", headers=headers)
    ).status_code == 200
    second = await client.post(holds, json={**body, "amount": "20"}, headers=headers)
    captured = await client.post(
        f"{holds}/{second.json()['hold_id']}/capture", json={"amount": "5"}, headers=headers
    )
    assert captured.status_code == 200, captured.text
    details = (await client.get(url, headers=headers)).json()["details"]
    assert (details["completed_payments"], details["volume"]) == (1, "5.00")
    profile = (
        await client.get(f"/api/v1/risk/agents/{o['agent_id']}/profile", headers=headers)
    ).json()
    assert (profile["total_transactions"], profile["total_volume"]) == (1, "5.00")


async def test_flag_changes_are_recorded_once_and_agent_keys_never_rewrite_a_flag(
    client: httpx.AsyncClient, owner: dict[str, Any], make_key: MakeKey
) -> None:
    o = owner
    base = f"/api/v1/risk/agents/{o['agent_id']}"
    agent_key = bearer(
        await make_key(
            owner=o["key"].owner_id,
            agent_id=o["agent_id"],
            scopes=["wallet:read", "payments:write"],
        )
    )
    reason = {"reason": "owner: card testing pattern"}
    assert (await client.post(f"{base}/flag", json=reason, headers=o["headers"])).status_code == 200
    rewrite = await client.post(
        f"{base}/flag", json={"reason": "false positive"}, headers=agent_key
    )
    assert rewrite.status_code == 200
    assert rewrite.json()["flag_reason"] == "owner: card testing pattern"
    unflags = await asyncio.gather(
        *(client.delete(f"{base}/flag", headers=o["headers"]) for _ in range(10))
    )
    assert {r.status_code for r in unflags} == {200}
    audit = (await client.get("/api/v1/audit", params={"limit": 200}, headers=o["headers"])).json()
    events = [record["event"] for record in audit["data"]]
    assert events.count("agent_flagged") == 1
    assert events.count("agent_unflagged") == 1
    # An agent's own wallet is no service of its.
    own = await client.post(
        f"{base}/authorize", json={"service_id": o["wallet_id"]}, headers=o["headers"]
    )
    assert own.status_code == 422


async def test_a_flagged_agents_hold_is_not_captured(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    o, headers = owner, owner["headers"]
    hold = await client.post(
        "/api/v1/payments/holds",
        json={"agent_id": o["agent_id"], "merchant_id": o["merchant_id"], "amount": "50"},
        headers=headers,
    )
    assert hold.status_code == 201
    await client.post(
        f"/api/v1/risk/agents/{o['agent_id']}/flag", json={"reason": "stop"}, headers=headers
    )
    capture = await client.post(
        f"/api/v1/payments/holds/{hold.json()['hold_id']}/capture", json={}, headers=headers
    )
    assert capture.status_code == 403
    assert capture.json()["code"] == "agent_flagged"
    assert (
        await client.post(f"/api/v1/payments/holds/{hold.json()['hold_id']}/void", headers=headers)
    ).status_code == 200
