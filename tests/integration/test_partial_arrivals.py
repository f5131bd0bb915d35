"""A return that comes back in several parcels (issue: the warehouse never hits a dead end).

Before: once the first parcel was inspected the RMA accepted no more goods, and an RMA could
carry one live resolution only, so the rest of a return could never be refunded.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order, Receipt, Resolution, Rma, RmaEvent
from core.enums import (
    PaymentProviderName,
    ReceiptStatus,
    ResolutionKind,
    ResolutionStatus,
    RmaStatus,
)
from core.errors import DomainError, InvalidInput, InvalidTransition, QuantityExceeded
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma, record_shipment
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.remaining_units import cancel_remaining_units, expire_remaining_units
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import (
    close_rma,
    complete_manual_refund,
    record_resolution_outcome,
    resolve_rma,
)
from core.usecases.review import refuse_goods
from testkit.fakes import FakeStripe
from tests import factories as f
from tests.integration.money_world import World, fake_stripe, make_world, money_db, money_url

__all__ = ["fake_stripe", "money_db", "money_url"]

STAFF = f.STAFF


async def asked_for(db: Database, merchant_id: uuid.UUID, order: Order, quantity: int) -> Rma:
    async with db.session() as session:
        return await request_rma(
            session,
            merchant_id,
            order_id=order.id,
            lines=[ReturnLineInput(order.lines[0].id, quantity, "SIZE_TOO_SMALL", "UNOPENED")],
            actor="customer:test",
            now=SYSTEM_CLOCK.now(),
        )


async def parcel(db: Database, merchant_id: uuid.UUID, rma: Rma, units: int) -> Rma:
    async with db.session() as session:
        return await receive_rma(
            session,
            merchant_id,
            rma.id,
            lines=[ReceivedLine(rma.lines[0].id, units)],
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )


async def inspect(db: Database, merchant_id: uuid.UUID, rma: Rma) -> Rma:
    async with db.session() as session:
        return await inspect_rma(
            session,
            merchant_id,
            rma.id,
            lines=[InspectedLine(rma.lines[0].id, "UNOPENED", "RESTOCK")],
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )


async def resolve(
    db: Database, merchant_id: uuid.UUID, rma: Rma, kind: str = "REFUND", **extra: object
) -> Resolution:
    async with db.session() as session:
        chosen = await resolve_rma(
            session,
            merchant_id,
            rma.id,
            kind=kind,
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
            **extra,  # type: ignore[arg-type]
        )
    return chosen.resolution


async def by_hand(db: Database, merchant_id: uuid.UUID, resolution: Resolution) -> Rma:
    async with db.session() as session:
        chosen = await complete_manual_refund(
            session,
            merchant_id,
            resolution.id,
            reference=f"bank-{resolution.id.hex[:6]}",
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    return chosen.rma


async def state(db: Database, rma_id: uuid.UUID) -> tuple[Rma, list[ReceiptStatus], list[str]]:
    async with db.read_session() as session:
        rma = await session.get(Rma, rma_id)
        receipts = (
            await session.exec(
                select(Receipt.status)
                .where(Receipt.rma_id == rma_id)
                .order_by(col(Receipt.sequence))
            )
        ).all()
        events = (
            await session.exec(
                select(RmaEvent.kind)
                .where(RmaEvent.rma_id == rma_id)
                .order_by(col(RmaEvent.sequence))
            )
        ).all()
    assert rma is not None
    return rma, list(receipts), list(events)


async def unpaid_order(db: Database, merchant_id: uuid.UUID, quantity: int = 2) -> Order:
    """An order paid outside any provider: its refunds are made by staff."""
    return await f.order(
        db, merchant_id, lines=[f.line(quantity=quantity, unit_price_minor=1000)], stripe_paid=False
    )


async def stripe_order(world: World, quantity: int, unit: int, discount: int, tax: int) -> Order:
    total = unit * quantity - discount + tax
    payment_intent, _charge = world.fake.create_payment(world.account, total, "usd")
    async with world.db.session() as session:
        return await upsert_order(
            session,
            world.merchant_id,
            OrderInput(
                platform="storefront",
                external_id=uuid.uuid4().hex,
                order_number=f"#{uuid.uuid4().hex[:6]}",
                currency="USD",
                placed_at=f.NOW,
                delivered_at=f.NOW,
                customer=CustomerInput(email=f"{uuid.uuid4().hex[:8]}@example.com"),
                lines=[
                    OrderLineInput(
                        "L1", "Mug", quantity, unit, discount_minor=discount, tax_minor=tax
                    )
                ],
                payments=[PaymentInput(PaymentProviderName.STRIPE, payment_intent, total, "USD")],
            ),
            now=SYSTEM_CLOCK.now(),
        )


async def test_each_parcel_is_refunded_once_for_what_it_holds_and_the_line_adds_up_exactly(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    # 3 x 10.00 less 0.01 discount, 0.95 tax: shares that do not divide evenly.
    order = await stripe_order(world, quantity=3, unit=1000, discount=1, tax=95)
    rma = await asked_for(world.db, world.merchant_id, order, 3)
    async with world.db.session() as session:
        await record_shipment(
            session,
            world.merchant_id,
            rma.id,
            carrier="UPS",
            tracking_number="1Z999AA10123456784",
            actor="customer",
            now=SYSTEM_CLOCK.now(),
        )

    rma = await parcel(world.db, world.merchant_id, rma, 1)
    await inspect(world.db, world.merchant_id, rma)
    first = await resolve(world.db, world.merchant_id, rma)
    await world.run_jobs()
    settled, receipts, _events = await state(world.db, rma.id)
    assert settled.status is RmaStatus.RESOLVED
    assert receipts == [ReceiptStatus.RESOLVED]
    assert settled.rest_ended_at is None  # two units are still expected

    rma = await parcel(world.db, world.merchant_id, rma, 2)
    assert rma.status is RmaStatus.RECEIVED
    await inspect(world.db, world.merchant_id, rma)
    second = await resolve(world.db, world.merchant_id, rma)
    await world.run_jobs()
    await world.run_jobs()  # nothing is sent twice

    settled, receipts, _events = await state(world.db, rma.id)
    assert settled.status is RmaStatus.RESOLVED
    assert receipts == [ReceiptStatus.RESOLVED, ReceiptStatus.RESOLVED]
    assert settled.rest_ended_at is not None
    refunds = fake_stripe.refunds(world.account)
    assert sorted(refund["amount"] for refund in refunds) == sorted(
        [first.amount_minor, second.amount_minor]
    )
    # One unit's share, then the two others': the whole line, to the cent.
    assert (first.amount_minor, second.amount_minor) == (999 + 31, 2000 + 64)
    assert sum(refund["amount"] for refund in refunds) == 3 * 1000 - 1 + 95
    assert first.receipt_id != second.receipt_id

    with pytest.raises(InvalidTransition):
        await parcel(world.db, world.merchant_id, rma, 1)


async def test_the_next_parcel_may_arrive_while_the_first_is_being_refunded(db: Database) -> None:
    shop = await f.merchant(db)
    rma = await asked_for(db, shop.id, await unpaid_order(db, shop.id), 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    first = await resolve(db, shop.id, rma)
    assert first.provider is PaymentProviderName.MANUAL  # waits for staff: RESOLVING

    rma = await parcel(db, shop.id, rma, 1)
    assert rma.status is RmaStatus.RECEIVED
    after = await by_hand(db, shop.id, first)
    assert after.status is RmaStatus.RECEIVED  # the second parcel still waits for inspection
    _rma, receipts, events = await state(db, rma.id)
    assert receipts == [ReceiptStatus.RESOLVED, ReceiptStatus.RECEIVED]
    assert events[-1] == "RESOLUTION_SETTLED"

    await inspect(db, shop.id, rma)
    second = await resolve(db, shop.id, rma)
    done = await by_hand(db, shop.id, second)
    assert done.status is RmaStatus.RESOLVED
    assert first.amount_minor + second.amount_minor == 2000


async def test_concurrent_resolutions_of_one_parcel_make_one(db: Database) -> None:
    shop = await f.merchant(db)
    rma = await asked_for(db, shop.id, await unpaid_order(db, shop.id), 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)

    async def attempt(index: int) -> Resolution | DomainError:
        try:
            return await resolve(db, shop.id, rma, request_key=f"desk-{index}-{rma.id}")
        except DomainError as error:
            return error

    outcomes = await asyncio.gather(*(attempt(index) for index in range(6)))
    made = [outcome for outcome in outcomes if isinstance(outcome, Resolution)]
    assert len(made) == 1
    assert all(isinstance(o, InvalidTransition) for o in outcomes if o not in made)
    async with db.read_session() as session:
        count = (
            await session.exec(select(sa.func.count()).where(col(Resolution.rma_id) == rma.id))
        ).one()
    assert count == 1


async def test_the_database_allows_one_live_resolution_per_parcel(db: Database) -> None:
    shop = await f.merchant(db)
    order = await unpaid_order(db, shop.id)
    rma = await asked_for(db, shop.id, order, 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    first = await resolve(db, shop.id, rma)
    await by_hand(db, shop.id, first)
    rma = await parcel(db, shop.id, rma, 1)
    async with db.read_session() as session:
        second_receipt = (
            await session.exec(
                select(Receipt).where(Receipt.rma_id == rma.id, Receipt.sequence == 2)
            )
        ).one()

    def row(receipt_id: uuid.UUID) -> Resolution:
        return Resolution(
            merchant_id=shop.id,
            rma_id=rma.id,
            receipt_id=receipt_id,
            order_id=order.id,
            kind=ResolutionKind.REFUND,
            provider=PaymentProviderName.MANUAL,
            status=ResolutionStatus.PENDING,
            amount_minor=1,
            currency="USD",
            idempotency_key=f"direct-{uuid.uuid4()}",
        )

    with pytest.raises(IntegrityError):
        async with db.session() as session, session.begin():
            session.add(row(first.receipt_id))  # a second live one for the first parcel
    async with db.session() as session, session.begin():
        session.add(row(second_receipt.id))  # the next parcel's own is fine


async def test_staff_cancel_the_rest_and_the_customer_may_ask_for_it_again(db: Database) -> None:
    shop = await f.merchant(db)
    order = await unpaid_order(db, shop.id)
    rma = await asked_for(db, shop.id, order, 2)
    rma = await parcel(db, shop.id, rma, 1)
    with pytest.raises(QuantityExceeded):
        await asked_for(db, shop.id, order, 1)  # the second unit is still on its way back

    async with db.session() as session:
        rma = await cancel_remaining_units(
            session, shop.id, rma.id, reason="the customer kept it", actor=STAFF, now=f.NOW
        )
    assert rma.status is RmaStatus.RECEIVED  # the parcel that came is unaffected
    _rma, _receipts, events = await state(db, rma.id)
    assert "REST_CANCELLED" in events
    again = await asked_for(db, shop.id, order, 1)
    assert again.status is RmaStatus.AUTHORIZED
    with pytest.raises(InvalidTransition, match="nothing more is expected"):
        await parcel(db, shop.id, rma, 1)
    async with db.session() as session:
        with pytest.raises(InvalidTransition):
            await cancel_remaining_units(
                session, shop.id, rma.id, reason="again", actor=STAFF, now=f.NOW
            )


async def test_nothing_arrived_yet_means_cancel_the_whole_return_instead(db: Database) -> None:
    shop = await f.merchant(db)
    rma = await asked_for(db, shop.id, await unpaid_order(db, shop.id), 2)
    async with db.session() as session:
        with pytest.raises(InvalidTransition, match="cancelRma"):
            await cancel_remaining_units(
                session, shop.id, rma.id, reason="x", actor=STAFF, now=f.NOW
            )


async def test_the_rest_expires_by_the_policy_and_tracking_may_be_added_until_then(
    db: Database,
) -> None:
    shop = await f.merchant(db, authorization_valid_days=10)
    rma = await asked_for(db, shop.id, await unpaid_order(db, shop.id), 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    resolution = await resolve(db, shop.id, rma)
    rma = await by_hand(db, shop.id, resolution)
    assert rma.status is RmaStatus.RESOLVED
    async with db.session() as session:
        rma = await record_shipment(
            session,
            shop.id,
            rma.id,
            carrier="UPS",
            tracking_number="1Z999AA10123456785",
            actor="customer",
            now=SYSTEM_CLOCK.now(),
        )
    assert rma.status is RmaStatus.RESOLVED  # the second parcel's tracking, status unchanged
    assert rma.rest_expires_at is not None
    assert rma.rest_expires_at >= SYSTEM_CLOCK.now() + timedelta(days=9)

    async with db.session() as session:
        await expire_remaining_units(session, now=rma.rest_expires_at - timedelta(seconds=1))
    kept, _receipts, _events = await state(db, rma.id)
    assert kept.rest_ended_at is None
    async with db.session() as session:
        assert (
            await expire_remaining_units(session, now=rma.rest_expires_at + timedelta(seconds=1))
            >= 1
        )
    ended, _receipts, events = await state(db, rma.id)
    assert ended.rest_ended_at is not None
    assert ended.status is RmaStatus.RESOLVED
    assert events[-1] == "REST_EXPIRED"


async def test_refusing_a_later_parcel_keeps_the_earlier_refund(db: Database) -> None:
    shop = await f.merchant(db)
    rma = await asked_for(db, shop.id, await unpaid_order(db, shop.id), 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    await by_hand(db, shop.id, await resolve(db, shop.id, rma))
    rma = await parcel(db, shop.id, rma, 1)
    async with db.session() as session:
        refused = await refuse_goods(
            session,
            shop.id,
            rma.id,
            reason="worn",
            outcome="DISPOSE",
            customer_consented=True,
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    assert refused.status is RmaStatus.RESOLVED
    _rma, receipts, events = await state(db, rma.id)
    assert receipts == [ReceiptStatus.RESOLVED, ReceiptStatus.REFUSED]
    assert events[-1] == "GOODS_REFUSED"


async def test_closing_a_partly_returned_rma_stops_waiting_for_the_rest(db: Database) -> None:
    shop = await f.merchant(db)
    order = await unpaid_order(db, shop.id)
    rma = await asked_for(db, shop.id, order, 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    await by_hand(db, shop.id, await resolve(db, shop.id, rma))
    async with db.session() as session:
        closed = await close_rma(session, shop.id, rma.id, actor=STAFF, now=SYSTEM_CLOCK.now())
    assert closed.status is RmaStatus.CLOSED
    assert closed.rest_ended_at is not None
    assert (await asked_for(db, shop.id, order, 1)).status is RmaStatus.AUTHORIZED


async def test_a_failed_parcel_priced_again_after_a_later_one_still_adds_up_to_the_line(
    db: Database,
) -> None:
    shop = await f.merchant(db)
    # 3 units for 100 in all: shares 33, 33, 34.
    order = await f.order(
        db,
        shop.id,
        lines=[f.line(quantity=3, unit_price_minor=100, discount_minor=200)],
        stripe_paid=False,
    )
    rma = await asked_for(db, shop.id, order, 3)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    first = await resolve(db, shop.id, rma)
    rma = await parcel(db, shop.id, rma, 2)
    await inspect(db, shop.id, rma)
    second = await resolve(db, shop.id, rma)
    async with db.session() as session:
        await record_resolution_outcome(
            session,
            shop.id,
            first.id,
            succeeded=False,
            failure_reason="the bank bounced it",
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    again = await resolve(db, shop.id, rma, receipt_id=first.receipt_id)
    assert (first.amount_minor, second.amount_minor) == (33, 67)
    assert second.amount_minor + again.amount_minor == 100  # not 67 + 34


async def test_refusing_needs_the_parcel_named_when_two_wait(db: Database) -> None:
    shop = await f.merchant(db)
    rma = await asked_for(db, shop.id, await unpaid_order(db, shop.id), 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    rma = await parcel(db, shop.id, rma, 1)
    details = {"reason": "worn", "outcome": "DISPOSE", "customer_consented": True}
    async with db.session() as session:
        with pytest.raises(InvalidInput) as caught:
            await refuse_goods(
                session, shop.id, rma.id, actor=STAFF, now=SYSTEM_CLOCK.now(), **details
            )
    assert caught.value.field == "receiptId"
    async with db.read_session() as session:
        first = (
            await session.exec(
                select(Receipt).where(Receipt.rma_id == rma.id, Receipt.sequence == 1)
            )
        ).one()
    async with db.session() as session:
        refused = await refuse_goods(
            session,
            shop.id,
            rma.id,
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
            receipt_id=first.id,
            **details,
        )
    assert refused.status is RmaStatus.RECEIVED  # the second parcel waits for inspection
    _rma, receipts, _events = await state(db, rma.id)
    assert receipts == [ReceiptStatus.REFUSED, ReceiptStatus.RECEIVED]


async def test_refusing_the_only_parcel_ends_the_return_and_the_rest_with_it(db: Database) -> None:
    shop = await f.merchant(db)
    order = await unpaid_order(db, shop.id)
    rma = await asked_for(db, shop.id, order, 2)
    rma = await parcel(db, shop.id, rma, 1)
    async with db.session() as session:
        refused = await refuse_goods(
            session,
            shop.id,
            rma.id,
            reason="not ours",
            outcome="SEND_BACK",
            carrier="UPS",
            tracking_number="1Z999AA10123456784",
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    assert refused.status is RmaStatus.REJECTED
    assert refused.rest_ended_at is not None and refused.rest_expires_at is None
    async with db.session() as session:
        with pytest.raises(InvalidTransition):
            await record_shipment(
                session,
                shop.id,
                rma.id,
                carrier="UPS",
                tracking_number="1Z999AA10123456785",
                actor="customer",
                now=SYSTEM_CLOCK.now(),
            )
    # Both units are the customer's again (one sent back, one never sent).
    assert (await asked_for(db, shop.id, order, 2)).status is RmaStatus.AUTHORIZED


async def test_units_refused_in_a_resolved_return_may_be_asked_for_again(db: Database) -> None:
    shop = await f.merchant(db)
    order = await unpaid_order(db, shop.id)
    rma = await asked_for(db, shop.id, order, 2)
    rma = await parcel(db, shop.id, rma, 1)
    await inspect(db, shop.id, rma)
    await by_hand(db, shop.id, await resolve(db, shop.id, rma))
    rma = await parcel(db, shop.id, rma, 1)
    async with db.session() as session:
        await refuse_goods(
            session,
            shop.id,
            rma.id,
            reason="wrong item sent back",
            outcome="SEND_BACK",
            carrier="UPS",
            tracking_number="1Z999AA10123456786",
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    assert (await asked_for(db, shop.id, order, 1)).status is RmaStatus.AUTHORIZED
    with pytest.raises(QuantityExceeded):
        await asked_for(db, shop.id, order, 1)  # the one refunded stays returned
