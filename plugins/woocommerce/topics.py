"""What each WooCommerce webhook topic means to the core. Pure functions of the payload.

WooCommerce builds a delivery's body when it sends it and may fold several changes into one,
so an order topic only says "read this order again"; the newer ``date_modified`` wins.
"""

from __future__ import annotations

from typing import Any

from core.ports.webhooks import OrderChanged, TopicContext, TopicHandler, TopicResult


async def order_changed(context: TopicContext, payload: Any) -> TopicResult:
    return OrderChanged(str(int(payload["id"])))  # raises for a body that is not an order


TOPICS: dict[str, TopicHandler] = {
    "order.created": order_changed,
    "order.updated": order_changed,
    "order.deleted": order_changed,
    "order.restored": order_changed,
}
