"""Placing the replacement of an exchange on the order's platform, once."""

from __future__ import annotations

import uuid

from sqlmodel import select

from core.entities import Customer, Exchange, Order, Resolution, Rma
from core.enums import ORDER_PLATFORMS, ResolutionStatus
from core.jobs.access import services_of
from core.jobs.commerce import order_connection, platform_for
from core.jobs.worker import JobContext
from core.ports.commerce import ExchangeLine, PlatformExchange, PlatformRejected
from core.usecases.exchange_placement import record_exchange_placed, record_exchange_refused


async def place_exchange(context: JobContext) -> None:
    """Place the replacement where the order was sold (a storefront's order has nowhere to
    place it: it waits for the storefront), then record it and settle the exchange's part.

    The platform looks for a replacement already placed for the exchange before placing one,
    so a retry after a crash or a timeout never places two.
    """
    resolution_id = uuid.UUID(context.job.payload["resolutionId"])
    async with context.database.read_session() as session:
        resolution = await session.get(Resolution, resolution_id)
        if resolution is None or resolution.status not in (
            ResolutionStatus.PENDING,
            ResolutionStatus.SUBMITTING,
        ):
            return
        exchange = (
            await session.exec(select(Exchange).where(Exchange.resolution_id == resolution_id))
        ).one()
        order = await session.get(Order, resolution.order_id)
        rma = await session.get(Rma, resolution.rma_id)
        customer = await session.get(Customer, order.customer_id) if order else None
        connection = (
            await order_connection(session, resolution.merchant_id, order)
            if order is not None and order.platform in ORDER_PLATFORMS
            else None
        )
    factory = (
        services_of(context).registry.commerce_platforms.get(connection.platform)
        if connection is not None
        else None
    )
    reference = None
    if connection is not None and factory is not None and factory.places_exchanges:
        assert order is not None and rma is not None
        placement = PlatformExchange(
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
        async with platform_for(context, connection) as (platform, _access):
            try:
                reference = await platform.place_exchange(placement)
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
    async with context.database.session() as session:
        await record_exchange_placed(session, resolution_id, reference, now=context.clock.now())
