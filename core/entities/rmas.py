"""The RMA, its lines, shipments, inspections, timeline and feedback."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from core.entities.base import TenantRow, json_dict_field, json_list_field, timestamp_field
from core.entities.columns import StrEnumType, UtcDateTime
from core.enums import (
    ArrivalStatus,
    Carrier,
    Disposition,
    ItemCondition,
    ReceiptStatus,
    ResolutionKind,
    ReturnReason,
    RmaStatus,
)


class Rma(TenantRow, table=True):
    __tablename__ = "rma"
    __table_args__ = (
        sa.UniqueConstraint("merchant_id", "number"),
        # The list pages, newest first: each filter's equality columns, then (created_at, id),
        # the page order and its cursor, so a page is read in index order from the cursor on.
        sa.Index("ix_rma_merchant_status_created", "merchant_id", "status", "created_at", "id"),
        sa.Index("ix_rma_merchant_created", "merchant_id", "created_at", "id"),
        sa.Index(
            "ix_rma_merchant_customer_created", "merchant_id", "customer_id", "created_at", "id"
        ),
    )

    number: str = Field(max_length=16, nullable=False)
    order_id: uuid.UUID = Field(foreign_key="order.id", index=True, nullable=False)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True, nullable=False)
    status: RmaStatus = Field(sa_type=StrEnumType(RmaStatus), nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    # The policy version that decided the request, and what it decided (codes per line).
    policy_id: uuid.UUID | None = Field(default=None, foreign_key="return_policy.id")
    policy_version: int | None = Field(default=None)
    decision: dict[str, Any] = json_dict_field()
    unauthorized: bool = Field(default=False, nullable=False)
    preferred_resolution: ResolutionKind | None = Field(
        default=None, sa_type=StrEnumType(ResolutionKind)
    )
    customer_note: str = Field(default="", max_length=2000, nullable=False)
    # The return that mirrors this RMA on the order's platform (a Shopify Return GID).
    platform_return_id: str | None = Field(default=None, max_length=100, index=True)
    risk_score: int = Field(default=0, nullable=False)
    risk_signals: list[str] = json_list_field()
    authorized_at: datetime | None = timestamp_field()
    authorization_expires_at: datetime | None = timestamp_field(index=True)
    received_at: datetime | None = timestamp_field()
    inspected_at: datetime | None = timestamp_field()
    resolved_at: datetime | None = timestamp_field()
    closed_at: datetime | None = timestamp_field()
    # Units not received yet are expected until this moment (a return may come back in several
    # parcels); then they stop counting as on their way back.
    rest_expires_at: datetime | None = timestamp_field(index=True)
    # When the units not received stopped being expected: all arrived, staff cancelled the
    # rest, it expired, or the RMA ended. Until then they count as on their way back.
    rest_ended_at: datetime | None = timestamp_field()
    updated_at: datetime | None = timestamp_field()

    lines: list["RmaLine"] = Relationship(
        sa_relationship_kwargs={
            "lazy": "raise",
            "order_by": "RmaLine.position",
            "cascade": "all, delete-orphan",
        }
    )
    events: list["RmaEvent"] = Relationship(
        sa_relationship_kwargs={"lazy": "raise", "order_by": "RmaEvent.sequence"}
    )
    shipments: list["Shipment"] = Relationship(sa_relationship_kwargs={"lazy": "raise"})


class RmaLine(TenantRow, table=True):
    __tablename__ = "rma_line"
    __table_args__ = (
        sa.UniqueConstraint("rma_id", "order_line_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint(
            "received_quantity >= 0 AND received_quantity <= quantity", name="received_in_range"
        ),
    )

    rma_id: uuid.UUID = Field(foreign_key="rma.id", index=True, nullable=False, ondelete="CASCADE")
    order_line_id: uuid.UUID = Field(foreign_key="order_line.id", index=True, nullable=False)
    position: int = Field(default=0, nullable=False)
    quantity: int = Field(nullable=False)
    reason: ReturnReason = Field(sa_type=StrEnumType(ReturnReason), nullable=False)
    # What the customer says about the item; the inspection records what it really is.
    condition: ItemCondition = Field(sa_type=StrEnumType(ItemCondition), nullable=False)
    comment: str = Field(default="", max_length=2000, nullable=False)
    eligibility_codes: list[str] = json_list_field()
    received_quantity: int = Field(default=0, nullable=False)


class Shipment(TenantRow, table=True):
    __tablename__ = "shipment"
    __table_args__ = (sa.UniqueConstraint("rma_id", "carrier", "tracking_number"),)

    rma_id: uuid.UUID = Field(foreign_key="rma.id", index=True, nullable=False, ondelete="CASCADE")
    carrier: Carrier = Field(sa_type=StrEnumType(Carrier), nullable=False)
    tracking_number: str = Field(max_length=64, nullable=False, index=True)
    tracking_url: str | None = Field(default=None, max_length=500)


class Receipt(TenantRow, table=True):
    """Units of an RMA that arrived together (one parcel, or several before inspection): they
    are inspected together and resolved together, once. The next parcel opens the next one."""

    __tablename__ = "receipt"
    __table_args__ = (sa.UniqueConstraint("rma_id", "sequence"),)

    rma_id: uuid.UUID = Field(foreign_key="rma.id", index=True, nullable=False, ondelete="CASCADE")
    sequence: int = Field(nullable=False)
    status: ReceiptStatus = Field(sa_type=StrEnumType(ReceiptStatus), nullable=False)
    received_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    inspected_at: datetime | None = timestamp_field()
    resolved_at: datetime | None = timestamp_field()
    updated_at: datetime | None = timestamp_field()

    lines: list["ReceiptLine"] = Relationship(
        sa_relationship_kwargs={"lazy": "raise", "cascade": "all, delete-orphan"}
    )


class ReceiptLine(TenantRow, table=True):
    __tablename__ = "receipt_line"
    __table_args__ = (
        sa.UniqueConstraint("receipt_id", "rma_line_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    receipt_id: uuid.UUID = Field(
        foreign_key="receipt.id", index=True, nullable=False, ondelete="CASCADE"
    )
    rma_line_id: uuid.UUID = Field(
        foreign_key="rma_line.id", index=True, nullable=False, ondelete="CASCADE"
    )
    quantity: int = Field(nullable=False)


class Inspection(TenantRow, table=True):
    """What the warehouse found for one RMA line in one receipt."""

    __tablename__ = "inspection"
    __table_args__ = (sa.UniqueConstraint("receipt_id", "rma_line_id"),)

    rma_id: uuid.UUID = Field(foreign_key="rma.id", index=True, nullable=False, ondelete="CASCADE")
    receipt_id: uuid.UUID = Field(
        foreign_key="receipt.id", index=True, nullable=False, ondelete="CASCADE"
    )
    rma_line_id: uuid.UUID = Field(
        foreign_key="rma_line.id", index=True, nullable=False, ondelete="CASCADE"
    )
    # The units of the line this receipt holds (all of them share the verdict).
    quantity: int = Field(nullable=False)
    condition: ItemCondition = Field(sa_type=StrEnumType(ItemCondition), nullable=False)
    disposition: Disposition = Field(sa_type=StrEnumType(Disposition), nullable=False)
    note: str = Field(default="", max_length=2000, nullable=False)
    inspected_by: str = Field(max_length=200, nullable=False)
    # The inspector's verdict on the customer's stated reason: a merchant-fault claim
    # (defective, wrong item, not as described) confirmed, overturned, or not judged (None).
    reason_confirmed: bool | None = Field(default=None, nullable=True)


class RmaEvent(TenantRow, table=True):
    """One entry of an RMA's timeline: who did what, when, from which status to which."""

    __tablename__ = "rma_event"
    __table_args__ = (sa.UniqueConstraint("rma_id", "sequence"),)

    rma_id: uuid.UUID = Field(foreign_key="rma.id", index=True, nullable=False, ondelete="CASCADE")
    # Orders the timeline even when two events share a timestamp.
    sequence: int = Field(nullable=False)
    actor: str = Field(max_length=200, nullable=False)
    kind: str = Field(max_length=40, nullable=False)
    from_status: RmaStatus | None = Field(default=None, sa_type=StrEnumType(RmaStatus))
    to_status: RmaStatus | None = Field(default=None, sa_type=StrEnumType(RmaStatus))
    message: str = Field(default="", max_length=2000, nullable=False)
    data: dict[str, Any] = json_dict_field()


