"""Returns of WooCommerce orders paid through Stripe: refunded once through our Stripe plugin,
recorded once in the store (never through its gateway), the right units back in stock,
whatever crashes in between."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.entities import Order, Resolution, RmaEvent, StoreCreditEntry
from core.enums import ItemCondition, PaymentProviderName, ResolutionStatus
from core.jobs import failpoints
from core.money import parse_decimal, to_decimal_string
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma, record_shipment
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import complete_manual_refund, resolve_rma
from tests.integration.woocommerce_world import (  # noqa: F401 (fixtures)
    WooWorld,
    fake_stripe,
    store_fixture,
    woo_db,
    woo_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def synced(world: WooWorld, reference: int) -> Order:
    assert 200 in await world.deliver_webhooks()
    await world.run_jobs()
    order = await world.order(reference)
    assert order is not None
    return order


async def returned(
    world: WooWorld, order: Order, dispositions: dict[str, str], quantities: dict[str, int]
) -> uuid.UUID:
    """The customer returns ``quantities`` of lines (by SKU); the warehouse receives them and
    decides each line's disposition. Returns the RMA id."""
    now = SYSTEM_CLOCK.now()
    by_sku = {line.sku: line for line in order.lines}
    async with world.db.session() as session:
        rma = await request_rma(
            session,
            world.merchant_id,
            order_id=order.id,
            lines=[
                ReturnLineInput(by_sku[sku].id, quantity, "SIZE_TOO_SMALL", ItemCondition.UNOPENED)
                for sku, quantity in quantities.items()
            ],
            actor="customer:test",
            now=now,
        )
    async with world.db.session() as session:
        await record_shipment(
            session,
            world.merchant_id,
            rma.id,
            carrier="UPS",
            tracking_number="1Z999AA1",
            actor="customer:test",
            now=now,
        )
    async with world.db.session() as session:
        rma = await receive_rma(
            session,
            world.merchant_id,
            rma.id,
            lines=[ReceivedLine(item.id, item.quantity) for item in rma.lines],
            actor="staff:test",
            now=now,
        )
    sku_of = {line.id: line.sku for line in order.lines}
    async with world.db.session() as session:
        await inspect_rma(
            session,
            world.merchant_id,
            rma.id,
            lines=[
                InspectedLine(
                    item.id, ItemCondition.UNOPENED, dispositions[sku_of[item.order_line_id]]
                )
                for item in rma.lines
            ],
            actor="staff:test",
            now=now,
        )
    await world.run_jobs()
    return rma.id


async def resolve(world: WooWorld, rma_id: uuid.UUID, kind: str = "REFUND") -> Resolution:
    async with world.db.session() as session:
        chosen = await resolve_rma(
            session,
            world.merchant_id,
            rma_id,
            kind=kind,
            actor="staff:test",
            now=SYSTEM_CLOCK.now(),
        )
    return chosen.resolution


async def resolution(world: WooWorld, resolution_id: uuid.UUID) -> Resolution:
    async with world.db.read_session() as session:
        row = await session.get(Resolution, resolution_id)
    assert row is not None
    return row


async def events(world: WooWorld, rma_id: uuid.UUID, kind: str) -> list[RmaEvent]:
    async with world.db.read_session() as session:
        return list(
            (
                await session.exec(
                    select(RmaEvent).where(RmaEvent.rma_id == rma_id, RmaEvent.kind == kind)
                )
            ).all()
        )


def lamp(**details: Any) -> dict[str, Any]:
    return {"sku": "LAMP", "price": "40.00", "quantity": 2, "stock": 5, **details}


