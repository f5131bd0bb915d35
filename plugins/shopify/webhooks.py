"""Shopify's webhooks: ``X-Shopify-Hmac-Sha256`` over the raw body, from the connected shop."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime

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


def shopify_signature_valid(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body."""
    if not header:
        return False
    given = header.strip().encode()
    return any(
        hmac.compare_digest(base64.b64encode(hmac_sha256(secret.encode(), body)), given)
        for secret in secrets
    )


def normalize_shop(account: str) -> str:
    """A shop as its deliveries name it: ``the-shop.myshopify.com``."""
    value = required_account(account)
    domain = value.lower().removeprefix("https://").removeprefix("http://").strip("/")
    if not domain.endswith(".myshopify.com") or "/" in domain:
        raise InvalidInput("shop", "a Shopify shop looks like the-shop.myshopify.com")
    return domain


class ShopifyWebhookSource:
    platform = Platform.SHOPIFY
    kept_headers: tuple[str, ...] = (
        "x-shopify-topic",
        "x-shopify-shop-domain",
        "x-shopify-event-id",
        "x-shopify-webhook-id",
        "x-shopify-triggered-at",
        "x-shopify-api-version",
    )

    def normalize_account(self, account: str) -> str:
        return normalize_shop(account)

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
        if not shopify_signature_valid(body, headers.get("x-shopify-hmac-sha256"), secrets):
            raise DeliveryRefused(401, "signature does not match")
        shop = (headers.get("x-shopify-shop-domain") or "").strip().lower()
        if shop != account:
            raise DeliveryRefused(401, "delivery is for another shop")
        topic = headers.get("x-shopify-topic") or ""
        if not topic:
            raise DeliveryRefused(400, "X-Shopify-Topic is missing")
        event = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
        key = header_dedupe_key("event", event) if event else f"body:{body_sha256(body)}"
        return VerifiedDelivery(topic[:100], key)
