"""Schema-driven fuzzing: random valid (and one-mistake) operations never break the API.

hypothesis-graphql writes queries and mutations from the schema's SDL; they go through the real
ASGI app (httpx over ASGI, driven from these sync tests through an anyio portal, which is what
starlette's ``TestClient`` does) over a SQLite file of its own, as an ADMIN or AGENT key, a
customer session or nobody. Whatever the operation, the answer is JSON, never a 5xx, never a
traceback and never "Unexpected error." (a masked, unexpected exception is a bug by definition).

IDs are drawn mostly from real objects of the seeded merchant, so mutations reach the use cases
instead of stopping at "not found". Datetimes are timezone-aware and well inside the calendar:
naive ones and calendar edges have their own tests in test_hardening.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import graphql
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema
from structlog.testing import capture_logs

from core.database import Database
from core.enums import ResolutionKind
from core.migrate import upgrade
from core.settings import Settings
from core.usecases.resolutions import resolve_rma
from graphql_api.app import create_app
from graphql_api.auth import CustomerSession, CustomerTokens
from graphql_api.schema import schema_sdl
from testkit.addresses import fresh_client
from tests import factories as f
from tests.api.conftest import gid, make_shop

SECRET = "f" * 40
SDL = schema_sdl()
FUZZ = settings(
    deadline=None,
    database=None,  # nothing written into the work tree; failures print their document
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@dataclass
class Target:
    portal: BlockingPortal
    client: httpx.AsyncClient
    ids: list[str]
    tokens: dict[str, str | None]

    def post(
        self, document: str, variables: dict[str, object] | None, token: str | None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"query": document, "variables": variables}

        async def send() -> httpx.Response:
            return await self.client.post("/graphql", json=body, headers=headers)

        return self.portal.call(send)


async def _seed(database: Database) -> tuple[list[str], dict[str, str | None]]:
    """A merchant with orders and RMAs in several states; their IDs and the callers' tokens."""
    shop = await make_shop(database, auto_authorize_max_risk=100)
    ids = [gid("Merchant", shop.id)]
    orders = []
    for index in range(4):
        # The last order was not paid online, so its refund is one staff confirm by hand.
        order = await f.order(
            database,
            shop.id,
            lines=[f.line("A", quantity=5), f.line("B")],
            stripe_paid=index != 3,
        )
        orders.append(order)
        if index % 2:
            rma = await f.inspected_rma(database, shop.id, order)
            async with database.session() as session:
                chosen = await resolve_rma(
                    session,
                    shop.id,
                    rma.id,
                    kind=ResolutionKind.REFUND if index == 3 else ResolutionKind.STORE_CREDIT,
                    actor=f.STAFF,
                    now=f.NOW,
                )
            ids.append(gid("Resolution", chosen.resolution.id))
        else:
            rma = await f.requested_rma(database, shop.id, order)
        ids += [
            gid("Order", order.id),
            gid("Customer", order.customer_id),
            *(gid("OrderLine", line.id) for line in order.lines),
            gid("Rma", rma.id),
            *(gid("RmaLine", line.id) for line in rma.lines),
        ]
    customer = CustomerTokens(SECRET).issue(CustomerSession(shop.id, orders[0].customer_id))
    tokens = {"admin": shop.admin, "agent": shop.agent, "customer": customer, "anonymous": None}
    return ids, tokens


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    database = Database(url)
    app = create_app(Settings(database_url=url, secret_key=SECRET), database=database)
    # One event loop in a worker thread for everything async: seeding, the app and disposal.
    with start_blocking_portal() as portal:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=fresh_client())
        client = httpx.AsyncClient(transport=transport, base_url="http://fuzz")
        try:
            ids, tokens = portal.call(_seed, database)
            yield Target(portal, client, ids, tokens)
        finally:
            portal.call(client.aclose)
            portal.call(database.dispose)


def _string(value: str) -> graphql.StringValueNode:
    return graphql.StringValueNode(value=value)


def _aware_datetimes() -> st.SearchStrategy[graphql.ValueNode]:
    offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    )
    moments = st.datetimes(
        # hypothesis bounds are naive; the strategy attaches UTC to every value it draws.
        min_value=datetime(1900, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
    shifted = st.tuples(moments, offsets).map(lambda pair: pair[0].astimezone(pair[1]))
    return st.one_of(
        shifted.map(lambda moment: _string(moment.isoformat())), st.text().map(_string)
    )


def _documents(target: Target, mode: Mode) -> st.SearchStrategy[str]:
    ids = st.one_of(
        st.sampled_from(target.ids),
        st.sampled_from(target.ids).map(lambda real: real[:-2]),  # truncated
        st.text(max_size=40),
    ).map(_string)
    return from_schema(
        SDL,
        custom_scalars={"DateTime": _aware_datetimes(), "ID": ids},
        mode=mode,
    )


def _check(target: Target, document: str, caller: str) -> None:
    with capture_logs() as logs:
        response = target.post(document, None, target.tokens[caller])
    context = f"\n{caller}:\n{document}\n-> {response.status_code} {response.text[:2000]}"
    assert response.status_code < 500, context
    assert response.headers["content-type"].startswith("application/json"), context
    payload = json.loads(response.text)
    assert isinstance(payload, dict), context
    for error in payload.get("errors") or []:
        assert error["message"] != "Unexpected error.", context
        assert (error.get("extensions") or {}).get("code") != "INTERNAL", context
    if "Traceback" not in document:
        assert "Traceback" not in response.text, context
    masked = [entry for entry in logs if entry.get("event") == "unexpected error in a resolver"]
    assert not masked, context + f"\nlogged: {masked[0].get('exc_info')!r}"


CALLERS = st.sampled_from(["admin", "admin", "agent", "customer", "anonymous"])


def test_generated_operations_never_break_the_api(target: Target) -> None:
    @settings(FUZZ, max_examples=250)
    @given(document=_documents(target, Mode.POSITIVE), caller=CALLERS)
    def check(document: str, caller: str) -> None:
        _check(target, document, caller)

    check()


def test_operations_with_one_mistake_are_refused_cleanly(target: Target) -> None:
    @settings(FUZZ, max_examples=100)
    @given(document=_documents(target, Mode.NEGATIVE), caller=CALLERS)
    def check(document: str, caller: str) -> None:
        _check(target, document, caller)

    check()


def test_the_fuzzer_reaches_real_objects(target: Target) -> None:
    """The seeded IDs are the ones the API gives out, so generated operations can find them."""
    rma_id = next(value for value in target.ids if value.startswith("Um1h"))
    query = "query($i: ID!) { node(id: $i) { id } }"
    response = target.post(query, {"i": rma_id}, target.tokens["admin"])
    assert response.json() == {"data": {"node": {"id": rma_id}}}
