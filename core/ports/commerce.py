"""An order platform (Shopify, WooCommerce): where orders come from and refunds go back to.

The core reads orders through it into the values ``upsert_order`` applies, and writes back what
happened on a return: the refund (made by the platform, or by our payment provider and only
recorded there), the restock of returned units, and store credit where the merchant keeps it on
the platform. Methods raise ``PlatformRejected`` (will not work as asked) or
``PlatformUnavailable`` (try again later; nothing is known to have happened).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.enums import PaymentProviderName, Platform
from core.usecases.orders import OrderInput


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: Sequence[OrderInput]
    # Where the next call starts: kept after every page, so a sync resumes there after a
    # crash, and the next incremental sync starts there once this one is done.
    next_cursor: str | None
    # Whether the platform has more changes right now (another page is due).
    has_more: bool = False
    # Orders on this page the plugin could not read, each named with why (never half-read).
    refused: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class RefundLine:
    line_reference: str  # the platform's order line id
    quantity: int
    amount_minor: int  # tax included, fees taken off
    # The tax within ``amount_minor`` (a fee comes off the goods, never the tax); None when
    # unknown, and the platform splits it in the line's own proportion.
    tax_minor: int | None = None


@dataclass(frozen=True, slots=True)
class RestockLine:
    line_reference: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlatformRefund:
    """A refund to record on the platform's order, once, under ``idempotency_key``."""

    order_reference: str
    lines: Sequence[RefundLine]
    shipping_minor: int
    # The whole amount refunded (lines and shipping less fees); zero for a return settled
    # with store credit, recorded so the order shows the items came back.
    amount_minor: int
    currency: str
    reason: str
    idempotency_key: str
    # Who moved the money: the platform's own gateway, or our provider (then the platform
    # only records it and must not move money again).
    paid_by: PaymentProviderName
    provider_reference: str | None = None
    # Units that go back into stock with this refund, for a platform that restocks through
    # its refunds (``CommercePlatformFactory.restocks_with_refund``).
    restock: Sequence[RestockLine] = ()


@dataclass(frozen=True, slots=True)
class ReturnLine:
    """One line of an RMA as the platform's return shows it."""

    line_reference: str  # the platform's order line id
    quantity: int
    reason: str  # one of the core's ReturnReason values (Shopify's own)


class ReturnOutcome:
    CLOSED = "CLOSED"  # the return is done (refunded, credited)
    CANCELED = "CANCELED"  # it will not happen (rejected, cancelled, expired)


@dataclass(frozen=True, slots=True)
class PlatformCredit:
    # The platform's customer id, or the e-mail on a platform that knows customers (guests
    # too) by it (``CommercePlatformFactory.customers_by_email``).
    customer_reference: str
    amount_minor: int
    currency: str
    idempotency_key: str
    note: str
    # Set when an earlier attempt may have credited the customer already (its start): the
    # platform looks for that credit before giving it again, for platforms without keys,
    # passing over the credits already accounted for (``claimed``, the platform's ids).
    look_since: datetime | None = None
    claimed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CreditSpent:
    """Store credit the customer spent at the platform's checkout."""

    reference: str
    amount_minor: int  # positive: what was spent
    currency: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ExchangeLine:
    title: str
    quantity: int
    unit_price_minor: int
    sku: str = ""
    variant_reference: str = ""  # the platform's variant or product id


@dataclass(frozen=True, slots=True)
class PlatformExchange:
    """A replacement order for returned goods, to be placed on the platform once."""

    order_reference: str  # the original order
    marker: str  # the exchange's id, kept on the replacement so a retry finds it
    rma_number: str
    email: str
    currency: str
    lines: Sequence[ExchangeLine]
    credit_minor: int  # what the returned goods pay of it
    due_minor: int  # what the customer still pays


class PlatformError(Exception):
    """Base of what a platform reports; the message is safe to show to staff."""


class PlatformRejected(PlatformError):
    """The platform refused the request as made (bad data, missing scope): do not retry."""


class PlatformUnavailable(PlatformError):
    """Rate limited, timed out or down: retry later, after looking where it matters."""


