"""Exchanges on WooCommerce orders: the replacement is a new order, child of the original,
placed once whatever fails in between; the difference goes back through the money path."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.entities import Exchange, Resolution, Rma
from core.enums import ExchangeStatus, ResolutionStatus, RmaStatus
from core.usecases.exchanges import ExchangeRequest, ReplacementLine
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.resolutions import complete_manual_refund, resolve_rma
from tests.integration.test_woocommerce_money import lamp, returned, synced
from tests.integration.woocommerce_world import (  # noqa: F401 (fixtures)
    WooWorld,
    fake_stripe,
    store_fixture,
    woo_db,
    woo_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def allow_exchanges(world: WooWorld) -> None:
    """Before the return is asked for: an RMA keeps the policy version it was asked under."""
    async with world.db.session() as session:
        await update_return_policy(
            session,
            world.merchant_id,
            PolicyChanges(allowed_resolutions=["REFUND", "STORE_CREDIT", "EXCHANGE"]),
            now=SYSTEM_CLOCK.now(),
        )


async def exchange(world: WooWorld, rma_id: uuid.UUID, lines: list[ReplacementLine]) -> None:
    async with world.db.session() as session:
        await resolve_rma(
            session,
            world.merchant_id,
            rma_id,
            kind="EXCHANGE",
            exchange=ExchangeRequest(lines=lines),
            actor="staff:test",
            now=SYSTEM_CLOCK.now(),
        )


async def exchange_of(world: WooWorld, rma_id: uuid.UUID) -> Exchange:
    async with world.db.read_session() as session:
        [row] = (await session.exec(select(Exchange).where(Exchange.rma_id == rma_id))).all()
    return row


async def test_a_cheaper_replacement_is_a_child_order_placed_once(world: WooWorld) -> None:
    await world.connect()
    await allow_exchanges(world)
    reference, intent = world.stripe_paid_order([lamp(quantity=1)])
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"LAMP": "RESTOCK"}, {"LAMP": 1})
    # The store makes the order but its answer is lost: the retry finds it among the children.
    world.store.inject("drop_after_execute", endpoint="orders", method="POST")
    await exchange(world, rma_id, [ReplacementLine("Desk lamp, blue", 1, 3000, "LAMP-BLUE")])
    await world.run_jobs()
    await world.run_jobs()

    children = [o for o in world.store.orders() if o["parent_id"] == reference]
    [child] = children
    assert child["status"] == "processing"
    assert [fee["total"] for fee in child["fee_lines"]] == ["-30.00"]
    assert child["total"] == "0.00"
    placed = await exchange_of(world, rma_id)
    assert placed.status is ExchangeStatus.WAITING_FOR_FULFILMENT
    assert placed.platform_reference == str(child["id"])
    # The 10.00 the replacement costs less went back to the card, once.
    [stripe_refund] = world.stripe.refunds(world.stripe_account, payment_intent=intent)
    assert stripe_refund["amount"] == 1000


async def test_a_dearer_replacement_waits_for_payment_in_the_store(world: WooWorld) -> None:
    await world.connect()
    await allow_exchanges(world)
    reference, intent = world.stripe_paid_order([lamp(quantity=1)])
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"LAMP": "RESTOCK"}, {"LAMP": 1})
    await exchange(world, rma_id, [ReplacementLine("Floor lamp", 1, 6500, "FLOOR")])
    await world.run_jobs()

    [child] = [o for o in world.store.orders() if o["parent_id"] == reference]
    assert (child["status"], child["total"]) == ("pending", "25.00")
    assert (await exchange_of(world, rma_id)).due_minor == 2500
    assert world.stripe.refunds(world.stripe_account, payment_intent=intent) == []


async def test_a_replacement_that_cannot_be_placed_waits_for_staff(world: WooWorld) -> None:
    await world.connect()
    await allow_exchanges(world)
    reference, _intent = world.stripe_paid_order([lamp(quantity=1)])
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"LAMP": "RESTOCK"}, {"LAMP": 1})
    await world.disconnect()
    await exchange(world, rma_id, [ReplacementLine("Desk lamp, blue", 1, 4000, "LAMP-BLUE")])
    await world.run_jobs()

    async with world.db.read_session() as session:
        [part] = (await session.exec(select(Resolution).where(Resolution.rma_id == rma_id))).all()
    assert part.status is ResolutionStatus.REQUIRES_REVIEW
    assert "place it by hand" in (part.failure_reason or "")
    assert (await exchange_of(world, rma_id)).status is ExchangeStatus.PLACING
    # Staff place it in the store themselves and say which order it is.
    async with world.db.session() as session:
        await complete_manual_refund(
            session,
            world.merchant_id,
            part.id,
            reference="order 9001",
            actor="s",
            now=SYSTEM_CLOCK.now(),
        )
    placed = await exchange_of(world, rma_id)
    assert (placed.status, placed.platform_reference) == (
        ExchangeStatus.WAITING_FOR_FULFILMENT,
        "order 9001",
    )
    async with world.db.read_session() as session:
        rma = await session.get(Rma, rma_id)
    assert rma is not None and rma.status is RmaStatus.RESOLVED
