"""The replacement of an exchange, as staff and the customer see it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core import entities
from graphql_api.ids import to_global_id
from graphql_api.types.common import ExchangeStatus, Money, Node, money


@strawberry.type(description="One item the customer gets in exchange.")
class ReplacementLine:
    title: str
    sku: str
    variant_id: str = strawberry.field(description="The platform's variant or product id.")
    quantity: int
    unit_price: Money


@strawberry.type(
    description="The replacement an exchange gives for returned goods: placed on the order's "
    "platform (a storefront's order: waiting for the storefront), then fulfilled or cancelled."
)
class Exchange(Node):
    status: ExchangeStatus
    lines: list[ReplacementLine]
    returned_value: Money = strawberry.field(description="What the returned units were worth.")
    replacement_value: Money
    refunded: Money = strawberry.field(
        description="The difference refunded to the customer (the resolution's further parts)."
    )
    amount_due: Money = strawberry.field(
        description="The difference the customer pays on the replacement order."
    )
    note: str
    platform_order_id: str | None = strawberry.field(
        description="The replacement order on the platform (staff only; null for customers)."
    )
    fulfilment_reference: str | None = strawberry.field(
        description="How it was fulfilled (staff only; null for customers)."
    )
    cancel_reason: str | None
    resolution_id: strawberry.ID
    created_at: datetime
    placed_at: datetime | None
    fulfilled_at: datetime | None
    canceled_at: datetime | None

    @classmethod
    def from_row(cls, row: entities.Exchange, *, for_customer: bool = False) -> Exchange:
        currency = row.currency
        return cls(
            id=strawberry.ID(to_global_id("Exchange", row.id)),
            status=row.status,
            lines=[
                ReplacementLine(
                    title=str(line["title"]),
                    sku=str(line.get("sku", "")),
                    variant_id=str(line.get("variantReference", "")),
                    quantity=int(line["quantity"]),
                    unit_price=money(int(line["unitPriceMinor"]), currency),
                )
                for line in row.lines
            ],
            returned_value=money(row.returned_value_minor, currency),
            replacement_value=money(row.replacement_value_minor, currency),
            refunded=money(row.refund_minor, currency),
            amount_due=money(row.due_minor, currency),
            note=row.note,
            platform_order_id=None if for_customer else row.platform_reference,
            fulfilment_reference=None if for_customer else row.fulfilment_reference,
            cancel_reason=row.cancel_reason,
            resolution_id=strawberry.ID(to_global_id("Resolution", row.resolution_id)),
            created_at=row.created_at,
            placed_at=row.placed_at,
            fulfilled_at=row.fulfilled_at,
            canceled_at=row.canceled_at,
        )
