"""The API reads "now" from the clock it was built with, never from the host directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest_asyncio

from core.clock import FixedClock
from core.database import Database
from core.settings import Settings
from graphql_api.app import create_app
from testkit.addresses import fresh_client
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop

ELIGIBILITY = """query($o: ID!) { returnEligibility(orderId: $o) { lines { eligible codes } } }"""


@pytest_asyncio.fixture(loop_scope="session")
async def clock() -> FixedClock:
    return FixedClock(f.NOW)


@pytest_asyncio.fixture(loop_scope="session")
async def timed_api(db: Database, clock: FixedClock) -> AsyncIterator[Api]:
    settings = Settings(database_url=db.url, secret_key="x" * 40, run_worker=False)
    app = create_app(settings, database=db, clock=clock)
    transport = httpx.ASGITransport(app=app, client=fresh_client())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client)


async def test_the_return_window_closes_when_the_apps_clock_says_so(
    timed_api: Api, db: Database, clock: FixedClock
) -> None:
    shop = await make_shop(db, return_window_days=30)
    # Delivered two days after it was placed: the window runs from delivery.
    order = await f.order(db, shop.id, placed_days_ago=20)
    variables = {"o": gid("Order", order.id)}

    inside = await timed_api.gql(ELIGIBILITY, variables, token=shop.admin)
    clock.advance(timedelta(days=13))
    outside = await timed_api.gql(ELIGIBILITY, variables, token=shop.admin)

    assert inside["returnEligibility"]["lines"] == [{"eligible": True, "codes": ["WITHIN_WINDOW"]}]
    [line] = outside["returnEligibility"]["lines"]
    assert line["eligible"] is False
    assert "OUTSIDE_WINDOW" in line["codes"]


async def test_an_authorization_expires_by_the_apps_clock(
    timed_api: Api, db: Database, clock: FixedClock
) -> None:
    shop = await make_shop(db, auto_authorize=False, authorization_valid_days=14)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    authorized = await timed_api.gql(
        "mutation($id: ID!) { authorizeRma(id: $id) { rma { authorizationExpiresAt } } }",
        {"id": gid("Rma", rma.id)},
        token=shop.agent,
    )

    expires = authorized["authorizeRma"]["rma"]["authorizationExpiresAt"]
    assert expires == (clock.now() + timedelta(days=14)).isoformat()
