"""One DataLoader per relation, per request, scoped to the caller's merchant (and customer).

A customer session reaches rows through nested fields too (``Rma.order``, ``Order.rmas``,
``Order.customer``...). Every one of those goes through these loaders, so the scope is applied
here, once: to a customer, another customer's RMA, order or customer row does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any, TypeVar

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from core import queries
from core.database import Database
from core.entities import (
    Customer,
    Exchange,
    Inspection,
    Order,
    OrderLine,
    OrderPayment,
    Receipt,
    ReceiptLine,
    Resolution,
    ReturnPolicy,
    Rma,
    RmaEvent,
    RmaLine,
    Shipment,
)

Row = TypeVar("Row", bound=SQLModel)
K = TypeVar("K")
V = TypeVar("V")


class SessionLoader(DataLoader[K, V]):
    """A DataLoader that a root field may also fill from the session it already holds, so a
    page and what its nodes need cost one session (one pool checkout: on PostgreSQL the
    pre-ping is three round trips) instead of one per relation."""

    def __init__(
        self,
        database: Database,
        read: Callable[[AsyncSession, Sequence[K]], Awaitable[Sequence[V]]],
    ) -> None:
        async def batch(keys: list[K]) -> Sequence[V]:
            async with database.read_session() as session:
                return await read(session, keys)

        super().__init__(load_fn=batch)
        self.read = read

    async def fill(self, session: AsyncSession, keys: Sequence[K]) -> None:
        missing = [key for key in dict.fromkeys(keys) if self.cache_map.get(key) is None]
        if missing:
            self.prime_many(dict(zip(missing, await self.read(session, missing), strict=True)))


class Loaders:
    """Batch loads for one request; each relation costs one statement per page, not per row.

    Each loader is made the first time a field asks for it: a request uses a few of them.
    """

    def __init__(
        self, database: Database, merchant_id: uuid.UUID, customer_id: uuid.UUID | None = None
    ) -> None:
        self.database = database
        self.merchant_id = merchant_id
        self.customer_id = customer_id

    # The relations a list view draws for every row read plain rows (queries.plain).
    @cached_property
    def rma(self) -> SessionLoader[uuid.UUID, Rma | None]:
        return self._by_id(Rma, visible=self._customers_own, plain_rows=True)

    @cached_property
    def order(self) -> SessionLoader[uuid.UUID, Order | None]:
        return self._by_id(Order, visible=self._customers_own, plain_rows=True)

    @cached_property
    def customer(self) -> SessionLoader[uuid.UUID, Customer | None]:
        return self._by_id(Customer, visible=self._is_the_customer, plain_rows=True)

    @cached_property
    def policy(self) -> SessionLoader[uuid.UUID, ReturnPolicy | None]:
        return self._by_id(ReturnPolicy)

    @cached_property
    def rma_lines(self) -> SessionLoader[uuid.UUID, list[RmaLine]]:
        return self._grouped(queries.LINES_OF_RMAS, plain_rows=True)

    @cached_property
    def rma_events(self) -> SessionLoader[uuid.UUID, list[RmaEvent]]:
        return self._grouped(queries.EVENTS_OF_RMAS)

    @cached_property
    def shipments(self) -> SessionLoader[uuid.UUID, list[Shipment]]:
        return self._grouped(queries.SHIPMENTS_OF_RMAS)

    @cached_property
    def inspections(self) -> SessionLoader[uuid.UUID, list[Inspection]]:
        return self._grouped(queries.INSPECTIONS_OF_RMAS)

    @cached_property
    def resolutions(self) -> SessionLoader[uuid.UUID, list[Resolution]]:
        return self._grouped(queries.RESOLUTIONS_OF_RMAS)

    @cached_property
    def receipts(self) -> SessionLoader[uuid.UUID, list[Receipt]]:
        return self._grouped(queries.RECEIPTS_OF_RMAS)

    @cached_property
    def exchanges(self) -> SessionLoader[uuid.UUID, list[Exchange]]:
        return self._grouped(queries.EXCHANGES_OF_RMAS)

    @cached_property
    def receipt_lines(self) -> SessionLoader[uuid.UUID, list[ReceiptLine]]:
        return self._grouped(queries.LINES_OF_RECEIPTS)

    @cached_property
    def order_rmas(self) -> SessionLoader[uuid.UUID, list[Rma]]:
        return self._grouped(queries.RMAS_OF_ORDERS, visible=self._customers_own, plain_rows=True)

    @cached_property
    def order_lines(self) -> SessionLoader[uuid.UUID, list[OrderLine]]:
        return self._grouped(queries.LINES_OF_ORDERS)

    @cached_property
    def payments(self) -> SessionLoader[uuid.UUID, list[OrderPayment]]:
        return self._grouped(queries.PAYMENTS_OF_ORDERS)

    @cached_property
    def store_credit(self) -> SessionLoader[uuid.UUID, dict[str, int]]:
        merchant_id = self.merchant_id
        return SessionLoader(
            self.database,
            lambda session, keys: queries.store_credit_balances(session, merchant_id, keys),
        )

    def _customers_own(self, row: Any) -> bool:
        return self.customer_id is None or row.customer_id == self.customer_id

    def _is_the_customer(self, row: Any) -> bool:
        return self.customer_id is None or row.id == self.customer_id

    def _by_id(
        self,
        entity: type[Row],
        *,
        visible: Callable[[Row], bool] | None = None,
        plain_rows: bool = False,
    ) -> SessionLoader[uuid.UUID, Row | None]:
        async def load(session: AsyncSession, keys: Sequence[uuid.UUID]) -> list[Row | None]:
            rows = await queries.by_ids(
                session, entity, self.merchant_id, keys, plain_rows=plain_rows
            )
            if visible is None:
                return rows
            return [row if row is not None and visible(row) else None for row in rows]

        return SessionLoader(self.database, load)

    def _grouped(
        self,
        relation: tuple[type[Row], str, tuple[str, ...]],
        *,
        visible: Callable[[Row], bool] | None = None,
        plain_rows: bool = False,
    ) -> SessionLoader[uuid.UUID, list[Row]]:
        entity, key, order_by = relation

        async def load(session: AsyncSession, keys: Sequence[uuid.UUID]) -> list[list[Row]]:
            groups = await queries.grouped_by(
                session,
                entity,
                key,
                self.merchant_id,
                keys,
                order_by=order_by,
                plain_rows=plain_rows,
            )
            if visible is None:
                return list(groups)
            return [[row for row in group if visible(row)] for group in groups]

        return SessionLoader(self.database, load)

    async def read_ahead(
        self,
        session: AsyncSession,
        rows: Sequence[Rma],
        *,
        lines: bool,
        orders: bool,
        customers: bool,
    ) -> None:
        """Read in ``session``, one statement each, what a root field's RMAs will be asked
        for, so that their fields find it loaded (``selection.now_or_later``)."""
        self.prime(self.rma, rows)
        if lines:
            await self.rma_lines.fill(session, [row.id for row in rows])
        if orders:
            await self.order.fill(session, [row.order_id for row in rows])
        if customers:
            await self.customer.fill(session, [row.customer_id for row in rows])

    def prime(self, loader: DataLoader[uuid.UUID, Any], rows: Sequence[Rma | Order]) -> None:
        """Seed a by-id loader with rows a page already fetched (within the same scope)."""
        loader.prime_many({row.id: row for row in rows if self._customers_own(row)})
