"""Stripe refund events: record what Stripe says about a refund on the matching resolution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.database import Database
from core.entities import WebhookDelivery
from core.enums import PaymentProviderName, ResolutionStatus
from core.usecases.provider_reports import (
    PROVIDER_REFUND_STATUSES,
    ReportDoesNotMatch,
    record_provider_refund,
)
from webhooks.ignored import DeliveryIgnored


async def refund_event(
    database: Database, delivery: WebhookDelivery, event: Any, now: datetime
) -> str | None:
    """``refund.created`` / ``refund.updated`` / ``refund.failed``: the object is the refund.

    Events may arrive twice or out of order; the resolution's status only moves forward.
    """
    refund = event["data"]["object"]
    status = str(refund.get("status", ""))
    if status not in PROVIDER_REFUND_STATUSES:
        return f"refund status {status!r} is not one this service tracks"
    metadata = refund.get("metadata") or {}
    try:
        async with database.session() as session:
            resolution = await record_provider_refund(
                session,
                delivery.merchant_id,
                provider=PaymentProviderName.STRIPE,
                provider_reference=str(refund["id"]),
                status=status,
                amount_minor=int(refund["amount"]) if "amount" in refund else None,
                currency=str(refund["currency"]) if "currency" in refund else None,
                payment_references=[
                    str(refund.get(field) or "") for field in ("payment_intent", "charge")
                ],
                resolution_id=metadata.get("resolution_id"),
                failure_reason=refund.get("failure_reason"),
                actor="stripe",
                now=now,
            )
    except ReportDoesNotMatch as mismatch:
        raise DeliveryIgnored(mismatch.message) from None
    if resolution is None:
        return f"no resolution matches refund {refund['id']}"
    reported = PROVIDER_REFUND_STATUSES[status]
    if resolution.status is not reported and reported is not ResolutionStatus.PROCESSING:
        return (
            f"Stripe reports {status} but the resolution is {resolution.status.value}; "
            "noted on the RMA's timeline"
        )
    return None


async def charge_refunded(
    database: Database, delivery: WebhookDelivery, event: Any, now: datetime
) -> str | None:
    """``charge.refunded`` carries the charge, not the refund, so it cannot say which refund
    moved: each refund's own ``refund.*`` events (and reconciliation) settle resolutions."""
    charge = event["data"]["object"]
    return f"charge {charge.get('id')} refunded {charge.get('amount_refunded')}; see refund.*"


STRIPE_TOPICS = {
    "refund.created": refund_event,
    "refund.updated": refund_event,
    "refund.failed": refund_event,
    "charge.refunded": charge_refunded,
}
