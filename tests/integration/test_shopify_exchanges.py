"""Exchanges on Shopify orders: the replacement becomes a Shopify order (from a draft order),
placed once whatever fails in between; the difference is refunded through Shopify or left due."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.entities import Exchange, Rma
from core.enums import ExchangeStatus, RmaStatus
from core.usecases.exchanges import ExchangeRequest, ReplacementLine
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.resolutions import resolve_rma
from tests import factories as f
from tests.integration.shopify_world import (  # noqa: F401 (fixtures)
    Installed,
    ShopifyWorld,
    fake_shopify,
    shopify_db,
    shopify_url,
    world_fixture,
)
from tests.integration.test_shopify_money import refunded, status_of

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def exchanging_shop(world: ShopifyWorld) -> Installed:
    installed = await world.install()
    async with world.db.session() as session:
        await update_return_policy(
            session,
            installed.merchant_id,
            PolicyChanges(allowed_resolutions=["REFUND", "STORE_CREDIT", "EXCHANGE"]),
            now=SYSTEM_CLOCK.now(),
        )
    return installed


async def exchange(
    world: ShopifyWorld, installed: Installed, rma: Rma, lines: list[ReplacementLine]
) -> None:
    async with world.db.session() as session:
        await resolve_rma(
            session,
            installed.merchant_id,
            rma.id,
            kind="EXCHANGE",
            exchange=ExchangeRequest(lines=lines),
            actor="staff:test",
            now=SYSTEM_CLOCK.now(),
        )


def completions(world: ShopifyWorld, installed: Installed) -> list[bool]:
    """``paymentPending`` of each draft order completed in the shop."""
    return [
        bool(request.variables.get("paymentPending"))
        for request in world.fake.requests()
        if request.shop == installed.shop.domain and "draftOrderComplete" in request.operations
    ]


async def exchange_of(world: ShopifyWorld, rma: Rma) -> Exchange:
    async with world.db.read_session() as session:
        [row] = (await session.exec(select(Exchange).where(Exchange.rma_id == rma.id))).all()
    return row


async def test_a_cheaper_variant_is_ordered_once_and_the_difference_refunded(
    world: ShopifyWorld,
) -> None:
    installed = await exchanging_shop(world)
    order = await world.synced_order(
        installed, lines=[{"sku": "SW-L", "price": "20.00"}], shipping="0.00"
    )
    sku = f"SW-M-{uuid.uuid4().hex[:6]}"
    variant = world.fake.add_variant(installed.shop, sku, price="15.00", title="Sweater M")
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    # The answer to the draft order is lost after Shopify made it: the retry finds it.
    world.fake.inject("drop_after_execute", shop=installed.shop, operation="draftOrderCreate")
    await exchange(world, installed, rma, [ReplacementLine("Sweater M", 1, 1500, sku, variant)])
    await world.run_jobs()
    await world.run_jobs()

    [draft] = world.fake.draft_orders(installed.shop)
    assert (draft["status"], Decimal(draft["total"])) == ("COMPLETED", 0)
    placed = await exchange_of(world, rma)
    assert placed.status is ExchangeStatus.WAITING_FOR_FULFILMENT
    assert placed.platform_reference == draft["order_id"]
    replacement = world.fake.order(installed.shop, draft["order_id"])
    assert [line["sku"] for line in replacement["line_items"]] == [sku]
    assert completions(world, installed) == [False]  # nothing left to pay
    # The 5.00 the sweater costs less went back through Shopify, once.
    assert refunded(world, installed, order) == [Decimal("5.00")]
    assert await status_of(world, rma.id) is RmaStatus.RESOLVED


async def test_a_dearer_replacement_is_ordered_with_the_difference_to_pay(
    world: ShopifyWorld,
) -> None:
    installed = await exchanging_shop(world)
    order = await world.synced_order(
        installed, lines=[{"sku": "MUG-S", "price": "20.00"}], shipping="0.00"
    )
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    await exchange(world, installed, rma, [ReplacementLine("Mug set", 1, 3000, "MUG-SET")])
    await world.run_jobs()

    [draft] = world.fake.draft_orders(installed.shop)
    assert (Decimal(draft["total_discounts"]), Decimal(draft["total"])) == (20, 10)
    replacement = world.fake.order(installed.shop, draft["order_id"])
    assert replacement["financial_status"] == "pending"
    assert completions(world, installed) == [True]
    assert (await exchange_of(world, rma)).due_minor == 1000
    assert refunded(world, installed, order) == []
    assert await status_of(world, rma.id) is RmaStatus.RESOLVED
