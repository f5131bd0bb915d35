"""The customer sign-in limiter: one budget per order however it is written, one per address
that never refuses a right pair, shared by every process through the database."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlmodel import select

from core.database import Database
from core.entities import LoginFailure
from core.settings import Settings
from graphql_api.app import create_app
from testkit.addresses import fresh_client
from tests import factories as f
from tests.api.conftest import gid, make_shop
from tests.api.test_permissions import START_SESSION

Answer = tuple[str | None, str | None]  # (token, error code)


@asynccontextmanager
async def process(db: Database, client: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    """One API process of several: its own app, the shared database."""
    app = create_app(Settings(database_url=db.url, secret_key="x" * 40), database=db)
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def sign_in(http: httpx.AsyncClient, merchant: str, number: str, email: str) -> Answer:
    response = await http.post(
        "/graphql",
        json={"query": START_SESSION, "variables": {"m": merchant, "n": number, "e": email}},
    )
    answer = response.json()["data"]["startCustomerSession"]
    errors = answer["userErrors"]
    return answer["token"], errors[0]["code"] if errors else None


def upper_case_id(merchant_id: object) -> str:
    """The same merchant's global id with its UUID written in capitals."""
    return base64.urlsafe_b64encode(f"Merchant:{str(merchant_id).upper()}".encode()).decode()


async def test_an_orders_budget_is_one_however_its_number_and_merchant_are_written(
    db: Database,
) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, email="bea@example.com")
    digits = order.order_number.lstrip("#")
    spellings = [
        (gid("Merchant", shop.id), f"#{digits}"),
        (gid("Merchant", shop.id), digits),
        (upper_case_id(shop.id), f"##{digits}"),
        (upper_case_id(shop.id), f" #{digits} "),
        (gid("Merchant", shop.id), f"#{digits}"),
    ]
    async with process(db, fresh_client()) as http:
        for merchant, number in spellings:
            assert await sign_in(http, merchant, number, "eve@example.com") == (
                None,
                "INVALID_CREDENTIALS",
            )
        # Five failures on this order, written five ways: the right pair waits now too.
        blocked = await sign_in(http, gid("Merchant", shop.id), digits, "bea@example.com")
    assert blocked == (None, "RATE_LIMITED")


async def test_a_busy_address_never_refuses_a_right_pair(db: Database) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, email="ada@example.com")
    merchant = gid("Merchant", shop.id)
    async with process(db, fresh_client()) as http:
        for attempt in range(50):  # fifty different orders, one failure each
            await sign_in(http, merchant, f"#nope-{attempt}", "ada@example.com")
        token, code = await sign_in(http, merchant, order.order_number, "ada@example.com")
        assert token and code is None
        assert await sign_in(http, merchant, "#nope-x", "ada@example.com") == (
            None,
            "RATE_LIMITED",
        )


async def test_processes_share_one_budget_and_keep_no_plain_text(db: Database) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, email="cleo@example.com")
    merchant = gid("Merchant", shop.id)
    client = fresh_client()
    async with process(db, client) as first, process(db, client) as second:
        for http in (first, second, first, second, first):
            await sign_in(http, merchant, order.order_number, "mallory@example.com")
        assert await sign_in(second, merchant, order.order_number, "cleo@example.com") == (
            None,
            "RATE_LIMITED",
        )
    async with db.read_session() as session:
        keys = (await session.exec(select(LoginFailure.key))).all()
    # Keyed hashes only: no address, order number or e-mail in the table.
    assert keys and all(re.fullmatch("[0-9a-f]{64}", key) for key in keys)
