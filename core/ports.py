"""Ports: what the core needs from the outside, implemented by plugins.

A payment provider moves money for a merchant. Its methods raise the exceptions below so that the
core can tell a refused refund (money will not move) from an unknown outcome (it may have moved,
so look before sending again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RefundRequest:
    payment_reference: str  # pi_... or ch_... for Stripe
    amount_minor: int
    currency: str
    idempotency_key: str
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    reference: str
    status: str  # pending | requires_action | succeeded | failed | canceled
    amount_minor: int
    failure_reason: str | None = None


class ProviderError(Exception):
    """Base of what a provider reports; the message is safe to show to staff."""


class ProviderRejected(ProviderError):
    """The provider refused (bad request, card error, bad key): retrying will not help."""


class ProviderAmbiguous(ProviderError):
    """The outcome is unknown (timeout, dropped connection, 5xx): look up before resending."""


class ProviderIdempotencyConflict(ProviderError):
    """The same key was used with other parameters: a bug to review, never to paper over."""


class PaymentProvider(Protocol):
    """Moves a merchant's money through one provider account."""

    async def create_refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund part of a payment, idempotently under ``request.idempotency_key``."""
        ...

    async def find_refund(
        self, payment_reference: str, resolution_id: str
    ) -> ProviderRefund | None:
        """The refund made for this resolution, found by its metadata, if it exists."""
        ...

    async def credit_customer_balance(
        self,
        customer_reference: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> str:
        """Credit a customer's balance at the provider; returns the provider's transaction id."""
        ...

    async def close(self) -> None:
        """Release connections; the provider is not used after this."""
        ...
