import httpx


async def test_liveness_needs_no_database_or_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok"}


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/health/ready" in schema["paths"]


async def test_unknown_path_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert body["code"] == "not_found"
    assert body["detail"]


async def test_openapi_documents_auth_and_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    create_agent = schema["paths"]["/api/v1/agents"]["post"]
    assert {"201", "401", "403", "422", "429"} <= set(create_agent["responses"])
    assert create_agent["security"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    assert "Problem" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            success = {"200", "201", "202", "204"} & set(operation["responses"])
            assert success, (path, method)


async def test_every_response_has_a_request_id(client: httpx.AsyncClient) -> None:
    ok = await client.get("/api/v1/health")
    missing = await client.get("/api/v1/nope")
    assert ok.headers["Request-Id"].startswith("req_")
    assert missing.headers["Request-Id"] == missing.json()["request_id"]
    assert ok.headers["Request-Id"] != missing.headers["Request-Id"]
