"""The one place that moves an RMA and writes its timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Order, Rma, RmaEvent
from core.enums import ORDER_PLATFORMS, RmaStatus
from core.outbox.kinds import MIRROR_RETURN
from core.outbox.queue import enqueue
from core.rules.status import TERMINAL_STATUSES, check_transition

SYSTEM_ACTOR = "system"

# Moves that the order platform's own return follows.
MIRRORED_STATUSES = frozenset(
    {
        RmaStatus.AUTHORIZED,
        RmaStatus.RESOLVED,
        RmaStatus.CLOSED,
        RmaStatus.REJECTED,
        RmaStatus.CANCELLED,
        RmaStatus.EXPIRED,
    }
)


# The length of a timeline message (RmaEvent.message).
MESSAGE_LIMIT = 2000


async def record_event(
    session: AsyncSession,
    rma: Rma,
    *,
    actor: str,
    kind: str,
    message: str = "",
    from_status: RmaStatus | None = None,
    to_status: RmaStatus | None = None,
    data: dict[str, Any] | None = None,
    now: datetime,
) -> RmaEvent:
    """Append an entry to the RMA's timeline (the caller holds the RMA's lock).

    A message that quotes someone's text (a reason, a provider's error) after its own words
    may outgrow the column; it is shortened, the whole text staying in ``data`` or its row.
    """
    last = (
        await session.exec(select(sa.func.max(RmaEvent.sequence)).where(RmaEvent.rma_id == rma.id))
    ).one()
    event = RmaEvent(
        merchant_id=rma.merchant_id,
        rma_id=rma.id,
        sequence=(last or 0) + 1,
        actor=actor,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        message=message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…",
        data=data or {},
        created_at=now,
    )
    session.add(event)
    return event


async def follow_on_platform(session: AsyncSession, rma: Rma, *, now: datetime) -> None:
    """The platform's own return follows ours (opened, closed or cancelled by a job)."""
    order = await session.get(Order, rma.order_id)
    if order is not None and order.platform in ORDER_PLATFORMS:
        enqueue(
            session,
            MIRROR_RETURN,
            {"rmaId": str(rma.id), "merchantId": str(rma.merchant_id)},
            now=now,
            merchant_id=rma.merchant_id,
            lock_key=f"rma:{rma.id}",
        )


async def transition(
    session: AsyncSession,
    rma: Rma,
    target: RmaStatus,
    *,
    actor: str,
    now: datetime,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Move the RMA if the status machine allows it, and record the move in the timeline."""
    check_transition(rma.status, target)
    current = rma.status
    rma.status = target
    rma.updated_at = now
    if target in TERMINAL_STATUSES and rma.rest_ended_at is None:
        # An ended return expects nothing more, whatever had not arrived.
        rma.rest_ended_at = now
        rma.rest_expires_at = None
    session.add(rma)
    if target in MIRRORED_STATUSES:
        await follow_on_platform(session, rma, now=now)
    await record_event(
        session,
        rma,
        actor=actor,
        kind="STATUS_CHANGED",
        message=message,
        from_status=current,
        to_status=target,
        data=data,
        now=now,
    )
