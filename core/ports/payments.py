"""A payment provider moves a merchant's money: refunds, and credit on a customer balance.

Its methods raise the exceptions below so that the core can tell a refused refund (money will
not move) from an unknown outcome (it may have moved, so look before sending again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

from core.enums import PaymentProviderName, Platform


class RefundStatus(StrEnum):
    """Where a refund stands at the provider, in the core's words."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class RefundedLine:
    line_reference: str  # the platform's order line id
    quantity: int


@dataclass(frozen=True, slots=True)
class RefundRequest:
    payment_reference: str  # the provider's id of the payment (a payment intent, a charge)
    amount_minor: int
    currency: str
    idempotency_key: str
    metadata: Mapping[str, str]
    # The platform's order, for providers that refund through the order (Shopify), and the
    # units returned, so that the platform's own reports show what came back.
    order_reference: str | None = None
    lines: Sequence[RefundedLine] = ()


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    reference: str
    status: RefundStatus
    amount_minor: int
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RefundReport:
    """What a provider says about one of its refunds (a webhook, or a lookup)."""

    provider: PaymentProviderName
    provider_reference: str
    status: RefundStatus
    amount_minor: int | None = None
    currency: str | None = None
    # The payment ids the provider names for the refunded payment (intent, charge, ...).
    payment_references: Sequence[str] = ()
    resolution_id: str | None = None  # from the metadata the refund was created with
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
        self, payment_reference: str, resolution_id: str, *, order_reference: str | None = None
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


@dataclass(frozen=True, slots=True)
class PaymentProviderFactory:
    """How a plugin builds its provider for one merchant, from that merchant's credentials.

    ``platform`` names the connection that holds the credentials; the core finds and decrypts
    it, so the plugin never sees the database. ``build`` receives the credentials with the
    connection's account (a shop domain) added under ``"account"``.
    """

    provider: PaymentProviderName
    platform: Platform
    build: Callable[[Mapping[str, Any]], PaymentProvider]
    # Whether store credit is mirrored to a customer balance kept by this provider.
    holds_customer_balances: bool = False
    # How long the provider surely remembers an idempotency key: past that, a retry looks for
    # the refund before sending, since the key alone may no longer stop a second one.
    idempotency_keys_trusted_for: timedelta = timedelta(hours=20)
