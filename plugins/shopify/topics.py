"""What each Shopify webhook topic means to the core. Pure functions of the payload.

Order payloads are the REST representation at the subscription's version and may be stale or
arrive out of order, so an order topic only says "read this order again"; the sync reads it
through GraphQL and keeps the newer copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.enums import PaymentProviderName
from core.money import parse_decimal
from core.ports.payments import RefundReport, RefundStatus
from core.ports.webhooks import (
    AccessRevoked,
    AccountErasureRequested,
    CustomerDataRequested,
    CustomerRedactionRequested,
    OrderChanged,
    PlatformReturnEnded,
    TopicContext,
    TopicHandler,
    TopicResult,
)
from plugins.shopify.mapping import resolution_of_refund


def _order_gid(payload: Mapping[str, Any], key: str = "id") -> str:
    gid = payload.get("admin_graphql_api_id") if key == "id" else None
    if isinstance(gid, str) and gid.startswith("gid://shopify/Order/"):
        return gid
    number = int(payload[key])  # raises for a payload that is not an order's
    return f"gid://shopify/Order/{number}"


async def order_changed(context: TopicContext, payload: Any) -> TopicResult:
    return OrderChanged(_order_gid(payload))


async def refund_created(context: TopicContext, payload: Any) -> Sequence[TopicResult]:
    """A refund on an order: ours coming back (settle the resolution, never record it twice),
    or one made in the Shopify admin (the order is read again, so what is left to refund
    stays right)."""
    order = OrderChanged(_order_gid(payload, "order_id"))
    resolution_id = resolution_of_refund(payload.get("note"))
    if resolution_id is None:
        return [order]
    reference = payload.get("admin_graphql_api_id") or f"gid://shopify/Refund/{int(payload['id'])}"
    refunded = [
        transaction
        for transaction in payload.get("transactions") or []
        if transaction.get("kind") == "refund" and transaction.get("status") == "success"
    ]
    currency = next((str(t["currency"]) for t in refunded if t.get("currency")), None)
    amount = (
        parse_decimal(sum((Decimal(str(t["amount"])) for t in refunded), Decimal(0)), currency)
        if currency
        else None
    )
    report = RefundReport(
        provider=PaymentProviderName.SHOPIFY_PAYMENTS,
        provider_reference=str(reference),
        status=RefundStatus.SUCCEEDED,
        amount_minor=amount,
        currency=currency,
        resolution_id=resolution_id,
    )
    return [report, order]


async def app_uninstalled(context: TopicContext, payload: Any) -> TopicResult:
    if not isinstance(payload, dict):
        raise ValueError("app/uninstalled carries the shop")
    return AccessRevoked("the app was uninstalled from the shop", triggered_at(context))


def triggered_at(context: TopicContext) -> datetime | None:
    """When Shopify triggered the delivery (``X-Shopify-Triggered-At``), if it says."""
    value = context.headers.get("x-shopify-triggered-at")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _customer(payload: Any) -> tuple[str | None, str | None]:
    customer = payload["customer"]
    if not isinstance(customer, dict):
        raise TypeError("the request names no customer")
    email = customer.get("email")
    number = customer.get("id")
    reference = f"gid://shopify/Customer/{int(number)}" if number is not None else None
    return (str(email) if email else None), reference


async def customer_data_request(context: TopicContext, payload: Any) -> TopicResult:
    email, reference = _customer(payload)
    request = (payload.get("data_request") or {}).get("id")
    return CustomerDataRequested(email, reference, str(request or ""))


async def customer_redact(context: TopicContext, payload: Any) -> TopicResult:
    email, reference = _customer(payload)
    return CustomerRedactionRequested(email, reference)


async def shop_redact(context: TopicContext, payload: Any) -> TopicResult:
    if not isinstance(payload, dict) or "shop_domain" not in payload:
        raise ValueError("shop/redact names the shop")
    return AccountErasureRequested()


def return_ended(outcome: str) -> TopicHandler:
    async def handle(context: TopicContext, payload: Any) -> TopicResult:
        gid = payload.get("admin_graphql_api_id") or f"gid://shopify/Return/{int(payload['id'])}"
        return PlatformReturnEnded(str(gid), outcome)

    return handle


TOPICS: dict[str, TopicHandler] = {
    "returns/close": return_ended("CLOSED"),
    "returns/decline": return_ended("DECLINED"),
    "returns/cancel": return_ended("CANCELED"),
    "customers/data_request": customer_data_request,
    "customers/redact": customer_redact,
    "shop/redact": shop_redact,
    "orders/create": order_changed,
    "orders/updated": order_changed,
    "orders/cancelled": order_changed,
    "orders/paid": order_changed,
    "refunds/create": refund_created,
    "app/uninstalled": app_uninstalled,
}
