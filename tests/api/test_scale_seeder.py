"""The scale seeder (benchmarks/support/seeder.py), small: what it writes is valid for the service,
readable through the API, counted right, the same for the same seed, and the list filters find
exactly the rows they should."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from benchmarks.support.scale_rows import COLUMNS, TABLES, Plan, RowSource, customer_email
from benchmarks.support.seeder import seed_scale
from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Customer, Order, OrderLine, Rma, RmaLine
from core.enums import RmaStatus
from core.queries import RmaFilter, rma_page
from core.rules.numbers import is_valid_rma_number
from tests.api.conftest import Api

RMAS = 300
PAGE = """query($first: Int!, $filter: RmaFilter, $after: String) {
  rmas(first: $first, filter: $filter, after: $after) {
    nodes { number status createdAt customer { email } order { orderNumber }
            lines { quantity reason condition receivedQuantity } }
    pageInfo { endCursor hasNextPage }
  }
}"""
ONE = """query($number: String!) {
  rma(number: $number) { number status decision { policyVersion } lines { quantity } }
}"""


async def count(db: Database, entity: Any, merchant_id: uuid.UUID) -> int:
    async with db.read_session() as session:
        statement = select(sa.func.count()).select_from(entity)
        return int((await session.exec(statement.where(entity.merchant_id == merchant_id))).one())


async def schema_of_seeded_tables(db: Database) -> list[Any]:
    """Every index and constraint of the tables the seeder writes (PostgreSQL drops some for
    the load and must make them again)."""
    if not db.is_postgres:
        return []
    async with db.read_session() as session:
        indexes = await session.exec(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables)"
                " UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid::regclass::text = ANY(:quoted) ORDER BY 1, 2"
            ).bindparams(
                tables=list(TABLES), quoted=[f'"{t}"' if t == "order" else t for t in TABLES]
            )
        )
        return [tuple(row) for row in indexes]


async def all_pages(api: Api, key: str, page_filter: dict[str, Any]) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        data = await api.gql(PAGE, {"first": 100, "filter": page_filter, "after": after}, key)
        nodes += data["rmas"]["nodes"]
        if not data["rmas"]["pageInfo"]["hasNextPage"]:
            return nodes
        after = data["rmas"]["pageInfo"]["endCursor"]


async def test_seeded_rmas_are_valid_counted_and_found_by_every_filter(
    db: Database, api: Api
) -> None:
    now = SYSTEM_CLOCK.now()
    schema = await schema_of_seeded_tables(db)
    result = await seed_scale(db.url, rmas=RMAS, seed=7, now=now, batch_rmas=128, processes=1)
    merchant = result.merchant_id
    assert await schema_of_seeded_tables(db) == schema

    assert result.rows["rma"] == RMAS
    assert result.rows["order"] == RMAS
    assert result.rows["customer"] == RMAS // 5
    for table, entity in [
        ("customer", Customer),
        ("order", Order),
        ("order_line", OrderLine),
        ("rma", Rma),
        ("rma_line", RmaLine),
    ]:
        assert await count(db, entity, merchant) == result.rows[table], table

    async with db.read_session() as session:
        rmas = list((await session.exec(select(Rma).where(Rma.merchant_id == merchant))).all())
        emails = {
            c.id: c.email
            for c in (await session.exec(select(Customer).where(Customer.merchant_id == merchant)))
        }
    assert all(is_valid_rma_number(rma.number) for rma in rmas)
    assert all(now - timedelta(days=731) < rma.created_at <= now for rma in rmas)
    assert len(Counter(rma.status for rma in rmas)) >= 4  # recent ones open, old ones ended

    # Every RMA reads through the API, in pages, newest first, and by its number.
    nodes = await all_pages(api, result.api_key, {})
    assert sorted(node["number"] for node in nodes) == sorted(rma.number for rma in rmas)
    assert all(node["lines"] and node["order"]["orderNumber"] for node in nodes)
    one = await api.gql(ONE, {"number": rmas[0].number}, result.api_key)
    assert one["rma"]["number"] == rmas[0].number
    assert one["rma"]["decision"]["policyVersion"] == 1

    # Each filter finds exactly the RMAs it should.
    status = Counter(rma.status for rma in rmas).most_common(2)[-1][0]
    found = await all_pages(api, result.api_key, {"status": [status.value]})
    assert sorted(n["number"] for n in found) == sorted(
        r.number for r in rmas if r.status == status
    )

    start, end = now - timedelta(days=400), now - timedelta(days=300)
    window = {"createdFrom": start.isoformat(), "createdTo": end.isoformat()}
    found = await all_pages(api, result.api_key, window)
    expected = [r.number for r in rmas if start <= r.created_at < end]
    assert expected
    assert sorted(n["number"] for n in found) == sorted(expected)

    email = emails[rmas[0].customer_id]
    found = await all_pages(api, result.api_key, {"customerEmail": email.upper()})
    assert sorted(n["number"] for n in found) == sorted(
        r.number for r in rmas if emails[r.customer_id] == email
    )

    # The core query, page by page with its cursor, walks them all once, newest first.
    async with db.read_session() as session:
        walked: list[Rma] = []
        after = None
        while True:
            page = await rma_page(session, merchant, RmaFilter(), first=7, after=after)
            walked += page.rows
            if not page.has_next_page:
                break
            after = (page.rows[-1].created_at, page.rows[-1].id)
    newest_first = sorted(rmas, key=lambda r: (r.created_at, r.id), reverse=True)
    assert [r.id for r in walked] == [r.id for r in newest_first]
    assert all(r.status in RmaStatus for r in walked)


def test_the_same_seed_and_moment_draw_the_same_rows() -> None:
    now = SYSTEM_CLOCK.now()
    plan = Plan(uuid.uuid4(), None, rmas=50, customers=10, seed=3, now=now, batch_rmas=20)

    def drawn() -> list[Any]:
        return [batch.rows for batch in RowSource(plan).batches()]

    first, second = drawn(), drawn()
    assert first == second
    assert [len(batch["rma"]) for batch in first] == [0, 20, 20, 10]
    assert first[0]["customer"][3][3] == customer_email(3)
    for table in TABLES:
        assert all(len(row) == len(COLUMNS[table]) for batch in first for row in batch[table])
