"""Figures operators watch, read from the database so that every process reports the same:
the job queue, finished jobs, webhook deliveries, resolutions, and how far behind each
connection's sync is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection, Job, Resolution, WebhookDelivery
from core.enums import JobState


@dataclass(frozen=True, slots=True)
class QueueFigure:
    kind: str
    due: int  # queued and due now
    lag_seconds: float  # how long the oldest due job has waited past its time


@dataclass(frozen=True, slots=True)
class Figures:
    queue: Sequence[QueueFigure]
    jobs: Sequence[tuple[str, str, int]]  # kind, state, count
    deliveries: Sequence[tuple[str, str, int]]  # platform, state, count
    resolutions: Sequence[tuple[str, str, str, int]]  # kind, provider, status, count
    sync_lag: Sequence[tuple[str, str, float]]  # connection id, platform, seconds (-1 never)


async def operational_figures(session: AsyncSession, *, now: datetime) -> Figures:
    due = (
        await session.exec(
            select(Job.kind, sa.func.count(), sa.func.min(Job.run_at))
            .where(Job.state == JobState.QUEUED, col(Job.run_at) <= now)
            .group_by(col(Job.kind))
        )
    ).all()
    jobs = (
        await session.exec(
            select(Job.kind, Job.state, sa.func.count()).group_by(col(Job.kind), col(Job.state))
        )
    ).all()
    deliveries = (
        await session.exec(
            select(WebhookDelivery.platform, WebhookDelivery.state, sa.func.count()).group_by(
                col(WebhookDelivery.platform), col(WebhookDelivery.state)
            )
        )
    ).all()
    resolutions = (
        await session.exec(
            select(
                Resolution.kind, Resolution.provider, Resolution.status, sa.func.count()
            ).group_by(col(Resolution.kind), col(Resolution.provider), col(Resolution.status))
        )
    ).all()
    connections = (
        await session.exec(
            select(Connection.id, Connection.platform, Connection.last_synced_at).where(
                col(Connection.disabled_at).is_(None)
            )
        )
    ).all()
    return Figures(
        queue=[
            QueueFigure(str(kind), int(count), max((now - oldest).total_seconds(), 0.0))
            for kind, count, oldest in due
        ],
        jobs=[(str(kind), str(state), int(count)) for kind, state, count in jobs],
        deliveries=[(str(p), str(state), int(count)) for p, state, count in deliveries],
        resolutions=[
            (str(kind), str(provider), str(status), int(count))
            for kind, provider, status, count in resolutions
        ],
        sync_lag=[
            (
                str(connection_id),
                str(platform),
                -1.0 if synced is None else max((now - synced).total_seconds(), 0.0),
            )
            for connection_id, platform, synced in connections
        ],
    )
