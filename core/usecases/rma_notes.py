"""Things that happened to an RMA outside its status machine (a restock on the platform, a
change made in the platform's admin), kept on its timeline for staff."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from core.usecases.inputs import checked_now
from core.usecases.owned_rows import lock_rma
from core.usecases.timeline import record_event


async def note_on_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID,
    *,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
    actor: str = "system",
    now: datetime,
) -> None:
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        await record_event(
            session,
            rma,
            actor=actor,
            kind=kind,
            message=message[:2000],
            data=data,
            now=checked_now(now),
        )
