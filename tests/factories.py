"""Build a merchant, a policy and orders in a line or two, through the real use cases."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import timedelta

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Merchant, Order, Rma
from core.enums import ItemCondition, PaymentProviderName, ReturnReason
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma, record_shipment
from core.usecases.merchants import create_merchant
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.requests import ReturnLineInput, request_rma

# "Now" for the tests: the real time when the suite starts, so data built here agrees with a
# running app's clock on any day (and under a clock moved years ahead). Tests that need an exact
# instant pass it to the use cases, or give the app a FixedClock.
NOW = SYSTEM_CLOCK.now().replace(microsecond=0)
STAFF = "staff:test"
_counter = itertools.count(1)


async def merchant(db: Database, **policy: object) -> Merchant:
    async with db.session() as session:
        created = await create_merchant(
            session, name=f"Shop {next(_counter)}", now=SYSTEM_CLOCK.now()
        )
    if policy:
        async with db.session() as session:
            await update_return_policy(
                session, created.id, PolicyChanges(**policy), now=SYSTEM_CLOCK.now()
            )  # type: ignore[arg-type]
    return created


def line(
    external_id: str = "L1",
    *,
    quantity: int = 2,
    unit_price_minor: int = 2500,
    discount_minor: int = 0,
    tax_minor: int = 0,
    category: str | None = "apparel",
    tags: Sequence[str] = (),
) -> OrderLineInput:
    return OrderLineInput(
        external_id=external_id,
        title=f"Item {external_id}",
        quantity=quantity,
        unit_price_minor=unit_price_minor,
        discount_minor=discount_minor,
        tax_minor=tax_minor,
        category=category,
        tags=tuple(tags),
    )


async def order(
    db: Database,
    merchant_id: uuid.UUID,
    *,
    lines: Sequence[OrderLineInput] | None = None,
    placed_days_ago: int = 10,
    delivered: bool = True,
    currency: str = "USD",
    email: str | None = None,
    shipping_minor: int = 0,
    stripe_paid: bool = True,
    payments: Sequence[PaymentInput] | None = None,
) -> Order:
    """An order of ``lines``, paid in full with one Stripe payment unless ``payments`` (or
    ``stripe_paid=False``) say otherwise."""
    chosen = list(lines or [line()])
    placed = NOW - timedelta(days=placed_days_ago)
    total = sum(
        item.unit_price_minor * item.quantity - item.discount_minor + item.tax_minor
        for item in chosen
    )
    number = next(_counter)
    paid = (
        list(payments)
        if payments is not None
        else [
            PaymentInput(
                PaymentProviderName.STRIPE,
                f"pi_{uuid.uuid4().hex[:16]}",
                total + shipping_minor,
                currency,
            )
        ]
        if stripe_paid
        else []
    )
    async with db.session() as session:
        return await upsert_order(
            session,
            merchant_id,
            OrderInput(
                platform="storefront",
                external_id=f"ext-{number}",
                order_number=f"#{number}",
                currency=currency,
                placed_at=placed,
                delivered_at=placed + timedelta(days=2) if delivered else None,
                customer=CustomerInput(email=email or f"customer{number}@example.com"),
                lines=chosen,
                shipping_minor=shipping_minor,
                payments=paid,
            ),
            now=SYSTEM_CLOCK.now(),
        )


async def requested_rma(
    db: Database,
    merchant_id: uuid.UUID,
    the_order: Order,
    *,
    quantity: int = 1,
    reason: ReturnReason = ReturnReason.SIZE_TOO_SMALL,
    condition: ItemCondition = ItemCondition.UNOPENED,
    preferred: str | None = None,
    note: str = "",
) -> Rma:
    async with db.session() as session:
        return await request_rma(
            session,
            merchant_id,
            order_id=the_order.id,
            lines=[ReturnLineInput(the_order.lines[0].id, quantity, reason, condition)],
            actor="customer:test",
            preferred_resolution=preferred,
            customer_note=note,
            now=NOW,
        )


async def inspected_rma(
    db: Database,
    merchant_id: uuid.UUID,
    the_order: Order,
    *,
    quantity: int = 1,
    reason: ReturnReason = ReturnReason.SIZE_TOO_SMALL,
    condition: ItemCondition = ItemCondition.UNOPENED,
) -> Rma:
    """An RMA walked from request to INSPECTED through the real use cases."""
    rma = await requested_rma(
        db, merchant_id, the_order, quantity=quantity, reason=reason, condition=condition
    )
    async with db.session() as session:
        await record_shipment(
            session,
            merchant_id,
            rma.id,
            carrier="UPS",
            tracking_number="1Z999AA10123456784",
            actor="customer:test",
            now=NOW,
        )
    async with db.session() as session:
        rma = await receive_rma(
            session,
            merchant_id,
            rma.id,
            lines=[ReceivedLine(item.id, item.quantity) for item in rma.lines],
            actor=STAFF,
            now=NOW,
        )
    async with db.session() as session:
        return await inspect_rma(
            session,
            merchant_id,
            rma.id,
            lines=[InspectedLine(item.id, condition, "RESTOCK") for item in rma.lines],
            actor=STAFF,
            now=NOW,
        )
