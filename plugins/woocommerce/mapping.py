"""WooCommerce orders (REST v3, and webhook bodies, which are the same JSON) as the core's order
values. Pure functions.

* Money arrives as decimal strings (``"29.35"``) in the order's currency; it becomes integer
  minor units with the currency's exponent.
* A line's ``subtotal`` is before discounts and ``total`` after (both without tax): the unit
  price comes from the subtotal, the discount is the difference, ``total_tax`` is the tax.
* Dates are read from the ``*_gmt`` fields, which carry no zone and are UTC.
* The payment: an order paid through the WooCommerce Stripe Gateway (``payment_method``
  ``stripe`` or ``stripe_*``) is a Stripe payment on its PaymentIntent (``_stripe_intent_id``)
  or charge (``transaction_id``), refunded through the Stripe plugin; any other gateway is a
  MANUAL payment, refunded by staff, unless the merchant opted in to refunds through the
  store's own gateway (then it is a WOOCOMMERCE payment).
* Refunds whose reason carries :data:`REFUND_MARKER` were recorded by this service; the others
  were made in the store and are no longer ours to make.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.enums import PaymentProviderName, Platform
from core.money import normalize_currency, parse_decimal
from core.usecases.orders import CustomerInput, OrderInput, OrderLineInput, PaymentInput

JSON = Mapping[str, Any]

REFUND_MARKER = "rma-resolution:"
_OURS = re.compile(re.escape(REFUND_MARKER) + r"([0-9a-f-]{36})")

# Statuses of an order the customer has paid for (WooCommerce sets date_paid with them).
PAID_STATUSES = frozenset({"processing", "completed", "on-hold", "refunded"})


def gmt(value: str | None) -> datetime | None:
    """A ``*_gmt`` date (no zone, UTC) as an aware time."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def meta(order: JSON) -> dict[str, Any]:
    return {str(item.get("key")): item.get("value") for item in order.get("meta_data") or []}


def stripe_payment(order: JSON) -> str | None:
    """The Stripe PaymentIntent (``pi_…``) or else the charge (``ch_…``) an order was paid
    with through the WooCommerce Stripe Gateway; None for any other gateway."""
    if not str(order.get("payment_method") or "").startswith("stripe"):
        return None
    transaction = str(order.get("transaction_id") or "")
    intent = meta(order).get("_stripe_intent_id")
    if isinstance(intent, str) and intent.startswith("pi_"):
        return intent
    if transaction.startswith(("pi_", "ch_")):
        return transaction
    return None


def resolution_of_refund(reason: str | None) -> str | None:
    found = _OURS.search(reason or "")
    return found.group(1) if found else None


def order_input(
    order: JSON, products: Mapping[int, JSON] | None = None, *, refund_through_store: bool = False
) -> OrderInput:
    """One order; ``products`` (by id) give the lines' categories and tags when known.
    ``refund_through_store``: a payment through any gateway but Stripe is refunded by the
    store's own gateway (the connection's opt-in) instead of by staff."""
    currency = normalize_currency(str(order["currency"]))
    placed = gmt(order.get("date_created_gmt"))
    if placed is None:
        raise ValueError("the order has no creation date")
    billing = order.get("billing") or {}
    name = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p)
    customer_id = order.get("customer_id")
    stripe_customer = meta(order).get("_stripe_customer_id")
    delivered = gmt(order.get("date_completed_gmt"))
    return OrderInput(
        platform=Platform.WOOCOMMERCE,
        external_id=str(order["id"]),
        order_number=str(order.get("number") or order["id"]),
        currency=currency,
        placed_at=placed,
        customer=CustomerInput(
            email=str(billing.get("email") or f"order-{order['id']}@no-email.invalid"),
            name=name,
            external_id=str(customer_id) if customer_id else None,
            stripe_customer_id=stripe_customer if isinstance(stripe_customer, str) else None,
        ),
        lines=[_line(line, currency, products or {}) for line in order.get("line_items") or []],
        delivered_at=delivered if delivered is not None and delivered >= placed else None,
        shipping_minor=sum(
            minor_units(line.get("total"), currency) + minor_units(line.get("total_tax"), currency)
            for line in order.get("shipping_lines") or []
        ),
        payments=_payments(order, currency, refund_through_store),
        source_updated_at=gmt(order.get("date_modified_gmt")),
        refunded_elsewhere_minor=refunded_elsewhere(order.get("refunds") or [], currency),
    )


def minor_units(value: Any, currency: str) -> int:
    if value in (None, ""):
        return 0
    return parse_decimal(str(value), currency)


def _line(line: JSON, currency: str, products: Mapping[int, JSON]) -> OrderLineInput:
    quantity = int(line["quantity"])
    if quantity <= 0:
        raise ValueError(f"line {line.get('id')} has no quantity")
    subtotal = minor_units(line.get("subtotal"), currency)
    total = minor_units(line.get("total"), currency)
    # A unit price that covers the subtotal; what the rounding adds is part of the discount.
    unit = math.ceil(subtotal / quantity)
    product = products.get(int(line.get("product_id") or 0)) or {}
    categories = [str(c.get("name")) for c in product.get("categories") or [] if c.get("name")]
    tags = [str(t.get("name")) for t in product.get("tags") or [] if t.get("name")]
    return OrderLineInput(
        external_id=str(line["id"]),
        title=str(line.get("name") or line.get("sku") or "Item"),
        quantity=quantity,
        unit_price_minor=unit,
        discount_minor=max(unit * quantity - total, 0),
        tax_minor=minor_units(line.get("total_tax"), currency),
        sku=str(line.get("sku") or ""),
        category=categories[0] if categories else None,
        tags=[*categories[1:], *tags],
    )


def _payments(order: JSON, currency: str, refund_through_store: bool) -> list[PaymentInput]:
    if str(order.get("status")) not in PAID_STATUSES or not order.get("date_paid_gmt"):
        return []
    paid = minor_units(order.get("total"), currency)
    stripe = stripe_payment(order)
    gateway = str(order.get("payment_method") or "")
    if stripe is not None:
        return [PaymentInput(PaymentProviderName.STRIPE, stripe, paid, currency, gateway)]
    reference = str(order.get("transaction_id") or f"order-{order['id']}")
    provider = (
        PaymentProviderName.WOOCOMMERCE if refund_through_store else PaymentProviderName.MANUAL
    )
    return [PaymentInput(provider, reference[:100], paid, currency, gateway)]


def refunded_elsewhere(refunds: Sequence[JSON], currency: str) -> int:
    """Refunds made in the store (their totals are negative strings), not by this service."""
    return sum(
        abs(parse_decimal(str(Decimal(str(refund.get("total") or "0"))), currency))
        for refund in refunds
        if resolution_of_refund(refund.get("reason")) is None
    )
