"""No N+1: a page of RMAs with everything a list view draws costs the same statements at any size.

Statements are counted with a ``before_cursor_execute`` listener on the engines the app uses, so
every statement the request causes is seen (but the API key lookup, which is remembered): the page
itself, each batch load and, on SQLite, the ``BEGIN`` the engine issues per transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.enums import ResolutionKind
from core.usecases.logistics import record_shipment
from core.usecases.resolutions import resolve_rma
from core.usecases.review import cancel_rma
from graphql_api.auth import CustomerSession, CustomerTokens
from tests import factories as f
from tests.api.conftest import Api, Shop, make_shop

PAGE = """
query($first: Int!) {
  rmas(first: $first) {
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id number status riskScore specialInstructions
        decision { policyVersion lines }
        lines {
          id quantity reason
          orderLine { id title unitPrice { amountMinor formatted } }
          inspection { condition disposition }
        }
        order {
          orderNumber
          total { amountMinor }
          payments { provider captured { amountMinor } }
          lines { id title }
          customer { email }
          rmas { number }
        }
        customer { email storeCreditBalance { amountMinor currency } }
        shipments { carrier trackingNumber }
        resolutions { kind status }
        resolution { kind status amount { amountMinor } }
        events { sequence kind toStatus }
      }
    }
  }
}
"""

# Transaction control is not a query; counted separately so the limit is about real work.
_TRANSACTION = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@contextmanager
def recorded_statements(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        # Signing in is remembered per process once it can watch for key changes
        # (core.key_changes); whether a request still looks its key up is timing, not the page.
        if "FROM api_key" not in statement:
            statements.append(statement)

    engines = {id(e.sync_engine): e.sync_engine for e in (db.read_engine, db.write_engine)}
    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", record)


async def _seed(db: Database, shop: Shop, count: int) -> None:
    """``count`` RMAs, four per order, over 20 customers, walked to six places in their life."""
    order = None
    for index in range(count):
        if index % 4 == 0:
            order = await f.order(
                db,
                shop.id,
                email=f"buyer{index // 4 % 20}@example.com",
                lines=[f.line("A", quantity=4), f.line("B", quantity=1, unit_price_minor=900)],
            )
        assert order is not None
        step = index % 10
        if step in (8, 9):
            rma = await f.inspected_rma(db, shop.id, order)
            if step == 9:
                kind = ResolutionKind.REFUND if index % 20 == 9 else ResolutionKind.STORE_CREDIT
                async with db.session() as session:
                    await resolve_rma(session, shop.id, rma.id, kind=kind, actor=f.STAFF, now=f.NOW)
            continue
        rma = await f.requested_rma(db, shop.id, order)
        if step == 6:
            async with db.session() as session:
                await cancel_rma(session, shop.id, rma.id, actor=f.STAFF, now=SYSTEM_CLOCK.now())
        elif step == 7:
            async with db.session() as session:
                await record_shipment(
                    session,
                    shop.id,
                    rma.id,
                    carrier="UPS",
                    tracking_number="1Z999AA10123456784",
                    actor="customer:test",
                    now=f.NOW,
                )


async def _page(api: Api, db: Database, token: str, first: int) -> tuple[list[str], dict[str, Any]]:
    with recorded_statements(db) as statements:
        data = await api.gql(PAGE, {"first": first}, token=token)
    return list(statements), data["rmas"]


async def test_a_page_of_rmas_costs_the_same_statements_for_10_and_100_rows(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db, auto_authorize_max_risk=100)  # many returns per buyer: no review
    await _seed(db, shop, 101)
    await _page(api, db, shop.admin, 1)  # warm caches (parser, validation) out of the count

    small, small_page = await _page(api, db, shop.admin, 10)
    large, large_page = await _page(api, db, shop.admin, 100)

    assert len(small_page["edges"]) == 10
    assert len(large_page["edges"]) == 100
    assert large_page["pageInfo"]["hasNextPage"] is True

    statuses = {edge["node"]["status"] for edge in large_page["edges"]}
    assert len(statuses) >= 4, statuses  # the page really mixes lifecycles
    # Every relation was drawn, so every loader ran.
    nodes = [edge["node"] for edge in large_page["edges"]]
    assert all(node["lines"][0]["orderLine"] for node in nodes)
    assert any(node["shipments"] for node in nodes)
    assert any(node["resolution"] for node in nodes)
    assert any(node["lines"][0]["inspection"] for node in nodes)

    assert len(small) == len(large), (small, large)
    queries = [s for s in large if not _TRANSACTION.match(s)]
    assert len(queries) <= 15, queries
    assert all(q.lstrip().upper().startswith("SELECT") for q in queries), queries


async def test_a_customer_page_is_batched_too(api: Api, db: Database) -> None:
    """Customer sessions add an ownership filter, not a statement per row."""
    shop = await make_shop(db)
    orders = [await f.order(db, shop.id, email="same@example.com") for _ in range(12)]
    for order in orders:
        await f.requested_rma(db, shop.id, order)
    token = CustomerTokens("x" * 40).issue(CustomerSession(shop.id, orders[0].customer_id))
    customer_page = PAGE.replace("riskScore ", "")  # staff-only field
    with recorded_statements(db) as two:
        small = await api.gql(customer_page, {"first": 2}, token=token)
    with recorded_statements(db) as twelve:
        large = await api.gql(customer_page, {"first": 12}, token=token)
    assert len(small["rmas"]["edges"]) == 2
    assert len(large["rmas"]["edges"]) == 12
    assert len(two) == len(twelve), (two, twelve)


async def test_a_page_loads_ahead_only_what_it_was_asked_for(api: Api, db: Database) -> None:
    """The page loads lines, orders and customers in one batch each when the query selects
    them (through fragments too), and never when it does not."""
    shop = await make_shop(db)
    order = await f.order(db, shop.id)
    await f.requested_rma(db, shop.id, order)
    await f.requested_rma(db, shop.id, order)

    with recorded_statements(db) as bare:
        await api.gql("{ rmas(first: 5) { nodes { number } } }", token=shop.admin)
    with recorded_statements(db) as full:
        data = await api.gql(
            """
            fragment Row on Rma { number lines { quantity } order { orderNumber } }
            { rmas(first: 5) { edges { node { ...Row customer { email } unitsExpected } } } }
            """,
            token=shop.admin,
        )

    def tables(statements: list[str]) -> list[str]:
        return [
            found.group(1) for sql in statements if (found := re.search(r"\bFROM \"?(\w+)", sql))
        ]

    assert tables(bare) == ["rma"]
    assert sorted(tables(full)) == ["customer", "order", "rma", "rma_line"]
    nodes = [edge["node"] for edge in data["rmas"]["edges"]]
    assert [node["order"]["orderNumber"] for node in nodes] == [order.order_number] * 2
    assert all(node["lines"] and node["customer"]["email"] for node in nodes)
