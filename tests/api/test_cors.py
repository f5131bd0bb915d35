"""Browser frontends on other origins: RMA_CORS_ORIGINS lets them call /graphql, and only
them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError

from core.database import Database
from core.settings import Settings
from graphql_api.app import create_app
from testkit.addresses import fresh_client

PORTAL = "https://returns.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest_asyncio.fixture(loop_scope="session")
async def browser(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=db.url, secret_key="x" * 40, cors_origins=f"{PORTAL}, http://localhost:5173"
    )
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app, client=fresh_client())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_an_allowed_origins_preflight_and_request_get_the_headers(
    browser: httpx.AsyncClient,
) -> None:
    preflight = await browser.options("/graphql", headers={"Origin": PORTAL, **PREFLIGHT})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PORTAL
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    answer = await browser.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": PORTAL}
    )
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert answer.headers["access-control-allow-origin"] == PORTAL


@pytest.mark.parametrize("origin", ["https://evil.example", "https://returns.example.com.evil"])
async def test_another_origin_gets_no_cors_headers(browser: httpx.AsyncClient, origin: str) -> None:
    preflight = await browser.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    answer = await browser.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
    )
    assert "access-control-allow-origin" not in answer.headers


async def test_without_origins_configured_there_is_no_cors_at_all(db: Database) -> None:
    app = create_app(Settings(database_url=db.url, secret_key="x" * 40), database=db)
    transport = httpx.ASGITransport(app=app, client=fresh_client())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        preflight = await client.options("/graphql", headers={"Origin": PORTAL, **PREFLIGHT})
        answer = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": PORTAL}
        )
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("value", ["*", "returns.example.com", "https://a.example/path"])
def test_origins_must_be_origins(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(cors_origins=value)
    assert "not an origin" in str(caught.value)
