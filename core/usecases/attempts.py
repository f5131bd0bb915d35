"""Claiming the next attempt at moving a resolution's money (or placing its replacement)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Resolution
from core.enums import ResolutionStatus

ATTEMPTABLE = (ResolutionStatus.PENDING, ResolutionStatus.SUBMITTING)


async def claim_attempt(
    session: AsyncSession, resolution_id: uuid.UUID, *conditions: Any, now: datetime
) -> Resolution | None:
    """Within the caller's transaction: mark the attempt (SUBMITTING, attempts + 1) before the
    outside world is asked, or None when the resolution is not attemptable (or fails
    ``conditions``). The update is conditional on the status, so a stale worker that lost its
    job cannot start an attempt on a resolution that has moved on."""
    result = await session.exec(
        sa.update(Resolution)
        .where(
            col(Resolution.id) == resolution_id,
            col(Resolution.status).in_([status.value for status in ATTEMPTABLE]),
            *conditions,
        )
        .values(
            status=ResolutionStatus.SUBMITTING,
            attempts=Resolution.attempts + 1,
            updated_at=now,
        )
        .returning(Resolution)
    )
    claimed: Resolution | None = result.scalars().one_or_none()
    return claimed
