"""Money and stock through Shopify: refunds made once, spread over payments, restock once."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.entities import Customer, Order, Resolution, Rma, StoreCreditEntry, WebhookDelivery
from core.enums import PaymentProviderName, ResolutionStatus, RmaStatus, WebhookState
from core.errors import DomainError, RefundExceedsPaid
from core.jobs import failpoints
from core.usecases.resolutions import resolve_rma
from graphql_api.ids import to_global_id
from tests import factories as f
from tests.integration.shopify_world import (  # noqa: F401 (fixtures)
    Installed,
    ShopifyWorld,
    fake_shopify,
    shopify_db,
    shopify_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CRASH_POINTS = [
    "refund.after_claim",
    "refund.after_attempt_recorded",
    "refund.after_provider_answered",
    "refund.before_job_acknowledged",
]


async def resolution_of(world: ShopifyWorld, rma_id: uuid.UUID) -> Resolution:
    async with world.db.read_session() as session:
        found = (await session.exec(select(Resolution).where(Resolution.rma_id == rma_id))).all()
    [live] = [r for r in found if r.status is not ResolutionStatus.FAILED] or found
    return live


async def status_of(world: ShopifyWorld, rma_id: uuid.UUID) -> RmaStatus:
    async with world.db.read_session() as session:
        rma = await session.get(Rma, rma_id)
    assert rma is not None
    return rma.status


async def refund(world: ShopifyWorld, installed: Installed, rma: Rma, key: str | None = None):  # type: ignore[no-untyped-def]
    async with world.db.session() as session:
        return await resolve_rma(
            session,
            installed.merchant_id,
            rma.id,
            kind="REFUND",
            actor="staff:test",
            request_key=key,
            now=SYSTEM_CLOCK.now(),
        )


def refunded(world: ShopifyWorld, installed: Installed, order: Order) -> list[Decimal]:
    """Each refund Shopify holds for the order, as its total."""
    return [
        sum((Decimal(str(t["amount"])) for t in r["transactions"]), Decimal(0))
        for r in world.fake.refunds(installed.shop, order.external_id)
    ]


async def test_a_refund_reaches_shopify_once_and_its_webhook_is_recognised(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(
        installed, lines=[{"sku": "MUG", "price": "20.00", "quantity": 2}], shipping="0.00"
    )
    assert {p.provider for p in order.payments} == {PaymentProviderName.SHOPIFY_PAYMENTS}
    location = installed.shop.primary_location_gid
    item = world.fake.line_items(installed.shop, order.external_id)[0]["inventory_item_id"]
    stock_before = world.fake.inventory_level(installed.shop, item, location)

    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    chosen = await refund(world, installed, rma)
    await world.run_jobs()

    resolution = await resolution_of(world, rma.id)
    assert resolution.status is ResolutionStatus.SUCCEEDED
    assert resolution.provider_reference is not None
    assert resolution.provider_reference.startswith("gid://shopify/Refund/")
    assert await status_of(world, rma.id) is RmaStatus.RESOLVED
    assert refunded(world, installed, order) == [Decimal(chosen.resolution.amount_minor) / 100]
    # Shopify's reports count the returned unit; the refund itself restocks nothing.
    [made] = world.fake.refunds(installed.shop, order.external_id)
    assert [(item["quantity"], item["restock_type"]) for item in made["refund_line_items"]] == [
        (1, "no_restock")
    ]
    # Restocked once at the primary location; the refund itself restocked nothing.
    assert world.fake.inventory_level(installed.shop, item, location) == stock_before + 1

    # Shopify tells us about our own refund: recognised, not recorded as someone else's.
    for webhook in world.fake.webhooks(installed.shop, topic="refunds/create"):
        assert (await world.deliver(webhook)).status_code == 200
    await world.run_jobs()
    assert len(refunded(world, installed, order)) == 1
    synced = await world.order(installed.merchant_id, order.external_id)
    assert synced is not None and synced.refunded_elsewhere_minor == 0
    async with world.db.read_session() as session:
        deliveries = (
            await session.exec(
                select(WebhookDelivery).where(WebhookDelivery.topic == "refunds/create")
            )
        ).all()
    assert deliveries and all(d.state is WebhookState.PROCESSED for d in deliveries)
    assert world.fake.inventory_level(installed.shop, item, location) == stock_before + 1


async def test_a_card_and_a_gift_card_are_each_refunded_at_most_what_they_took(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(
        installed,
        lines=[{"sku": "A", "price": "30.00"}, {"sku": "B", "price": "20.00"}],
        shipping="0.00",
        transactions=[
            {"gateway": "shopify_payments", "amount": "35.00"},
            {"gateway": "gift_card", "amount": "15.00"},
        ],
    )
    assert sorted(p.gateway for p in order.payments) == ["gift_card", "shopify_payments"]
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)  # line A: 30.00
    await refund(world, installed, rma)
    await world.run_jobs()

    assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
    [made] = world.fake.refunds(installed.shop, order.external_id)
    parts = {t["gateway"]: Decimal(str(t["amount"])) for t in made["transactions"]}
    # Last payment first: the gift card gives back all it took, the card the rest.
    assert parts == {"gift_card": Decimal("15.00"), "shopify_payments": Decimal("15.00")}


async def test_a_refund_made_in_the_shopify_admin_is_no_longer_ours_to_make(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(
        installed, lines=[{"sku": "A", "price": "30.00"}], shipping="0.00"
    )
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    world.fake.refund_in_admin(installed.shop, order.external_id, amount="30.00")
    for webhook in world.fake.webhooks(installed.shop, topic="refunds/create"):
        assert (await world.deliver(webhook)).status_code == 200
    await world.run_jobs()

    synced = await world.order(installed.merchant_id, order.external_id)
    assert synced is not None and synced.refunded_elsewhere_minor == 3000
    with pytest.raises(RefundExceedsPaid):
        await refund(world, installed, rma)
    assert len(world.fake.refunds(installed.shop, order.external_id)) == 1


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_worker_dying_at_any_step_never_refunds_twice(
    world: ShopifyWorld, point: str
) -> None:
    installed = await world.install()
    orders = []
    for _ in range(3):
        order = await world.synced_order(installed, lines=[{"sku": "T", "price": "12.00"}])
        rma = await f.inspected_rma(world.db, installed.merchant_id, order)
        await world.run_jobs()  # the restock
        await refund(world, installed, rma)
        failpoints.arm(point)
        with pytest.raises(failpoints.Crash):
            await world.worker(concurrency=1).run_until_idle(within_seconds=60)
        await world.restart_after_crash()
        orders.append((order, rma))
    for order, rma in orders:
        assert len(world.fake.refunds(installed.shop, order.external_id)) == 1
        assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
        assert await status_of(world, rma.id) is RmaStatus.RESOLVED


async def test_an_answer_lost_after_shopify_refunded_is_found_not_repeated(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "T", "price": "12.00"}])
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    await world.run_jobs()
    world.fake.inject("drop_after_execute", shop=installed.shop, operation="refundCreate", times=3)
    await refund(world, installed, rma)
    await world.run_jobs()
    assert len(world.fake.refunds(installed.shop, order.external_id)) == 1
    assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED


async def test_twenty_concurrent_resolves_make_one_shopify_refund(world: ShopifyWorld) -> None:
    installed = await world.install()
    order = await world.synced_order(installed, lines=[{"sku": "T", "price": "40.00"}])
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)

    async def resolve(index: int) -> object:
        try:
            return (await refund(world, installed, rma, f"client-{index % 4}")).resolution.id
        except DomainError as error:
            return error

    results = await asyncio.gather(*(resolve(index) for index in range(20)))
    chosen = {r for r in results if not isinstance(r, DomainError)}
    assert len(chosen) == 1, results

    async def work() -> None:
        await world.worker().run_until_idle(within_seconds=60)

    await asyncio.gather(*(work() for _ in range(4)))
    await world.run_jobs()
    assert len(world.fake.refunds(installed.shop, order.external_id)) == 1


async def keep_credit_on_shopify(world: ShopifyWorld, installed: Installed) -> None:
    [listed] = (await world.gql("{ connections { id } }", token=installed.admin_key))["connections"]
    answer = await world.gql(
        """mutation($id: ID!) { updateConnectionSettings(id: $id, settings: [
             {name: "store_credit_destination", value: "platform"}]) { userErrors { code } } }""",
        {"id": listed["id"]},
        installed.admin_key,
    )
    assert answer["updateConnectionSettings"]["userErrors"] == []


async def ledger_of(world: ShopifyWorld, customer_id: uuid.UUID) -> list[tuple[str, int]]:
    async with world.db.read_session() as session:
        entries = (
            await session.exec(
                select(StoreCreditEntry)
                .where(StoreCreditEntry.customer_id == customer_id)
                .order_by(StoreCreditEntry.created_at)
            )
        ).all()
    return [(entry.kind.value, entry.amount_minor) for entry in entries]


async def credit_order(world: ShopifyWorld, installed: Installed) -> tuple[Order, Rma]:
    order = await world.synced_order(
        installed, customer=("Ada", "Lovelace"), lines=[{"sku": "C", "price": "30.00"}]
    )
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    async with world.db.session() as session:
        await resolve_rma(
            session,
            installed.merchant_id,
            rma.id,
            kind="STORE_CREDIT",
            actor="s",
            now=SYSTEM_CLOCK.now(),
        )
    return order, rma


async def test_store_credit_kept_on_shopify_is_moved_there_once_and_its_spending_read_back(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    await keep_credit_on_shopify(world, installed)
    order, rma = await credit_order(world, installed)
    # The first answer is lost after Shopify credited: the retry finds the credit.
    world.fake.inject(
        "drop_after_execute", shop=installed.shop, operation="storeCreditAccountCredit"
    )
    await world.run_jobs()

    resolution = await resolution_of(world, rma.id)
    async with world.db.read_session() as session:
        customer = await session.get(Customer, order.customer_id)
    assert customer is not None and customer.external_id
    credits = world.fake.store_credit_transactions(installed.shop, customer.external_id)
    assert [Decimal(str(t["amount"])) for t in credits] == [Decimal(resolution.amount_minor) / 100]
    # In the ledger: issued, then moved out; nothing left to spend through the service.
    assert await ledger_of(world, order.customer_id) == [
        ("ISSUED", resolution.amount_minor),
        ("TRANSFERRED", -resolution.amount_minor),
    ]
    balance = await world.gql(
        "query($id: ID!) { customer(id: $id) { storeCreditBalance { amountMinor } } }",
        {"id": to_global_id("Customer", order.customer_id)},
        installed.admin_key,
    )
    assert [b["amountMinor"] for b in balance["customer"]["storeCreditBalance"]] == [0]

    # The customer spends some at Shopify's checkout; sync reads it back once, as history.
    world.fake.spend_store_credit(installed.shop, customer.external_id, "12.50", "USD")
    await world.sync_now(installed)
    await world.sync_now(installed)
    assert sorted(await ledger_of(world, order.customer_id)) == [
        ("ISSUED", resolution.amount_minor),
        ("SPENT_ON_PLATFORM", -1250),
        ("TRANSFERRED", -resolution.amount_minor),
    ]
    again = await world.gql(
        "query($id: ID!) { customer(id: $id) { storeCreditBalance { amountMinor } } }",
        {"id": to_global_id("Customer", order.customer_id)},
        installed.admin_key,
    )
    assert again == balance


async def test_store_credit_stays_in_the_ledger_by_default(world: ShopifyWorld) -> None:
    installed = await world.install()
    order, rma = await credit_order(world, installed)
    await world.run_jobs()
    resolution = await resolution_of(world, rma.id)
    assert resolution.status is ResolutionStatus.SUCCEEDED
    assert await ledger_of(world, order.customer_id) == [("ISSUED", resolution.amount_minor)]


async def test_a_merchant_with_two_shops_refunds_and_restocks_through_the_orders_own_shop(
    world: ShopifyWorld,
) -> None:
    first = await world.install()
    assert first.admin_key is not None
    second = await world.install(world.new_shop(), admin_key=first.admin_key)
    order = await world.synced_order(second, lines=[{"sku": "TWO", "price": "15.00"}])
    assert order.connection_id == second.connection_id
    item = world.fake.line_items(second.shop, order.external_id)[0]["inventory_item_id"]
    before = world.fake.inventory_level(second.shop, item, second.shop.primary_location_gid)

    rma = await f.inspected_rma(world.db, second.merchant_id, order)
    await refund(world, second, rma)
    await world.run_jobs()

    assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
    assert len(world.fake.refunds(second.shop, order.external_id)) == 1
    after = world.fake.inventory_level(second.shop, item, second.shop.primary_location_gid)
    assert after == before + 1
    assert len(world.fake.returns(second.shop, order.external_id)) == 1


async def test_cash_on_delivery_is_refunded_by_staff_not_recorded_at_shopify(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    order = await world.synced_order(
        installed,
        lines=[{"sku": "COD", "price": "20.00"}],
        shipping="0.00",
        transactions=[{"gateway": "cash_on_delivery", "amount": "20.00"}],
    )
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    chosen = await refund(world, installed, rma)
    await world.run_jobs()
    assert chosen.resolution.provider is PaymentProviderName.MANUAL
    assert world.fake.refunds(installed.shop, order.external_id) == []


async def test_an_order_paid_in_another_currency_is_refunded_in_that_currency(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()  # the shop's currency is USD
    order = await world.synced_order(
        installed, currency="EUR", lines=[{"sku": "EU", "price": "25.00"}], shipping="0.00"
    )
    assert order.currency == "EUR"
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    await refund(world, installed, rma)
    await world.run_jobs()
    assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
    [made] = world.fake.refunds(installed.shop, order.external_id)
    assert {t.get("currency") for t in made["transactions"]} == {"EUR"}
