"""On PostgreSQL an idle worker hears of a new job at once instead of at its next poll."""

from __future__ import annotations

import asyncio
import uuid

from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.enums import JobState
from core.jobs.worker import JobContext, Worker
from core.outbox.queue import enqueue
from tests.conftest import POSTGRES_URL

# PostgreSQL's LISTEN/NOTIFY: the test exists where PostgreSQL does (CI always has it).
__test__ = bool(POSTGRES_URL)


async def test_a_new_job_wakes_an_idle_worker_that_polls_only_every_minute(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, pool_size=2)
    kind = f"test.{uuid.uuid4().hex[:10]}"
    started = asyncio.Event()

    async def note(context: JobContext) -> None:
        started.set()

    worker = Worker(db, {kind: note}, poll_interval=60.0, concurrency=1)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(1.0)  # idle now: without a notification it would wait a minute
        async with db.session() as session, session.begin():
            enqueue(session, kind, now=SYSTEM_CLOCK.now())
        await asyncio.wait_for(started.wait(), timeout=20)
        stop.set()
        await running
        async with db.read_session() as session:
            job = (await session.exec(select(Job).where(Job.kind == kind))).one()
        assert job.state is JobState.DONE
    finally:
        stop.set()
        await running
        await db.dispose()
