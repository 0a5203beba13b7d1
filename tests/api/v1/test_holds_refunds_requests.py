"""Holds, refunds and payment requests: every transition, and what must never happen."""

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.hold import service as hold_service
from app.domain.payment.service import system_context
from app.domain.payment_request import service as request_service
from app.kit.time import utc_now
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of


async def _setup(client: httpx.AsyncClient, make_key: MakeKey, **agent_fields: str):  # type: ignore[no-untyped-def]
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers, **agent_fields))["agent"]
    merchant = await create_merchant(client, headers)
    return headers, agent, merchant


async def _merchant_balance(
    client: httpx.AsyncClient, headers: dict[str, str], merchant_id: str
) -> str:
    response = await client.get(f"/api/v1/merchants/{merchant_id}/wallet", headers=headers)
    balance: str = response.json()["balance"]
    return balance


class TestHolds:
    async def test_hold_reserves_then_partial_capture(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key, limit_total="100.00")
        created = await client.post(
            "/api/v1/payments/holds",
            json={
                "agent_id": agent["agent_id"],
                "merchant_id": merchant["merchant_id"],
                "amount": "60.00",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        hold = created.json()
        assert (hold["status"], hold["amount"], hold["fee"]) == ("pending", "60.00", "0.10")
        wallet = await wallet_of(client, headers, agent["agent_id"])
        assert (wallet["balance"], wallet["held_balance"]) == ("39.90", "60.10")
        assert wallet["spent_total"] == "60.00"
        # A payment that would dip into held funds fails.
        payment = await client.post(
            "/api/v1/payments",
            json={
                "agent_id": agent["agent_id"],
                "merchant_id": merchant["merchant_id"],
                "amount": "39.90",
            },
            headers=headers,
        )
        assert payment.status_code == 400
        assert payment.json()["code"] == "insufficient_funds"
        captured = await client.post(
            f"/api/v1/payments/holds/{hold['hold_id']}/capture",
            json={"amount": "45.00"},
            headers=headers,
        )
        assert captured.status_code == 200, captured.text
        assert captured.json()["status"] == "captured"
        assert captured.json()["captured_amount"] == "45.00"
        wallet = await wallet_of(client, headers, agent["agent_id"])
        assert (wallet["balance"], wallet["held_balance"]) == ("54.90", "0.00")  # 100 - 45 - 0.10
        assert wallet["spent_total"] == "45.00"  # the released 15.00 no longer counts
        assert await _merchant_balance(client, headers, merchant["merchant_id"]) == "45.00"
        tx = await client.get(
            f"/api/v1/payments/{captured.json()['capture_tx_id']}", headers=headers
        )
        assert (tx.json()["amount"], tx.json()["fee"], tx.json()["status"]) == (
            "45.00",
            "0.10",
            "completed",
        )
        listed = await client.get(f"/api/v1/agents/{agent['agent_id']}/holds", headers=headers)
        assert [h["hold_id"] for h in listed.json()] == [hold["hold_id"]]

    async def test_resolved_holds_refuse_everything_and_move_nothing(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key)
        base = {
            "agent_id": agent["agent_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": "10.00",
        }
        for first, second in [
            ("void", "capture"),
            ("capture", "void"),
            ("void", "void"),
            ("capture", "capture"),
        ]:
            hold = (await client.post("/api/v1/payments/holds", json=base, headers=headers)).json()
            url = f"/api/v1/payments/holds/{hold['hold_id']}"
            assert (await client.post(f"{url}/{first}", headers=headers)).status_code == 200
            before = await wallet_of(client, headers, agent["agent_id"])
            again = await client.post(f"{url}/{second}", headers=headers)
            assert again.status_code == 409
            assert again.json()["code"] == "hold_not_pending"
            assert await wallet_of(client, headers, agent["agent_id"]) == before
        wallet = await wallet_of(client, headers, agent["agent_id"])
        assert wallet["held_balance"] == "0.00"
        assert wallet["balance"] == "79.80"  # two captures of 10.00 + 0.10
        too_much = (await client.post("/api/v1/payments/holds", json=base, headers=headers)).json()
        over = await client.post(
            f"/api/v1/payments/holds/{too_much['hold_id']}/capture",
            json={"amount": "10.01"},
            headers=headers,
        )
        assert over.status_code == 422

    async def test_concurrent_capture_and_void_exactly_one_wins(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key)
        base = {
            "agent_id": agent["agent_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": "20.00",
        }
        hold = (await client.post("/api/v1/payments/holds", json=base, headers=headers)).json()
        url = f"/api/v1/payments/holds/{hold['hold_id']}"
        responses = await asyncio.gather(
            *(
                client.post(f"{url}/{'capture' if i % 2 else 'void'}", headers=headers)
                for i in range(10)
            )
        )
        assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
        winner = next(r for r in responses if r.status_code == 200).json()["status"]
        wallet = await wallet_of(client, headers, agent["agent_id"])
        assert wallet["held_balance"] == "0.00"
        assert wallet["balance"] == ("79.90" if winner == "captured" else "100.00")

    async def test_hold_refused_when_over_limit_or_balance(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key, limit_per_tx="50.00")
        base = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"]}
        over_limit = await client.post(
            "/api/v1/payments/holds", json={**base, "amount": "50.01"}, headers=headers
        )
        assert over_limit.status_code == 400
        assert over_limit.json()["code"] == "limit_exceeded"
        assert over_limit.json()["hold"] is None
        await client.patch(
            f"/api/v1/agents/{agent['agent_id']}/wallet/limits",
            json={"limit_per_tx": None},
            headers=headers,
        )
        broke = await client.post(
            "/api/v1/payments/holds", json={**base, "amount": "100.00"}, headers=headers
        )
        assert broke.status_code == 400
        assert broke.json()["code"] == "insufficient_funds"  # 100.00 + 0.10 fee
        bad_expiry = await client.post(
            "/api/v1/payments/holds",
            json={**base, "amount": "1", "expires_in_minutes": 4},
            headers=headers,
        )
        assert bad_expiry.status_code == 422

    async def test_expiry_job_releases_holds(
        self,
        client: httpx.AsyncClient,
        make_key: MakeKey,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key)
        base = {
            "agent_id": agent["agent_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": "30.00",
        }
        hold = (
            await client.post(
                "/api/v1/payments/holds", json={**base, "expires_in_minutes": 5}, headers=headers
            )
        ).json()
        async with sessionmaker() as session:
            later = system_context(utc_now() + timedelta(minutes=6), _tz())
            assert await hold_service.expire_due(session, later) >= 1
            await session.commit()
        expired = await client.get(f"/api/v1/payments/holds/{hold['hold_id']}", headers=headers)
        assert expired.json()["status"] == "expired"
        wallet = await wallet_of(client, headers, agent["agent_id"])
        assert (wallet["balance"], wallet["held_balance"], wallet["spent_total"]) == (
            "100.00",
            "0.00",
            "0.00",
        )
        late = await client.post(
            f"/api/v1/payments/holds/{hold['hold_id']}/capture", headers=headers
        )
        assert late.status_code == 409


def _tz():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("UTC")


class TestRefunds:
    async def test_partial_refunds_sum_to_the_payment(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key, limit_total="50.00")
        paid = await client.post(
            "/api/v1/payments",
            json={
                "agent_id": agent["agent_id"],
                "merchant_id": merchant["merchant_id"],
                "amount": "40.00",
            },
            headers=headers,
        )
        tx_id = paid.json()["transaction"]["tx_id"]
        first = await client.post(
            f"/api/v1/payments/{tx_id}/refund",
            json={"amount": "15.00", "reason": "one broken"},
            headers=headers,
        )
        assert first.status_code == 201, first.text
        assert (first.json()["amount"], first.json()["fee_returned"]) == ("15.00", "0.00")
        tx = (await client.get(f"/api/v1/payments/{tx_id}", headers=headers)).json()
        assert tx["status"] == "partially_refunded"
        assert tx["refunded_amount"] == "15.00"
        too_much = await client.post(
            f"/api/v1/payments/{tx_id}/refund", json={"amount": "25.01"}, headers=headers
        )
        assert too_much.status_code == 409
        assert too_much.json()["code"] == "refund_exceeds_payment"
        rest = await client.post(f"/api/v1/payments/{tx_id}/refund", json={}, headers=headers)
        assert rest.json()["amount"] == "25.00"
        tx = (await client.get(f"/api/v1/payments/{tx_id}", headers=headers)).json()
        assert (tx["status"], tx["refunded_amount"]) == ("refunded", "40.00")
        wallet = await wallet_of(client, headers, agent["agent_id"])
        assert wallet["balance"] == "99.90"  # the fee is kept
        assert wallet["spent_total"] == "0.00"
        assert await _merchant_balance(client, headers, merchant["merchant_id"]) == "0.00"
        refunds = await client.get(f"/api/v1/payments/{tx_id}/refunds", headers=headers)
        assert [r["amount"] for r in refunds.json()] == ["15.00", "25.00"]
        done = await client.post(f"/api/v1/payments/{tx_id}/refund", json={}, headers=headers)
        assert done.status_code == 409
        assert done.json()["code"] == "not_refundable"

    async def test_concurrent_refunds_never_exceed_the_payment(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key)
        paid = await client.post(
            "/api/v1/payments",
            json={
                "agent_id": agent["agent_id"],
                "merchant_id": merchant["merchant_id"],
                "amount": "10.00",
            },
            headers=headers,
        )
        tx_id = paid.json()["transaction"]["tx_id"]
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/payments/{tx_id}/refund", json={"amount": "3.00"}, headers=headers
                )
                for _ in range(10)
            )
        )
        assert Counter(r.status_code for r in responses) == {201: 3, 409: 7}
        tx = (await client.get(f"/api/v1/payments/{tx_id}", headers=headers)).json()
        assert tx["refunded_amount"] == "9.00"
        assert await _merchant_balance(client, headers, merchant["merchant_id"]) == "1.00"

    async def test_failed_payment_cannot_be_refunded(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        headers, agent, merchant = await _setup(client, make_key, initial_balance="1.00")
        refused = await client.post(
            "/api/v1/payments",
            json={
                "agent_id": agent["agent_id"],
                "merchant_id": merchant["merchant_id"],
                "amount": "5.00",
            },
            headers=headers,
        )
        response = await client.post(
            f"/api/v1/payments/{refused.json()['tx_id']}/refund", headers=headers
        )
        assert response.status_code == 409


class TestPaymentRequests:
    async def test_seed_request_example_and_pay(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        provider_key, client_key = await make_key(), await make_key()
        provider = (
            await create_agent(client, bearer(provider_key), name="agent_service_provider")
        )["agent"]
        payer = (await create_agent(client, bearer(client_key), name="agent_client"))["agent"]
        body = {
            "requester_agent_id": provider["agent_id"],
            "payer_agent_id": payer["agent_id"],
            "amount": "25.00",
            "currency": "USDC",
            "description": "API usage fee for January",
            "expires_in_hours": 24,
        }
        created = await client.post(
            "/api/v1/payments/request", json=body, headers=bearer(provider_key)
        )
        assert created.status_code == 201, created.text
        request = created.json()
        assert request["request_id"].startswith("preq_")
        assert {k: request[k] for k in body if k != "expires_in_hours"} == {
            k: v for k, v in body.items() if k != "expires_in_hours"
        }
        assert request["status"] == "pending"
        # The requester's owner cannot pay it; the payer's owner sees it and pays.
        not_theirs = await client.post(
            f"/api/v1/payments/request/{request['request_id']}/pay", headers=bearer(provider_key)
        )
        assert not_theirs.status_code == 404
        listed = await client.get(
            "/api/v1/payments/request?role=payer&status=pending", headers=bearer(client_key)
        )
        assert [r["request_id"] for r in listed.json()] == [request["request_id"]]
        paid = await client.post(
            f"/api/v1/payments/request/{request['request_id']}/pay", headers=bearer(client_key)
        )
        assert paid.status_code == 200, paid.text
        assert paid.json()["success"] is True
        assert paid.json()["transaction"]["amount"] == "25.00"
        assert (await wallet_of(client, bearer(provider_key), provider["agent_id"]))[
            "balance"
        ] == "125.00"
        assert (await wallet_of(client, bearer(client_key), payer["agent_id"]))[
            "balance"
        ] == "74.90"
        state = await client.get(
            f"/api/v1/payments/request/{request['request_id']}", headers=bearer(provider_key)
        )
        assert state.json()["status"] == "paid"
        cancel = await client.delete(
            f"/api/v1/payments/request/{request['request_id']}", headers=bearer(provider_key)
        )
        assert cancel.status_code == 409
        # The payer cannot claw the money back out of the other owner's agent.
        clawback = await client.post(
            f"/api/v1/payments/{paid.json()['transaction']['tx_id']}/refund",
            headers=bearer(client_key),
        )
        assert clawback.status_code == 409
        assert clawback.json()["code"] == "not_refundable"
        provider_wallet = await wallet_of(client, bearer(provider_key), provider["agent_id"])
        assert provider_wallet["balance"] == "125.00"

    async def test_five_concurrent_pays_charge_once(
        self, client: httpx.AsyncClient, make_key: MakeKey
    ) -> None:
        key = await make_key()
        headers = bearer(key)
        requester = (await create_agent(client, headers, name="requester"))["agent"]
        payer = (await create_agent(client, headers, name="payer"))["agent"]
        request = (
            await client.post(
                "/api/v1/payments/request",
                json={
                    "requester_agent_id": requester["agent_id"],
                    "payer_agent_id": payer["agent_id"],
                    "amount": "10.00",
                },
                headers=headers,
            )
        ).json()
        url = f"/api/v1/payments/request/{request['request_id']}/pay"
        responses = await asyncio.gather(*(client.post(url, headers=headers) for _ in range(5)))
        assert Counter(r.status_code for r in responses) == {200: 1, 409: 4}
        assert all(
            r.json()["code"] == "request_not_payable" for r in responses if r.status_code == 409
        )
        assert (await wallet_of(client, headers, payer["agent_id"]))["balance"] == "89.90"
        assert (await wallet_of(client, headers, requester["agent_id"]))["balance"] == "110.00"

    async def test_cancel_and_expiry(
        self,
        client: httpx.AsyncClient,
        make_key: MakeKey,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        key = await make_key()
        headers = bearer(key)
        requester = (await create_agent(client, headers, name="requester"))["agent"]
        payer = (await create_agent(client, headers, name="payer"))["agent"]
        body = {
            "requester_agent_id": requester["agent_id"],
            "payer_agent_id": payer["agent_id"],
            "amount": "1.00",
        }
        cancelled = (
            await client.post("/api/v1/payments/request", json=body, headers=headers)
        ).json()
        gone = await client.delete(
            f"/api/v1/payments/request/{cancelled['request_id']}", headers=headers
        )
        assert gone.json()["status"] == "cancelled"
        assert (
            await client.post(
                f"/api/v1/payments/request/{cancelled['request_id']}/pay", headers=headers
            )
        ).status_code == 409
        expiring = (
            await client.post(
                "/api/v1/payments/request", json={**body, "expires_in_hours": 1}, headers=headers
            )
        ).json()
        async with sessionmaker() as session:
            assert await request_service.expire_due(session, utc_now() + timedelta(hours=2)) >= 1
            await session.commit()
        state = await client.get(
            f"/api/v1/payments/request/{expiring['request_id']}", headers=headers
        )
        assert state.json()["status"] == "expired"
        assert (
            await client.post(
                f"/api/v1/payments/request/{expiring['request_id']}/pay", headers=headers
            )
        ).status_code == 409
        assert (await wallet_of(client, headers, payer["agent_id"]))["balance"] == "100.00"
        bad = await client.post(
            "/api/v1/payments/request", json={**body, "expires_in_hours": 169}, headers=headers
        )
        assert bad.status_code == 422