async def test_a_stripe_paid_return_is_refunded_once_and_recorded_once_with_restock(
    world: WooWorld,
) -> None:
    await world.connect()
    reference, intent = world.stripe_paid_order([lamp()])
    order = await synced(world, reference)
    product = int(world.store.order(reference)["line_items"][0]["product_id"])
    stock = world.store.stock_quantity(product)

    rma_id = await returned(world, order, {"LAMP": "RESTOCK"}, {"LAMP": 1})
    chosen = await resolve(world, rma_id)
    await world.run_jobs()

    settled = await resolution(world, chosen.id)
    assert settled.status is ResolutionStatus.SUCCEEDED
    [stripe_refund] = world.stripe.refunds(world.stripe_account, payment_intent=intent)
    assert stripe_refund["amount"] == settled.amount_minor == 4000
    [recorded] = world.store.refunds(reference)
    assert world.store.gateway_refunds() == []  # recorded only: no second refund
    assert recorded["refunded_payment"] is False
    assert recorded["amount"] == "40.00"
    assert "rma-resolution:" in recorded["reason"] and stripe_refund["id"] in recorded["reason"]
    [item] = recorded["line_items"]
    assert item["quantity"] == -1
    assert world.store.stock_quantity(product) == stock + 1
    [note] = await events(world, rma_id, "REFUND_RECORDED")
    assert str(recorded["id"]) in note.message

    # The store's order.updated comes back: our own refund is not "refunded elsewhere".
    assert set(await world.deliver_webhooks()) == {200}
    await world.run_jobs()
    again = await world.order(reference)
    assert again is not None and again.refunded_elsewhere_minor == 0


CRASH_POINTS = [
    "refund.after_provider_answered",
    "refund.before_job_acknowledged",
    "writeback.after_platform_answered",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_worker_dying_between_stripe_and_the_store_records_once(
    world: WooWorld, point: str
) -> None:
    await world.connect()
    reference, intent = world.stripe_paid_order([lamp(sku="DESK", price="80.00", quantity=1)])
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"DESK": "RESTOCK"}, {"DESK": 1})
    chosen = await resolve(world, rma_id)

    failpoints.arm(point)
    with pytest.raises(failpoints.Crash):
        await world.worker(concurrency=1).run_until_idle(within_seconds=60)
    await world.restart_after_crash()

    assert (await resolution(world, chosen.id)).status is ResolutionStatus.SUCCEEDED
    assert len(world.stripe.refunds(world.stripe_account, payment_intent=intent)) == 1
    assert len(world.store.refunds(reference)) == 1
    assert world.store.gateway_refunds() == []


async def test_a_lost_answer_from_the_store_is_found_not_recorded_twice(world: WooWorld) -> None:
    await world.connect()
    reference, _intent = world.stripe_paid_order([lamp(sku="RUG", price="30.00", quantity=1)])
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"RUG": "RESTOCK"}, {"RUG": 1})
    fault = world.store.inject(
        "drop_after_execute", endpoint="orders/*/refunds", method="POST", times=2
    )
    await resolve(world, rma_id)
    await world.run_jobs()
    assert fault.hits == 1  # the retry found the refund and sent nothing

    assert len(world.store.refunds(reference)) == 1
    assert len(await events(world, rma_id, "REFUND_RECORDED")) == 1


async def test_only_restocked_lines_go_back_into_stock(world: WooWorld) -> None:
    await world.connect()
    reference, _intent = world.stripe_paid_order(
        [
            {"sku": "CUP", "price": "10.00", "quantity": 1, "stock": 3},
            {"sku": "VASE", "price": "25.00", "quantity": 1, "stock": 3},
        ]
    )
    order = await synced(world, reference)
    products = {
        line["sku"]: int(line["product_id"]) for line in world.store.order(reference)["line_items"]
    }
    before = {sku: world.store.stock_quantity(product) for sku, product in products.items()}

    rma_id = await returned(
        world, order, {"CUP": "RESTOCK", "VASE": "SCRAP"}, {"CUP": 1, "VASE": 1}
    )
    chosen = await resolve(world, rma_id)
    await world.run_jobs()

    assert world.store.stock_quantity(products["CUP"]) == before["CUP"] + 1
    assert world.store.stock_quantity(products["VASE"]) == before["VASE"]
    recorded = world.store.refunds(reference)
    assert len(recorded) == 2  # api_restock covers a whole refund: restocked lines apart
    total = sum(parse_decimal(refund["amount"], "USD") for refund in recorded)
    assert total == (await resolution(world, chosen.id)).amount_minor == 3500
    assert world.store.gateway_refunds() == []


