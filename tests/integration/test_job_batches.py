"""Claims and finishes in batches (core.jobs.batches) on every backend: no job runs twice,
one job per lock key at a time, expired leases are taken again, urgent jobs go first."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.enums import JobState
from core.jobs.worker import JobContext, Worker
from core.outbox.kinds import AUTO_RESOLVE, EXECUTE_REFUND, PROCESS_DELIVERY, SYNC_CONNECTION
from core.outbox.queue import BACKGROUND, URGENT, enqueue, priority_of


def kind() -> str:
    """A job kind of this test alone, so that workers never pick up other tests' jobs."""
    return f"test.{uuid.uuid4().hex[:10]}"


async def jobs_of(db: Database, job_kind: str) -> list[Job]:
    async with db.read_session() as session:
        return list((await session.exec(select(Job).where(Job.kind == job_kind))).all())


async def test_workers_claiming_in_batches_never_run_one_job_twice(db: Database) -> None:
    job_kind = kind()
    ran: Counter[uuid.UUID] = Counter()

    async def record(context: JobContext) -> None:
        ran[context.job.id] += 1
        await asyncio.sleep(0)

    async with db.session() as session, session.begin():
        for _ in range(150):
            enqueue(session, job_kind, now=SYSTEM_CLOCK.now())
    # Each worker has its own connections, as separate processes would.
    databases = [db] + [Database(db.url, pool_size=2) for _ in range(2)]
    try:
        workers = [
            Worker(database, {job_kind: record}, concurrency=8, poll_interval=0.01)
            for database in databases
        ]
        await asyncio.gather(*(worker.run_until_idle() for worker in workers))
    finally:
        for database in databases[1:]:
            await database.dispose()

    jobs = await jobs_of(db, job_kind)
    assert len(ran) == 150
    assert set(ran.values()) == {1}, "a job ran twice"
    assert all(job.state is JobState.DONE and job.attempts == 1 for job in jobs)
    assert sum(worker.stats.done for worker in workers) == 150


