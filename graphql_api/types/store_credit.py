"""A customer's store-credit ledger, and spending it through the API."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core import entities, enums
from graphql_api.errors import UserError
from graphql_api.ids import to_global_id
from graphql_api.types.common import Money, PageInfo, money

strawberry.enum(enums.StoreCreditKind, description="What a store-credit ledger entry records.")
StoreCreditKind = enums.StoreCreditKind


@strawberry.type(description="One movement of a customer's store credit.")
class StoreCreditEntry:
    id: strawberry.ID
    kind: StoreCreditKind
    amount: Money = strawberry.field(description="Positive when credit was given, else negative.")
    note: str = strawberry.field(description="The RMA it came from, or what it paid for.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: entities.StoreCreditEntry) -> StoreCreditEntry:
        return cls(
            id=strawberry.ID(to_global_id("StoreCreditEntry", row.id)),
            kind=row.kind,
            amount=money(row.amount_minor, row.currency),
            note=row.note,
            created_at=row.created_at,
        )


@strawberry.type
class StoreCreditEntryEdge:
    cursor: str
    node: StoreCreditEntry


@strawberry.type
class StoreCreditEntryConnection:
    edges: list[StoreCreditEntryEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[StoreCreditEntry]:
        return [edge.node for edge in self.edges]


@strawberry.input
class MoneyInput:
    amount_minor: int = strawberry.field(description="Integer minor units; never a float.")
    currency: str = strawberry.field(description="ISO-4217 code.")


@strawberry.input
class RedeemStoreCreditInput:
    customer_id: strawberry.ID
    amount: MoneyInput
    reference: str = strawberry.field(description="What it paid for: an order or checkout id.")
    idempotency_key: str = strawberry.field(
        description="The same key returns the same entry, however often it is sent."
    )


@strawberry.type
class RedeemStoreCreditPayload:
    entry: StoreCreditEntry | None
    balance: Money | None = strawberry.field(
        description="What is left to spend here in the entry's currency."
    )
    user_errors: list[UserError]