async def test_a_return_settled_with_store_credit_is_recorded_without_money(
    world: WooWorld,
) -> None:
    await world.connect()
    reference, intent = world.stripe_paid_order([lamp(sku="TENT", price="60.00", quantity=1)])
    order = await synced(world, reference)
    product = int(world.store.order(reference)["line_items"][0]["product_id"])
    stock = world.store.stock_quantity(product)
    rma_id = await returned(world, order, {"TENT": "RESTOCK"}, {"TENT": 1})
    await resolve(world, rma_id, kind="STORE_CREDIT")
    await world.run_jobs()

    assert world.stripe.refunds(world.stripe_account, payment_intent=intent) == []
    [recorded] = world.store.refunds(reference)
    assert recorded["amount"] == "0.00" and "store credit" in recorded["reason"]
    assert world.store.stock_quantity(product) == stock + 1


SETTINGS = """mutation($id: ID!, $s: [ConnectionSettingInput!]!) {
  updateConnectionSettings(id: $id, settings: $s) { userErrors { code field message } } }"""


async def refund_other_gateways_through_the_store(world: WooWorld) -> None:
    listed = (await world.gql("{ connections { id platform } }"))["connections"]
    [store] = [entry for entry in listed if entry["platform"] == "WOOCOMMERCE"]
    answer = await world.gql(
        SETTINGS, {"id": store["id"], "s": [{"name": "refund_other_gateways", "value": "store"}]}
    )
    assert answer["updateConnectionSettings"]["userErrors"] == []


def paypal_order(world: WooWorld, sku: str, price: str) -> int:
    return world.store.create_order(
        email=f"{sku.lower()}@example.com",
        lines=[{"sku": sku, "price": price, "quantity": 1, "stock": 4}],
        payment_method="ppcp-gateway",
        transaction_id=f"PAYPAL-{sku}",
    )


async def test_other_gateways_are_refunded_by_staff_and_recorded_in_the_store(
    world: WooWorld,
) -> None:
    await world.connect()
    reference = paypal_order(world, "BOOK", "15.00")
    order = await synced(world, reference)
    assert [p.provider for p in order.payments] == [PaymentProviderName.MANUAL]
    rma_id = await returned(world, order, {"BOOK": "RESTOCK"}, {"BOOK": 1})
    chosen = await resolve(world, rma_id)
    await world.run_jobs()
    assert world.store.refunds(reference) == []  # nothing happens until staff say so

    async with world.db.session() as session:
        await complete_manual_refund(
            session,
            world.merchant_id,
            chosen.id,
            reference="PAYPAL-REFUND-1",
            actor="staff:test",
            now=SYSTEM_CLOCK.now(),
        )
    await world.run_jobs()
    [recorded] = world.store.refunds(reference)
    assert recorded["refunded_payment"] is False and recorded["amount"] == "15.00"
    assert world.store.gateway_refunds() == []


async def test_an_opted_in_store_refunds_other_gateways_itself_once(world: WooWorld) -> None:
    await world.connect()
    await refund_other_gateways_through_the_store(world)
    reference = paypal_order(world, "PEN", "20.00")
    order = await synced(world, reference)
    assert [p.provider for p in order.payments] == [PaymentProviderName.WOOCOMMERCE]
    product = int(world.store.order(reference)["line_items"][0]["product_id"])
    stock = world.store.stock_quantity(product)
    rma_id = await returned(world, order, {"PEN": "RESTOCK"}, {"PEN": 1})
    # The first answer is lost after the store refunded: the retry finds it.
    fault = world.store.inject("drop_after_execute", endpoint="orders/*/refunds", method="POST")
    chosen = await resolve(world, rma_id)
    await world.run_jobs()
    assert fault.hits == 1

    assert (await resolution(world, chosen.id)).status is ResolutionStatus.SUCCEEDED
    [gateway] = world.store.gateway_refunds()
    assert gateway.amount == "20.00" and gateway.payment_method == "ppcp-gateway"
    refunds = world.store.refunds(reference)
    assert sorted((r["refunded_payment"], r["amount"]) for r in refunds) == [
        (False, "0.00"),  # the units back in stock, recorded apart
        (True, "20.00"),
    ]
    assert world.store.stock_quantity(product) == stock + 1


