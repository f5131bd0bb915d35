"""Sign deliveries the way each platform does, for tests and benchmarks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from core.clock import SYSTEM_CLOCK

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shopify_headers(
    body: bytes, secret: str, shop: str, *, topic: str = "orders/create", event_id: str = "evt-1"
) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-hmac-sha256": digest,
        "x-shopify-shop-domain": shop,
        "x-shopify-event-id": event_id,
        "x-shopify-webhook-id": f"wh-{event_id}",
    }


def woocommerce_headers(
    body: bytes,
    secret: str,
    source: str,
    *,
    topic: str = "order.created",
    delivery_id: str = "d-1",
    webhook_id: str = "7",
) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-signature": digest,
        "x-wc-webhook-source": source,
        "x-wc-webhook-id": webhook_id,
        "x-wc-webhook-delivery-id": delivery_id,
    }


def stripe_headers(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    moment = int(SYSTEM_CLOCK.now().timestamp()) if timestamp is None else timestamp
    signed = f"{moment}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "stripe-signature": f"t={moment},v1={digest}"}


def stripe_event(event_id: str, event_type: str, data_object: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(SYSTEM_CLOCK.now().timestamp()),
            "data": {"object": data_object},
        }
    ).encode()
