"""How many units of an order's lines are already on their way back or returned."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Receipt, ReceiptLine, Rma, RmaLine
from core.enums import ReceiptStatus
from core.rules.status import OPEN_OR_DONE_STATUSES


async def returned_quantities(session: AsyncSession, order_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Units of each order line already on their way back or returned, per order line.

    While more may arrive the requested quantity counts; once nothing more is expected (all
    came, the rest was cancelled or expired, the RMA closed), what was actually received.
    """
    # Refused units went back to the customer: they are theirs to ask for again.
    refused = (
        select(sa.func.coalesce(sa.func.sum(ReceiptLine.quantity), 0))
        .join(Receipt, col(Receipt.id) == col(ReceiptLine.receipt_id))
        .where(
            col(ReceiptLine.rma_line_id) == col(RmaLine.id),
            Receipt.status == ReceiptStatus.REFUSED,
        )
        .scalar_subquery()
    )
    counted = (
        sa.case(
            (col(Rma.rest_ended_at).is_not(None), col(RmaLine.received_quantity)),
            else_=col(RmaLine.quantity),
        )
        - refused
    )
    statement = (
        select(RmaLine.order_line_id, sa.func.sum(counted))
        .join(Rma, col(Rma.id) == col(RmaLine.rma_id))
        .where(
            Rma.order_id == order_id, col(Rma.status).in_([s.value for s in OPEN_OR_DONE_STATUSES])
        )
        .group_by(col(RmaLine.order_line_id))
    )
    rows = (await session.exec(statement)).all()
    return {order_line_id: int(total or 0) for order_line_id, total in rows}
