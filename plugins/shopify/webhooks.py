"""Shopify's webhooks: ``X-Shopify-Hmac-Sha256`` over the raw body, from the connected shop."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from shopify.utils.shop_url import sanitize_shop_domain

from core.enums import Platform
from core.errors import InvalidInput
from core.ports.webhooks import (
    AppDelivery,
    DeliveryRefused,
    VerifiedDelivery,
    body_sha256,
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
    """A shop as its deliveries name it: ``the-shop.myshopify.com`` (ShopifyAPI's own check;
    anything else, such as ``evil.com`` or an IP address, is refused)."""
    value = required_account(account).rstrip("/")
    domain = sanitize_shop_domain(value) if value.isascii() else None
    if not domain or not domain.endswith(".myshopify.com"):
        raise InvalidInput("shop", "a Shopify shop looks like the-shop.myshopify.com")
    return str(domain)


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
        return VerifiedDelivery(_topic(headers), dedupe_key(body))


def _topic(headers: Mapping[str, str]) -> str:
    topic = (headers.get("x-shopify-topic") or "").strip()
    if not topic:
        raise DeliveryRefused(400, "X-Shopify-Topic is missing")
    return topic[:100]


def dedupe_key(body: bytes) -> str:
    """Deliveries are told apart by what the signature covers, the body: a retry or a second
    subscription's copy of one event carries the same body, and a captured body replayed with
    a fresh ``X-Shopify-Event-Id`` (unsigned) is still the same delivery."""
    return f"body:{body_sha256(body)}"


# Privacy topics every App Store app must handle; they arrive even after an uninstall.
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
# Topics whose body names the shop it is about; it must be the shop of the header.
SHOP_TOPICS = COMPLIANCE_TOPICS | {"app/uninstalled"}


def _shop_in_body(body: bytes) -> str | None:
    """The shop a body names (``shop_domain``, or the shop object's ``myshopify_domain``);
    an unreadable body is left to its topic's handler to refuse."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    named = payload.get("shop_domain") or payload.get("myshopify_domain")
    if not isinstance(named, str):
        return None
    try:
        return normalize_shop(named)
    except InvalidInput:
        return "(not a shop)"


class ShopifyAppWebhookSource:
    """Deliveries to ``/webhooks/shopify/app``: signed with the app's secret (or the one
    before a rotation), for the shop named in ``X-Shopify-Shop-Domain``."""

    platform = Platform.SHOPIFY
    kept_headers = ShopifyWebhookSource.kept_headers

    def __init__(self, app_secrets: Callable[[], Sequence[str]]) -> None:
        self._app_secrets = app_secrets

    def verify_app(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> AppDelivery:
        secrets = self._app_secrets()
        if not secrets:
            raise DeliveryRefused(404, "the Shopify app is not configured")
        if not shopify_signature_valid(body, headers.get("x-shopify-hmac-sha256"), secrets):
            raise DeliveryRefused(401, "signature does not match")
        try:
            shop = normalize_shop(headers.get("x-shopify-shop-domain") or "")
        except InvalidInput as error:
            raise DeliveryRefused(400, "X-Shopify-Shop-Domain is not a shop") from error
        topic = _topic(headers)
        named = _shop_in_body(body) if topic in SHOP_TOPICS else None
        if named is not None and named != shop:
            # The header is not signed: a body signed for one shop must not act on another.
            raise DeliveryRefused(401, "the delivery's body is for another shop")
        return AppDelivery(
            account=shop,
            topic=topic,
            dedupe_key=dedupe_key(body),
            reaches_disabled=topic in COMPLIANCE_TOPICS,
        )
