"""The order platform port, through its in-memory double: what core reads and writes back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import func, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order
from core.enums import PaymentProviderName
from core.ports.commerce import (
    CommercePlatform,
    PlatformCredit,
    PlatformRefund,
    PlatformRejected,
    PlatformUnavailable,
    RefundLine,
    RestockLine,
)
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    upsert_order,
    upsert_orders,
)
from core.usecases.owned_rows import load_order
from testkit.commerce_platform import InMemoryCommercePlatform, edited
from tests import factories as f
from tests.api.test_statement_counts import recorded_statements


def platform_order(number: int, email: str = "ann@example.com") -> OrderInput:
    return OrderInput(
        platform="shopify",
        external_id=f"gid-{number}",
        order_number=f"#{1000 + number}",
        currency="USD",
        placed_at=f.NOW - timedelta(days=3),
        customer=CustomerInput(email=email),
        lines=[
            OrderLineInput(
                external_id=f"line-{number}", title="Tee", quantity=1, unit_price_minor=2500
            )
        ],
    )


async def pull_everything(db: Database, merchant_id: uuid.UUID, platform: CommercePlatform) -> int:
    """Page through the platform's orders into core, as a sync job will; how many pages."""
    cursor, pages = None, 0
    while True:
        page = await platform.orders_changed_since(cursor, limit=2)
        pages += 1
        for order in page.orders:
            async with db.session() as session:
                await upsert_order(session, merchant_id, order, now=SYSTEM_CLOCK.now())
        cursor = page.next_cursor
        if not page.has_more:
            return pages


async def orders_of(db: Database, merchant_id: uuid.UUID) -> int:
    async with db.read_session() as session:
        statement = select(func.count()).select_from(Order).where(Order.merchant_id == merchant_id)
        return int((await session.exec(statement)).one())


async def test_orders_paged_from_the_platform_land_once_and_edits_update_them(
    db: Database,
) -> None:
    shop = await f.merchant(db)
    platform = InMemoryCommercePlatform()
    for number in range(5):
        platform.put_order(platform_order(number))

    pages = await pull_everything(db, shop.id, platform)
    assert pages == 3
    assert await orders_of(db, shop.id) == 5

    platform.put_order(edited(platform_order(2), customer=CustomerInput(email="bo@example.com")))
    page = await platform.orders_changed_since("5", limit=2)
    assert [order.external_id for order in page.orders] == ["gid-2"]
    async with db.session() as session:
        stored = await upsert_order(session, shop.id, page.orders[0], now=SYSTEM_CLOCK.now())
    assert await orders_of(db, shop.id) == 5
    assert stored.external_id == "gid-2"


async def test_writes_back_are_idempotent_and_failures_are_typed() -> None:
    platform = InMemoryCommercePlatform()
    platform.put_order(platform_order(1))
    refund = PlatformRefund(
        order_reference="gid-1",
        lines=[RefundLine("line-1", 1, 2500)],
        shipping_minor=0,
        amount_minor=2500,
        currency="USD",
        reason="RMA-7K3F-9Q2D",
        idempotency_key="rma-refund-1",
        paid_by=PaymentProviderName.STRIPE,
        provider_reference="re_1",
    )

    first = await platform.write_refund(refund)
    again = await platform.write_refund(refund)
    await platform.restock("gid-1", [RestockLine("line-1", 1)], "restock-1")
    await platform.restock("gid-1", [RestockLine("line-1", 1)], "restock-1")
    credit = PlatformCredit("cust-1", 500, "USD", "credit-1", "RMA-7K3F-9Q2D")

    assert first == again
    assert len(platform.refunds) == 1
    assert platform.restocked == {"gid-1": [RestockLine("line-1", 1)]}
    assert await platform.issue_store_credit(credit) == await platform.issue_store_credit(credit)

    platform.unavailable_calls = 1
    with pytest.raises(PlatformUnavailable):
        await platform.fetch_order("gid-1")
    assert await platform.fetch_order("gid-1") == platform_order(1)
    with pytest.raises(PlatformRejected):
        await platform.write_refund(
            PlatformRefund("gid-404", [], 0, 0, "USD", "r", "other-key", PaymentProviderName.STRIPE)
        )
    await platform.close()
    assert platform.closed


async def test_an_older_copy_of_an_order_never_overwrites_a_newer_one(db: Database) -> None:
    shop = await f.merchant(db)
    base = platform_order(77)
    newer = edited(base, source_updated_at=f.NOW, shipping_minor=900)
    older = edited(base, source_updated_at=f.NOW - timedelta(minutes=5), shipping_minor=100)
    newest = edited(base, source_updated_at=f.NOW + timedelta(minutes=5), shipping_minor=300)
    for copy, expected in ((newer, 900), (older, 900), (newest, 300), (newer, 300)):
        async with db.session() as session:
            order = await upsert_order(session, shop.id, copy, now=SYSTEM_CLOCK.now())
        assert order.shipping_minor == expected
    async with db.session() as session:
        applied = await upsert_orders(session, shop.id, [older], now=SYSTEM_CLOCK.now())
    assert applied == 1
    async with db.read_session() as session:
        stored = (
            await session.exec(select(Order).where(Order.external_id == base.external_id))
        ).one()
    assert stored.shipping_minor == 300


async def test_a_page_of_orders_costs_the_same_statements_whatever_its_size(
    db: Database,
) -> None:
    """A sync writes a page with a few reads and one flush: new orders, then the same again
    (updated), then orders with returns (whose lines must be kept)."""
    shop = await f.merchant(db)

    async def apply(orders: list[OrderInput]) -> int:
        with recorded_statements(db) as statements:
            async with db.session() as session:
                await upsert_orders(session, shop.id, orders, now=SYSTEM_CLOCK.now())
        return len(statements)

    small = [platform_order(200 + n, f"p{n}@example.com") for n in range(2)]
    large = [platform_order(300 + n, f"q{n}@example.com") for n in range(40)]
    assert await apply(small) == await apply(large)  # created
    assert await apply(small) == await apply(large)  # updated
    async with db.read_session() as session:
        order = (await session.exec(select(Order).where(Order.external_id == "gid-300"))).one()
        loaded = await load_order(session, shop.id, order.id)
    await f.requested_rma(db, shop.id, loaded)
    assert await apply(large) == await apply(small)  # one of them has a return now
    async with db.read_session() as session:
        stored = (
            await session.exec(
                select(func.count()).select_from(Order).where(Order.merchant_id == shop.id)
            )
        ).one()
    assert stored == 42
