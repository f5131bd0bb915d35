"""Recording a refund in the store (``POST /orders/<id>/refunds``), once.

The money moved elsewhere (our Stripe plugin, staff, store credit), so the refund is recorded
with ``api_refund: false``: the store must never send it through its gateway again. Its line
items carry quantities and amounts (tax apart, on the line's own tax rates) so the store's
reports and stock agree with the return; ``api_restock`` puts the units back. Because
``api_restock`` covers a whole refund, a return where only some lines go back to stock is
recorded as two refunds: the restocked lines, then the rest with the shipping.

WooCommerce has no idempotency: each part carries our key in ``meta_data`` and the store's
refunds are looked up for it before anything is sent, on every attempt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.money import to_decimal_string
from core.ports.commerce import PlatformRefund, PlatformRejected
from plugins.woocommerce.client import WooCommerceClient, error_message
from plugins.woocommerce.mapping import JSON, REFUND_MARKER, minor_units

# The meta_data keys our refunds carry: the part's key, and the RMA number for people.
KEY_META = "_rma_refund_key"
NUMBER_META = "_rma_number"
_RESOLUTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class RefundPart:
    key: str
    body: dict[str, Any]


async def record_refund(client: WooCommerceClient, refund: PlatformRefund) -> str:
    """The store's refund id(s) for ``refund``, comma-separated; made where missing."""
    reference = int(refund.order_reference)
    response = await client.get(f"orders/{reference}")
    if response.status_code != 200:
        raise PlatformRejected(f"the order is not in the store: {error_message(response)}")
    parts = refund_parts(refund, response.json())
    recorded = await _recorded(client, reference)
    ids: list[str] = []
    for part in parts:
        if part.key in recorded:
            ids.append(recorded[part.key])
            continue
        answer = await client.post(f"orders/{reference}/refunds", part.body)
        if answer.status_code not in (200, 201):
            raise PlatformRejected(f"the store refused the refund: {error_message(answer)}")
        ids.append(str(answer.json()["id"]))
    return ",".join(ids)


async def _recorded(client: WooCommerceClient, reference: int) -> dict[str, str]:
    """Our refunds on the order, by key (every page: an order has few refunds)."""
    return {key: str(entry["id"]) for key, entry in (await our_refunds(client, reference)).items()}


async def our_refunds(client: WooCommerceClient, reference: int) -> dict[str, JSON]:
    """The order's refunds that carry our key, by key."""
    found: dict[str, JSON] = {}
    page = 1
    while True:
        response = await client.get(f"orders/{reference}/refunds", {"per_page": 100, "page": page})
        if response.status_code != 200:
            raise PlatformRejected(f"the store refused to list refunds: {error_message(response)}")
        for entry in response.json():
            for item in entry.get("meta_data") or []:
                if item.get("key") == KEY_META and isinstance(item.get("value"), str):
                    found[item["value"]] = entry
            key = _key_in_reason(str(entry.get("reason") or ""))
            if key is not None and key not in found:
                # Saved by WooCommerce before its meta_data: ours, its answer lost on the way.
                found[key] = {**entry, "key_in_reason_only": True}
        if page >= int(response.headers.get("X-WP-TotalPages", "1") or 1):
            return found
        page += 1


def refund_parts(refund: PlatformRefund, order: JSON) -> list[RefundPart]:
    """The refunds to post for ``refund`` on ``order`` (the store's JSON); pure."""
    currency = refund.currency
    items = {str(item["id"]): item for item in order.get("line_items") or []}
    restocked = {line.line_reference for line in refund.restock if line.quantity > 0}
    groups: list[tuple[str, bool, list[dict[str, Any]], int]] = []
    kept: list[dict[str, Any]] = []
    back: list[dict[str, Any]] = []
    kept_total = back_total = 0
    for line in refund.lines:
        item = items.get(line.line_reference)
        if item is None:
            raise PlatformRejected(f"line {line.line_reference} is not on the order")
        entry = _entry(
            line.line_reference, line.quantity, line.amount_minor, item, currency, line.tax_minor
        )
        if line.line_reference in restocked:
            back.append(entry)
            back_total += line.amount_minor
        else:
            kept.append(entry)
            kept_total += line.amount_minor
    shipping = list(order.get("shipping_lines") or [])
    if refund.shipping_minor > 0 and shipping:
        kept.append(_entry(str(shipping[0]["id"]), 0, refund.shipping_minor, shipping[0], currency))
        kept_total += refund.shipping_minor
    if back:
        groups.append((f"{refund.idempotency_key}:restock", True, back, back_total))
    if kept or not back:
        groups.append((refund.idempotency_key, False, kept, kept_total))
    # What the lines do not account for (a fee, a rounding) comes off the last part; the
    # amount given is what the store records whatever the lines say.
    difference = refund.amount_minor - sum(total for *_, total in groups)
    key, restock, entries, total = groups[-1]
    groups[-1] = (key, restock, entries, max(total + difference, 0))
    marker = _marker(refund.idempotency_key)
    return [
        RefundPart(
            key,
            {
                "amount": to_decimal_string(total, currency),
                # The reason is saved before anything else (the meta only after): the key
                # is in it too, so a refund whose answer was lost is found either way.
                "reason": f"{refund.reason[:300]}{marker} [{key}]",
                "api_refund": False,
                "api_restock": restock,
                "line_items": entries,
                "meta_data": [
                    {"key": KEY_META, "value": key},
                    {"key": NUMBER_META, "value": refund.reason.split(":", 1)[0]},
                ],
            },
        )
        for key, restock, entries, total in groups
    ]


_KEY_IN_REASON = re.compile(r"\[(rma-resolution-[^\]\s]+)\]\s*$")


def _key_in_reason(reason: str) -> str | None:
    found = _KEY_IN_REASON.search(reason)
    return found.group(1) if found else None


def _marker(key: str) -> str:
    found = _RESOLUTION_ID.search(key)
    return f" ({REFUND_MARKER}{found.group(0)})" if found else f" ({key})"


def _entry(
    reference: str,
    quantity: int,
    amount_minor: int,
    item: JSON,
    currency: str,
    tax_minor: int | None = None,
) -> dict[str, Any]:
    """A refund line item: the amount split into net and tax (as given, else in the line's
    own proportion), the tax spread over the line's rates."""
    net_total = minor_units(item.get("total"), currency)
    tax_total = minor_units(item.get("total_tax"), currency)
    gross = net_total + tax_total
    if tax_minor is not None:
        tax = min(tax_minor, amount_minor)
    else:
        tax = round(amount_minor * tax_total / gross) if gross > 0 and tax_total > 0 else 0
    entry: dict[str, Any] = {
        "id": int(reference),
        "refund_total": to_decimal_string(amount_minor - tax, currency),
    }
    if quantity:
        entry["quantity"] = quantity
    rates = [t for t in item.get("taxes") or [] if minor_units(t.get("total"), currency) > 0]
    if tax and rates:
        entry["refund_tax"] = _spread(tax, rates, currency)
    return entry


def _spread(tax: int, rates: Sequence[Mapping[str, Any]], currency: str) -> list[JSON]:
    weights = [minor_units(rate.get("total"), currency) for rate in rates]
    shares = [tax * weight // sum(weights) for weight in weights]
    shares[-1] += tax - sum(shares)
    return [
        {"id": int(rate["id"]), "refund_total": to_decimal_string(share, currency)}
        for rate, share in zip(rates, shares, strict=True)
    ]
