"""Counting failed customer sign-ins in the database, so that every API process (and every
machine) shares one budget per key."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import LoginFailure


async def failures_since(
    session: AsyncSession, keys: Collection[str], *, since: datetime
) -> dict[str, int]:
    """Failed sign-ins per key since ``since``."""
    rows = await session.exec(
        select(LoginFailure.key, sa.func.count())
        .where(col(LoginFailure.key).in_(list(keys)), LoginFailure.created_at > since)
        .group_by(col(LoginFailure.key))
    )
    return {key: int(count) for key, count in rows.all()}


async def record_login_failure(
    session: AsyncSession, keys: Collection[str], *, now: datetime, forget_before: datetime
) -> None:
    """One more failure under each key; failures older than ``forget_before`` are dropped."""
    async with session.begin():
        await session.exec(delete(LoginFailure).where(col(LoginFailure.created_at) < forget_before))
        session.add_all(LoginFailure(key=key, created_at=now) for key in keys)
