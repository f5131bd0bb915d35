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
    CREDIT_DESTINATION,
    CreditSpent,
    OrderPage,
    PlatformCredit,
    PlatformExchange,
    PlatformRefund,
    PlatformRejected,
    PlatformUnavailable,
    RestockLine,
    ReturnLine,
)
from core.usecases.orders import OrderInput
from plugins.woocommerce.client import WooCommerceClient, error_message
from plugins.woocommerce.coupons import coupons_spent, issue_coupon
from plugins.woocommerce.exchanges import place_exchange_order
from plugins.woocommerce.mapping import JSON, gmt, order_input
from plugins.woocommerce.refunds import record_refund

PER_PAGE = 100
# Each incremental sync starts this far before the newest modification it saw.
OVERLAP = timedelta(minutes=2)

# "staff": an order paid through a gateway we have no plugin for is refunded by hand (and
# recorded in the store); "store": the store refunds it through that gateway (api_refund).
OTHER_GATEWAYS = "refund_other_gateways"
SETTINGS_DEFAULTS: dict[str, Any] = {OTHER_GATEWAYS: "staff", CREDIT_DESTINATION: "service"}
SETTINGS_CHOICES: dict[str, tuple[str, ...]] = {
    OTHER_GATEWAYS: ("staff", "store"),
    # "platform": store credit becomes a single-use coupon for the customer's e-mail.
    CREDIT_DESTINATION: ("service", "platform"),
}

# The topics that say an order changed; each makes the service read the order again.
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")


class WooCommercePlatform:
    def __init__(
        self,
        client: WooCommerceClient,
        settings: Mapping[str, Any],
        *,
        webhook_secret: str | None = None,
    ) -> None:
        self.client = client
        self.settings = dict(settings)
        # Set for a store connected by the key grant: the secret its webhooks are signed with.
        self.webhook_secret = webhook_secret
        self._products: dict[int, JSON] = {}

    @property
    def _through_store(self) -> bool:
        return self.settings.get(OTHER_GATEWAYS) == "store"

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
            return order_input(
                order, await self._products_of([order]), refund_through_store=self._through_store
            )
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
                read.append(order_input(order, products, refund_through_store=self._through_store))
            except (DomainError, ValueError, KeyError, TypeError) as error:
                refused.append(f"order {order.get('number') or order.get('id')}: {error}")
        if page < pages:
            following = {"since": position.get("since"), "page": page + 1, "newest": newest}
            return OrderPage(read, json.dumps(following), has_more=True, refused=refused)
        return OrderPage(read, json.dumps({"since": _since(newest)}), refused=refused)

    async def _products_of(self, orders: Sequence[JSON]) -> dict[int, JSON]:
        """The products of the orders' lines (categories, tags), read once per client, 100
        at a time. A store that cannot answer is an outage: orders read without their
        products would skip the policy's final-sale and unopened-only rules."""
        wanted = sorted(
            {
                int(line.get("product_id") or 0)
                for order in orders
                for line in order.get("line_items") or []
            }
            - {0}
            - set(self._products)
        )
        for start in range(0, len(wanted), PER_PAGE):
            chunk = wanted[start : start + PER_PAGE]
            response = await self.client.get(
                "products", {"include": ",".join(map(str, chunk)), "per_page": PER_PAGE}
            )
            if response.status_code != 200:
                raise PlatformUnavailable(
                    f"the store did not give the orders' products: {error_message(response)}"
                )
            for product in response.json():
                self._products[int(product["id"])] = product
        return self._products

    async def write_refund(self, refund: PlatformRefund) -> str:
        return await record_refund(self.client, refund)

    async def restock(
        self, order_reference: str, lines: Sequence[RestockLine], idempotency_key: str
    ) -> None:
        # Units go back with the refund recorded in the store (api_restock, an atomic
        # increment in WooCommerce); REST has no increment of its own to do it apart.
        raise PlatformRejected("a WooCommerce store restocks with the refund it records")

    async def issue_store_credit(self, credit: PlatformCredit) -> str:
        return await issue_coupon(self.client, credit)

    async def store_credit_spent(self, customer_reference: str) -> Sequence[CreditSpent]:
        return await coupons_spent(self.client, customer_reference)

    async def place_exchange(self, exchange: PlatformExchange) -> str:
        return await place_exchange_order(self.client, exchange)

    async def open_return(
        self, order_reference: str, rma_number: str, lines: Sequence[ReturnLine]
    ) -> str | None:
        return None  # WooCommerce keeps no returns of its own

    async def end_return(self, return_reference: str, outcome: str) -> None:
        return None

    async def subscribe_webhooks(self, public_url: str, connection_id: str) -> None:
        """One active webhook per order topic to this connection's address, signed with the
        connection's secret: missing ones are made, disabled or paused ones (WooCommerce
        disables a webhook after five failed deliveries) are made active again."""
        if not self.webhook_secret:
            raise PlatformRejected(
                "this connection was made with keys typed in; register its webhooks in the "
                "store by hand, or connect it again with connectWooCommerce"
            )
        address = f"{public_url}/webhooks/woocommerce/{connection_id}"
        existing = await self._webhooks_to(address)
        for topic in WEBHOOK_TOPICS:
            hook = existing.get(topic)
            if hook is None:
                response = await self.client.post(
                    "webhooks",
                    {
                        "name": f"RMA returns: {topic}",
                        "topic": topic,
                        "delivery_url": address,
                        "secret": self.webhook_secret,
                        "status": "active",
                    },
                )
            elif hook.get("status") != "active":
                response = await self.client.put(
                    f"webhooks/{int(hook['id'])}",
                    {"status": "active", "secret": self.webhook_secret},
                )
            else:
                continue
            if response.status_code not in (200, 201):
                raise PlatformRejected(
                    f"the store refused the {topic} webhook: {error_message(response)}"
                )

    async def _webhooks_to(self, address: str) -> dict[str, JSON]:
        """The store's webhooks to ``address``, by topic (the active one when several)."""
        found: dict[str, JSON] = {}
        page = 1
        while True:
            response = await self.client.get(
                "webhooks", {"per_page": PER_PAGE, "page": page, "status": "all"}
            )
            if response.status_code != 200:
                raise PlatformRejected(
                    f"the store refused to list webhooks: {error_message(response)}"
                )
            for hook in response.json():
                if hook.get("delivery_url") != address or hook.get("topic") not in WEBHOOK_TOPICS:
                    continue
                if found.get(hook["topic"], {}).get("status") != "active":
                    found[hook["topic"]] = hook
            if page >= int(response.headers.get("X-WP-TotalPages", "1") or 1):
                return found
            page += 1


def _since(newest: str | None) -> str | None:
    moment = gmt(newest)
    if moment is None:
        return None
    return (moment - OVERLAP).replace(tzinfo=None).isoformat(timespec="seconds")
