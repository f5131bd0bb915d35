"""Refunds through the store's own gateway (``api_refund: true``), for a merchant who opted in
for the gateways no plugin of ours refunds through (a connection setting).

WooCommerce asks the gateway and records the refund in one request, and has no idempotency:
every attempt first looks for a refund carrying the attempt's key, so a timeout followed by a
retry finds the refund instead of refunding twice. A gateway that fails answers a 500 with its
own message; the refund is deleted by WooCommerce and the message goes back to staff.
"""

from __future__ import annotations

from core.money import parse_decimal, to_decimal_string
from core.ports.commerce import PlatformRejected, PlatformUnavailable
from core.ports.payments import (
    ProviderAmbiguous,
    ProviderRefund,
    ProviderRejected,
    RefundRequest,
    RefundStatus,
)
from plugins.woocommerce.client import WooCommerceClient, error_message
from plugins.woocommerce.mapping import JSON, REFUND_MARKER
from plugins.woocommerce.refunds import KEY_META, NUMBER_META, our_refunds


class WooCommerceGatewayRefunds:
    """The core's ``PaymentProvider`` for payments the store refunds itself."""

    def __init__(self, client: WooCommerceClient) -> None:
        self.client = client

    async def create_refund(self, request: RefundRequest) -> ProviderRefund:
        order = _order_id(request.order_reference)
        try:
            found = await self._find(order, request.idempotency_key, request.currency)
            if found is not None:
                return found
            number = request.metadata.get("rma_number", "")
            resolution = request.metadata.get("resolution_id", "")
            answer = await self.client.post(
                f"orders/{order}/refunds",
                {
                    "amount": to_decimal_string(request.amount_minor, request.currency),
                    # Saved before the gateway is asked: a refund whose answer was lost is
                    # found by it even when its meta_data never made it.
                    "reason": f"{number}: refund ({REFUND_MARKER}{resolution}) "
                    f"[{request.idempotency_key}]",
                    "api_refund": True,
                    # Units go back with a record of their own (the write-back job), so that
                    # stock follows the inspection, not the money.
                    "api_restock": False,
                    "meta_data": [
                        {"key": KEY_META, "value": request.idempotency_key},
                        {"key": NUMBER_META, "value": number},
                    ],
                },
            )
        except PlatformUnavailable as error:
            raise ProviderAmbiguous(str(error)) from error
        except PlatformRejected as error:
            raise ProviderRejected(str(error)) from error
        if answer.status_code not in (200, 201):
            raise ProviderRejected(f"the store's gateway refused: {error_message(answer)}")
        return _refund(answer.json(), request.currency)

    async def find_refund(
        self, payment_reference: str, resolution_id: str, *, order_reference: str | None = None
    ) -> ProviderRefund | None:
        order = _order_id(order_reference)
        try:
            return await self._find(order, f"rma-resolution-{resolution_id}", None)
        except PlatformUnavailable as error:
            raise ProviderAmbiguous(str(error)) from error
        except PlatformRejected as error:
            raise ProviderRejected(str(error)) from error

    async def _find(self, order: int, key: str, currency: str | None) -> ProviderRefund | None:
        entry = (await our_refunds(self.client, order)).get(key)
        if entry is None:
            return None
        if currency is None:
            # A refund's amount is in its order's currency, which the refund does not name.
            answer = await self.client.get(f"orders/{order}")
            if answer.status_code != 200:
                raise PlatformRejected(f"the order is not in the store: {error_message(answer)}")
            currency = str(answer.json()["currency"])
        return _refund(entry, currency)

    async def credit_customer_balance(
        self,
        customer_reference: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> str:
        raise ProviderRejected("a WooCommerce gateway keeps no customer balances")

    async def close(self) -> None:
        return None


def _order_id(reference: str | None) -> int:
    if not reference or not reference.isdigit():
        raise ProviderRejected("the refund names no WooCommerce order")
    return int(reference)


def _refund(entry: JSON, currency: str) -> ProviderRefund:
    amount = str(entry.get("amount") or "0")
    # WooCommerce saves the refund, asks the gateway, deletes the refund if the gateway
    # failed, and only then adds the meta_data. Without it the gateway may still be at work
    # (or the store died after it paid): pending, looked at again later, never sent again.
    settled = not entry.get("key_in_reason_only")
    return ProviderRefund(
        reference=str(entry["id"]),
        status=RefundStatus.SUCCEEDED if settled else RefundStatus.PENDING,
        amount_minor=parse_decimal(amount, currency),
    )
