"""Merchants, customers, orders as the platforms sold them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from core import entities, queries
from core.errors import NotFound
from graphql_api.context import Info
from graphql_api.ids import checked_first, decode_cursor, encode_cursor, to_global_id
from graphql_api.permissions import StaffRead
from graphql_api.types.common import Money, Node, PageInfo, PaymentProvider, Platform, money
from graphql_api.types.store_credit import (
    StoreCreditEntry,
    StoreCreditEntryConnection,
    StoreCreditEntryEdge,
)

if TYPE_CHECKING:
    from graphql_api.types.returns import Rma

RmaRef = Annotated["Rma", strawberry.lazy("graphql_api.types.returns")]


@strawberry.type
class Merchant:
    id: strawberry.ID
    name: str
    default_currency: str

    @classmethod
    def from_row(cls, row: entities.Merchant) -> Merchant:
        return cls(
            id=strawberry.ID(to_global_id("Merchant", row.id)),
            name=row.name,
            default_currency=row.default_currency,
        )


@strawberry.type
class Customer(Node):
    row: strawberry.Private[entities.Customer]
    email: str
    name: str

    @classmethod
    def from_row(cls, row: entities.Customer) -> Customer:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Customer", row.id)),
            email=row.email,
            name=row.name,
        )

    @strawberry.field(description="Store credit per currency: the sum of the ledger entries.")
    async def store_credit_balance(self, info: Info) -> list[Money]:
        balances = await info.context.loaders.store_credit.load(self.row.id)
        return [money(amount, currency) for currency, amount in sorted(balances.items())]

    @strawberry.field(
        description="The store-credit ledger, newest first: credit given for returns, "
        "transferred to a platform, spent there or here."
    )
    async def store_credit_entries(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
        after: str | None = None,
    ) -> StoreCreditEntryConnection:
        async with info.context.database.read_session() as session:
            page = await queries.store_credit_page(
                session,
                info.context.merchant_id,
                self.row.id,
                first=checked_first(first),
                after=decode_cursor(after),
            )
        edges = [
            StoreCreditEntryEdge(
                cursor=encode_cursor(row.created_at, row.id), node=StoreCreditEntry.from_row(row)
            )
            for row in page.rows
        ]
        return StoreCreditEntryConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
            ),
        )


@strawberry.type
class OrderLine:
    row: strawberry.Private[entities.OrderLine]
    id: strawberry.ID
    external_id: str
    sku: str
    title: str
    quantity: int
    category: str | None
    tags: list[str]
    unit_price: Money
    discount: Money = strawberry.field(description="For the whole line.")
    tax: Money = strawberry.field(description="For the whole line.")

    @classmethod
    def from_row(cls, row: entities.OrderLine, currency: str) -> OrderLine:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("OrderLine", row.id)),
            external_id=row.external_id,
            sku=row.sku,
            title=row.title,
            quantity=row.quantity,
            category=row.category,
            tags=list(row.tags),
            unit_price=money(row.unit_price_minor, currency),
            discount=money(row.discount_minor, currency),
            tax=money(row.tax_minor, currency),
        )


@strawberry.type
class Payment:
    provider: PaymentProvider
    reference: str = strawberry.field(permission_classes=[StaffRead])
    captured: Money


@strawberry.type
class Order(Node):
    row: strawberry.Private[entities.Order]
    platform: Platform
    external_id: str
    order_number: str
    currency: str
    placed_at: datetime
    delivered_at: datetime | None
    shipping: Money

    @classmethod
    def from_row(cls, row: entities.Order) -> Order:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Order", row.id)),
            platform=row.platform,
            external_id=row.external_id,
            order_number=row.order_number,
            currency=row.currency,
            placed_at=row.placed_at,
            delivered_at=row.delivered_at,
            shipping=money(row.shipping_minor, row.currency),
        )

    @strawberry.field
    async def lines(self, info: Info) -> list[OrderLine]:
        rows = await info.context.loaders.order_lines.load(self.row.id)
        return [OrderLine.from_row(line, self.row.currency) for line in rows]

    @strawberry.field
    async def payments(self, info: Info) -> list[Payment]:
        rows = await info.context.loaders.payments.load(self.row.id)
        return [
            Payment(
                provider=payment.provider,
                reference=payment.reference,
                captured=money(payment.captured_minor, payment.currency),
            )
            for payment in rows
        ]

    @strawberry.field(description="Goods after discounts, plus tax and shipping.")
    async def total(self, info: Info) -> Money:
        rows = await info.context.loaders.order_lines.load(self.row.id)
        goods_and_tax = sum(line.net_minor + line.tax_minor for line in rows)
        return money(goods_and_tax + self.row.shipping_minor, self.row.currency)

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        row = await info.context.loaders.customer.load(self.row.customer_id)
        if row is None:  # the loaders show a customer only their own orders, so never here
            raise NotFound("Customer", self.row.customer_id)
        return Customer.from_row(row)

    @strawberry.field(description="The returns made against this order, oldest first.")
    async def rmas(self, info: Info) -> list[RmaRef]:
        from graphql_api.types.returns import Rma

        rows = await info.context.loaders.order_rmas.load(self.row.id)
        return [Rma.from_row(row) for row in rows]


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Order]:
        return [edge.node for edge in self.edges]
