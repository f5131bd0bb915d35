"""The fixed vocabularies of the domain, stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class RmaStatus(StrEnum):
    REQUESTED = "REQUESTED"
    NEEDS_REVIEW = "NEEDS_REVIEW"
    AUTHORIZED = "AUTHORIZED"
    IN_TRANSIT = "IN_TRANSIT"
    RECEIVED = "RECEIVED"
    INSPECTED = "INSPECTED"
    RESOLVING = "RESOLVING"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class ReturnReason(StrEnum):
    """Shopify's ReturnReason values."""

    COLOR = "COLOR"
    DEFECTIVE = "DEFECTIVE"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    SIZE_TOO_LARGE = "SIZE_TOO_LARGE"
    SIZE_TOO_SMALL = "SIZE_TOO_SMALL"
    STYLE = "STYLE"
    UNWANTED = "UNWANTED"
    WRONG_ITEM = "WRONG_ITEM"
    OTHER = "OTHER"


class ItemCondition(StrEnum):
    UNOPENED = "UNOPENED"
    OPENED = "OPENED"
    USED = "USED"
    DAMAGED = "DAMAGED"


class Disposition(StrEnum):
    RESTOCK = "RESTOCK"
    REFURBISH = "REFURBISH"
    SCRAP = "SCRAP"
    RETURN_TO_VENDOR = "RETURN_TO_VENDOR"


class ResolutionKind(StrEnum):
    REFUND = "REFUND"
    STORE_CREDIT = "STORE_CREDIT"
    EXCHANGE = "EXCHANGE"


class ResolutionStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTING = "SUBMITTING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    REQUIRES_REVIEW = "REQUIRES_REVIEW"


class StoreCreditKind(StrEnum):
    """What a store-credit ledger entry records."""

    ISSUED = "ISSUED"  # credit given for a return (positive)
    # Moved to the platform's own store credit (negative): spendable there, no longer here.
    TRANSFERRED = "TRANSFERRED"
    # Spent at the platform's checkout, read back by sync: history, not in the balance.
    SPENT_ON_PLATFORM = "SPENT_ON_PLATFORM"
    # Spent through this service (a storefront's checkout called redeemStoreCredit; negative).
    REDEEMED = "REDEEMED"


# The entries that make up what a customer can spend through this service.
BALANCE_KINDS = frozenset(
    {StoreCreditKind.ISSUED, StoreCreditKind.TRANSFERRED, StoreCreditKind.REDEEMED}
)


# A resolution in one of these statuses no longer holds money back from a new attempt.
DEAD_RESOLUTION_STATUSES = frozenset({ResolutionStatus.FAILED, ResolutionStatus.CANCELED})


class PaymentProviderName(StrEnum):
    STRIPE = "stripe"
    SHOPIFY_PAYMENTS = "shopify_payments"
    # A WooCommerce store's own gateway, asked through the store (a merchant's opt-in for
    # gateways no plugin of ours refunds through).
    WOOCOMMERCE = "woocommerce"
    MANUAL = "manual"
    LEDGER = "ledger"
    OTHER = "other"


# Who moves a refund's money, in order of preference when an order was paid several ways; an
# order paid by none of these is refunded by hand (MANUAL).
REFUND_PROVIDERS = (
    PaymentProviderName.STRIPE,
    PaymentProviderName.SHOPIFY_PAYMENTS,
    PaymentProviderName.WOOCOMMERCE,
)
# Providers that refund an order through the platform that sold it, across all the order's
# payments there at once (Shopify refunds a card and a gift card in one refund): a refund split
# over an order's payments gives them one part together.
REFUNDED_THROUGH_PLATFORM = frozenset(
    {PaymentProviderName.SHOPIFY_PAYMENTS, PaymentProviderName.WOOCOMMERCE}
)
# Refunds that staff make and confirm themselves: no plugin moves these.
CONFIRMED_BY_STAFF = frozenset({PaymentProviderName.MANUAL, PaymentProviderName.OTHER})


class Platform(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    STRIPE = "stripe"
    STOREFRONT = "storefront"


# Platforms that sell the orders: their plugins sync orders and keep the returns in step.
ORDER_PLATFORMS = frozenset({Platform.SHOPIFY, Platform.WOOCOMMERCE})
# Platforms whose order ids restart in every account (a WooCommerce store numbers its own):
# orders are keyed by platform and id, so a merchant connects one account of these.
ONE_ACCOUNT_PLATFORMS = frozenset({Platform.WOOCOMMERCE})


class ApiKeyRole(StrEnum):
    ADMIN = "ADMIN"
    AGENT = "AGENT"
    READONLY = "READONLY"


class ArrivalStatus(StrEnum):
    """Goods that arrived matching no order: waiting, matched to an order, or refused."""

    OPEN = "OPEN"
    MATCHED = "MATCHED"
    REFUSED = "REFUSED"


class ExchangeStatus(StrEnum):
    """Where the replacement of an exchange stands: placed on the order's platform (or, for a
    storefront's order, recorded for it), then waiting until it is fulfilled or cancelled."""

    PLACING = "PLACING"
    WAITING_FOR_FULFILMENT = "WAITING_FOR_FULFILMENT"
    FULFILLED = "FULFILLED"
    CANCELED = "CANCELED"


class ReceiptStatus(StrEnum):
    """Where one batch of an RMA's goods (the units that arrived together) stands: each batch
    is inspected and resolved on its own, so a return may come back in several parcels."""

    RECEIVED = "RECEIVED"
    INSPECTED = "INSPECTED"
    RESOLVING = "RESOLVING"
    RESOLVED = "RESOLVED"
    REFUSED = "REFUSED"


class RefusedGoodsOutcome(StrEnum):
    """What happens to goods staff refuse after they arrived."""

    SEND_BACK = "SEND_BACK"  # returned to the customer at their cost, with tracking
    DISPOSE = "DISPOSE"  # disposed of, with the customer's consent


class Carrier(StrEnum):
    UPS = "UPS"
    FEDEX = "FEDEX"
    USPS = "USPS"
    DHL = "DHL"
    POSTNL = "POSTNL"
    OTHER = "OTHER"


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    DEAD = "DEAD"


class WebhookState(StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    IGNORED = "IGNORED"
    FAILED = "FAILED"
