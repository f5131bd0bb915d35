"""Read-only lookups that validate what the caller typed."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Customer, Order, Rma
from core.errors import DomainError, NotFound
from core.rules.numbers import parse_rma_number
from core.usecases.inputs import as_uuid
from core.usecases.orders import normalize_email


async def get_rma_by_number(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    number: str,
    *,
    customer_id: uuid.UUID | None = None,
) -> Rma:
    """The merchant's RMA with this number, as typed by a person (case, dashes, I/O/L forgiven).

    A malformed number or one with a wrong check symbol is refused before any lookup.
    """
    canonical = parse_rma_number(number)
    statement = (
        select(Rma)
        .where(Rma.merchant_id == merchant_id, Rma.number == canonical)
        .options(selectinload(Rma.lines))  # type: ignore[arg-type]
    )
    rma = (await session.exec(statement)).first()
    if rma is None or (customer_id is not None and rma.customer_id != customer_id):
        raise NotFound("Rma", canonical, field="number")
    return rma


async def find_customer_by_order(
    session: AsyncSession, merchant_id: uuid.UUID | str, order_number: str, email: str
) -> Customer | None:
    """The customer who placed this order with this e-mail, or ``None``.

    A wrong pair and an unknown one both give ``None``, so callers cannot tell them apart.
    """
    try:
        merchant = as_uuid(merchant_id, "merchantId")
        normalized = normalize_email(email)
    except DomainError:
        return None
    number = order_number.strip()
    candidates = {number, number.lstrip("#"), f"#{number.lstrip('#')}"}
    statement = (
        select(Customer)
        .join(Order, col(Order.customer_id) == col(Customer.id))
        .where(
            Order.merchant_id == merchant,
            col(Order.order_number).in_(candidates),
            Customer.email == normalized,
        )
        .limit(1)
    )
    return (await session.exec(statement)).first()
