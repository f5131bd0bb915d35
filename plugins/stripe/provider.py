"""The ``PaymentProvider`` port over the real ``stripe`` package.

Idempotency keys travel in the request options (never the params, where Stripe would read them
as an unknown field). Stripe's exceptions become the port's three outcomes: refused, unknown,
or an idempotency conflict.
"""

from __future__ import annotations

from typing import Any

import stripe

from core.ports.payments import (
    ProviderAmbiguous,
    ProviderIdempotencyConflict,
    ProviderRefund,
    ProviderRejected,
    RefundRequest,
    RefundStatus,
)

# How many of a payment's refunds a lookup reads before giving up (Stripe lists newest first).
LOOKUP_LIMIT = 300


def _refund(found: Any) -> ProviderRefund:
    try:
        status = RefundStatus(str(found.status))
    except ValueError:
        # A status Stripe added since: not settled, so the core looks again later.
        status = RefundStatus.PENDING
    return ProviderRefund(
        reference=str(found.id),
        status=status,
        amount_minor=int(found.amount),
        failure_reason=getattr(found, "failure_reason", None),
    )


def _resolution_of(refund: Any) -> str | None:
    """The resolution id a refund carries in its metadata (a StripeObject, not a dict)."""
    metadata = refund.metadata
    if not metadata or "resolution_id" not in metadata:
        return None
    return str(metadata["resolution_id"])


def _translate(error: stripe.StripeError) -> Exception:
    message = error.user_message or str(error) or type(error).__name__
    if isinstance(error, stripe.IdempotencyError):
        return ProviderIdempotencyConflict(message)
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        return ProviderAmbiguous(message)
    # Invalid request, card error, authentication, permission: Stripe decided, money did not move.
    return ProviderRejected(message)


class StripeProvider:
    def __init__(self, client: stripe.StripeClient, http: stripe.HTTPXClient) -> None:
        self.client = client
        self.http = http

    async def close(self) -> None:
        await self.http.close_async()  # type: ignore[no-untyped-call]

    async def create_refund(self, request: RefundRequest) -> ProviderRefund:
        reference = request.payment_reference
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "reason": "requested_by_customer",
            "metadata": dict(request.metadata),
            ("charge" if reference.startswith("ch_") else "payment_intent"): reference,
        }
        try:
            created = await self.client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as error:
            raise _translate(error) from error
        return _refund(created)

    async def find_refund(
        self, payment_reference: str, resolution_id: str, *, order_reference: str | None = None
    ) -> ProviderRefund | None:
        key = "charge" if payment_reference.startswith("ch_") else "payment_intent"
        params: dict[str, Any] = {key: payment_reference, "limit": 100}
        seen = 0
        try:
            while seen < LOOKUP_LIMIT:
                page = await self.client.v1.refunds.list_async(params)  # type: ignore[arg-type]
                for refund in page.data:
                    seen += 1
                    if _resolution_of(refund) == resolution_id:
                        return _refund(refund)
                if not page.has_more or not page.data:
                    return None
                params["starting_after"] = page.data[-1].id
        except stripe.StripeError as error:
            raise _translate(error) from error
        # Not having looked at every refund is not knowing: never a licence to send again.
        raise ProviderAmbiguous(f"more than {LOOKUP_LIMIT} refunds on {payment_reference}")

    async def credit_customer_balance(
        self,
        customer_reference: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> str:
        try:
            transaction = await self.client.v1.customers.balance_transactions.create_async(
                customer_reference,
                {"amount": -amount_minor, "currency": currency.lower(), "description": description},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _translate(error) from error
        return str(transaction.id)
