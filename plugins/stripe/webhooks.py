"""Stripe's webhooks: the ``Stripe-Signature`` check and the ``refund.*`` topics."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.enums import PaymentProviderName, Platform
from core.ports.payments import RefundReport, RefundStatus
from core.ports.webhooks import (
    DeliveryRefused,
    Note,
    TopicContext,
    TopicHandler,
    TopicResult,
    VerifiedDelivery,
    header_dedupe_key,
    hmac_sha256,
    required_account,
)

TOLERANCE_SECONDS = 300


def stripe_signature_valid(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """``Stripe-Signature: t=...,v1=...``: hex HMAC-SHA256 of ``"{t}.{body}"``.

    Unlike stripe-python, a timestamp too far in the future is refused as well as a stale one.
    """
    if not header:
        return False
    timestamp: int | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        # ASCII digits, and no more than a Unix time has: ``isdigit`` alone lets through
        # other scripts' digits and superscripts, and a 5,000-digit number that ``int``
        # refuses to read.
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value.encode())
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    for secret in secrets:
        expected = hmac_sha256(secret.encode(), signed).hex().encode()
        if any(hmac.compare_digest(expected, signature) for signature in signatures):
            return True
    return False


class StripeWebhookSource:
    platform = Platform.STRIPE
    kept_headers: tuple[str, ...] = ()

    def normalize_account(self, account: str) -> str:
        return required_account(account)

    def is_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        secrets: Sequence[str],
        account: str,
        now: datetime,
    ) -> VerifiedDelivery:
        header = headers.get("stripe-signature")
        if not stripe_signature_valid(body, header, secrets, now=now.timestamp()):
            raise DeliveryRefused(401, "signature does not match or is too old or too new")
        try:
            event = json.loads(body)
            event_id, event_type = str(event["id"]), str(event["type"])
        except (ValueError, KeyError, TypeError) as error:
            raise DeliveryRefused(400, "the body is not a Stripe event") from error
        return VerifiedDelivery(event_type[:100], header_dedupe_key("event", event_id))


async def refund_event(context: TopicContext, event: Any) -> TopicResult:
    """``refund.created`` / ``refund.updated`` / ``refund.failed``: the object is the refund."""
    refund = event["data"]["object"]
    raw_status = str(refund.get("status", ""))
    try:
        status = RefundStatus(raw_status)
    except ValueError:
        return Note(f"refund status {raw_status!r} is not one this service tracks")
    metadata = refund.get("metadata") or {}
    return RefundReport(
        provider=PaymentProviderName.STRIPE,
        provider_reference=str(refund["id"]),
        status=status,
        amount_minor=int(refund["amount"]) if "amount" in refund else None,
        currency=str(refund["currency"]) if "currency" in refund else None,
        payment_references=[str(refund.get(name) or "") for name in ("payment_intent", "charge")],
        resolution_id=metadata.get("resolution_id"),
        failure_reason=refund.get("failure_reason"),
    )


async def charge_refunded(context: TopicContext, event: Any) -> TopicResult:
    """``charge.refunded`` carries the charge, not the refund, so it cannot say which refund
    moved: each refund's own ``refund.*`` events (and reconciliation) settle resolutions."""
    charge = event["data"]["object"]
    return Note(f"charge {charge.get('id')} refunded {charge.get('amount_refunded')}; see refund.*")


TOPICS: dict[str, TopicHandler] = {
    "refund.created": refund_event,
    "refund.updated": refund_event,
    "refund.failed": refund_event,
    "charge.refunded": charge_refunded,
}
