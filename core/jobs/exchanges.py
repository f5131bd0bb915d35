"""Placing the replacement of an exchange on the order's platform, once."""

from __future__ import annotations

import uuid

from core.entities import Customer, Exchange, Order, Rma
from core.enums import ORDER_PLATFORMS
from core.jobs.access import services_of
from core.jobs.commerce import order_connection, platform_for
from core.jobs.worker import JobContext, PermanentJobError
from core.ports.commerce import ExchangeLine, PlatformExchange, PlatformRejected
from core.usecases.exchange_placement import (
    begin_placement,
    record_exchange_placed,
    record_exchange_refused,
)
from core.usecases.money_movement import mark_requires_review


async def place_exchange(context: JobContext) -> None:
    """Place the replacement where the order was sold (a storefront's order has nowhere to
    place it: it waits for the storefront), then record it and settle the exchange's part.

    The attempt is claimed first, so the rest of the resolution knows the replacement may
    exist; the platform looks for one already placed for the exchange before placing one, so a
    retry after a crash or a timeout never places two. A platform order that cannot be placed
    here (no plugin for it, a connection gone or refused) waits for staff to place it by hand.
    """
    resolution_id = uuid.UUID(context.job.payload["resolutionId"])
    async with context.database.session() as session:
        placement = await begin_placement(session, resolution_id, now=context.clock.now())
    if placement is None:
        return
    resolution, exchange = placement.resolution, placement.exchange
    async with context.database.read_session() as session:
        order = await session.get(Order, resolution.order_id)
        rma = await session.get(Rma, resolution.rma_id)
        customer = await session.get(Customer, order.customer_id) if order else None
        on_platform = order is not None and order.platform in ORDER_PLATFORMS
        connection = (
            await order_connection(session, resolution.merchant_id, order)
            if order is not None and on_platform
            else None
        )
    reference = None
    if on_platform:
        assert order is not None and rma is not None
        factory = (
            services_of(context).registry.commerce_platforms.get(connection.platform)
            if connection is not None
            else None
        )
        if connection is None or factory is None or not factory.places_exchanges:
            await _for_staff(
                context,
                resolution.merchant_id,
                resolution_id,
                f"no enabled {order.platform.value} connection places orders here",
            )
            return
        try:
            async with platform_for(context, connection) as (platform, _access):
                try:
                    reference = await platform.place_exchange(
                        _placement(order, rma, customer, exchange)
                    )
                except PlatformRejected as error:
                    async with context.database.session() as session:
                        await record_exchange_refused(
                            session,
                            resolution_id,
                            f"the platform refused the replacement order: {error}",
                            now=context.clock.now(),
                        )
                    return
                # PlatformUnavailable propagates: the job retries, and the platform looks first.
        except PermanentJobError as error:
            await _for_staff(context, resolution.merchant_id, resolution_id, str(error))
            return
    async with context.database.session() as session:
        await record_exchange_placed(session, resolution_id, reference, now=context.clock.now())


def _placement(
    order: Order, rma: Rma, customer: Customer | None, exchange: Exchange
) -> PlatformExchange:
    return PlatformExchange(
        order_reference=order.external_id,
        marker=str(exchange.id),
        rma_number=rma.number,
        email=customer.email if customer else "",
        currency=exchange.currency,
        lines=[
            ExchangeLine(
                title=line["title"],
                quantity=int(line["quantity"]),
                unit_price_minor=int(line["unitPriceMinor"]),
                sku=line.get("sku", ""),
                variant_reference=line.get("variantReference", ""),
            )
            for line in exchange.lines
        ],
        credit_minor=exchange.replacement_value_minor - exchange.due_minor,
        due_minor=exchange.due_minor,
    )


async def _for_staff(
    context: JobContext, merchant_id: uuid.UUID, resolution_id: uuid.UUID, why: str
) -> None:
    async with context.database.session() as session:
        await mark_requires_review(
            session,
            merchant_id,
            resolution_id,
            f"the replacement could not be placed ({why}): place it by hand and record its "
            "order with recordManualRefund, or cancel the resolution's exchange once placed",
            now=context.clock.now(),
        )