async def test_a_batch_claim_takes_one_job_of_a_lock_key_and_every_free_job(db: Database) -> None:
    job_kind = kind()
    key = f"{job_kind}:rma"
    started: list[str] = []
    release = asyncio.Event()

    async def held(context: JobContext) -> None:
        started.append(context.job.payload["name"])
        await release.wait()

    async with db.session() as session, session.begin():
        for number in range(3):
            enqueue(
                session, job_kind, {"name": f"keyed{number}"}, lock_key=key, now=SYSTEM_CLOCK.now()
            )
        for number in range(3):
            enqueue(session, job_kind, {"name": f"free{number}"}, now=SYSTEM_CLOCK.now())
    worker = Worker(db, {job_kind: held}, concurrency=10, poll_interval=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(200):
            if len(started) >= 4:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # room for a wrong second job of the key to start
        assert sorted(started) == ["free0", "free1", "free2", "keyed0"]
        release.set()
        for _ in range(500):
            states = {job.state for job in await jobs_of(db, job_kind)}
            if states == {JobState.DONE}:
                break
            await asyncio.sleep(0.01)
    finally:
        release.set()
        stop.set()
        await running
    assert started[-2:] == ["keyed1", "keyed2"], "a key's jobs run one at a time, oldest first"
    assert all(job.state is JobState.DONE for job in await jobs_of(db, job_kind))


async def test_a_batch_claim_takes_again_the_jobs_whose_lease_expired(db: Database) -> None:
    job_kind = kind()
    async with db.session() as session, session.begin():
        jobs = [enqueue(session, job_kind, now=SYSTEM_CLOCK.now()) for _ in range(5)]
    abandoned = [job.id for job in jobs[:3]]
    async with db.session() as session, session.begin():
        await session.exec(
            sa.update(Job)
            .where(col(Job.id).in_(abandoned))
            .values(
                state=JobState.RUNNING,
                locked_by="dead-worker",
                attempts=1,
                locked_until=SYSTEM_CLOCK.now() - timedelta(seconds=5),
            )
        )
    ran: list[uuid.UUID] = []

    async def record(context: JobContext) -> None:
        ran.append(context.job.id)

    worker = Worker(db, {job_kind: record}, concurrency=8)
    await worker.run_until_idle()
    assert sorted(ran) == sorted(job.id for job in jobs)
    assert worker.stats.reaped >= 3
    attempts = {job.id: job.attempts for job in await jobs_of(db, job_kind)}
    assert all(attempts[job_id] == 2 for job_id in abandoned)
    assert all(job.state is JobState.DONE for job in await jobs_of(db, job_kind))


async def test_a_job_whose_lease_was_taken_over_is_not_finished_by_its_old_worker(
    db: Database,
) -> None:
    job_kind = kind()
    async with db.session() as session, session.begin():
        job = enqueue(session, job_kind, now=SYSTEM_CLOCK.now())

    handled = asyncio.Event()

    async def taken_over(context: JobContext) -> None:
        # The lease ran out meanwhile and another worker holds the job now.
        async with db.session() as session, session.begin():
            await session.exec(
                sa.update(Job).where(col(Job.id) == context.job.id).values(locked_by="another")
            )
        handled.set()

    worker = Worker(db, {job_kind: taken_over})
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(handled.wait(), 10)
    stop.set()
    await running  # run() returns once the job in hand has been finished or given back
    [current] = await jobs_of(db, job_kind)
    assert current.id == job.id
    assert current.state is JobState.RUNNING
    assert current.locked_by == "another"
    assert worker.stats.done == 0


async def test_an_urgent_job_is_claimed_before_a_backlog_of_older_background_jobs(
    db: Database,
) -> None:
    job_kind = kind()
    order: list[str] = []

    async def record(context: JobContext) -> None:
        order.append(context.job.payload["name"])

    async with db.session() as session, session.begin():
        for number in range(20):
            enqueue(session, job_kind, {"name": f"background{number}"}, now=SYSTEM_CLOCK.now())
    async with db.session() as session, session.begin():
        enqueue(session, job_kind, {"name": "urgent"}, priority=URGENT, now=SYSTEM_CLOCK.now())
    await Worker(db, {job_kind: record}, concurrency=1).run_until_idle()
    assert order[0] == "urgent"
    assert order[1:] == [f"background{number}" for number in range(20)], "then oldest first"


def test_the_jobs_a_customer_waits_on_are_urgent_and_background_work_is_not() -> None:
    assert priority_of(AUTO_RESOLVE) == priority_of(EXECUTE_REFUND) == URGENT
    assert priority_of(PROCESS_DELIVERY) == priority_of(SYNC_CONNECTION) == BACKGROUND


async def test_jobs_of_one_key_enqueued_together_run_in_the_order_they_were_added(
    db: Database,
) -> None:
    job_kind = kind()
    key = f"{job_kind}:rma"
    order: list[int] = []

    async def record(context: JobContext) -> None:
        order.append(context.job.payload["n"])

    now = SYSTEM_CLOCK.now()
    async with db.session() as session, session.begin():
        for number in range(8):
            # One ``now`` for all, as a use case enqueues its jobs.
            enqueue(session, job_kind, {"n": number}, lock_key=key, now=now)
    await Worker(db, {job_kind: record}, concurrency=8, poll_interval=0.01).run_until_idle()
    assert order == list(range(8))


async def test_an_urgent_job_waits_for_an_older_background_job_of_its_key(db: Database) -> None:
    job_kind = kind()
    key = f"{job_kind}:rma"
    order: list[str] = []

    async def record(context: JobContext) -> None:
        order.append(context.job.payload["name"])

    async with db.session() as session, session.begin():
        enqueue(session, job_kind, {"name": "restock"}, lock_key=key, now=SYSTEM_CLOCK.now())
        enqueue(session, job_kind, {"name": "other"}, now=SYSTEM_CLOCK.now())
    async with db.session() as session, session.begin():
        enqueue(
            session,
            job_kind,
            {"name": "refund"},
            lock_key=key,
            priority=URGENT,
            now=SYSTEM_CLOCK.now(),
        )
    await Worker(db, {job_kind: record}, concurrency=1).run_until_idle()
    assert order.index("restock") < order.index("refund"), "priority never reorders one key"
