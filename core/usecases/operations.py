"""Operator actions on the queue and the webhook inbox (used by the CLI)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Job, WebhookDelivery
from core.enums import JobState, WebhookState
from core.errors import Conflict, NotFound
from core.outbox.kinds import PROCESS_DELIVERY
from core.outbox.queue import enqueue
from core.usecases.inputs import as_uuid, parse_enum


async def list_jobs(
    session: AsyncSession, *, state: str | None = None, limit: int = 50
) -> Sequence[Job]:
    """Newest jobs first, optionally of one state."""
    statement = select(Job).order_by(col(Job.created_at).desc()).limit(limit)
    if state is not None:
        statement = statement.where(Job.state == parse_enum(JobState, state, "state"))
    return (await session.exec(statement)).all()


async def retry_job(session: AsyncSession, job_id: uuid.UUID | str, *, now: datetime) -> Job:
    """Run a dead (or waiting) job again now, with a fresh set of attempts."""
    identifier = as_uuid(job_id, "job")
    async with session.begin():
        job = await session.get(Job, identifier, with_for_update=True)
        if job is None:
            raise NotFound("Job", identifier, field="job")
        if job.state in (JobState.RUNNING, JobState.DONE):
            raise Conflict(f"job {identifier} is {job.state.value}; only DEAD or QUEUED retry")
        job.state = JobState.QUEUED
        job.run_at = now
        job.attempts = 0
        job.finished_at = None
        session.add(job)
    return job


async def list_deliveries(session: AsyncSession, *, limit: int = 50) -> Sequence[WebhookDelivery]:
    statement = (
        select(WebhookDelivery).order_by(col(WebhookDelivery.received_at).desc()).limit(limit)
    )
    return (await session.exec(statement)).all()


async def replay_delivery(
    session: AsyncSession, delivery_id: uuid.UUID | str, *, now: datetime
) -> Job:
    """Process a stored delivery again (topic handlers are idempotent)."""
    identifier = as_uuid(delivery_id, "delivery")
    async with session.begin():
        delivery = await session.get(WebhookDelivery, identifier, with_for_update=True)
        if delivery is None:
            raise NotFound("WebhookDelivery", identifier, field="delivery")
        delivery.state = WebhookState.RECEIVED
        delivery.error = None
        delivery.processed_at = None
        session.add(delivery)
        return enqueue(
            session,
            PROCESS_DELIVERY,
            {"deliveryId": str(delivery.id)},
            now=now,
            merchant_id=delivery.merchant_id,
        )
