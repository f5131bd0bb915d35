"""/metrics in the Prometheus format, scraped after real traffic: requests by operation,
errors by code, and the database's figures; only with the metrics token in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.settings import DEVELOPMENT_ENCRYPTION_KEY, Settings
from core.usecases.resolutions import resolve_rma
from graphql_api.app import create_app
from testkit.addresses import fresh_client
from tests import factories as f
from tests.api.conftest import gid, make_shop


@asynccontextmanager
async def app_client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, database=db), client=fresh_client())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_real_traffic_and_read_the_database(db: Database) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, stripe_paid=False)
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        await resolve_rma(
            session, shop.id, rma.id, kind="REFUND", actor="s", now=SYSTEM_CLOCK.now()
        )
    settings = Settings(database_url=db.url, secret_key="x" * 40, run_worker=False)
    async with app_client(settings, db) as client:
        before = samples((await client.get("/metrics")).text)
        headers = {"Authorization": f"Bearer {shop.agent}"}
        for _ in range(3):
            await client.post(
                "/graphql",
                json={"query": "query Dashboard { me { kind } }", "operationName": "Dashboard"},
                headers=headers,
            )
        close = f'mutation {{ closeRma(id: "{gid("Rma", rma.id)}") {{ userErrors {{ code }} }} }}'
        await client.post("/graphql", json={"query": close}, headers=headers)
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    requests = "rma_graphql_request_seconds_count"
    assert (
        value(after, requests, operation="Dashboard")
        - value(before, requests, operation="Dashboard")
        == 3
    )
    errors = "rma_graphql_errors_total"
    assert (
        value(after, errors, code="INVALID_TRANSITION")
        - value(before, errors, code="INVALID_TRANSITION")
        >= 1
    )
    # From the database: the refund waiting for staff, the jobs queued by the changes above.
    assert value(after, "rma_resolutions", kind="REFUND", provider="manual", status="PENDING") >= 1
    assert value(after, "rma_jobs", kind="platform.restock_return", state="QUEUED") >= 1
    assert value(after, "rma_jobs_due", kind="platform.restock_return") >= 1


async def test_in_production_metrics_need_the_token(db: Database) -> None:
    production = {
        "database_url": db.url,
        "env": "production",
        "secret_key": "p" * 40,
        "encryption_keys": "yFM0QvYLqB5pN3cP4sK1dJ8rT6uW2zX9aE7hG0iL3mo=",
        "public_url": "https://returns.example.com",
        "run_worker": False,
    }
    async with app_client(Settings(**production), db) as client:  # type: ignore[arg-type]
        assert (await client.get("/metrics")).status_code == 401  # no token configured: off
    token = "m" * 32
    async with app_client(Settings(**production, metrics_token=token), db) as client:  # type: ignore[arg-type]
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200 and "rma_jobs" in right.text
        assert token not in right.text
    assert DEVELOPMENT_ENCRYPTION_KEY not in production["encryption_keys"]


async def test_every_answer_says_how_long_the_server_took(db: Database) -> None:
    shop = await make_shop(db)
    settings = Settings(database_url=db.url, secret_key="x" * 40, run_worker=False)
    async with app_client(settings, db) as client:
        answers = [
            await client.get("/healthz"),
            await client.post(
                "/graphql",
                json={"query": "{ me { kind } }"},
                headers={"Authorization": f"Bearer {shop.agent}"},
            ),
        ]
    for answer in answers:
        name, _, duration = answer.headers["server-timing"].partition(";dur=")
        assert name == "app"
        assert float(duration) >= 0
