"""How many units of an order's lines are already on their way back or returned."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Rma, RmaLine
from core.enums import RmaStatus

# Statuses whose units have physically come back; before them, the requested quantity counts.
_ARRIVED = frozenset(
    {
        RmaStatus.RECEIVED,
        RmaStatus.INSPECTED,
        RmaStatus.RESOLVING,
        RmaStatus.RESOLVED,
        RmaStatus.CLOSED,
    }
)


_LIVE_BEFORE_ARRIVAL = frozenset(
    {RmaStatus.REQUESTED, RmaStatus.NEEDS_REVIEW, RmaStatus.AUTHORIZED, RmaStatus.IN_TRANSIT}
)


async def returned_quantities(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    excluding_rma: uuid.UUID | None = None,
    statuses: Iterable[RmaStatus] | None = None,
) -> dict[uuid.UUID, int]:
    """Units of each order line already on their way back or returned, per order line.

    Before arrival the requested quantity counts; after, what was actually received.
    """
    counted = sa.case(
        (col(Rma.status).in_([s.value for s in _ARRIVED]), col(RmaLine.received_quantity)),
        else_=col(RmaLine.quantity),
    )
    wanted = statuses if statuses is not None else _ARRIVED | _LIVE_BEFORE_ARRIVAL
    statement = (
        select(RmaLine.order_line_id, sa.func.sum(counted))
        .join(Rma, col(Rma.id) == col(RmaLine.rma_id))
        .where(Rma.order_id == order_id, col(Rma.status).in_([s.value for s in wanted]))
        .group_by(col(RmaLine.order_line_id))
    )
    if excluding_rma is not None:
        statement = statement.where(Rma.id != excluding_rma)
    rows = (await session.exec(statement)).all()
    return {order_line_id: int(total or 0) for order_line_id, total in rows}
