"""Exchanges: the returned units pay for a replacement (another variant or product).

Choosing an exchange (``resolve_rma(kind=EXCHANGE, exchange=...)``) prices the returned units
as for store credit, creates the resolution and its :class:`Exchange` in one transaction, and
queues the job that places the replacement: an order on the original order's platform (Shopify,
WooCommerce), or, for a storefront's own order, a record the storefront fulfils and confirms
through the API. Part 0 of the resolution is the exchange itself (worth what the replacement
takes of the returned value); when the returned units were worth more, the difference is
refunded through the resolution's further parts, over the order's payments like any refund;
when the replacement costs more, the difference is due from the customer on the replacement
order. Either way the exchange stays on the RMA until it is fulfilled or cancelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Exchange, Resolution
from core.enums import ExchangeStatus
from core.errors import Conflict, InvalidInput
from core.money import MAX_MINOR
from core.usecases.inputs import checked_now, clean_text
from core.usecases.owned_rows import get_owned, lock_rma
from core.usecases.timeline import record_event

MAX_REPLACEMENT_LINES = 50
MAX_QUANTITY = 1000


@dataclass(frozen=True, slots=True)
class ReplacementLine:
    """One item the customer gets instead, priced by the caller (the storefront or staff,
    who know the catalogue) in the order's currency."""

    title: str
    quantity: int
    unit_price_minor: int
    sku: str = ""
    variant_reference: str = ""  # the platform's variant (or product) id, when there is one


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    lines: Sequence[ReplacementLine] = field(default_factory=tuple)
    note: str = ""


@dataclass(frozen=True, slots=True)
class CheckedExchange:
    lines: list[dict[str, Any]]
    value_minor: int
    note: str


def _whole(value: object, field_name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field_name, f"{field_name} must be a whole number from {low} to {high}")
    return value


def check_exchange(request: ExchangeRequest) -> CheckedExchange:
    """The replacement, checked before anything is read or written."""
    if not request.lines:
        raise InvalidInput("exchange.lines", "say what replaces the returned goods")
    if len(request.lines) > MAX_REPLACEMENT_LINES:
        raise InvalidInput(
            "exchange.lines", f"an exchange has at most {MAX_REPLACEMENT_LINES} lines"
        )
    lines: list[dict[str, Any]] = []
    value = 0
    for index, line in enumerate(request.lines):
        where = f"exchange.lines[{index}]"
        title = clean_text(line.title, f"{where}.title", limit=300)
        if not title:
            raise InvalidInput(f"{where}.title", "name the replacement")
        quantity = _whole(line.quantity, f"{where}.quantity", 1, MAX_QUANTITY)
        unit_price = _whole(line.unit_price_minor, f"{where}.unitPriceMinor", 0, MAX_MINOR)
        value += quantity * unit_price
        lines.append(
            {
                "title": title,
                "sku": clean_text(line.sku, f"{where}.sku", limit=100),
                "variantReference": clean_text(
                    line.variant_reference, f"{where}.variantId", limit=100
                ),
                "quantity": quantity,
                "unitPriceMinor": unit_price,
            }
        )
    if value > MAX_MINOR:
        raise InvalidInput("exchange.lines", "the replacement is worth more than can be stored")
    return CheckedExchange(lines, value, clean_text(request.note, "exchange.note"))


def new_exchange(
    resolution: Resolution,
    checked: CheckedExchange,
    returned_value_minor: int,
    *,
    now: datetime,
) -> Exchange:
    """The exchange of a resolution being chosen (same transaction), still to be placed."""
    difference = returned_value_minor - checked.value_minor
    return Exchange(
        merchant_id=resolution.merchant_id,
        rma_id=resolution.rma_id,
        resolution_id=resolution.id,
        order_id=resolution.order_id,
        status=ExchangeStatus.PLACING,
        currency=resolution.currency,
        returned_value_minor=returned_value_minor,
        replacement_value_minor=checked.value_minor,
        refund_minor=max(difference, 0),
        due_minor=max(-difference, 0),
        lines=checked.lines,
        note=checked.note,
        created_at=now,
        updated_at=now,
    )