async def test_a_failing_store_gateway_goes_back_to_staff_with_its_message(
    world: WooWorld,
) -> None:
    await world.connect()
    await refund_other_gateways_through_the_store(world)
    reference = paypal_order(world, "INK", "8.00")
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"INK": "SCRAP"}, {"INK": 1})
    world.store.fail_gateway("PayPal: the capture is too old to refund")
    chosen = await resolve(world, rma_id)
    await world.run_jobs()

    failed = await resolution(world, chosen.id)
    assert failed.status is ResolutionStatus.FAILED
    assert "too old to refund" in (failed.failure_reason or "")
    assert world.store.refunds(reference) == []


async def ledger(world: WooWorld, customer_id: uuid.UUID) -> list[tuple[str, int, str]]:
    async with world.db.read_session() as session:
        entries = (
            await session.exec(
                select(StoreCreditEntry)
                .where(StoreCreditEntry.customer_id == customer_id)
                .order_by(col(StoreCreditEntry.created_at))
            )
        ).all()
    return [(entry.kind.value, entry.amount_minor, entry.reference or "") for entry in entries]


async def test_store_credit_kept_in_the_store_is_one_coupon_for_the_customer(
    world: WooWorld,
) -> None:
    await world.connect()
    listed = (await world.gql("{ connections { id platform } }"))["connections"]
    [store] = [entry for entry in listed if entry["platform"] == "WOOCOMMERCE"]
    answer = await world.gql(
        SETTINGS,
        {"id": store["id"], "s": [{"name": "store_credit_destination", "value": "platform"}]},
    )
    assert answer["updateConnectionSettings"]["userErrors"] == []
    reference, _intent = world.stripe_paid_order(
        [lamp(sku="SOFA", price="70.00", quantity=1)], email="Guest@Example.com"
    )
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"SOFA": "RESTOCK"}, {"SOFA": 1})
    fault = world.store.inject("drop_after_execute", endpoint="coupons", method="POST")
    chosen = await resolve(world, rma_id, kind="STORE_CREDIT")
    await world.run_jobs()

    assert fault.hits == 1
    [coupon] = world.store.coupons()
    amount = (await resolution(world, chosen.id)).amount_minor
    assert coupon["amount"] == to_decimal_string(amount, "USD")
    assert coupon["email_restrictions"] == ["guest@example.com"]
    assert coupon["usage_limit"] == 1 and coupon["discount_type"] == "fixed_cart"
    assert await ledger(world, order.customer_id) == [
        ("ISSUED", amount, ""),
        ("TRANSFERRED", -amount, coupon["code"]),
    ]

    # The customer spends it at the store's checkout; the next poll writes it in the history.
    world.store.use_coupon(coupon["code"], email="guest@example.com")
    await world.poll()
    await world.poll()
    assert sorted(await ledger(world, order.customer_id)) == [
        ("ISSUED", amount, ""),
        ("SPENT_ON_PLATFORM", -amount, f"{coupon['code']}:used"),
        ("TRANSFERRED", -amount, coupon["code"]),
    ]


async def test_a_store_refund_saved_before_its_meta_is_found_and_never_sent_again(
    world: WooWorld,
) -> None:
    """WooCommerce saves a refund (with its reason), asks the gateway, and adds meta_data last:
    a store that died in between leaves a refund only its reason names."""
    await world.connect()
    await refund_other_gateways_through_the_store(world)
    reference = paypal_order(world, "LAMP", "30.00")
    order = await synced(world, reference)
    rma_id = await returned(world, order, {"LAMP": "SCRAP"}, {"LAMP": 1})
    chosen = await resolve(world, rma_id)
    # As if an earlier attempt's request reached the store, which refunded and then died.
    api = world.store_client()
    half_done = api.post(
        f"orders/{reference}/refunds",
        {"amount": "30.00", "reason": f"earlier [{chosen.idempotency_key}]", "api_refund": True},
    )
    assert half_done.status_code == 201
    await world.run_jobs()

    assert len(world.store.gateway_refunds()) == 1  # the earlier one only
    assert len(world.store.refunds(reference)) == 1
    pending = await resolution(world, chosen.id)
    assert pending.status is ResolutionStatus.PROCESSING
    assert pending.provider_reference == str(half_done.json()["id"])
