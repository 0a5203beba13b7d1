"""Merchants and the catalog, from the API reference's examples."""

import httpx

from tests.api.helpers import MakeKey, bearer

SEED_MERCHANT = {
    "name": "TechStore Electronics",
    "description": "Electronics and gadgets retailer",
    "category": "electronics",
}


async def test_seed_merchant_examples(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    created = await client.post("/api/v1/merchants", json=SEED_MERCHANT, headers=bearer(key))
    assert created.status_code == 201
    merchant = created.json()
    assert merchant["merchant_id"].startswith("merchant_")
    assert merchant["wallet_id"].startswith("wallet_")
    assert {k: merchant[k] for k in SEED_MERCHANT} == SEED_MERCHANT
    assert merchant["is_active"] is True
    listed = (await client.get("/api/v1/merchants", headers=bearer(key))).json()
    assert [m["merchant_id"] for m in listed] == [merchant["merchant_id"]]
    assert set(listed[0]) >= {"merchant_id", "name", "wallet_id", "category", "is_active"}
    wallet = await client.get(
        f"/api/v1/merchants/{merchant['merchant_id']}/wallet", headers=bearer(key)
    )
    assert wallet.status_code == 200
    assert wallet.json()["balance"] == "0.00"
    assert wallet.json()["wallet_id"] == merchant["wallet_id"]


async def test_catalog_filters_and_updates(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    headers = bearer(key)
    merchant = (await client.post("/api/v1/merchants", json=SEED_MERCHANT, headers=headers)).json()
    products = {}
    for name, price, category, in_stock in [
        ("Wireless Bluetooth Headphones", "49.99", "electronics", True),
        ("Cable", "50.000001", "electronics", True),
        ("Keyboard", "30.00", "electronics", False),
        ("Novel", "9.99", "books", True),
    ]:
        response = await client.post(
            "/api/v1/catalog/products",
            json={
                "merchant_id": merchant["merchant_id"],
                "name": name,
                "price": price,
                "category": category,
                "in_stock": in_stock,
                "description": f"{name} description",
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        products[name] = response.json()
    seed_query = "/api/v1/catalog/products?category=electronics&max_price=50&in_stock_only=true"
    found = (await client.get(seed_query, headers=headers)).json()
    assert [p["name"] for p in found] == ["Wireless Bluetooth Headphones"]
    item = found[0]
    assert item["price"] == "49.99"
    assert item["currency"] == "USDC"
    assert item["merchant_id"] == merchant["merchant_id"]
    assert item["in_stock"] is True
    everything = await client.get("/api/v1/catalog/products?in_stock_only=false", headers=headers)
    assert len(everything.json()) == 4
    default = await client.get("/api/v1/catalog/products", headers=headers)
    assert {p["name"] for p in default.json()} == {
        "Wireless Bluetooth Headphones",
        "Cable",
        "Novel",
    }
    one = products["Keyboard"]["product_id"]
    fetched = await client.get(f"/api/v1/catalog/products/{one}", headers=headers)
    assert fetched.json() == products["Keyboard"]
    patched = await client.patch(
        f"/api/v1/catalog/products/{one}", json={"in_stock": True, "price": "25"}, headers=headers
    )
    assert patched.json()["price"] == "25.00"
    assert patched.json()["in_stock"] is True
    for bad_query in ["max_price=abc", "max_price=-1", "in_stock_only=maybe", "limit=0"]:
        response = await client.get(f"/api/v1/catalog/products?{bad_query}", headers=headers)
        assert response.status_code == 422, bad_query
    bad_price = await client.post(
        "/api/v1/catalog/products",
        json={"merchant_id": merchant["merchant_id"], "name": "x", "price": "0"},
        headers=headers,
    )
    assert bad_price.status_code == 422
    assert bad_price.json()["param"] == "price"
