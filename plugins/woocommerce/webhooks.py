"""WooCommerce's webhooks: ``X-WC-Webhook-Signature``, the store they come from, and the ping."""

from __future__ import annotations

import base64
import hmac
import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from core.enums import Platform
from core.errors import InvalidInput
from core.ports.webhooks import (
    DeliveryRefused,
    VerifiedDelivery,
    body_sha256,
    header_dedupe_key,
    hmac_sha256,
    required_account,
)


def woocommerce_signature_valid(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """``X-WC-Webhook-Signature``: base64 HMAC-SHA256 with the HTML-decoded secret."""
    if not header:
        return False
    given = header.strip().encode()
    return any(
        hmac.compare_digest(
            base64.b64encode(hmac_sha256(html.unescape(secret).encode(), body)), given
        )
        for secret in secrets
    )


def normalize_store_url(account: str) -> str:
    """A store as its deliveries name it: scheme, lower-case host and path, one final slash."""
    value = required_account(account)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("storeUrl", "a store URL looks like https://shop.example.com/")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}/"


class WooCommerceWebhookSource:
    platform = Platform.WOOCOMMERCE
    kept_headers: tuple[str, ...] = (
        "x-wc-webhook-source",
        "x-wc-webhook-topic",
        "x-wc-webhook-id",
        "x-wc-webhook-delivery-id",
    )

    def normalize_account(self, account: str) -> str:
        return normalize_store_url(account)

    def is_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        """WooCommerce checks a new delivery URL with an unsigned form post and wants a 200."""
        return not headers.get("x-wc-webhook-topic") and body.startswith(b"webhook_id=")

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        secrets: Sequence[str],
        account: str,
        now: datetime,
    ) -> VerifiedDelivery:
        if not woocommerce_signature_valid(body, headers.get("x-wc-webhook-signature"), secrets):
            raise DeliveryRefused(401, "signature does not match")
        source = headers.get("x-wc-webhook-source")
        if source and _claimed_store(source) != account:
            raise DeliveryRefused(401, "delivery is from another store")
        topic = headers.get("x-wc-webhook-topic") or ""
        if not topic:
            raise DeliveryRefused(400, "X-WC-Webhook-Topic is missing")
        # The delivery id is only unique per webhook per second, so the body's hash is part of it.
        webhook = headers.get("x-wc-webhook-id", "")
        delivery = headers.get("x-wc-webhook-delivery-id", "")
        return VerifiedDelivery(
            topic[:100], header_dedupe_key(f"{webhook}:{delivery}", body_sha256(body))
        )


def _claimed_store(source: str) -> str | None:
    try:
        return normalize_store_url(source)
    except InvalidInput:
        return None
