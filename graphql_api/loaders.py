"""One DataLoader per relation, per request, scoped to the caller's merchant (and customer).

A customer session reaches rows through nested fields too (``Rma.order``, ``Order.rmas``,
``Order.customer``...). Every one of those goes through these loaders, so the scope is applied
here, once: to a customer, another customer's RMA, order or customer row does not exist.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from core import queries
from core.database import Database
from core.entities import Customer, Order, ReturnPolicy, Rma

Row = TypeVar("Row", bound=SQLModel)


class Loaders:
    """Batch loads for one request; each relation costs one statement per page, not per row."""

    def __init__(
        self, database: Database, merchant_id: uuid.UUID, customer_id: uuid.UUID | None = None
    ) -> None:
        self.database = database
        self.merchant_id = merchant_id
        self.customer_id = customer_id
        # The relations a list view draws for every row read plain rows (queries.plain).
        self.rma = self._by_id(Rma, visible=self._customers_own, plain_rows=True)
        self.order = self._by_id(Order, visible=self._customers_own, plain_rows=True)
        self.customer = self._by_id(Customer, visible=self._is_the_customer, plain_rows=True)
        self.policy = self._by_id(ReturnPolicy)
        self.rma_lines = self._grouped(queries.LINES_OF_RMAS, plain_rows=True)
        self.rma_events = self._grouped(queries.EVENTS_OF_RMAS)
        self.shipments = self._grouped(queries.SHIPMENTS_OF_RMAS)
        self.inspections = self._grouped(queries.INSPECTIONS_OF_RMAS)
        self.resolutions = self._grouped(queries.RESOLUTIONS_OF_RMAS)
        self.receipts = self._grouped(queries.RECEIPTS_OF_RMAS)
        self.exchanges = self._grouped(queries.EXCHANGES_OF_RMAS)
        self.receipt_lines = self._grouped(queries.LINES_OF_RECEIPTS)
        self.order_rmas = self._grouped(
            queries.RMAS_OF_ORDERS, visible=self._customers_own, plain_rows=True
        )
        self.order_lines = self._grouped(queries.LINES_OF_ORDERS)
        self.payments = self._grouped(queries.PAYMENTS_OF_ORDERS)
        self.store_credit = self._loader(
            lambda session, keys: queries.store_credit_balances(session, merchant_id, keys)
        )

    def _loader(
        self, load: Callable[[AsyncSession, Sequence[uuid.UUID]], Awaitable[Sequence[Any]]]
    ) -> DataLoader[uuid.UUID, Any]:
        async def batch(keys: list[uuid.UUID]) -> Sequence[Any]:
            async with self.database.read_session() as session:
                return await load(session, keys)

        return DataLoader(load_fn=batch)

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
    ) -> DataLoader[uuid.UUID, Row | None]:
        async def load(session: AsyncSession, keys: Sequence[uuid.UUID]) -> list[Row | None]:
            rows = await queries.by_ids(
                session, entity, self.merchant_id, keys, plain_rows=plain_rows
            )
            if visible is None:
                return rows
            return [row if row is not None and visible(row) else None for row in rows]

        return self._loader(load)

    def _grouped(
        self,
        relation: tuple[type[Row], str, tuple[str, ...]],
        *,
        visible: Callable[[Row], bool] | None = None,
        plain_rows: bool = False,
    ) -> DataLoader[uuid.UUID, list[Row]]:
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

        return self._loader(load)

    async def preload_rmas(
        self, rows: Sequence[Rma], *, lines: bool, orders: bool, customers: bool
    ) -> None:
        """Load in one batch each what a page's RMAs will be asked for, so that their fields
        find it already loaded instead of each waiting on the batch."""
        pending: list[Awaitable[object]] = []
        if lines:
            pending.append(self.rma_lines.load_many([row.id for row in rows]))
        if orders:
            pending.append(self.order.load_many([row.order_id for row in rows]))
        if customers:
            pending.append(self.customer.load_many([row.customer_id for row in rows]))
        await asyncio.gather(*pending)

    def prime(self, loader: DataLoader[uuid.UUID, Any], rows: Sequence[Rma | Order]) -> None:
        """Seed a by-id loader with rows a page already fetched (within the same scope)."""
        loader.prime_many({row.id: row for row in rows if self._customers_own(row)})
