"""Resolutions (the money decision for an RMA) and the store-credit ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from core.entities.base import TenantRow, json_dict_field, json_list_field, timestamp_field
from core.entities.columns import StrEnumType
from core.enums import (
    ExchangeStatus,
    PaymentProviderName,
    ResolutionKind,
    ResolutionStatus,
    StoreCreditKind,
)

_LIVE = "status NOT IN ('FAILED', 'CANCELED')"


class Resolution(TenantRow, table=True):
    """How an RMA is settled. Created with its own idempotency key before any money moves."""

    __tablename__ = "resolution"
    __table_args__ = (
        sa.CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        # At most one live resolution per receipt (the units that arrived together): the
        # database itself refuses a second one. A refund split over several payments is one
        # resolution in parts; every resolution has a part 0, so two cannot both be live.
        sa.Index(
            "uq_resolution_live_per_receipt",
            "receipt_id",
            "part",
            unique=True,
            sqlite_where=sa.text(_LIVE),
            postgresql_where=sa.text(_LIVE),
        ),
        sa.UniqueConstraint("merchant_id", "request_key"),
    )

    rma_id: uuid.UUID = Field(foreign_key="rma.id", index=True, nullable=False, ondelete="CASCADE")
    receipt_id: uuid.UUID = Field(foreign_key="receipt.id", nullable=False, ondelete="CASCADE")
    order_id: uuid.UUID = Field(foreign_key="order.id", index=True, nullable=False)
    # A refund split over several payments (split tender) has one row per payment, each
    # moving its own money exactly once. Part 0 carries the decision (the lines, fees,
    # shipping and adjustments); ``group_id`` is part 0's id on every part, its own included.
    part: int = Field(default=0, nullable=False, sa_column_kwargs={"server_default": "0"})
    group_id: uuid.UUID | None = Field(default=None, index=True)
    kind: ResolutionKind = Field(sa_type=StrEnumType(ResolutionKind), nullable=False)
    provider: PaymentProviderName = Field(sa_type=StrEnumType(PaymentProviderName), nullable=False)
    status: ResolutionStatus = Field(sa_type=StrEnumType(ResolutionStatus), nullable=False)
    amount_minor: int = Field(nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    restocking_fee_minor: int = Field(default=0, nullable=False)
    shipping_minor: int = Field(default=0, nullable=False)
    bonus_minor: int = Field(default=0, nullable=False)
    # Sent to the provider on every attempt, so a retry can never move money twice.
    idempotency_key: str = Field(max_length=255, nullable=False, unique=True)
    # The key the API caller sent, so that a repeated call returns this same resolution.
    request_key: str | None = Field(default=None, max_length=255)
    # The payment the refund goes back to, fixed when the resolution is chosen: a later sync of
    # the order cannot send an attempt to another payment.
    payment_reference: str | None = Field(default=None, max_length=100)
    provider_reference: str | None = Field(default=None, max_length=255, index=True)
    failure_reason: str | None = Field(default=None, max_length=2000)
    attempts: int = Field(default=0, nullable=False)
    breakdown: dict[str, Any] = json_dict_field()
    updated_at: datetime | None = timestamp_field()


class StoreCreditEntry(TenantRow, table=True):
    """One movement of a customer's store credit; the balance is the sum of the entries."""

    __tablename__ = "store_credit_entry"
    __table_args__ = (
        sa.Index("ix_store_credit_customer", "merchant_id", "customer_id"),
        # A platform's transaction is recorded once, however often sync reads it.
        sa.UniqueConstraint("merchant_id", "reference"),
        # A spending is recorded once, however often the caller sends it.
        sa.UniqueConstraint("merchant_id", "request_key"),
    )

    customer_id: uuid.UUID = Field(foreign_key="customer.id", nullable=False)
    # Unique: one resolution credits the customer once, however often its job runs.
    resolution_id: uuid.UUID | None = Field(default=None, foreign_key="resolution.id", unique=True)
    amount_minor: int = Field(nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    note: str = Field(default="", max_length=500, nullable=False)
    kind: StoreCreditKind = Field(
        default=StoreCreditKind.ISSUED,
        sa_type=StrEnumType(StoreCreditKind),
        nullable=False,
        sa_column_kwargs={"server_default": StoreCreditKind.ISSUED.value},
    )
    # The platform's id of the transaction (a transfer, a spending), when there is one.
    reference: str | None = Field(default=None, max_length=100)
    # The idempotency key of a spending through the API (redeemStoreCredit).
    request_key: str | None = Field(default=None, max_length=255)
    # Who wrote it: the job or the staff member (API key) that spent it.
    actor: str | None = Field(default=None, max_length=200)


class Exchange(TenantRow, table=True):
    """The replacement an exchange resolution gives for the returned units.

    Created with its resolution (one per resolution); the value of the returned units pays for
    it, the difference is refunded through the resolution's other parts or is due from the
    customer. It stays on the RMA until it is fulfilled or cancelled.
    """

    __tablename__ = "exchange"

    rma_id: uuid.UUID = Field(foreign_key="rma.id", index=True, nullable=False, ondelete="CASCADE")
    resolution_id: uuid.UUID = Field(
        foreign_key="resolution.id", unique=True, nullable=False, ondelete="CASCADE"
    )
    order_id: uuid.UUID = Field(foreign_key="order.id", index=True, nullable=False)
    status: ExchangeStatus = Field(sa_type=StrEnumType(ExchangeStatus), nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    # What the returned units were worth (after any fee), what the replacement costs, and the
    # difference either way: refunded to the customer, or due from them.
    returned_value_minor: int = Field(nullable=False)
    replacement_value_minor: int = Field(nullable=False)
    refund_minor: int = Field(default=0, nullable=False)
    due_minor: int = Field(default=0, nullable=False)
    # [{title, sku, variantReference, quantity, unitPriceMinor}]
    lines: list[Any] = json_list_field()
    note: str = Field(default="", max_length=2000, nullable=False)
    # The replacement order on the platform (a Shopify order, a WooCommerce order).
    platform_reference: str | None = Field(default=None, max_length=255)
    fulfilment_reference: str | None = Field(default=None, max_length=255)
    cancel_reason: str | None = Field(default=None, max_length=2000)
    placed_at: datetime | None = timestamp_field()
    fulfilled_at: datetime | None = timestamp_field()
    canceled_at: datetime | None = timestamp_field()
    updated_at: datetime | None = timestamp_field()
