"""The job engine on every backend: outbox, retries, dead letters, locks, periodic runs."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.enums import JobState
from core.jobs.worker import (
    JobContext,
    PeriodicJob,
    PermanentJobError,
    Worker,
    reap_expired_leases,
    schedule_periodic,
)
from core.outbox.queue import enqueue


def kind() -> str:
    """A job kind of this test alone, so that workers never pick up other tests' jobs."""
    return f"test.{uuid.uuid4().hex[:10]}"


async def jobs_of(db: Database, job_kind: str) -> list[Job]:
    async with db.read_session() as session:
        return list((await session.exec(select(Job).where(Job.kind == job_kind))).all())


async def test_a_job_exists_exactly_when_its_transaction_commits(db: Database) -> None:
    job_kind = kind()
    async with db.session() as session:
        with pytest.raises(RuntimeError):  # noqa: PT012 (the rollback is the point)
            async with session.begin():
                enqueue(session, job_kind, {"n": 1}, now=SYSTEM_CLOCK.now())
                raise RuntimeError("the change failed")
    assert await jobs_of(db, job_kind) == []
    async with db.session() as session, session.begin():
        enqueue(session, job_kind, {"n": 2}, now=SYSTEM_CLOCK.now())
    assert [job.payload for job in await jobs_of(db, job_kind)] == [{"n": 2}]


async def test_a_transient_failure_is_retried_with_backoff_and_then_succeeds(
    db: Database,
) -> None:
    job_kind = kind()
    calls: list[datetime] = []

    async def flaky(context: JobContext) -> None:
        calls.append(SYSTEM_CLOCK.now())
        if len(calls) < 3:
            raise ConnectionError("provider timed out")

    async with db.session() as session, session.begin():
        enqueue(session, job_kind, now=SYSTEM_CLOCK.now())
    worker = Worker(db, {job_kind: flaky}, retry_base_seconds=0.05, poll_interval=0.02)
    for _ in range(50):
        await worker.run_until_idle()
        if len(calls) == 3:
            break
        await asyncio.sleep(0.05)
    [job] = await jobs_of(db, job_kind)
    assert job.state is JobState.DONE
    assert job.attempts == 3
    assert calls[1] > calls[0]
    assert calls[2] - calls[1] >= timedelta(seconds=0.05), "the second retry waits longer"


async def test_a_job_that_always_fails_ends_dead_lettered_with_its_error(db: Database) -> None:
    job_kind = kind()

    async def broken(context: JobContext) -> None:
        raise ValueError("the payload names no RMA")

    async with db.session() as session, session.begin():
        enqueue(session, job_kind, max_attempts=3, now=SYSTEM_CLOCK.now())
    worker = Worker(db, {job_kind: broken}, retry_base_seconds=0.01)
    for _ in range(100):
        await worker.run_until_idle()
        [job] = await jobs_of(db, job_kind)
        if job.state is JobState.DEAD:
            break
        await asyncio.sleep(0.02)
    assert job.state is JobState.DEAD
    assert job.attempts == 3
    assert job.last_error == "ValueError: the payload names no RMA"


async def test_a_permanent_error_dead_letters_at_once(db: Database) -> None:
    job_kind = kind()

    async def refused(context: JobContext) -> None:
        raise PermanentJobError("Stripe rejected the API key")

    async with db.session() as session, session.begin():
        enqueue(session, job_kind, now=SYSTEM_CLOCK.now())
    await Worker(db, {job_kind: refused}).run_until_idle()
    [job] = await jobs_of(db, job_kind)
    assert job.state is JobState.DEAD
    assert job.attempts == 1
    assert "Stripe rejected the API key" in (job.last_error or "")


async def test_jobs_with_one_lock_key_never_run_at_the_same_time(db: Database) -> None:
    job_kind = kind()
    intervals: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    loop = asyncio.get_running_loop()

    async def slow(context: JobContext) -> None:
        started = loop.time()
        await asyncio.sleep(0.02)
        intervals[context.job.payload["key"]].append((started, loop.time()))

    async with db.session() as session, session.begin():
        for index in range(12):
            key = "ab"[index % 2]
            enqueue(
                session,
                job_kind,
                {"key": key},
                lock_key=f"{job_kind}:{key}",
                now=SYSTEM_CLOCK.now(),
            )
    workers = [Worker(db, {job_kind: slow}, concurrency=4, poll_interval=0.01) for _ in range(2)]
    await asyncio.gather(*(worker.run_until_idle() for worker in workers))

    assert all(job.state is JobState.DONE for job in await jobs_of(db, job_kind))
    for spans in intervals.values():
        assert len(spans) == 6
        ordered = sorted(spans)
        for (_, end), (start, _) in itertools.pairwise(ordered):
            assert start >= end, "two jobs of one lock key overlapped"


async def test_the_reaper_requeues_the_jobs_of_a_worker_that_died(db: Database) -> None:
    job_kind = kind()
    async with db.session() as session, session.begin():
        job = enqueue(session, job_kind, now=SYSTEM_CLOCK.now())
    async with db.session() as session, session.begin():
        await session.exec(
            sa.update(Job)
            .where(col(Job.id) == job.id)
            .values(
                state=JobState.RUNNING,
                locked_by="dead-worker",
                attempts=1,
                locked_until=SYSTEM_CLOCK.now() - timedelta(seconds=1),
            )
        )
    assert await reap_expired_leases(db, SYSTEM_CLOCK) >= 1
    [reaped] = await jobs_of(db, job_kind)
    assert reaped.state is JobState.QUEUED
    assert reaped.locked_by is None
    assert "lease expired" in (reaped.last_error or "")
    ran: list[uuid.UUID] = []

    async def record(context: JobContext) -> None:
        ran.append(context.job.id)

    await Worker(db, {job_kind: record}).run_until_idle()
    assert ran == [job.id]


async def test_four_schedulers_over_ten_periods_create_exactly_ten_runs(db: Database) -> None:
    job_kind = kind()
    periodic = [PeriodicJob(name=job_kind, kind=job_kind, every=timedelta(minutes=1))]
    schedulers = [db] + [Database(db.url, pool_size=2) for _ in range(3)]
    start = datetime(2026, 11, 1, 12, 0, 30, tzinfo=UTC)
    try:
        for minute in range(10):
            moment = start + timedelta(minutes=minute)
            await asyncio.gather(
                *(schedule_periodic(database, periodic, moment) for database in schedulers),
                *(
                    schedule_periodic(database, periodic, moment + timedelta(seconds=20))
                    for database in schedulers
                ),
            )
    finally:
        for database in schedulers[1:]:
            await database.dispose()
    runs = await jobs_of(db, job_kind)
    assert len(runs) == 10
    assert len({job.unique_key for job in runs}) == 10


async def test_a_worker_leaves_kinds_it_cannot_run_to_other_workers(db: Database) -> None:
    job_kind = kind()
    async with db.session() as session, session.begin():
        enqueue(session, job_kind, now=SYSTEM_CLOCK.now())
    await Worker(db, {kind(): _never_called}, concurrency=1).run_until_idle()
    [waiting] = await jobs_of(db, job_kind)
    assert waiting.state is JobState.QUEUED
    assert waiting.attempts == 0


async def _never_called(context: JobContext) -> None:
    raise AssertionError("this worker must not take the job")
