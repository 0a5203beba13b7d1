"""/docs and /redoc need no internet: every script, stylesheet and icon they load is
served by Purser itself (assets shipped with fastapi-offline), none from a CDN."""

import re

import httpx
import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_only_assets_purser_serves(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert not re.search(r"https?://", html), "no absolute URL: nothing from another host"
    for asset in assets:
        assert asset.startswith("/"), asset
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000 or asset.endswith(".png"), asset
    assert "/openapi.json" in html


async def test_the_openapi_document_the_docs_read_lists_the_payment_routes(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "/api/v1/payments" in document["paths"]
    assert "post" in document["paths"]["/api/v1/payments"]


async def test_the_bare_address_points_to_the_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.json()["docs"] == "/docs"
