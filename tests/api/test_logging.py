"""What reaches the log: no secrets, a request id on every line, a cap per request."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from core.database import Database
from core.logs import REQUEST_LOG_BUDGET, BudgetedHandler, configure_logging_for
from core.migrate import upgrade_async
from core.settings import Settings
from graphql_api.app import create_app
from testkit.addresses import fresh_client
from tests.api.conftest import gid, make_shop
from tests.api.test_hardening import seeded_rma

SECRET_KEY = "S3CRET-signing-key-" + "k" * 24
ENCRYPTION_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The service's logging, configured as in production, written here; undone afterwards."""
    stream = io.StringIO()
    yield stream
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, BudgetedHandler):
            root.removeHandler(handler)
    structlog.reset_defaults()


def production(url: str) -> Settings:
    return Settings(
        env="production",
        database_url=url,
        secret_key=SECRET_KEY,
        encryption_keys=ENCRYPTION_KEY,
        run_worker=False,
    )


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def assert_no_secret(text: str) -> None:
    for secret in (SECRET_KEY, ENCRYPTION_KEY, "S3CRET"):
        assert secret not in text


async def post(app: Any, query: str, variables: dict[str, Any], token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=fresh_client())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_an_unexpected_error_logs_a_plain_traceback_without_secrets(
    tmp_path: Path, log_stream: io.StringIO
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    await upgrade_async(url)
    database = Database(url)
    settings = production(url)
    configure_logging_for(settings, stream=log_stream)
    try:
        shop = await make_shop(database)
        _order, rma = await seeded_rma(database, shop)
        async with database.write_engine.begin() as connection:
            await connection.exec_driver_sql("DROP TABLE rma_event")
        app = create_app(settings, database=database)
        response = await post(
            app,
            "query($id: ID!) { rma(id: $id) { events { kind } } }",
            {"id": gid("Rma", rma.id)},
            shop.admin,
        )
    finally:
        await database.dispose()

    request_id = response.json()["errors"][0]["extensions"]["requestId"]
    assert response.headers["x-request-id"] == request_id
    text = log_stream.getvalue()
    assert_no_secret(text)
    assert shop.admin not in text
    assert len(text.encode()) <= REQUEST_LOG_BUDGET + 1024
    logged = lines(log_stream)
    [error] = [line for line in logged if line["event"] == "unexpected error in a resolver"]
    assert error["level"] == "error"
    assert error["request_id"] == request_id
    assert error["merchant_id"] == str(shop.id)
    assert "Traceback" in error["exception"]
    assert "no such table: rma_event" in error["exception"]
    # Plain frames only: the settings object (and any other local) is never rendered.
    assert "Settings(" not in text
    assert "locals" not in text.lower()


async def test_expected_refusals_are_logged_at_info_without_a_traceback(
    db: Database, log_stream: io.StringIO
) -> None:
    settings = production(db.url)
    configure_logging_for(settings, stream=log_stream)
    shop = await make_shop(db)
    app = create_app(settings, database=db)

    denied = await post(
        app, "mutation { updateReturnPolicy(input: {}) { userErrors { code } } }", {}, shop.agent
    )
    assert denied.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    [refusal] = [line for line in lines(log_stream) if line["event"] == "request refused"]
    assert refusal["level"] == "info"
    assert refusal["code"] == "FORBIDDEN"
    assert refusal["request_id"] == denied.headers["x-request-id"]
    assert refusal["merchant_id"] == str(shop.id)
    assert "Traceback" not in log_stream.getvalue()
    assert not [line for line in lines(log_stream) if line["level"] == "error"]


async def test_a_lone_surrogate_is_refused_before_anything_runs(
    db: Database, log_stream: io.StringIO
) -> None:
    """The request that once wrote the signing key to the log a dozen times."""
    settings = production(db.url)
    configure_logging_for(settings, stream=log_stream)
    app = create_app(settings, database=db)
    body = (
        '{"query": "mutation($m: ID!, $n: String!, $e: String!) { startCustomerSession('
        'merchantId: $m, orderNumber: $n, email: $e) { token } }", "variables": '
        '{"m": "TWVyY2hhbnQ6eA==", "n": "\\ud800-1001", "e": "a@example.com"}}'
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=fresh_client())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )

    assert response.status_code == 400
    assert "surrogate" in response.text
    assert_no_secret(log_stream.getvalue())
    assert "Traceback" not in log_stream.getvalue()


async def test_lines_of_a_request_name_the_rma_it_touched(
    db: Database, log_stream: io.StringIO
) -> None:
    settings = production(db.url)
    configure_logging_for(settings, stream=log_stream)
    shop = await make_shop(db)
    _order, rma = await seeded_rma(db, shop)
    app = create_app(settings, database=db)

    closed = await post(
        app,
        "mutation($id: ID!) { closeRma(id: $id) { userErrors { code } } }",
        {"id": gid("Rma", rma.id)},
        shop.agent,
    )
    assert closed.json()["data"]["closeRma"]["userErrors"] == [{"code": "INVALID_TRANSITION"}]

    [refusal] = [line for line in lines(log_stream) if line["event"] == "request refused"]
    assert refusal["rma_id"] == str(rma.id)
    assert refusal["request_id"] == closed.headers["x-request-id"]
