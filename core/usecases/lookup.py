"""Read-only lookups that validate what the caller typed."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import selectinload
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Rma
from core.errors import NotFound
from core.rules.numbers import parse_rma_number


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
