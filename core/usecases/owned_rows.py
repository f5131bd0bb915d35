"""Loading a merchant's own rows; another merchant's row answers exactly like a missing one."""

from __future__ import annotations

import uuid
from typing import TypeVar

import structlog
from sqlalchemy.orm import selectinload
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Order, ReturnPolicy, Rma
from core.errors import NotFound
from core.usecases.inputs import as_uuid

Row = TypeVar("Row", bound=SQLModel)


async def get_owned(
    session: AsyncSession,
    entity: type[Row],
    merchant_id: uuid.UUID,
    row_id: uuid.UUID | str,
    *,
    field: str = "id",
    for_update: bool = False,
) -> Row:
    """Load a row of this merchant; another merchant's row answers like a missing one."""
    identifier = as_uuid(row_id, field)
    statement = select(entity).where(
        entity.id == identifier,  # type: ignore[attr-defined]
        entity.merchant_id == merchant_id,  # type: ignore[attr-defined]
    )
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    row = (await session.exec(statement)).first()
    if row is None:
        raise NotFound(entity.__name__, identifier, field=field)
    return row


async def lock_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    customer_id: uuid.UUID | None = None,
) -> Rma:
    """Load an RMA with its lines, holding its row lock until the transaction ends.

    Concurrent transitions on one RMA queue behind this lock, so the second one sees the status
    the first one left and fails with a typed error instead of overwriting it. A customer only
    reaches their own RMAs.
    """
    identifier = as_uuid(rma_id, "id")
    statement = (
        select(Rma)
        .where(Rma.id == identifier, Rma.merchant_id == merchant_id)
        .with_for_update()
        .options(selectinload(Rma.lines))  # type: ignore[arg-type]
        .execution_options(populate_existing=True)
    )
    rma = (await session.exec(statement)).first()
    if rma is None or (customer_id is not None and rma.customer_id != customer_id):
        raise NotFound("Rma", identifier, field="id")
    # Later log lines of this request or job name the RMA they concern.
    structlog.contextvars.bind_contextvars(rma_id=str(rma.id))
    return rma


async def load_order(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    order_id: uuid.UUID | str,
    *,
    for_update: bool = False,
    field: str = "orderId",
) -> Order:
    identifier = as_uuid(order_id, field)
    statement = (
        select(Order)
        .where(Order.id == identifier, Order.merchant_id == merchant_id)
        .options(selectinload(Order.lines), selectinload(Order.payments))  # type: ignore[arg-type]
    )
    if for_update:
        statement = statement.with_for_update(of=Order).execution_options(populate_existing=True)
    order = (await session.exec(statement)).first()
    if order is None:
        raise NotFound("Order", identifier, field=field)
    return order


async def current_policy(session: AsyncSession, merchant_id: uuid.UUID) -> ReturnPolicy:
    statement = (
        select(ReturnPolicy)
        .where(ReturnPolicy.merchant_id == merchant_id)
        .order_by(col(ReturnPolicy.version).desc())
        .limit(1)
    )
    policy = (await session.exec(statement)).first()
    if policy is None:
        raise NotFound("ReturnPolicy", merchant_id, field="merchantId")
    return policy


async def policy_of(session: AsyncSession, rma: Rma) -> ReturnPolicy:
    """The policy version that decided this RMA (the current one if it has none)."""
    if rma.policy_id is not None:
        policy = await session.get(ReturnPolicy, rma.policy_id)
        if policy is not None:
            return policy
    return await current_policy(session, rma.merchant_id)
