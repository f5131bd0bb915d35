"""Shopify's orders (GraphQL Admin API nodes) as the core's order values. Pure functions.

* Money arrives as decimal strings (``"404.95"``) in ``presentmentMoney``, the currency the
  customer paid in (the order's presentment currency, which refunds use too); it becomes
  integer minor units with the currency's exponent (JPY has none).
* Every successful SALE or CAPTURE is a payment, with its gateway (shopify_payments,
  gift_card, paypal: Shopify moves the money back; manual, cash on delivery: staff do).
* Refunds whose note carries :data:`REFUND_MARKER` were made by this service; the others were
  made in the Shopify admin and are no longer ours to refund.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.enums import PaymentProviderName, Platform
from core.money import normalize_currency, parse_decimal
from core.usecases.orders import CustomerInput, OrderInput, OrderLineInput, PaymentInput

# Written into the note of every refund this service makes, before the resolution's id.
REFUND_MARKER = "rma-resolution:"
_OURS = re.compile(re.escape(REFUND_MARKER) + r"([0-9a-f-]{36})")

PAID_KINDS = frozenset({"SALE", "CAPTURE"})
# Payments Shopify only records (cash on delivery, a bank transfer): a refund of them is money
# staff pay back by hand, so they are MANUAL, never refunded through refundCreate.
MANUAL_GATEWAYS = frozenset({"manual", "cash_on_delivery", "bank_deposit", "money_order"})

JSON = Mapping[str, Any]


def money(bag: JSON | None, currency: str) -> int:
    """A MoneyBag's amount as the customer paid it, in minor units; 0 when absent."""
    if not bag:
        return 0
    paid = bag.get("presentmentMoney") or {}
    amount = paid.get("amount")
    if amount is None:
        return 0
    if paid.get("currencyCode") and normalize_currency(paid["currencyCode"]) != currency:
        raise ValueError(f"an amount in {paid['currencyCode']} on an order in {currency}")
    return parse_decimal(str(amount), currency)


def timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def resolution_of_refund(note: str | None) -> str | None:
    """The resolution a refund was made for, when this service made it."""
    found = _OURS.search(note or "")
    return found.group(1) if found else None


def order_input(node: JSON) -> OrderInput:
    """One GraphQL order; raises ValueError (or the core's InvalidInput) for one that cannot
    be read, such as an amount in a currency that is not the order's."""
    currency = normalize_currency(str(node["presentmentCurrencyCode"]))
    placed = timestamp(node.get("processedAt")) or timestamp(node["createdAt"])
    if placed is None:
        raise ValueError("the order has no creation time")
    customer = node.get("customer") or {}
    name = " ".join(p for p in (customer.get("firstName"), customer.get("lastName")) if p)
    lines = [_line(line, currency) for line in node["lineItems"]["nodes"]]
    delivered = [
        moment
        for fulfillment in node.get("fulfillments") or []
        if (moment := timestamp(fulfillment.get("deliveredAt"))) is not None
    ]
    delivered_at = max(delivered) if delivered else None
    if delivered_at is not None and delivered_at < placed:
        delivered_at = None  # a clock skew on the carrier's side; purchase date counts
    return OrderInput(
        platform=Platform.SHOPIFY,
        external_id=str(node["id"]),
        order_number=str(node.get("name") or node["id"]),
        currency=currency,
        placed_at=placed,
        customer=CustomerInput(
            email=str(node.get("email") or customer.get("email") or _no_email(node, customer)),
            name=name,
            external_id=customer.get("id"),
        ),
        lines=lines,
        delivered_at=delivered_at,
        shipping_minor=money(node.get("totalShippingPriceSet"), currency),
        payments=payments(node.get("transactions") or [], currency),
        source_updated_at=timestamp(node.get("updatedAt")),
        refunded_elsewhere_minor=refunded_elsewhere(node.get("refunds") or [], currency),
    )


def _no_email(order: JSON, customer: JSON) -> str:
    """An address that cannot receive mail, for orders taken without one (at a till, by
    phone): staff can still return them, and the customer stays one per Shopify customer."""
    owner = customer.get("id") or order["id"]
    return (
        f"{str(owner).rsplit('/', 2)[-2].lower()}-{str(owner).rsplit('/', 1)[-1]}@no-email.invalid"
    )


def _line(node: JSON, currency: str) -> OrderLineInput:
    product = node.get("product") or {}
    tax = sum(money(tax_line.get("priceSet"), currency) for tax_line in node.get("taxLines") or [])
    return OrderLineInput(
        external_id=str(node["id"]),
        title=str(node.get("title") or node.get("sku") or "Item"),
        quantity=int(node["quantity"]),
        unit_price_minor=money(node.get("originalUnitPriceSet"), currency),
        discount_minor=money(node.get("totalDiscountSet"), currency),
        tax_minor=tax,
        sku=str(node.get("sku") or ""),
        category=product.get("productType") or None,
        tags=[str(tag) for tag in product.get("tags") or []],
    )


def payments(transactions: list[JSON], currency: str) -> list[PaymentInput]:
    """Each successful sale or capture, whatever its gateway."""
    return [
        PaymentInput(
            provider=(
                PaymentProviderName.MANUAL
                if str(transaction.get("gateway") or "").lower() in MANUAL_GATEWAYS
                else PaymentProviderName.SHOPIFY_PAYMENTS
            ),
            reference=str(transaction["id"]),
            captured_minor=money(transaction.get("amountSet"), currency),
            currency=currency,
            gateway=str(transaction.get("gateway") or ""),
        )
        for transaction in transactions
        if transaction.get("kind") in PAID_KINDS and transaction.get("status") == "SUCCESS"
    ]


def refunded_elsewhere(refunds: list[JSON], currency: str) -> int:
    return sum(
        money(refund.get("totalRefundedSet"), currency)
        for refund in refunds
        if resolution_of_refund(refund.get("note")) is None
    )


def refundable_transactions(transactions: list[JSON], currency: str) -> list[tuple[JSON, int]]:
    """Successful sales and captures that Shopify moves money back for, with what is left to
    refund on each, oldest first."""
    refunded: dict[str, int] = {}
    for transaction in transactions:
        parent = (transaction.get("parentTransaction") or {}).get("id")
        if (
            transaction.get("kind") == "REFUND"
            and transaction.get("status") == "SUCCESS"
            and parent
        ):
            refunded[parent] = refunded.get(parent, 0) + money(
                transaction.get("amountSet"), currency
            )
    left = []
    for transaction in transactions:
        if str(transaction.get("gateway") or "").lower() in MANUAL_GATEWAYS:
            continue
        if transaction.get("kind") in PAID_KINDS and transaction.get("status") == "SUCCESS":
            remaining = money(transaction.get("amountSet"), currency) - refunded.get(
                str(transaction["id"]), 0
            )
            if remaining > 0:
                left.append((transaction, remaining))
    return left


def allocate(amount_minor: int, refundable: list[tuple[JSON, int]]) -> list[tuple[JSON, int]]:
    """Spread a refund over the payments, the last payment first (the same on every retry,
    since it depends only on the order's transactions); raises ValueError when they hold
    less than ``amount_minor``."""
    parts = []
    left = amount_minor
    for transaction, remaining in reversed(refundable):
        if left <= 0:
            break
        part = min(left, remaining)
        parts.append((transaction, part))
        left -= part
    if left > 0:
        raise ValueError(f"the order's payments hold {amount_minor - left} less than asked")
    return parts
