"""Customers, their orders as bought on a platform, the lines and the payments."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from core.entities.base import TenantRow, json_list_field, timestamp_field
from core.entities.columns import StrEnumType, UtcDateTime
from core.enums import PaymentProviderName, Platform


class Customer(TenantRow, table=True):
    """A merchant's customer, known by e-mail (stored lower-case)."""

    __tablename__ = "customer"
    __table_args__ = (sa.UniqueConstraint("merchant_id", "email"),)

    email: str = Field(max_length=320, nullable=False)
    name: str = Field(default="", max_length=200, nullable=False)
    external_id: str | None = Field(default=None, max_length=64)
    stripe_customer_id: str | None = Field(default=None, max_length=64)


class Order(TenantRow, table=True):
    """An order as the platform sold it; upserted by platform and external id."""

    __tablename__ = "order"
    __table_args__ = (
        sa.UniqueConstraint("merchant_id", "platform", "external_id"),
        sa.Index("ix_order_merchant_number", "merchant_id", "order_number"),
        sa.Index("ix_order_merchant_placed", "merchant_id", "placed_at"),
    )

    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True, nullable=False)
    platform: Platform = Field(sa_type=StrEnumType(Platform), nullable=False)
    # The connection (shop, store) the order was synced from: its refunds, restocks and
    # returns go back through that one, even when the merchant has several.
    connection_id: uuid.UUID | None = Field(
        default=None, foreign_key="connection.id", index=True, ondelete="SET NULL"
    )
    external_id: str = Field(max_length=64, nullable=False)
    order_number: str = Field(max_length=64, nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    placed_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    delivered_at: datetime | None = timestamp_field()
    shipping_minor: int = Field(default=0, nullable=False)
    # Refunds the platform made that this service did not (staff in the platform's admin):
    # they are no longer ours to refund.
    refunded_elsewhere_minor: int = Field(default=0, nullable=False)
    updated_at: datetime | None = timestamp_field()
    # When the platform last changed the order, as it says: an older copy (a late webhook, a
    # slow page of a sync) never overwrites a newer one.
    source_updated_at: datetime | None = timestamp_field()

    lines: list["OrderLine"] = Relationship(
        sa_relationship_kwargs={
            "lazy": "raise",
            "order_by": "OrderLine.position",
            "cascade": "all, delete-orphan",
        }
    )
    payments: list["OrderPayment"] = Relationship(
        sa_relationship_kwargs={"lazy": "raise", "cascade": "all, delete-orphan"}
    )

    @property
    def goods_minor(self) -> int:
        """The order's goods after discounts, before tax and shipping."""
        return sum(line.net_minor for line in self.lines)

    @property
    def total_minor(self) -> int:
        return self.goods_minor + sum(line.tax_minor for line in self.lines) + self.shipping_minor


class OrderLine(TenantRow, table=True):
    __tablename__ = "order_line"
    __table_args__ = (sa.UniqueConstraint("order_id", "external_id"),)

    order_id: uuid.UUID = Field(
        foreign_key="order.id", index=True, nullable=False, ondelete="CASCADE"
    )
    external_id: str = Field(max_length=64, nullable=False)
    position: int = Field(default=0, nullable=False)
    sku: str = Field(default="", max_length=100, nullable=False)
    title: str = Field(max_length=300, nullable=False)
    quantity: int = Field(nullable=False)
    unit_price_minor: int = Field(nullable=False)
    # Totals for the whole line, not per unit: platforms report them that way.
    discount_minor: int = Field(default=0, nullable=False)
    tax_minor: int = Field(default=0, nullable=False)
    category: str | None = Field(default=None, max_length=100)
    tags: list[str] = json_list_field()

    @property
    def net_minor(self) -> int:
        return self.unit_price_minor * self.quantity - self.discount_minor


class OrderPayment(TenantRow, table=True):
    """How the order was paid: who holds the money and under which id."""

    __tablename__ = "order_payment"
    __table_args__ = (sa.UniqueConstraint("order_id", "provider", "reference"),)

    order_id: uuid.UUID = Field(
        foreign_key="order.id", index=True, nullable=False, ondelete="CASCADE"
    )
    provider: PaymentProviderName = Field(sa_type=StrEnumType(PaymentProviderName), nullable=False)
    # The Stripe payment intent (pi_...) or charge (ch_...), or the platform's transaction id.
    reference: str = Field(max_length=100, nullable=False, index=True)
    captured_minor: int = Field(nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    # How the platform names the way it was paid (shopify_payments, gift_card, paypal, manual).
    gateway: str = Field(default="", max_length=100, nullable=False)
    # The order the customer paid in (0 first): a refund goes back to the last payment first.
    position: int = Field(default=0, nullable=False, sa_column_kwargs={"server_default": "0"})
