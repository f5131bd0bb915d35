"""Root queries: translate arguments, call core, wrap rows in GraphQL types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from core import entities, queries
from core.enums import ReturnReason as CoreReason
from core.enums import RmaStatus as CoreStatus
from core.errors import InvalidInput, NotFound
from core.rules.numbers import parse_rma_number
from core.usecases.arrivals import unmatched_arrivals as list_unmatched_arrivals
from core.usecases.connections import list_connections
from core.usecases.inputs import require_time
from core.usecases.owned_rows import current_policy
from core.usecases.privacy import list_data_exports
from core.usecases.requests import order_eligibility
from graphql_api.context import Info
from graphql_api.ids import (
    checked_first,
    decode_cursor,
    encode_cursor,
    expect_id,
    parse_global_id,
)
from graphql_api.mutations.connections import settings_defaults
from graphql_api.permissions import Admin, SignedIn, StaffRead
from graphql_api.selection import selected_names
from graphql_api.types.arrivals import ArrivalStatus, UnmatchedArrival
from graphql_api.types.commerce import (
    Customer,
    Merchant,
    Order,
    OrderConnection,
    OrderEdge,
)
from graphql_api.types.common import ApiKeyRole, Node, PageInfo, ReturnReason, RmaStatus
from graphql_api.types.connections import Connection, DataExport
from graphql_api.types.policy import LineEligibility, ReturnEligibility, ReturnPolicy
from graphql_api.types.returns import Rma, RmaConnection, RmaEdge

First = Annotated[int, strawberry.argument(description="Page size, 1 to 100.")]


@strawberry.enum
class PrincipalKind(Enum):
    STAFF = "STAFF"
    CUSTOMER = "CUSTOMER"


@strawberry.type(description="Who is calling.")
class Me:
    kind: PrincipalKind
    role: ApiKeyRole | None = strawberry.field(description="For staff keys.")
    merchant: Merchant
    customer: Customer | None = strawberry.field(description="For customer sessions.")


@strawberry.input
class RmaFilter:
    status: list[RmaStatus] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    customer_email: str | None = None
    reason: ReturnReason | None = None
    order_id: strawberry.ID | None = None


@strawberry.input
class OrderFilter:
    order_number: str | None = None
    customer_email: str | None = None
    placed_from: datetime | None = None
    placed_to: datetime | None = None


def _text(value: str | None, field: str, limit: int = 320) -> str | None:
    if value is not None and len(value) > limit:
        raise InvalidInput(field, f"{field} is longer than {limit} characters")
    return value


def _time(value: datetime | None, field: str) -> datetime | None:
    return None if value is None else require_time(value, field)


def _page_info(page: queries.Page, edges: list[RmaEdge] | list[OrderEdge]) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
    )


async def _owned_rma(info: Info, row: entities.Rma | None) -> Rma | None:
    customer_id = info.context.customer_id
    if row is None or (customer_id is not None and row.customer_id != customer_id):
        return None
    return Rma.from_row(row)


async def _read_ahead(
    info: Info, session: AsyncSession, rows: Sequence[entities.Rma], *paths: tuple[str, ...]
) -> None:
    """Read in the root field's session what the query selects of its RMAs at ``paths``
    (see ``graphql_api.selection``), one statement per relation."""
    wanted = set().union(*(selected_names(info.selected_fields, path) for path in paths))
    await info.context.loaders.read_ahead(
        session,
        rows,
        lines=bool(wanted & {"lines", "unitsExpected"}),
        orders="order" in wanted,
        customers="customer" in wanted,
    )


async def _owned_order(info: Info, row: entities.Order | None) -> Order | None:
    customer_id = info.context.customer_id
    if row is None or (customer_id is not None and row.customer_id != customer_id):
        return None
    return Order.from_row(row)


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[SignedIn])
    async def me(self, info: Info) -> Me:
        context = info.context
        async with context.database.read_session() as session:
            merchant = await session.get(entities.Merchant, context.merchant_id)
        assert merchant is not None  # keys and sessions belong to an existing merchant
        staff = context.staff
        customer = None
        if context.customer_id is not None:
            row = await context.loaders.customer.load(context.customer_id)
            customer = Customer.from_row(row) if row else None
        return Me(
            kind=PrincipalKind.STAFF if staff else PrincipalKind.CUSTOMER,
            role=staff.role if staff else None,
            merchant=Merchant.from_row(merchant),
            customer=customer,
        )

    @strawberry.field(permission_classes=[SignedIn], description="Any object by global ID.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        parsed = parse_global_id(id)
        if parsed is None:
            return None
        type_name, row_id = parsed
        loaders = info.context.loaders
        if type_name == "Rma":
            return await _owned_rma(info, await loaders.rma.load(row_id))
        if type_name == "Order":
            return await _owned_order(info, await loaders.order.load(row_id))
        if type_name == "Customer":
            customer_id = info.context.customer_id
            row = await loaders.customer.load(row_id)
            if row is None or (customer_id is not None and row.id != customer_id):
                return None
            return Customer.from_row(row)
        return None

    @strawberry.field(
        permission_classes=[SignedIn],
        description="One RMA by global ID or by number (as typed; a bad check symbol is refused).",
    )
    async def rma(
        self, info: Info, id: strawberry.ID | None = None, number: str | None = None
    ) -> Rma | None:
        if id is not None:
            parsed = parse_global_id(id)
            if parsed is None or parsed[0] != "Rma":
                return None
            return await _owned_rma(info, await info.context.loaders.rma.load(parsed[1]))
        if number is None:
            return None
        canonical = parse_rma_number(_text(number, "number", 40) or "")
        async with info.context.database.read_session() as session:
            row = await queries.rma_by_number(session, info.context.merchant_id, canonical)
            found = await _owned_rma(info, row)
            if found is not None:
                await _read_ahead(info, session, [row], ("rma",))
        return found

    @strawberry.field(permission_classes=[SignedIn], description="Newest first.")
    async def rmas(
        self,
        info: Info,
        filter: RmaFilter | None = None,
        first: First = 20,
        after: str | None = None,
    ) -> RmaConnection:
        chosen = filter or RmaFilter()
        order_id = expect_id(chosen.order_id, "Order", field="orderId") if chosen.order_id else None
        rma_filter = queries.RmaFilter(
            statuses=[CoreStatus(status.value) for status in chosen.status or []],
            created_from=_time(chosen.created_from, "createdFrom"),
            created_to=_time(chosen.created_to, "createdTo"),
            customer_email=_text(chosen.customer_email, "customerEmail"),
            reason=CoreReason(chosen.reason.value) if chosen.reason else None,
            order_id=order_id,
            customer_id=info.context.customer_id,
        )
        async with info.context.database.read_session() as session:
            page = await queries.rma_page(
                session,
                info.context.merchant_id,
                rma_filter,
                first=checked_first(first),
                after=decode_cursor(after),
            )
            await _read_ahead(
                info, session, page.rows, ("rmas", "nodes"), ("rmas", "edges", "node")
            )
        edges = [
            RmaEdge(cursor=encode_cursor(row.created_at, row.id), node=Rma.from_row(row))
            for row in page.rows
        ]
        return RmaConnection(edges=edges, page_info=_page_info(page, edges))

    @strawberry.field(permission_classes=[SignedIn])
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] != "Order":
            return None
        return await _owned_order(info, await info.context.loaders.order.load(parsed[1]))

    @strawberry.field(permission_classes=[SignedIn], description="Newest first.")
    async def orders(
        self,
        info: Info,
        filter: OrderFilter | None = None,
        first: First = 20,
        after: str | None = None,
    ) -> OrderConnection:
        chosen = filter or OrderFilter()
        order_filter = queries.OrderFilter(
            order_number=_text(chosen.order_number, "orderNumber", 64),
            customer_email=_text(chosen.customer_email, "customerEmail"),
            placed_from=_time(chosen.placed_from, "placedFrom"),
            placed_to=_time(chosen.placed_to, "placedTo"),
            customer_id=info.context.customer_id,
        )
        async with info.context.database.read_session() as session:
            page = await queries.order_page(
                session,
                info.context.merchant_id,
                order_filter,
                first=checked_first(first),
                after=decode_cursor(after),
            )
        info.context.loaders.prime(info.context.loaders.order, page.rows)
        edges = [
            OrderEdge(cursor=encode_cursor(row.placed_at, row.id), node=Order.from_row(row))
            for row in page.rows
        ]
        return OrderConnection(edges=edges, page_info=_page_info(page, edges))

    @strawberry.field(
        permission_classes=[SignedIn],
        description="What each line of an order may return today, and for how much.",
    )
    async def return_eligibility(
        self, info: Info, order_id: strawberry.ID
    ) -> ReturnEligibility | None:
        parsed = parse_global_id(order_id)
        if parsed is None or parsed[0] != "Order":
            return None
        async with info.context.database.read_session() as session:
            try:
                order, policy, decisions = await order_eligibility(
                    session,
                    info.context.merchant_id,
                    parsed[1],
                    now=info.context.clock.now(),
                    customer_id=info.context.customer_id,
                )
            except NotFound:
                return None
        return ReturnEligibility(
            order=Order.from_row(order),
            policy_version=policy.version,
            lines=[LineEligibility.from_decision(d, order.currency) for d in decisions],
        )

    @strawberry.field(permission_classes=[SignedIn], description="The current version.")
    async def return_policy(self, info: Info) -> ReturnPolicy:
        async with info.context.database.read_session() as session:
            return ReturnPolicy.from_row(await current_policy(session, info.context.merchant_id))

    @strawberry.field(permission_classes=[SignedIn])
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] != "Customer":
            return None
        customer_id = info.context.customer_id
        if customer_id is not None and parsed[1] != customer_id:
            return None
        row = await info.context.loaders.customer.load(parsed[1])
        return Customer.from_row(row) if row else None

    @strawberry.field(
        permission_classes=[Admin],
        description="The merchant's platform connections, oldest first (never credentials).",
    )
    async def connections(self, info: Info) -> list[Connection]:
        async with info.context.database.read_session() as session:
            rows = await list_connections(session, merchant_id=info.context.merchant_id)
        return [Connection.from_row(row, settings_defaults(info, row.platform)) for row in rows]

    @strawberry.field(
        permission_classes=[Admin],
        description="Customers' data gathered for privacy requests (Shopify's "
        "customers/data_request), newest first.",
    )
    async def data_exports(self, info: Info, first: First = 20) -> list[DataExport]:
        limit = checked_first(first)
        async with info.context.database.read_session() as session:
            rows = await list_data_exports(session, info.context.merchant_id, limit=limit)
        return [DataExport.from_row(row) for row in rows]

    @strawberry.field(
        permission_classes=[StaffRead],
        description="Goods that arrived matching no order, newest first (OPEN: to match or "
        "refuse).",
    )
    async def unmatched_arrivals(
        self, info: Info, status: ArrivalStatus | None = None, first: First = 50
    ) -> list[UnmatchedArrival]:
        limit = checked_first(first)
        async with info.context.database.read_session() as session:
            rows = await list_unmatched_arrivals(
                session, info.context.merchant_id, status=status, limit=limit
            )
        return [UnmatchedArrival.from_row(row) for row in rows]
