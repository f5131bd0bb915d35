"""Worker processes killed at random while they share one queue, and stopped gracefully.

Under SIGKILL every job still ends DONE, its effect is applied exactly once, nothing is
dead-lettered, and jobs that share a lock key never run at the same time. When every connection
to the database is cut, again and again, the workers keep running and finish every job. Under
SIGTERM a worker finishes the job in hand (or hands it back when the grace period runs out) and
exits 0.

The workers are real processes (``python -m testkit.chaos_worker``) running the real
:class:`core.jobs.worker.Worker`; see that module for the handler and the tables it writes.
PostgreSQL only, since several processes share a queue there: without RMA_TEST_POSTGRES_URL these
tests do not exist (rather than being skipped). Each test makes and drops its own database, because
the workers take every ``chaos.effect`` job they can see.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio
import sqlalchemy as sa

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.migrate import upgrade_async
from core.outbox.queue import enqueue
from testkit.chaos_worker import (
    KIND,
    Census,
    Fleet,
    census,
    create_tables,
    enqueue_jobs,
    run_chaos,
)
from tests.conftest import POSTGRES_URL, PostgresServer, terminate_backends

JOBS = 1500
KEYED_SHARE = 0.3  # 450 jobs over 45 lock keys, 10 jobs a key
WORKERS = 4
CONCURRENCY = 4
KILL_EVERY = (0.7, 1.3)  # seconds between two SIGKILLs, drawn uniformly
CHAOS_BOUND_SECONDS = 90.0
CUT_JOBS = 400
CUT_EVERY = 0.3  # seconds between two cuts of every connection to the database
CUTS = 10

T = TypeVar("T")
# The server is the tests' one parameter. Without one there is nothing to run them with, and
# they are not collected at all (an empty parameter list would report them as skipped).
SERVERS = [POSTGRES_URL] if POSTGRES_URL else []


def on_postgres(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    test.__test__ = bool(SERVERS)  # type: ignore[attr-defined]
    parametrize = pytest.mark.parametrize("server_url", SERVERS, ids=["postgres"] * len(SERVERS))
    marked: Callable[..., Awaitable[None]] = parametrize(test)
    return marked


@pytest_asyncio.fixture(loop_scope="session")
async def chaos_db(server_url: str) -> AsyncIterator[Database]:
    """A migrated throwaway database with the chaos tables, dropped after the test."""
    server = PostgresServer(server_url)
    url = await server.create()
    try:
        await upgrade_async(url)
        database = Database(url, pool_size=2)
        try:
            await create_tables(database)
            yield database
        finally:
            await database.dispose()
    finally:
        await server.drop(url)


async def until(check: Callable[[], Awaitable[T]], *, within: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


async def exit_code(process: subprocess.Popen[bytes], *, within: float) -> int | None:
    """The process's exit status, or None if it is still running after ``within`` seconds."""
    try:
        return await asyncio.to_thread(process.wait, within)
    except subprocess.TimeoutExpired:
        return None


async def load(database: Database, job_id: uuid.UUID) -> Job:
    async with database.read_session() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    return job


async def executions(database: Database, job_id: uuid.UUID) -> list[tuple[object, ...]]:
    """(worker, started, finished, outcome) of each execution of one job."""
    async with database.write_engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT worker, started_at, finished_at, outcome FROM chaos_interval"
                " WHERE job_id = :job_id ORDER BY started_at"
            ),
            {"job_id": job_id},
        )
        return [tuple(row) for row in rows]


async def has_effect(database: Database, job_id: uuid.UUID) -> bool:
    async with database.write_engine.connect() as connection:
        found = await connection.execute(
            sa.text("SELECT 1 FROM chaos_effect WHERE job_id = :job_id"), {"job_id": job_id}
        )
        return found.first() is not None


def describe(result: Census) -> str:
    return (
        f"states {dict(result.states)}, effects {len(result.effects)}, executions "
        f"{result.executions} (interrupted {result.interrupted}, duplicates avoided "
        f"{result.duplicates_avoided}), attempts {result.attempts}"
    )


