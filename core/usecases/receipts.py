"""The batches an RMA's goods arrive in, and the status they add up to.

A return may come back in several parcels. The units that arrive before an inspection form one
receipt; the warehouse inspects a receipt as a whole and staff resolve it on its own, so the
first parcel is refunded while the second is still on its way. The RMA shows the least advanced
receipt (see :func:`core.rules.status.status_of_receipts`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Receipt, Rma
from core.enums import ReceiptStatus, RmaStatus
from core.errors import InvalidTransition, NotFound
from core.rules.status import status_of_receipts
from core.usecases.timeline import transition

# Receipts still waiting for staff's decision: resolved, or refused with refuseGoods.
UNDECIDED = frozenset({ReceiptStatus.RECEIVED, ReceiptStatus.INSPECTED})


async def receipts_of(session: AsyncSession, rma_id: uuid.UUID) -> list[Receipt]:
    """An RMA's receipts with their lines, oldest first (the caller holds the RMA's lock)."""
    rows = await session.exec(
        select(Receipt)
        .where(Receipt.rma_id == rma_id)
        .options(selectinload(Receipt.lines))  # type: ignore[arg-type]
        .order_by(col(Receipt.sequence))
    )
    return list(rows.all())


def pick_receipt(
    receipts: list[Receipt], wanted: uuid.UUID | None, status: ReceiptStatus, *, target: RmaStatus
) -> Receipt:
    """The receipt ``wanted`` (or, without one, the oldest) in ``status``."""
    if wanted is not None:
        receipt = next((r for r in receipts if r.id == wanted), None)
        if receipt is None:
            raise NotFound("RmaReceipt", wanted, field="receiptId")
        if receipt.status is not status:
            raise InvalidTransition(
                receipt.status.value,
                target.value,
                hint=f"receipt {receipt.sequence} is {receipt.status.value}, not {status.value}",
            )
        return receipt
    receipt = next((r for r in receipts if r.status is status), None)
    if receipt is None:
        current = status_of_receipts(r.status for r in receipts)
        raise InvalidTransition((current or RmaStatus.AUTHORIZED).value, target.value)
    return receipt


async def follow_receipts(
    session: AsyncSession,
    rma: Rma,
    receipts: list[Receipt],
    *,
    actor: str,
    now: datetime,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> bool:
    """Move the RMA to the status its receipts add up to; False when it already shows it."""
    target = status_of_receipts(receipt.status for receipt in receipts)
    if target is None or target is rma.status:
        return False
    await transition(session, rma, target, actor=actor, now=now, message=message, data=data)
    return True


def outstanding_units(rma: Rma) -> int:
    """Units asked for that have not arrived (the RMA's lines are loaded)."""
    return sum(line.quantity - line.received_quantity for line in rma.lines)


def expect_the_rest(rma: Rma, *, valid_days: int, now: datetime) -> None:
    """After a parcel arrived: nothing more is expected when all came; otherwise the rest has
    as long to arrive after this parcel as the first one had to ship, and never less than the
    authorization itself."""
    if outstanding_units(rma) == 0:
        rma.rest_ended_at = now
        rma.rest_expires_at = None
        return
    deadline = now + timedelta(days=valid_days)
    if rma.authorization_expires_at is not None:
        deadline = max(deadline, rma.authorization_expires_at)
    rma.rest_expires_at = deadline
