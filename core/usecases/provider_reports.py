"""What providers report about refunds, applied to resolutions without ever going backwards.

Reports arrive from webhooks and from lookups, twice, late or out of order. A resolution's
status only moves forward; a report that contradicts a settled resolution is flagged for staff
on the RMA's timeline instead of being applied.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Resolution
from core.enums import ResolutionKind, ResolutionStatus
from core.errors import DomainError
from core.ports.payments import RefundReport, RefundStatus
from core.usecases.inputs import checked_now, clean_text
from core.usecases.owned_rows import lock_rma
from core.usecases.resolutions import FINAL_RESOLUTION_STATUSES, settle_resolution
from core.usecases.timeline import record_event

# What a provider's refund status means for a resolution, and how far along it is: a status
# never moves back to a lower rank, so late or repeated events change nothing.
REFUND_STATUS_MEANS: dict[RefundStatus, ResolutionStatus] = {
    RefundStatus.PENDING: ResolutionStatus.PROCESSING,
    RefundStatus.REQUIRES_ACTION: ResolutionStatus.PROCESSING,
    RefundStatus.SUCCEEDED: ResolutionStatus.SUCCEEDED,
    RefundStatus.FAILED: ResolutionStatus.FAILED,
    RefundStatus.CANCELED: ResolutionStatus.CANCELED,
}


class ReportDoesNotMatch(DomainError):
    """A provider reported on a refund that is not the one this resolution asked it for.

    Nothing is applied: a provider settles only what it made (a merchant's own Stripe account
    must not settle a manual refund that never went to Stripe, or another payment's refund).
    """

    code = "CONFLICT"


async def record_provider_refund(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    report: RefundReport,
    *,
    actor: str = "provider",
    now: datetime,
) -> Resolution | None:
    """Apply a provider's report on a refund to the matching resolution, monotonically.

    The resolution is found by the provider's refund id, or by the resolution id the refund
    carries in its metadata. Returns ``None`` when no resolution of this merchant matches, and
    raises :class:`ReportDoesNotMatch` when the report is not about a refund this resolution
    made through the reporting provider: another provider, a store credit, another amount or
    currency, or another payment (the report's ``payment_references``).
    """
    mapped = REFUND_STATUS_MEANS[report.status]
    status = report.status.value
    provider_reference = report.provider_reference
    moment = checked_now(now)
    async with session.begin():
        resolution = await _find_by_reference(
            session, merchant_id, provider_reference, report.resolution_id
        )
        if resolution is None:
            return None
        _check_report(resolution, report)
        rma = await lock_rma(session, merchant_id, resolution.rma_id)
        await session.refresh(resolution, with_for_update=True)
        if (
            resolution.status in FINAL_RESOLUTION_STATUSES
            and mapped in FINAL_RESOLUTION_STATUSES
            and resolution.status is not mapped
        ):
            # Never backwards (a card refund can fail after it succeeded, or a failed one turn
            # out paid): the money disagrees with the RMA, so staff must see it.
            await record_event(
                session,
                rma,
                actor=actor,
                kind="PROVIDER_DISAGREES",
                now=moment,
                message=f"provider now reports {status} for a resolution that is "
                f"{resolution.status.value}; check the money by hand",
                data={
                    "resolutionId": str(resolution.id),
                    "providerReference": provider_reference,
                    "reported": status,
                },
            )
            return resolution
        if resolution.status in FINAL_RESOLUTION_STATUSES or resolution.status is mapped:
            return resolution
        if mapped is ResolutionStatus.PROCESSING:
            resolution.status = mapped
            resolution.provider_reference = provider_reference
            resolution.updated_at = moment
            session.add(resolution)
            await record_event(
                session,
                rma,
                actor=actor,
                kind="REFUND_PENDING",
                now=moment,
                message=f"provider reports {status}",
                data={"resolutionId": str(resolution.id), "providerReference": provider_reference},
            )
            return resolution
        await settle_resolution(
            session,
            rma,
            resolution,
            mapped,
            actor=actor,
            now=moment,
            provider_reference=provider_reference,
            # A settled refund has no failure; a failed one keeps the provider's reason.
            reason=""
            if mapped is ResolutionStatus.SUCCEEDED
            else clean_text(
                report.failure_reason or f"the provider reports {status}", "failureReason"
            ),
        )
    return resolution


def _check_report(resolution: Resolution, report: RefundReport) -> None:
    provider, amount_minor, currency = report.provider, report.amount_minor, report.currency
    problems = []
    if resolution.provider is not provider:
        problems.append(f"it is a {resolution.provider.value} resolution, not {provider.value}")
    if resolution.kind is not ResolutionKind.REFUND:
        problems.append(f"it is a {resolution.kind.value} resolution, not a refund")
    if amount_minor is not None and amount_minor != resolution.amount_minor:
        problems.append(f"the refund is {amount_minor}, the resolution {resolution.amount_minor}")
    if currency is not None and currency.upper() != resolution.currency:
        problems.append(
            f"the refund is in {currency.upper()}, the resolution in {resolution.currency}"
        )
    named = [reference for reference in report.payment_references if reference]
    if named and resolution.payment_reference and resolution.payment_reference not in named:
        problems.append("the refund is of another payment")
    if problems:
        raise ReportDoesNotMatch(
            f"report ignored for resolution {resolution.id}: " + "; ".join(problems)
        )


async def _find_by_reference(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    provider_reference: str,
    resolution_id: str | None,
) -> Resolution | None:
    by_reference = (
        await session.exec(
            select(Resolution).where(
                Resolution.merchant_id == merchant_id,
                Resolution.provider_reference == provider_reference,
            )
        )
    ).first()
    if by_reference is not None or resolution_id is None:
        return by_reference
    try:
        identifier = uuid.UUID(resolution_id)
    except ValueError:
        return None
    return (
        await session.exec(
            select(Resolution).where(
                Resolution.merchant_id == merchant_id, Resolution.id == identifier
            )
        )
    ).first()
