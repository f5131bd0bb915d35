"""The units of a partly received return that have not arrived: staff cancel them, or they
expire by the policy. Either way they stop counting as on their way back, so the customer may
ask for them again while the policy allows."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Rma
from core.enums import RmaStatus
from core.errors import InvalidInput, InvalidTransition
from core.rules.status import TERMINAL_STATUSES
from core.usecases.inputs import checked_now, clean_text
from core.usecases.owned_rows import lock_rma
from core.usecases.receipts import outstanding_units
from core.usecases.timeline import SYSTEM_ACTOR, follow_on_platform, record_event


async def cancel_remaining_units(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Rma:
    """Stop waiting for the units of a partly received return that have not arrived."""
    message = clean_text(reason, "reason")
    if not message:
        raise InvalidInput("reason", "say why the rest of the return is not coming")
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        if rma.status in TERMINAL_STATUSES:
            raise InvalidTransition(rma.status.value, RmaStatus.CANCELLED.value)
        if rma.received_at is None:
            raise InvalidTransition(
                rma.status.value,
                RmaStatus.CANCELLED.value,
                hint="nothing has arrived yet: cancel the whole return with cancelRma",
            )
        if rma.rest_ended_at is not None:
            raise InvalidTransition(
                rma.status.value,
                RmaStatus.CANCELLED.value,
                hint="nothing more is expected on this return",
            )
        await _end_rest(
            session, rma, kind="REST_CANCELLED", actor=actor, message=message, now=moment
        )
    return rma


async def expire_remaining_units(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """End the wait for units that did not arrive in time, for every merchant; the count.

    Rows another transaction holds are skipped and picked up by the next run.
    """
    moment = checked_now(now)
    async with session.begin():
        overdue = (
            await session.exec(
                select(Rma)
                .where(
                    col(Rma.rest_ended_at).is_(None),
                    col(Rma.rest_expires_at) < moment,
                    col(Rma.status).not_in([status.value for status in TERMINAL_STATUSES]),
                )
                .order_by(col(Rma.rest_expires_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for rma in overdue:
            await session.refresh(rma, ["lines"])
            await _end_rest(
                session,
                rma,
                kind="REST_EXPIRED",
                actor=SYSTEM_ACTOR,
                message="the rest of the return did not arrive in time",
                now=moment,
            )
    return len(overdue)


async def _end_rest(
    session: AsyncSession, rma: Rma, *, kind: str, actor: str, message: str, now: datetime
) -> None:
    missing = outstanding_units(rma)
    rma.rest_ended_at = now
    rma.rest_expires_at = None
    rma.updated_at = now
    session.add(rma)
    await record_event(
        session,
        rma,
        actor=actor,
        kind=kind,
        now=now,
        message=f"{missing} unit(s) no longer expected: {message}",
        data={"units": missing},
    )
    if rma.status is RmaStatus.RESOLVED:
        # The platform's return stayed open for the rest; it can close now.
        await follow_on_platform(session, rma, now=now)
