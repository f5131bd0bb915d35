"""An RMA mirrored as the order platform's own return, and what staff do to that return there.

Mirroring goes one way: our RMA decides, the platform's return follows. When staff close,
decline or cancel the platform's return themselves, the RMA records it on its timeline; before
the goods arrived it goes back to review, for a person to decide. No money moves because of it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Rma
from core.enums import RmaStatus
from core.usecases.inputs import checked_now
from core.usecases.owned_rows import lock_rma
from core.usecases.timeline import record_event, transition

# Where a platform's return ending before the goods arrived sends the RMA back to a person.
_BEFORE_ARRIVAL = frozenset({RmaStatus.AUTHORIZED, RmaStatus.IN_TRANSIT})
# Statuses in which our RMA has ended the same way: a return ended there is our own echo.
_ENDED = frozenset(
    {
        RmaStatus.RESOLVED,
        RmaStatus.CLOSED,
        RmaStatus.REJECTED,
        RmaStatus.CANCELLED,
        RmaStatus.EXPIRED,
    }
)


async def record_return_mirrored(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID,
    reference: str,
    *,
    now: datetime,
) -> None:
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        if rma.platform_return_id == reference:
            return
        rma.platform_return_id = reference[:100]
        session.add(rma)
        await record_event(
            session,
            rma,
            actor="system",
            kind="PLATFORM_RETURN_OPENED",
            message="mirrored as a return on the order's platform",
            data={"reference": reference},
            now=checked_now(now),
        )


async def record_platform_return_ended(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    return_reference: str,
    outcome: str,
    *,
    now: datetime,
) -> str:
    """Staff ended the mirrored return on the platform; returns what became of the RMA."""
    moment = checked_now(now)
    async with session.begin():
        found = (
            await session.exec(
                select(Rma.id).where(
                    Rma.merchant_id == merchant_id, Rma.platform_return_id == return_reference
                )
            )
        ).first()
        if found is None:
            return "no RMA mirrors this return"
        rma = await lock_rma(session, merchant_id, found)
        if rma.status in _ENDED:
            return f"the RMA is {rma.status.value} already"
        message = f"the return was {outcome.lower()} on the order's platform"
        if rma.status in _BEFORE_ARRIVAL:
            await transition(
                session,
                rma,
                RmaStatus.NEEDS_REVIEW,
                actor="platform",
                message=f"{message}; review it before the goods arrive",
                now=moment,
            )
            return "the RMA went back to review"
        await record_event(
            session,
            rma,
            actor="platform",
            kind="PLATFORM_RETURN_ENDED",
            message=f"{message}; the RMA goes on as it is",
            data={"outcome": outcome},
            now=moment,
        )
        return "noted on the RMA's timeline"
