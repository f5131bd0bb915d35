"""One store as the core's ``CommercePlatform``: orders read by pages of 100.

WooCommerce never sends a missed webhook again, so the periodic sync is what keeps orders
complete: it reads what was modified since the last one (``modified_after``, GMT) in order of
id, so that an order modified while the sync pages keeps its place, and starts each sync a
little before the newest modification it saw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from core.errors import DomainError
from core.ports.commerce import (
    CreditSpent,
    OrderPage,
    PlatformCredit,
    PlatformRefund,
    PlatformRejected,
    RestockLine,
    ReturnLine,
)
from core.usecases.orders import OrderInput
from plugins.woocommerce.client import WooCommerceClient, error_message
from plugins.woocommerce.mapping import JSON, gmt, order_input

PER_PAGE = 100
# Each incremental sync starts this far before the newest modification it saw.
OVERLAP = timedelta(minutes=2)

SETTINGS_DEFAULTS: dict[str, Any] = {}


class WooCommercePlatform:
    def __init__(self, client: WooCommerceClient, settings: Mapping[str, Any]) -> None:
        self.client = client
        self.settings = dict(settings)
        self._products: dict[int, JSON] = {}

    async def close(self) -> None:
        return None

    async def fetch_order(self, order_reference: str) -> OrderInput | None:
        response = await self.client.get(f"orders/{int(order_reference)}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PlatformRejected(f"the store refused the order: {error_message(response)}")
        order = response.json()
        try:
            return order_input(order, await self._products_of([order]))
        except (DomainError, ValueError, KeyError, TypeError) as error:
            raise PlatformRejected(
                f"order {order.get('number')} cannot be read: {error}"
            ) from error

    async def orders_changed_since(self, cursor: str | None, *, limit: int) -> OrderPage:
        position = json.loads(cursor) if cursor else {}
        page = int(position.get("page", 1))
        params: dict[str, Any] = {
            "per_page": min(max(limit, 1), PER_PAGE),
            "page": page,
            "order": "asc",
            "orderby": "id",
            "status": "any",
        }
        if position.get("since"):
            params["modified_after"] = position["since"]
            params["dates_are_gmt"] = "true"
        response = await self.client.get("orders", params)
        if response.status_code != 200:
            raise PlatformRejected(f"the store refused the orders: {error_message(response)}")
        orders = response.json()
        pages = int(response.headers.get("X-WP-TotalPages", "1") or 1)
        products = await self._products_of(orders)
        read: list[OrderInput] = []
        refused: list[str] = []
        newest = position.get("newest")
        for order in orders:
            modified = order.get("date_modified_gmt")
            newest = max(filter(None, (newest, modified)), default=None)
            try:
                read.append(order_input(order, products))
            except (DomainError, ValueError, KeyError, TypeError) as error:
                refused.append(f"order {order.get('number') or order.get('id')}: {error}")
        if page < pages:
            following = {"since": position.get("since"), "page": page + 1, "newest": newest}
            return OrderPage(read, json.dumps(following), has_more=True, refused=refused)
        return OrderPage(read, json.dumps({"since": _since(newest)}), refused=refused)

    async def _products_of(self, orders: Sequence[JSON]) -> dict[int, JSON]:
        """The products of the orders' lines (categories, tags), read once per client."""
        wanted = (
            {
                int(line.get("product_id") or 0)
                for order in orders
                for line in order.get("line_items") or []
            }
            - {0}
            - set(self._products)
        )
        if wanted:
            response = await self.client.get(
                "products", {"include": ",".join(map(str, sorted(wanted))), "per_page": 100}
            )
            if response.status_code == 200:
                for product in response.json():
                    self._products[int(product["id"])] = product
        return self._products

    async def write_refund(self, refund: PlatformRefund) -> str:
        raise PlatformRejected("recording refunds in a WooCommerce store is not built yet")

    async def restock(
        self, order_reference: str, lines: Sequence[RestockLine], idempotency_key: str
    ) -> None:
        # Restocking goes with the refund recorded in the store (api_restock), once that is
        # built; stock has no atomic increment over REST to do it on its own. Until then the
        # RMA's timeline says it was not done, rather than pretend.
        raise PlatformRejected("restocking a WooCommerce store is not built yet; restock by hand")

    async def issue_store_credit(self, credit: PlatformCredit) -> str:
        raise PlatformRejected("store credit as WooCommerce coupons is not built yet")

    async def store_credit_spent(self, customer_reference: str) -> Sequence[CreditSpent]:
        return []

    async def open_return(
        self, order_reference: str, rma_number: str, lines: Sequence[ReturnLine]
    ) -> str | None:
        return None  # WooCommerce keeps no returns of its own

    async def end_return(self, return_reference: str, outcome: str) -> None:
        return None

    async def subscribe_webhooks(self, public_url: str, connection_id: str) -> None:
        raise PlatformRejected("registering WooCommerce webhooks is not built yet")


def _since(newest: str | None) -> str | None:
    moment = gmt(newest)
    if moment is None:
        return None
    return (moment - OVERLAP).replace(tzinfo=None).isoformat(timespec="seconds")
