"""An in-memory ``CommercePlatform``: the order platform port's test double for core tests.

It keeps orders and a change log like a real platform, pages through changes with an opaque
cursor, answers a repeated write under the same idempotency key with the first result, and can
be told to be unavailable or to refuse, as Shopify and WooCommerce can.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.ports.commerce import (
    CreditSpent,
    OrderPage,
    PlatformCredit,
    PlatformExchange,
    PlatformRefund,
    PlatformRejected,
    PlatformUnavailable,
    RestockLine,
    ReturnLine,
)
from core.usecases.orders import OrderInput


@dataclass
class InMemoryCommercePlatform:
    orders: dict[str, OrderInput] = field(default_factory=dict)
    refunds: dict[str, PlatformRefund] = field(default_factory=dict)
    restocked: dict[str, list[RestockLine]] = field(default_factory=dict)
    credits: dict[str, PlatformCredit] = field(default_factory=dict)
    unavailable_calls: int = 0  # the next N calls fail as if rate limited
    refuse: str | None = None  # every write is refused with this message
    closed: bool = False
    subscribed_to: str | None = None
    returns: dict[str, str] = field(default_factory=dict)
    spent: dict[str, list[CreditSpent]] = field(default_factory=dict)
    returns_by_rma: dict[str, str] = field(default_factory=dict)
    exchanges: dict[str, PlatformExchange] = field(default_factory=dict)
    _changes: list[str] = field(default_factory=list)
    _answers: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def put_order(self, order: OrderInput) -> None:
        """The merchant creates or edits an order on the platform."""
        self.orders[order.external_id] = order
        self._changes.append(order.external_id)

    def _call(self) -> None:
        if self.closed:
            raise RuntimeError("the platform client was closed")
        if self.unavailable_calls:
            self.unavailable_calls -= 1
            raise PlatformUnavailable("rate limited; retry later")

    def _write(self, key: str) -> str | None:
        self._call()
        if self.refuse is not None:
            raise PlatformRejected(self.refuse)
        return self._answers.get(key)

    async def fetch_order(self, order_reference: str) -> OrderInput | None:
        self._call()
        return self.orders.get(order_reference)

    async def orders_changed_since(self, cursor: str | None, *, limit: int) -> OrderPage:
        self._call()
        start = int(cursor) if cursor else 0
        window = self._changes[start : start + limit]
        # The latest version of each order changed in the window, in the order of change.
        references = list(dict.fromkeys(window))
        end = start + len(window)
        return OrderPage(
            orders=[self.orders[reference] for reference in references],
            next_cursor=str(end),
            has_more=end < len(self._changes),
        )

    async def write_refund(self, refund: PlatformRefund) -> str:
        found = self._write(refund.idempotency_key)
        if found is not None:
            return found
        if refund.order_reference not in self.orders:
            raise PlatformRejected(f"order {refund.order_reference} does not exist")
        reference = f"refund-{next(self._ids)}"
        self.refunds[reference] = refund
        self._answers[refund.idempotency_key] = reference
        return reference

    async def restock(
        self, order_reference: str, lines: Sequence[RestockLine], idempotency_key: str
    ) -> None:
        if self._write(idempotency_key) is not None:
            return
        self.restocked.setdefault(order_reference, []).extend(lines)
        self._answers[idempotency_key] = "restocked"

    async def issue_store_credit(self, credit: PlatformCredit) -> str:
        found = self._write(credit.idempotency_key)
        if found is not None:
            return found
        reference = f"credit-{next(self._ids)}"
        self.credits[reference] = credit
        self._answers[credit.idempotency_key] = reference
        return reference

    async def store_credit_spent(self, customer_reference: str) -> Sequence[CreditSpent]:
        self._call()
        return list(self.spent.get(customer_reference, []))

    async def open_return(
        self, order_reference: str, rma_number: str, lines: Sequence[ReturnLine]
    ) -> str | None:
        self._call()
        if order_reference not in self.orders:
            raise PlatformRejected(f"order {order_reference} does not exist")
        reference = self.returns_by_rma.setdefault(rma_number, f"return-{next(self._ids)}")
        self.returns[reference] = "OPEN"
        return reference

    async def end_return(self, return_reference: str, outcome: str) -> None:
        self._call()
        if self.returns.get(return_reference) == "OPEN":
            self.returns[return_reference] = outcome

    async def place_exchange(self, exchange: PlatformExchange) -> str:
        found = self._write(f"exchange:{exchange.marker}")
        if found is not None:
            return found
        if exchange.order_reference not in self.orders:
            raise PlatformRejected(f"order {exchange.order_reference} does not exist")
        reference = f"exchange-order-{next(self._ids)}"
        self.exchanges[reference] = exchange
        self._answers[f"exchange:{exchange.marker}"] = reference
        return reference

    async def subscribe_webhooks(self, public_url: str, connection_id: str) -> None:
        self._call()
        self.subscribed_to = f"{public_url}/webhooks/{connection_id}"

    async def close(self) -> None:
        self.closed = True


def edited(order: OrderInput, **changes: object) -> OrderInput:
    """A copy of an order with some fields changed, as a merchant's edit makes it."""
    return dataclasses.replace(order, **changes)  # type: ignore[arg-type]
