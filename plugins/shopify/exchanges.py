"""An exchange's replacement as a Shopify order, made from a draft order.

The draft holds the replacement lines and a fixed discount worth what the returned goods pay
of it; completing it makes the order the merchant fulfils like any other. When the customer
still owes the difference, the order is completed with its payment pending, so Shopify asks
them for it. ``draftOrderCreate`` has no idempotency key: the draft is tagged with the exchange
and looked up by that tag first, so a retry finds the draft (and completes it) or its order.
"""

from __future__ import annotations

from typing import Any

from core.money import to_decimal_string
from core.ports.commerce import ExchangeLine, PlatformExchange, PlatformRejected
from plugins.shopify import queries
from plugins.shopify.client import ShopifyGraphQL, user_errors

TAG_PREFIX = "rma-exchange-"
VARIANT_PREFIX = "gid://shopify/ProductVariant/"


async def place_exchange_order(client: ShopifyGraphQL, exchange: PlatformExchange) -> str:
    """The replacement order's id (placed once)."""
    tag = f"{TAG_PREFIX}{exchange.marker}"
    found = await client.execute(queries.DRAFT_ORDERS_TAGGED, {"query": f"tag:{tag}"}, cost=12)
    drafts = (found.get("draftOrders") or {}).get("nodes") or []
    draft = drafts[0] if drafts else None
    if draft is not None and draft.get("order"):
        return str(draft["order"]["id"])
    if draft is None:
        draft = await _create(client, exchange, tag)
    completed = await client.execute(
        queries.DRAFT_ORDER_COMPLETE,
        {"id": draft["id"], "paymentPending": exchange.due_minor > 0},
        cost=10,
        resendable=False,  # a second completion is refused; the next attempt looks first
    )
    payload = completed.get("draftOrderComplete") or {}
    problem = user_errors(payload)
    if problem:
        raise PlatformRejected(f"Shopify refused to complete the replacement order: {problem}")
    return str(payload["draftOrder"]["order"]["id"])


async def _create(client: ShopifyGraphQL, exchange: PlatformExchange, tag: str) -> Any:
    draft_input: dict[str, Any] = {
        "email": exchange.email or None,
        "note": f"Exchange for return {exchange.rma_number}",
        "tags": [tag],
        "presentmentCurrencyCode": exchange.currency,
        "lineItems": [_line(line, exchange.currency) for line in exchange.lines],
    }
    if exchange.credit_minor:
        draft_input["appliedDiscount"] = {
            "value": float(to_decimal_string(exchange.credit_minor, exchange.currency)),
            "valueType": "FIXED_AMOUNT",
            "title": f"Returned goods ({exchange.rma_number})",
        }
    created = await client.execute(
        queries.DRAFT_ORDER_CREATE,
        {"input": draft_input},
        cost=10,
        resendable=False,  # no idempotency key: the next attempt looks for the tag first
    )
    payload = created.get("draftOrderCreate") or {}
    problem = user_errors(payload)
    if problem:
        raise PlatformRejected(f"Shopify refused the replacement order: {problem}")
    return payload["draftOrder"]


def _line(line: ExchangeLine, currency: str) -> dict[str, Any]:
    """A variant of the shop's catalogue or a line of its own, at the price the exchange was
    agreed at (the variant's own price may have changed since)."""
    if line.variant_reference.startswith(VARIANT_PREFIX):
        return {
            "variantId": line.variant_reference,
            "quantity": line.quantity,
            "priceOverride": {
                "amount": to_decimal_string(line.unit_price_minor, currency),
                "currencyCode": currency,
            },
        }
    return {
        "title": line.title,
        "quantity": line.quantity,
        "originalUnitPrice": to_decimal_string(line.unit_price_minor, currency),
        **({"sku": line.sku} if line.sku else {}),
    }
