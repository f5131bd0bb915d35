"""Refunds of Shopify orders through Shopify (``refundCreate``), as the core's PaymentProvider.

A Shopify order's money is refunded by Shopify, never through the merchant's Stripe key, and
spread over the order's payments (a card and a gift card are each refunded what they took at
most; Shopify returns a gift card's part to the gift card). Exactly once: the resolution's
idempotency key goes in ``@idempotent(key:)`` (Shopify answers a repeat with the first
result), and the refund's note names the resolution, so a retry after a lost answer finds the
refund instead of making another, even once Shopify has forgotten the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.money import to_decimal_string
from core.ports.commerce import PlatformRejected, PlatformUnavailable
from core.ports.payments import (
    ProviderAmbiguous,
    ProviderIdempotencyConflict,
    ProviderRefund,
    ProviderRejected,
    RefundRequest,
    RefundStatus,
)
from plugins.shopify import queries
from plugins.shopify.client import JSON, QueryRefused, ShopifyGraphQL, user_errors
from plugins.shopify.mapping import (
    REFUND_MARKER,
    allocate,
    money,
    refundable_transactions,
    resolution_of_refund,
)

_CONFLICT_CODES = frozenset({"IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "IDEMPOTENCY_CONFLICT"})


class ShopifyRefunds:
    def __init__(self, client: ShopifyGraphQL) -> None:
        self.client = client

    async def close(self) -> None:
        await self.client.close()

    async def create_refund(self, request: RefundRequest) -> ProviderRefund:
        if not request.order_reference:
            raise ProviderRejected("a Shopify refund needs the order")
        resolution_id = request.metadata.get("resolution_id", "")
        order = await self._order(request.order_reference)
        earlier = _ours(order, resolution_id)
        if earlier is not None:
            return earlier
        currency = str(order["presentmentCurrencyCode"])
        if currency != request.currency:
            raise ProviderRejected(f"the order is in {currency}, the refund in {request.currency}")
        try:
            parts = allocate(
                request.amount_minor, refundable_transactions(order["transactions"], currency)
            )
        except ValueError as error:
            raise ProviderRejected(f"cannot refund {request.amount_minor}: {error}") from error
        note = f"Return {request.metadata.get('rma_number', '')} ({REFUND_MARKER}{resolution_id})"
        refund_input = {
            "orderId": request.order_reference,
            # The currency the customer paid in, which the amounts below are in.
            "currency": currency,
            "note": note.strip(),
            "notify": True,
            # What came back, so that Shopify's reports count the units; stock is put back by
            # the restock job (after inspection), never by the refund as well.
            "refundLineItems": _refund_lines(order, request),
            "transactions": [
                {
                    "orderId": request.order_reference,
                    "parentId": transaction["id"],
                    "amount": to_decimal_string(part, currency),
                    "gateway": transaction["gateway"],
                    "kind": "REFUND",
                }
                for transaction, part in parts
            ],
        }
        try:
            data = await self.client.execute(
                queries.REFUND_CREATE,
                {"input": refund_input, "key": request.idempotency_key},
                cost=10,
            )
        except QueryRefused as error:
            if error.codes & _CONFLICT_CODES:
                raise ProviderIdempotencyConflict(str(error)) from error
            raise ProviderRejected(str(error)) from error
        except PlatformRejected as error:
            raise ProviderRejected(str(error)) from error
        except PlatformUnavailable as error:
            # The refund may have been made: the next attempt looks before sending.
            raise ProviderAmbiguous(str(error)) from error
        payload = data.get("refundCreate") or {}
        problem = user_errors(payload)
        if problem:
            raise ProviderRejected(f"Shopify refused the refund: {problem}")
        refund = payload.get("refund")
        if not refund:
            raise ProviderAmbiguous("Shopify answered without the refund")
        return _provider_refund(refund, currency)

    async def find_refund(
        self, payment_reference: str, resolution_id: str, *, order_reference: str | None = None
    ) -> ProviderRefund | None:
        if not order_reference:
            return None
        return _ours(await self._order(order_reference), resolution_id)

    async def credit_customer_balance(
        self,
        customer_reference: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> str:
        raise ProviderRejected("store credit for Shopify shops stays in the service's ledger")

    async def _order(self, order_reference: str) -> JSON:
        try:
            data = await self.client.execute(
                queries.ORDER_REFUNDS, {"id": order_reference}, cost=400
            )
        except PlatformRejected as error:
            raise ProviderRejected(str(error)) from error
        except PlatformUnavailable as error:
            raise ProviderAmbiguous(str(error)) from error
        order = data.get("order")
        if order is None:
            raise ProviderRejected(f"order {order_reference} is not in the shop")
        return dict(order)


def _refund_lines(order: Mapping[str, Any], request: RefundRequest) -> list[dict[str, Any]]:
    refundable = {
        line["id"]: int(line.get("refundableQuantity") or 0)
        for line in (order.get("lineItems") or {}).get("nodes", [])
    }
    lines = []
    for line in request.lines:
        quantity = min(line.quantity, refundable.get(line.line_reference, 0))
        if quantity > 0:
            lines.append(
                {
                    "lineItemId": line.line_reference,
                    "quantity": quantity,
                    "restockType": "NO_RESTOCK",
                }
            )
    return lines


def _ours(order: Mapping[str, Any], resolution_id: str) -> ProviderRefund | None:
    for refund in order.get("refunds") or []:
        if resolution_id and resolution_of_refund(refund.get("note")) == resolution_id:
            return _provider_refund(refund, str(order["presentmentCurrencyCode"]))
    return None


def _provider_refund(refund: Mapping[str, Any], currency: str) -> ProviderRefund:
    return ProviderRefund(
        reference=str(refund["id"]),
        status=RefundStatus.SUCCEEDED,
        amount_minor=money(refund.get("totalRefundedSet"), currency),
    )