@on_postgres
async def test_workers_killed_at_random_lose_no_job_and_apply_each_effect_once(
    chaos_db: Database, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    jobs = await enqueue_jobs(chaos_db, JOBS, rng=rng, keyed_share=KEYED_SHARE, jobs_per_key=10)
    fleet = Fleet(chaos_db.url, tmp_path / "logs", size=WORKERS, concurrency=CONCURRENCY)
    try:
        run = await run_chaos(
            chaos_db, fleet, rng=rng, kill_every=KILL_EVERY, within_seconds=CHAOS_BOUND_SECONDS
        )
        crashed = [process.returncode for process in fleet.crashed()]
    finally:
        fleet.stop()
    result = await census(chaos_db)
    context = f"seed {seed}, {run}; {describe(result)}\n{fleet.log_tail()}"

    assert crashed == [], f"workers exited on their own: {context}"
    assert run.finished, f"not every job was DONE within {CHAOS_BOUND_SECONDS} s: {context}"
    assert result.states == {"DONE": JOBS}, context
    assert result.dead_errors == [], context
    assert result.effects == set(jobs), f"lost effects: {context}"
    assert result.executions - result.interrupted >= JOBS, context
    overlapping = result.overlaps()
    assert overlapping == [], f"{len(overlapping)} overlaps, first {overlapping[:3]}: {context}"
    # The chaos really happened: workers died with jobs in hand, which ran again elsewhere.
    assert run.kills >= 3, context
    assert result.attempts > JOBS, context


@on_postgres
async def test_sigterm_lets_a_worker_finish_the_job_in_hand_and_exit_0(
    chaos_db: Database, tmp_path: Path
) -> None:
    async with chaos_db.session() as session, session.begin():
        job = enqueue(session, KIND, {"seconds": 2.0}, now=SYSTEM_CLOCK.now())
    fleet = Fleet(chaos_db.url, tmp_path / "logs", size=1, extra=["--grace", "10"])
    process = fleet.start()
    try:
        [(_worker, _started, in_hand, _outcome)] = await until(
            lambda: executions(chaos_db, job.id), within=30, what="the worker taking the job"
        )
        assert in_hand is None, "the job should still be running when the signal comes"
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        returncode = await exit_code(process, within=15)
        stopped_after = time.monotonic() - signalled
    finally:
        fleet.stop()
    finished = await load(chaos_db, job.id)
    [(_worker, started, ended, outcome)] = await executions(chaos_db, job.id)

    assert returncode == 0, fleet.log_tail()
    assert stopped_after < 10, f"exited {stopped_after:.1f} s after SIGTERM, past the grace"
    assert finished.state == "DONE"
    assert finished.attempts == 1
    assert (outcome, ended is not None) == ("ok", True), (started, ended)
    assert await has_effect(chaos_db, job.id)
    assert "worker stopped" in (tmp_path / "logs" / "w1.log").read_text()


@on_postgres
async def test_sigterm_hands_back_a_job_that_outlasts_the_grace_period(
    chaos_db: Database, tmp_path: Path
) -> None:
    async with chaos_db.session() as session, session.begin():
        job = enqueue(session, KIND, {"seconds": 60.0}, now=SYSTEM_CLOCK.now())
    fleet = Fleet(chaos_db.url, tmp_path / "logs", size=1, extra=["--grace", "0.5"])
    process = fleet.start()
    try:
        await until(
            lambda: executions(chaos_db, job.id), within=30, what="the worker taking the job"
        )
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        returncode = await exit_code(process, within=15)
        stopped_after = time.monotonic() - signalled
    finally:
        fleet.stop()
    handed_back = await load(chaos_db, job.id)

    assert returncode == 0, fleet.log_tail()
    assert stopped_after < 5, f"exited {stopped_after:.1f} s after SIGTERM"
    # Queued again at once for another worker, and the cut-short attempt does not count.
    assert handed_back.state == "QUEUED"
    assert handed_back.attempts == 0
    assert (handed_back.locked_by, handed_back.locked_until) == (None, None)
    assert not await has_effect(chaos_db, job.id)


@on_postgres
async def test_workers_whose_connections_are_cut_again_and_again_still_finish_every_job(
    chaos_db: Database, server_url: str, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    jobs = await enqueue_jobs(chaos_db, CUT_JOBS, rng=rng, keyed_share=KEYED_SHARE)
    database_name = sa.make_url(chaos_db.url).database
    assert database_name is not None
    fleet = Fleet(chaos_db.url, tmp_path / "logs", size=2, concurrency=CONCURRENCY)
    fleet.fill()
    try:

        async def both_working() -> bool:
            return len(fleet.working()) == 2

        await until(both_working, within=30, what="the workers starting")
        terminated = 0
        for _ in range(CUTS):
            await asyncio.sleep(CUT_EVERY)
            terminated += await terminate_backends(server_url, database_name)
        alive_after_cuts = len(fleet.alive())
        run = await run_chaos(chaos_db, fleet, rng=rng, kill_every=None, within_seconds=60)
        crashed = [process.returncode for process in fleet.crashed()]
    finally:
        fleet.stop()
    result = await census(chaos_db)
    context = f"seed {seed}, {run}, {terminated} backends cut; {describe(result)}"

    assert terminated >= CUTS, context
    assert (alive_after_cuts, crashed) == (2, []), f"{context}\n{fleet.log_tail()}"
    assert run.finished, f"{context}\n{fleet.log_tail()}"
    assert result.states == {"DONE": CUT_JOBS}, context
    assert result.effects == set(jobs), context
    assert result.overlaps() == [], context
