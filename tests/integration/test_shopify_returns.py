"""Our RMAs mirrored as Shopify returns, one way, and what staff do to them in Shopify."""

from __future__ import annotations

import uuid

import pytest

from core.clock import SYSTEM_CLOCK
from core.entities import Rma
from core.enums import RmaStatus
from core.outbox.kinds import MIRROR_RETURN
from core.outbox.queue import enqueue
from core.usecases.resolutions import resolve_rma
from core.usecases.review import cancel_rma
from tests import factories as f
from tests.integration.shopify_world import (  # noqa: F401 (fixtures)
    ShopifyWorld,
    fake_shopify,
    shopify_db,
    shopify_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def rma_of(world: ShopifyWorld, rma_id: uuid.UUID) -> Rma:
    async with world.db.read_session() as session:
        rma = await session.get(Rma, rma_id)
    assert rma is not None
    return rma


async def test_an_authorized_rma_is_a_shopify_return_closed_when_it_is_resolved(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "HAT", "quantity": 2}])
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    await world.run_jobs()

    [opened] = world.fake.returns(installed.shop, order.external_id)
    assert opened["status"] == "OPEN"
    assert (await rma_of(world, rma.id)).platform_return_id == opened["id"]

    async with world.db.session() as session:
        await resolve_rma(
            session,
            installed.merchant_id,
            rma.id,
            kind="REFUND",
            actor="s",
            now=SYSTEM_CLOCK.now(),
        )
    await world.run_jobs()
    [closed] = world.fake.returns(installed.shop, order.external_id)
    assert closed["status"] == "CLOSED"
    # Our own close comes back as returns/close: an echo, nothing changes.
    for webhook in world.fake.webhooks(installed.shop, topic="returns/close"):
        assert (await world.deliver(webhook)).status_code == 200
    await world.run_jobs()
    assert (await rma_of(world, rma.id)).status is RmaStatus.RESOLVED


async def test_a_return_cancelled_in_shopify_sends_the_rma_back_to_review(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "CAP"}])
    rma = await f.requested_rma(world.db, installed.merchant_id, order)
    await world.run_jobs()
    assert (await rma_of(world, rma.id)).status is RmaStatus.AUTHORIZED
    [opened] = world.fake.returns(installed.shop, order.external_id)

    world.fake.cancel_return_in_admin(installed.shop, opened["id"])
    [cancelled] = world.fake.webhooks(installed.shop, topic="returns/cancel")
    assert (await world.deliver(cancelled)).status_code == 200
    await world.run_jobs()

    after = await rma_of(world, rma.id)
    assert after.status is RmaStatus.NEEDS_REVIEW
    assert world.fake.refunds(installed.shop, order.external_id) == []


async def test_a_cancelled_rma_cancels_its_shopify_return(world: ShopifyWorld) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "SOCK"}])
    rma = await f.requested_rma(world.db, installed.merchant_id, order)
    await world.run_jobs()
    async with world.db.session() as session:
        await cancel_rma(
            session,
            installed.merchant_id,
            rma.id,
            actor="customer",
            reason="changed my mind",
            now=SYSTEM_CLOCK.now(),
        )
    await world.run_jobs()
    [ended] = world.fake.returns(installed.shop, order.external_id)
    assert ended["status"] == "CANCELED"


async def test_a_mirror_made_but_not_recorded_is_found_not_made_twice(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "SCARF"}])
    rma = await f.requested_rma(world.db, installed.merchant_id, order)
    await world.run_jobs()
    # As if the worker died after Shopify made the return and before it was recorded.
    async with world.db.session() as session, session.begin():
        row = await session.get(Rma, rma.id)
        assert row is not None
        row.platform_return_id = None
        enqueue(
            session,
            MIRROR_RETURN,
            {"rmaId": str(rma.id), "merchantId": str(installed.merchant_id)},
            now=SYSTEM_CLOCK.now(),
            merchant_id=installed.merchant_id,
            lock_key=f"rma:{rma.id}",
        )
    await world.run_jobs()
    [only] = world.fake.returns(installed.shop, order.external_id)
    assert (await rma_of(world, rma.id)).platform_return_id == only["id"]


async def test_an_unfulfilled_order_is_not_mirrored(world: ShopifyWorld) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "BAG"}], delivered_at=None)
    rma = await f.requested_rma(world.db, installed.merchant_id, order)
    await world.run_jobs()
    assert world.fake.returns(installed.shop, order.external_id) == []
    assert (await rma_of(world, rma.id)).platform_return_id is None


async def test_a_lost_answer_to_return_create_makes_no_second_return(world: ShopifyWorld) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "GLOVE", "quantity": 3}])
    world.fake.inject("drop_after_execute", shop=installed.shop, operation="returnCreate")
    rma = await f.requested_rma(world.db, installed.merchant_id, order)
    await world.run_jobs()
    [only] = world.fake.returns(installed.shop, order.external_id)
    assert (await rma_of(world, rma.id)).platform_return_id == only["id"]
