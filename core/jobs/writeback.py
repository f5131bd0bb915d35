"""Writing a settled refund back to the order's platform, once.

When the money moved anywhere but on the platform itself (through our Stripe plugin, by
staff, or as store credit), the platform's order still shows it unpaid-back: this job records
the refund there, with the lines, the shipping and the units that go back into stock, so the
merchant's store agrees with us. It never moves money: the platform is told it was refunded.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import structlog
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Inspection, Order, OrderLine, Resolution, Rma
from core.enums import ResolutionKind, ResolutionStatus
from core.jobs import failpoints
from core.jobs.access import services_of
from core.jobs.commerce import note_on_job_rma, order_connection, platform_for, restock_lines
from core.jobs.worker import JobContext, PermanentJobError
from core.ports.commerce import PlatformRefund, PlatformRejected, RefundLine
from core.usecases.rma_notes import note_on_rma

log = structlog.get_logger()


async def record_platform_refund(context: JobContext) -> None:
    """Record a succeeded resolution on its order's platform (looked up there first, so a
    retry after a crash finds the record instead of making a second one)."""
    resolution_id = uuid.UUID(context.job.payload["resolutionId"])
    registry = services_of(context).registry
    async with context.database.read_session() as session:
        resolution = await session.get(Resolution, resolution_id)
        if resolution is None or resolution.status is not ResolutionStatus.SUCCEEDED:
            return
        order = await session.get(Order, resolution.order_id)
        rma = await session.get(Rma, resolution.rma_id)
        if order is None or rma is None:
            return
        factory = registry.commerce_platforms.get(order.platform)
        provider = registry.payment_providers.get(resolution.provider)
        if factory is None or not factory.records_refunds:
            return  # not a platform's order, or a platform that keeps no such records
        connection = await order_connection(session, resolution.merchant_id, order)
        refund = await _refund_of(session, resolution, rma, order)
    if connection is None:
        return
    if not factory.restocks_with_refund:
        refund = replace(refund, restock=())
    if provider is not None and provider.platform is order.platform:
        # Refunded on the platform itself: only the units going back are left to record.
        if not refund.restock:
            return
        refund = _restock_only(refund)
    async with platform_for(context, connection) as (platform, _access):
        try:
            reference = await platform.write_refund(refund)
        except PlatformRejected as error:
            message = f"the platform refused to record the refund: {error}"
            await note_on_job_rma(context, rma.merchant_id, rma.id, "REFUND_NOT_RECORDED", message)
            raise PermanentJobError(str(error)) from error
    failpoints.reached("writeback.after_platform_answered")
    async with context.database.session() as session:
        await note_on_rma(
            session,
            rma.merchant_id,
            rma.id,
            kind="REFUND_RECORDED",
            message=f"recorded on {order.platform.value} as refund {reference}"
            + (
                f"; {sum(line.quantity for line in refund.restock)} unit(s) restocked"
                if refund.restock
                else ""
            ),
            data={"platformRefund": reference, "resolutionId": str(resolution_id)},
            now=context.clock.now(),
        )


def _restock_only(refund: PlatformRefund) -> PlatformRefund:
    """A record of the units going back, moving no money (the refund is recorded already)."""
    return replace(
        refund,
        lines=[RefundLine(line.line_reference, line.quantity, 0) for line in refund.restock],
        shipping_minor=0,
        amount_minor=0,
        reason=f"{refund.reason.split(':', 1)[0]}: returned units back in stock",
        idempotency_key=f"{refund.idempotency_key}-stock",
    )


async def _refund_of(
    session: AsyncSession, resolution: Resolution, rma: Rma, order: Order
) -> PlatformRefund:
    breakdown = resolution.breakdown.get("lines", [])
    line_ids = [uuid.UUID(entry["orderLineId"]) for entry in breakdown]
    external = dict(
        (
            await session.exec(
                select(OrderLine.id, OrderLine.external_id).where(col(OrderLine.id).in_(line_ids))
            )
        ).all()
    )
    # Store credit and an exchange keep the money with the merchant: units only, no refund.
    credit = resolution.kind in (ResolutionKind.STORE_CREDIT, ResolutionKind.EXCHANGE)
    lines = [
        RefundLine(
            external[uuid.UUID(entry["orderLineId"])],
            int(entry["quantity"]),
            0 if credit else int(entry["refundMinor"]),
            0 if credit else int(entry.get("refundTaxMinor", entry.get("taxMinor", 0))),
        )
        for entry in breakdown
        if uuid.UUID(entry["orderLineId"]) in external
    ]
    what = (
        f"exchanged for a replacement worth {resolution.amount_minor} {resolution.currency}"
        if resolution.kind is ResolutionKind.EXCHANGE
        else f"store credit of {resolution.amount_minor} {resolution.currency}"
        if credit
        else f"refunded through {resolution.provider.value}"
        + (f" ({resolution.provider_reference})" if resolution.provider_reference else "")
    )
    return PlatformRefund(
        order_reference=order.external_id,
        lines=lines,
        shipping_minor=0 if credit else resolution.shipping_minor,
        amount_minor=0 if credit else resolution.amount_minor,
        currency=resolution.currency,
        reason=f"{rma.number}: {what}",
        idempotency_key=resolution.idempotency_key,
        paid_by=resolution.provider,
        provider_reference=resolution.provider_reference,
        # The units go back once, with the part that carries the decision.
        restock=()
        if resolution.part
        else await restock_lines(session, col(Inspection.receipt_id) == resolution.receipt_id),
    )
