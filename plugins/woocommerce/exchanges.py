"""An exchange's replacement as a new WooCommerce order, child of the original one.

WooCommerce has no exchanges and no idempotency: the new order names the original as its
parent and carries the exchange in its meta data, so every attempt lists the original's child
orders first and a retry after a lost answer finds the order instead of placing a second one.
The returned goods pay for it as a negative fee line; what the customer still owes leaves it
``pending`` (the store asks them to pay), otherwise it is paid and ``processing``.
"""

from __future__ import annotations

from typing import Any

from core.money import to_decimal_string
from core.ports.commerce import ExchangeLine, PlatformExchange, PlatformRejected
from plugins.woocommerce.client import WooCommerceClient, error_message
from plugins.woocommerce.mapping import JSON

EXCHANGE_META = "_rma_exchange"
RMA_META = "_rma_number"


async def place_exchange_order(client: WooCommerceClient, exchange: PlatformExchange) -> str:
    """The replacement order's id (placed once)."""
    parent = _order_id(exchange.order_reference)
    found = await _placed(client, parent, exchange.marker)
    if found is not None:
        return found
    paid = exchange.due_minor == 0
    answer = await client.post(
        "orders",
        {
            "parent_id": parent,
            "status": "processing" if paid else "pending",
            "set_paid": paid,
            "currency": exchange.currency,
            "billing": {"email": exchange.email},
            "customer_note": f"Exchange for return {exchange.rma_number}",
            "line_items": [_line(line, exchange.currency) for line in exchange.lines],
            "fee_lines": [
                {
                    "name": f"Returned goods ({exchange.rma_number})",
                    "total": to_decimal_string(-exchange.credit_minor, exchange.currency),
                }
            ]
            if exchange.credit_minor
            else [],
            "meta_data": [
                {"key": EXCHANGE_META, "value": exchange.marker},
                {"key": RMA_META, "value": exchange.rma_number},
            ],
        },
    )
    if answer.status_code not in (200, 201):
        raise PlatformRejected(f"the store refused the order: {error_message(answer)}")
    return str(answer.json()["id"])


def _order_id(reference: str) -> int:
    try:
        return int(reference)
    except ValueError as error:
        raise PlatformRejected(f"{reference!r} is not a WooCommerce order id") from error


def _line(line: ExchangeLine, currency: str) -> dict[str, Any]:
    """A catalogue product (``product`` or ``product:variation`` ids) or a line of its own,
    at the price the exchange was agreed at."""
    entry: dict[str, Any] = {
        "name": line.title,
        "quantity": line.quantity,
        "subtotal": to_decimal_string(line.unit_price_minor * line.quantity, currency),
        "total": to_decimal_string(line.unit_price_minor * line.quantity, currency),
    }
    product, _, variation = line.variant_reference.partition(":")
    if product.isdigit():
        entry["product_id"] = int(product)
        if variation.isdigit():
            entry["variation_id"] = int(variation)
    if line.sku:
        entry["sku"] = line.sku
    return entry


async def _placed(client: WooCommerceClient, parent: int, marker: str) -> str | None:
    page = 1
    while True:
        response = await client.get(
            "orders", {"parent": parent, "per_page": 100, "page": page, "status": "any"}
        )
        if response.status_code != 200:
            raise PlatformRejected(f"the store refused to list orders: {error_message(response)}")
        for order in response.json():
            if _marker_of(order) == marker:
                return str(order["id"])
        if page >= int(response.headers.get("X-WP-TotalPages", "1") or 1):
            return None
        page += 1


def _marker_of(order: JSON) -> str | None:
    for meta in order.get("meta_data") or []:
        if meta.get("key") == EXCHANGE_META:
            return str(meta.get("value"))
    return None
