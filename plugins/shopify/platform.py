"""One shop as the core's ``CommercePlatform``: orders read, stock put back, webhooks asked for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from core.errors import DomainError
from core.money import normalize_currency, parse_decimal, to_decimal_string
from core.ports.commerce import (
    CREDIT_DESTINATION,
    CreditSpent,
    OrderPage,
    PlatformCredit,
    PlatformExchange,
    PlatformRefund,
    PlatformRejected,
    RestockLine,
    ReturnLine,
    ReturnOutcome,
)
from core.usecases.orders import OrderInput
from plugins.shopify import bulk, queries
from plugins.shopify.client import JSON, ShopifyGraphQL, user_errors
from plugins.shopify.exchanges import place_exchange_order
from plugins.shopify.mapping import order_input, timestamp

log = structlog.get_logger()

# Topics the app subscribes to for each shop (the compliance topics are set in the app's
# configuration instead: Shopify does not let an app subscribe to them).
SUBSCRIBED_TOPICS = (
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_CANCELLED",
    "REFUNDS_CREATE",
    "APP_UNINSTALLED",
    "RETURNS_CLOSE",
    "RETURNS_DECLINE",
    "RETURNS_CANCEL",
)
APP_WEBHOOK_PATH = "/webhooks/shopify/app"

# Connection settings staff may change, with their defaults.
SETTINGS_DEFAULTS: dict[str, Any] = {
    # Where restocked units go (a Location GID); empty: the shop's primary location.
    "restock_location_id": "",
    # Where store credit lives: the service's ledger, or Shopify's store credit ("platform").
    CREDIT_DESTINATION: "service",
}
SETTINGS_CHOICES = {CREDIT_DESTINATION: ("service", "platform")}


# A first sync of more orders than this reads them through a bulk operation.
BULK_THRESHOLD = 250


CLOCK_TOLERANCE = timedelta(minutes=2)


def _minor(money: JSON) -> tuple[int, str]:
    currency = normalize_currency(str(money["currencyCode"]))
    return parse_decimal(str(money["amount"]), currency), currency


class ShopifyPlatform:
    def __init__(
        self,
        client: ShopifyGraphQL,
        settings: Mapping[str, Any],
        *,
        bulk_patience: float = 600.0,
        timeout: float = 20.0,
    ) -> None:
        self.client = client
        self.settings = dict(settings)
        self.bulk_patience = bulk_patience
        self.timeout = timeout
        self._reader: bulk.BulkReader | None = None

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        await self.client.close()

    async def fetch_order(self, order_reference: str) -> OrderInput | None:
        data = await self.client.execute(
            queries.ORDER, {"id": order_reference}, cost=queries.ORDER_COST
        )
        node = data.get("order")
        if node is None:
            return None
        if node["lineItems"]["pageInfo"]["hasNextPage"]:
            raise PlatformRejected(
                f"order {node.get('name')} has more than {queries.LINES_PER_ORDER} lines"
            )
        try:
            return order_input(node)
        except (DomainError, ValueError, KeyError, TypeError) as error:
            raise PlatformRejected(f"order {node.get('name')} cannot be read: {error}") from error

    async def orders_changed_since(self, cursor: str | None, *, limit: int) -> OrderPage:
        """Orders by ``updatedAt``, from the time in the cursor (inclusive: an order updated
        in the same second as the last one read is read again, which changes nothing)."""
        position = json.loads(cursor) if cursor else {}
        if "bulk" in position:
            return await self._bulk_page(position, limit)
        if cursor is None and await bulk.orders_count(self.client) > BULK_THRESHOLD:
            operation = await bulk.start(self.client)
            return OrderPage([], json.dumps({"bulk": operation, "read": 0}), has_more=True)
        since = position.get("since")
        data = await self.client.execute(
            queries.ORDERS_PAGE,
            {
                "first": max(1, min(limit, queries.ORDERS_PER_PAGE)),
                "after": position.get("after"),
                "query": f"updated_at:>='{since}'" if since else None,
            },
            cost=queries.ORDERS_PER_PAGE * queries.PAGED_ORDER_COST,
        )
        connection = data["orders"]
        orders: list[OrderInput] = []
        refused: list[str] = []
        newest = position.get("newest") or since
        for node in connection["nodes"]:
            newest = max(filter(None, (newest, node.get("updatedAt"))), default=None)
            try:
                orders.append(await self._read(node))
            except (DomainError, PlatformRejected, ValueError, KeyError, TypeError) as error:
                refused.append(f"order {node.get('name') or node.get('id')}: {error}")
        more = bool(connection["pageInfo"]["hasNextPage"])
        if more:
            following = {"since": since, "after": connection["pageInfo"]["endCursor"]}
            following["newest"] = newest
        else:
            following = {"since": newest}
        return OrderPage(orders, json.dumps(following), has_more=more, refused=refused)

    async def _bulk_page(self, position: dict[str, Any], limit: int) -> OrderPage:
        """The next orders of a bulk operation's file (waiting for it to finish first)."""
        if self._reader is None:
            try:
                url, started = await bulk.finished_url(
                    self.client, position["bulk"], patience=self.bulk_patience
                )
            except bulk.BulkGone as gone:
                # Failed, cancelled, or its file expired: read by pages from where it got to.
                log.warning("bulk read given up, reading by pages", reason=str(gone))
                following = {"since": position.get("newest"), "after": None}
                return OrderPage([], json.dumps(following), has_more=True)
            if url is None:
                return OrderPage([], json.dumps({"since": started}))
            position = {**position, "started": started}
            self._reader = bulk.BulkReader(url, timeout=self.timeout)
        try:
            nodes, more = await self._reader.next_orders(int(position.get("read", 0)), limit)
        except bulk.BulkGone as gone:
            await self._reader.close()
            self._reader = None
            log.warning("bulk read given up, reading by pages", reason=str(gone))
            following = {"since": position.get("newest"), "after": None}
            return OrderPage([], json.dumps(following), has_more=True)
        orders: list[OrderInput] = []
        refused: list[str] = []
        newest = position.get("newest")
        for node in nodes:
            newest = max(filter(None, (newest, node.get("updatedAt"))), default=None)
            try:
                orders.append(order_input(node))
            except (DomainError, ValueError, KeyError, TypeError) as error:
                refused.append(f"order {node.get('name') or node.get('id')}: {error}")
        started = position.get("started")
        if more:
            following = {
                "bulk": position["bulk"],
                "read": self._reader.read,
                "newest": newest,
                "started": started,
            }
            return OrderPage(orders, json.dumps(following), has_more=True, refused=refused)
        await self._reader.close()
        self._reader = None
        # From when the bulk query started, not its newest order: an order it had read early
        # and that changed while it ran is read again.
        since = min(filter(None, (newest, started)), default=None)
        return OrderPage(orders, json.dumps({"since": since}), refused=refused)

    async def _read(self, node: JSON) -> OrderInput:
        brim = queries.PAYMENTS_PER_PAGED_ORDER
        if (
            node["lineItems"]["pageInfo"]["hasNextPage"]
            or len(node.get("transactions") or []) >= brim
            or len(node.get("refunds") or []) >= brim
        ):
            full = await self.fetch_order(str(node["id"]))
            if full is None:
                raise PlatformRejected("the order disappeared while it was read")
            return full
        return order_input(node)

    async def write_refund(self, refund: PlatformRefund) -> str:
        raise PlatformRejected(
            "a Shopify order is refunded through Shopify itself (refundCreate), not recorded"
        )

    async def restock(
        self, order_reference: str, lines: Sequence[RestockLine], idempotency_key: str
    ) -> None:
        """An inventory adjustment at the restock location, applied once under the key."""
        location = self.settings.get("restock_location_id") or await self._primary_location()
        data = await self.client.execute(
            queries.ORDER_INVENTORY_ITEMS, {"id": order_reference}, cost=260
        )
        order = data.get("order")
        if order is None:
            raise PlatformRejected(f"order {order_reference} is not in the shop")
        items = {
            line["id"]: ((line.get("variant") or {}).get("inventoryItem") or {}).get("id")
            for line in order["lineItems"]["nodes"]
        }
        changes = []
        for line in lines:
            item = items.get(line.line_reference)
            if item is None:
                continue  # a custom item or a deleted product: nothing to put back
            changes.append(
                {
                    "delta": line.quantity,
                    "inventoryItemId": item,
                    "locationId": location,
                    "changeFromQuantity": None,
                }
            )
        if not changes:
            return
        result = await self.client.execute(
            queries.INVENTORY_ADJUST,
            {
                "input": {
                    "reason": "restock",
                    "name": "available",
                    "referenceDocumentUri": f"gid://rma-service/Restock/{idempotency_key}",
                    "changes": changes,
                },
                "key": idempotency_key,
            },
            cost=10,
        )
        problem = user_errors(result.get("inventoryAdjustQuantities"))
        if problem:
            raise PlatformRejected(f"Shopify refused the restock: {problem}")

    async def _primary_location(self) -> str:
        data = await self.client.execute(queries.PRIMARY_LOCATION, cost=2)
        location = data.get("location")
        if not location:
            raise PlatformRejected("the shop has no location to restock to")
        return str(location["id"])

    async def place_exchange(self, exchange: PlatformExchange) -> str:
        return await place_exchange_order(self.client, exchange)

    async def open_return(
        self, order_reference: str, rma_number: str, lines: Sequence[ReturnLine]
    ) -> str | None:
        """A Shopify return for the RMA's lines, found again by the RMA number in its lines'
        notes (``returnCreate`` has no idempotency key). None when nothing was fulfilled."""
        data = await self.client.execute(queries.ORDER_RETURNS, {"id": order_reference}, cost=400)
        order = data.get("order")
        if order is None:
            raise PlatformRejected(f"order {order_reference} is not in the shop")
        note = f"RMA {rma_number}"
        for existing in order["returns"]["nodes"]:
            notes = {item.get("returnReasonNote") for item in existing["returnLineItems"]["nodes"]}
            if note in notes and existing.get("status") not in ("CANCELED", "DECLINED"):
                return str(existing["id"])
        fulfilled: dict[str, list[tuple[str, int]]] = {}
        for fulfillment in order.get("fulfillments") or []:
            for item in fulfillment["fulfillmentLineItems"]["nodes"]:
                line = item["lineItem"]["id"]
                fulfilled.setdefault(line, []).append((item["id"], int(item["quantity"])))
        return_lines = []
        for line in lines:
            wanted = line.quantity
            for fulfillment_line, quantity in fulfilled.get(line.line_reference, []):
                if wanted <= 0:
                    break
                part = min(wanted, quantity)
                return_lines.append(
                    {
                        "fulfillmentLineItemId": fulfillment_line,
                        "quantity": part,
                        "returnReason": line.reason,
                        "returnReasonNote": note,
                    }
                )
                wanted -= part
            if wanted > 0:
                return None  # not (all) fulfilled yet: Shopify keeps returns of shipped goods
        result = await self.client.execute(
            queries.RETURN_CREATE,
            {"input": {"orderId": order_reference, "returnLineItems": return_lines}},
            cost=10,
            resendable=False,  # no idempotency key: the next attempt looks for it first
        )
        payload = result.get("returnCreate") or {}
        problem = user_errors(payload)
        if problem:
            raise PlatformRejected(f"Shopify refused the return: {problem}")
        return str(payload["return"]["id"])

    async def end_return(self, return_reference: str, outcome: str) -> None:
        data = await self.client.execute(queries.RETURN_STATUS, {"id": return_reference}, cost=2)
        current = (data.get("return") or {}).get("status")
        if current is None or current in ("CLOSED", "CANCELED", "DECLINED"):
            return  # gone, or ended already (by us or by staff in Shopify)
        document = (
            queries.RETURN_CLOSE if outcome == ReturnOutcome.CLOSED else queries.RETURN_CANCEL
        )
        result = await self.client.execute(document, {"id": return_reference}, cost=10)
        name = "returnClose" if outcome == ReturnOutcome.CLOSED else "returnCancel"
        problem = user_errors(result.get(name))
        if problem:
            raise PlatformRejected(f"Shopify refused to end the return: {problem}")

    async def issue_store_credit(self, credit: PlatformCredit) -> str:
        """``storeCreditAccountCredit``, which has no idempotency key: after an attempt with
        no clear outcome (``look_since``), a credit of the same amount made since then is
        taken to be ours instead of crediting again."""
        if credit.look_since is not None:
            # Shopify's clock and ours differ a little, and it keeps whole seconds.
            since = credit.look_since - CLOCK_TOLERANCE
            for found in await self._credit_history(credit.customer_reference):
                if (
                    found["__typename"] == "StoreCreditAccountCreditTransaction"
                    and str(found["id"]) not in credit.claimed
                    and _minor(found["amount"]) == (credit.amount_minor, credit.currency)
                    and (timestamp(found["createdAt"]) or since) >= since
                ):
                    return str(found["id"])
        data = await self.client.execute(
            queries.STORE_CREDIT,
            {
                "id": credit.customer_reference,
                "input": {
                    "creditAmount": {
                        "amount": to_decimal_string(credit.amount_minor, credit.currency),
                        "currencyCode": credit.currency,
                    },
                    "notify": True,
                },
            },
            cost=10,
            resendable=False,
        )
        payload = data.get("storeCreditAccountCredit") or {}
        problem = user_errors(payload)
        if problem:
            raise PlatformRejected(f"Shopify refused the store credit: {problem}")
        return str(payload["storeCreditAccountTransaction"]["id"])

    async def store_credit_spent(self, customer_reference: str) -> Sequence[CreditSpent]:
        return [
            CreditSpent(
                reference=str(found["id"]),
                amount_minor=abs(_minor(found["amount"])[0]),
                currency=_minor(found["amount"])[1],
                at=timestamp(found["createdAt"]) or datetime.fromtimestamp(0, UTC),
            )
            for found in await self._credit_history(customer_reference)
            if found["__typename"] == "StoreCreditAccountDebitTransaction"
        ]

    async def _credit_history(self, customer_reference: str) -> list[JSON]:
        data = await self.client.execute(
            queries.STORE_CREDIT_TRANSACTIONS, {"id": customer_reference}, cost=520
        )
        customer = data.get("customer")
        if customer is None:
            raise PlatformRejected(f"customer {customer_reference} is not in the shop")
        return [
            transaction
            for account in customer["storeCreditAccounts"]["nodes"]
            for transaction in account["transactions"]["nodes"]
        ]

    async def subscribe_webhooks(self, public_url: str, connection_id: str) -> None:
        uri = f"{public_url}{APP_WEBHOOK_PATH}"
        for topic in SUBSCRIBED_TOPICS:
            result = await self.client.execute(
                queries.WEBHOOK_SUBSCRIBE, {"topic": topic, "uri": uri}, cost=10
            )
            problem = user_errors(result.get("webhookSubscriptionCreate"))
            if problem and "already been taken" not in problem:
                raise PlatformRejected(f"Shopify refused the {topic} subscription: {problem}")