async def confirm_exchange_fulfilled(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    exchange_id: uuid.UUID | str,
    *,
    reference: str,
    actor: str,
    now: datetime,
) -> Exchange:
    """The replacement went out (the storefront or staff say so, with the shipment or order
    reference). Confirming it again is a no-op."""
    cleaned = clean_text(reference, "reference", limit=255)
    if not cleaned:
        raise InvalidInput("reference", "say how it was fulfilled (a shipment or order reference)")
    moment = checked_now(now)
    async with session.begin():
        exchange = await _locked(session, merchant_id, exchange_id)
        if exchange.status is ExchangeStatus.FULFILLED:
            return exchange
        if exchange.status is not ExchangeStatus.WAITING_FOR_FULFILMENT:
            raise Conflict(
                f"the exchange is {exchange.status.value}, not waiting for fulfilment",
                field="id",
            )
        exchange.status = ExchangeStatus.FULFILLED
        exchange.fulfilment_reference = cleaned
        exchange.fulfilled_at = moment
        exchange.updated_at = moment
        session.add(exchange)
        rma = await lock_rma(session, merchant_id, exchange.rma_id)
        await record_event(
            session,
            rma,
            actor=actor,
            kind="EXCHANGE_FULFILLED",
            now=moment,
            message=f"replacement fulfilled: {cleaned}",
            data={"exchangeId": str(exchange.id), "reference": cleaned},
        )
    return exchange


async def cancel_exchange(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    exchange_id: uuid.UUID | str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Exchange:
    """Staff call off a replacement that was not fulfilled (out of stock, the customer
    changed their mind). The returned value is not paid back by itself: the timeline says what
    it was, for staff to settle."""
    cleaned = clean_text(reason, "reason")
    if not cleaned:
        raise InvalidInput("reason", "say why the exchange is cancelled")
    moment = checked_now(now)
    async with session.begin():
        exchange = await _locked(session, merchant_id, exchange_id)
        if exchange.status is ExchangeStatus.CANCELED:
            return exchange
        if exchange.status is ExchangeStatus.FULFILLED:
            raise Conflict("the replacement was fulfilled already", field="id")
        if exchange.status is ExchangeStatus.PLACING:
            raise Conflict(
                "the replacement is being placed: cancel it once it is placed (or, if it waits "
                "for review, record how it was settled with recordManualRefund)",
                field="id",
            )
        exchange.status = ExchangeStatus.CANCELED
        exchange.cancel_reason = cleaned
        exchange.canceled_at = moment
        exchange.updated_at = moment
        session.add(exchange)
        rma = await lock_rma(session, merchant_id, exchange.rma_id)
        value = exchange.replacement_value_minor - exchange.due_minor
        await record_event(
            session,
            rma,
            actor=actor,
            kind="EXCHANGE_CANCELED",
            now=moment,
            message=f"exchange cancelled ({cleaned}); {value} {exchange.currency} of returned "
            "value went to it and is for staff to settle",
            data={"exchangeId": str(exchange.id), "valueMinor": value, "reason": cleaned},
        )
    return exchange


async def call_off_exchanges(
    session: AsyncSession, resolution_ids: Sequence[uuid.UUID], reason: str, *, now: datetime
) -> None:
    """Within the caller's transaction: the exchanges of resolutions that failed before their
    replacement was placed are cancelled with them."""
    rows = (
        await session.exec(
            select(Exchange).where(
                col(Exchange.resolution_id).in_(list(resolution_ids)),
                col(Exchange.status) == ExchangeStatus.PLACING,
            )
        )
    ).all()
    for exchange in rows:
        exchange.status = ExchangeStatus.CANCELED
        exchange.cancel_reason = (reason or "the resolution failed")[:2000]
        exchange.canceled_at = now
        exchange.updated_at = now
        session.add(exchange)


async def record_placed_by_hand(
    session: AsyncSession, resolution_id: uuid.UUID, reference: str, *, now: datetime
) -> None:
    """Within the caller's transaction: staff placed the replacement themselves (``reference``
    names the order); it waits for fulfilment like one the job placed."""
    exchange = await exchange_of(session, resolution_id)
    if exchange.status is ExchangeStatus.PLACING:
        exchange.status = ExchangeStatus.WAITING_FOR_FULFILMENT
        exchange.platform_reference = reference
        exchange.placed_at = now
        exchange.updated_at = now
        session.add(exchange)


async def exchange_of(session: AsyncSession, resolution_id: uuid.UUID) -> Exchange:
    """The exchange an exchange resolution gives (one per resolution)."""
    return (
        await session.exec(select(Exchange).where(Exchange.resolution_id == resolution_id))
    ).one()


async def _locked(
    session: AsyncSession, merchant_id: uuid.UUID, exchange_id: uuid.UUID | str
) -> Exchange:
    exchange = await get_owned(session, Exchange, merchant_id, exchange_id, field="id")
    await lock_rma(session, merchant_id, exchange.rma_id)
    await session.refresh(exchange, with_for_update=True)
    return exchange