class CommercePlatform(Protocol):
    """One merchant's store on an order platform."""

    async def fetch_order(self, order_reference: str) -> OrderInput | None:
        """One order as the platform has it now; None when it does not exist."""
        ...

    async def orders_changed_since(self, cursor: str | None, *, limit: int) -> OrderPage:
        """Orders created or updated after ``cursor`` (from the start when None), oldest first."""
        ...

    async def write_refund(self, refund: PlatformRefund) -> str:
        """Record the refund on the order, once: a refund already recorded under the key is
        found and given back. Returns the platform's refund id(s), comma-separated."""
        ...

    async def restock(
        self, order_reference: str, lines: Sequence[RestockLine], idempotency_key: str
    ) -> None:
        """Put returned units back into the platform's inventory."""
        ...

    async def issue_store_credit(self, credit: PlatformCredit) -> str:
        """Give the customer credit kept by the platform; returns its transaction id."""
        ...

    async def store_credit_spent(self, customer_reference: str) -> Sequence[CreditSpent]:
        """What the customer spent of the platform's store credit, as the platform keeps it."""
        ...

    async def open_return(
        self, order_reference: str, rma_number: str, lines: Sequence[ReturnLine]
    ) -> str | None:
        """Mirror an authorized RMA as the platform's own return, once: a return already made
        for ``rma_number`` is found and given back. None when the platform cannot hold it
        (nothing on the order was fulfilled yet)."""
        ...

    async def end_return(self, return_reference: str, outcome: str) -> None:
        """Close or cancel a mirrored return (``ReturnOutcome``); one already there is fine."""
        ...

    async def place_exchange(self, exchange: PlatformExchange) -> str:
        """Place the replacement order, once: one already placed for ``exchange.marker`` is
        found and given back. Returns the platform's id of the replacement order."""
        ...

    async def subscribe_webhooks(self, public_url: str, connection_id: str) -> None:
        """Make the platform send its order webhooks to this service (idempotent: a topic
        already subscribed is left alone)."""
        ...

    async def close(self) -> None:
        """Release connections; the platform client is not used after this."""
        ...


# The connection setting that keeps store credit on the platform ("platform") instead of in
# the service's ledger ("service", the default).
CREDIT_DESTINATION = "store_credit_destination"


@dataclass(frozen=True, slots=True)
class CommercePlatformFactory:
    """How a plugin builds its platform client for one merchant, from the connection's account
    (a shop domain, a store URL), its decrypted credentials and its settings."""

    platform: Platform
    build: Callable[[str, Mapping[str, Any], Mapping[str, Any]], CommercePlatform]
    # The settings staff may change on a connection of this platform, with their defaults,
    # and for some of them the only values they take.
    settings_defaults: Mapping[str, Any] = field(default_factory=dict)
    settings_choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Refunds made elsewhere (our payment provider, staff, store credit) are recorded on the
    # platform's order (``write_refund``).
    records_refunds: bool = False
    # Returned units go back into stock with the refund recorded on the order (WooCommerce's
    # api_restock), not by a stock adjustment of their own when they are inspected.
    restocks_with_refund: bool = False
    # Store credit is given to (and its spending read for) a customer's e-mail, not a
    # platform customer id: WooCommerce's coupons are restricted by e-mail, guests included.
    customers_by_email: bool = False
    # Exchanges are placed as orders on the platform (``place_exchange``); otherwise staff
    # place them by hand and confirm them like a storefront's.
    places_exchanges: bool = False


class CredentialRefresher(Protocol):
    """Renews credentials that expire (Shopify's expiring offline tokens). The core calls it
    under a per-connection lock and stores what it returns in the same transaction, because a
    platform may rotate the refresh token on every use."""

    def due(self, credentials: Mapping[str, Any], now: datetime) -> bool:
        """Whether the credentials lapse soon enough to renew them before use."""
        ...

    async def refresh(self, credentials: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """New credentials; ``PlatformRejected`` when the grant is gone (app uninstalled)."""
        ...