class Feedback(TenantRow, table=True):
    __tablename__ = "feedback"
    __table_args__ = (sa.CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),)

    rma_id: uuid.UUID = Field(foreign_key="rma.id", unique=True, nullable=False, ondelete="CASCADE")
    rating: int = Field(nullable=False)
    comment: str = Field(default="", max_length=2000, nullable=False)


class UnmatchedArrival(TenantRow, table=True):
    """A parcel that arrived with no RMA and matches no order staff could find: kept until
    they match it to an order (then it becomes an unauthorized RMA) or refuse it."""

    __tablename__ = "unmatched_arrival"

    status: ArrivalStatus = Field(sa_type=StrEnumType(ArrivalStatus), nullable=False, index=True)
    description: str = Field(max_length=2000, nullable=False)
    sender: str = Field(default="", max_length=200, nullable=False)
    carrier: Carrier | None = Field(default=None, sa_type=StrEnumType(Carrier), nullable=True)
    tracking_number: str | None = Field(default=None, max_length=100, nullable=True)
    recorded_by: str = Field(max_length=200, nullable=False)
    rma_id: uuid.UUID | None = Field(
        default=None, foreign_key="rma.id", nullable=True, ondelete="SET NULL"
    )
    outcome_note: str = Field(default="", max_length=2000, nullable=False)
    updated_at: datetime | None = timestamp_field()
