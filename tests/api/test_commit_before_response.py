"""The request transaction commits before the response is sent: a commit that fails
reaches the client as an error, never after a 200."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.api.deps import SessionDep
from app.domain.ledger import service as ledger
from app.main import create_app
from app.models.ledger import AccountKind


@pytest.fixture
async def app_with_probe_routes(database_url: str) -> FastAPI:
    app = create_app(database_url=database_url)

    @app.post("/probe/unbalanced")
    async def unbalanced(session: SessionDep) -> dict[str, str]:
        # Accepted statement by statement; the deferred balance trigger refuses it at COMMIT.
        a = await ledger.open_account(session, kind=AccountKind.owner_deposit, currency="USD")
        await session.execute(
            text("INSERT INTO journal_entries (id, kind) VALUES ('je_probe_commit', 'transfer')")
        )
        await session.execute(
            text(
                "INSERT INTO postings (entry_id, account_id, currency, amount) "
                "VALUES ('je_probe_commit', :a, 'USD', 100)"
            ),
            {"a": a.id},
        )
        return {"status": "looks fine"}

    @app.post("/probe/account")
    async def account(session: SessionDep) -> dict[str, str]:
        opened = await ledger.open_account(session, kind=AccountKind.merchant, currency="USD")
        return {"id": opened.id}

    return app


async def test_commit_failure_is_an_error_response(app_with_probe_routes: FastAPI) -> None:
    app = app_with_probe_routes
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/probe/unbalanced")
            assert response.status_code == 500
            assert response.headers["content-type"].startswith("application/problem+json")
            body = response.json()
            assert body["code"] == "internal_error"
            assert body["request_id"] == response.headers["Request-Id"]
            assert "Traceback" not in response.text
            assert "unbalanced" not in response.text

            created = await client.post("/probe/account")
            assert created.status_code == 200
            account_id = created.json()["id"]
        async with app.state.sessionmaker() as session:
            # What the 200 announced is committed; what the 500 refused is not.
            assert (await ledger.get_account(session, account_id)).id == account_id
            missing = await session.scalar(
                text("SELECT count(*) FROM journal_entries WHERE id = 'je_probe_commit'")
            )
            assert missing == 0
