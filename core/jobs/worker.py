"""The worker: claims jobs with a lease, runs them, retries, dead-letters, reaps, schedules.

The same code runs in-process under ``rma serve`` and as any number of ``rma worker`` processes
on PostgreSQL, where claims use ``FOR UPDATE SKIP LOCKED``. Correctness never depends on timing:

- a claim is one conditional ``UPDATE`` (only a QUEUED job becomes RUNNING), so two workers never
  hold the same job; it takes a job for every free slot at once, and jobs that ended meanwhile
  are finished together (``core.jobs.batches``);
- a partial unique index allows one RUNNING job per lock key, so jobs of one RMA never overlap;
- a lease that is not renewed (the worker died) is reaped and the job runs again, so handlers
  must be idempotent (the money path is, by its own keys and constraints);
- periodic jobs are inserted under a unique key per time slot, so N schedulers create one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from core.clock import Clock, SystemClock
from core.database import Database
from core.entities import Job
from core.entities.columns import UtcDateTime
from core.enums import JobState
from core.jobs.batches import GroupFinish, QueueConnection, claim_statement, is_claim_conflict
from core.jobs.notify import listen_for_jobs
from core.jobs.timing import retry_delay, slot_start
from core.outbox.queue import enqueue_once

if TYPE_CHECKING:
    from core.services import Services

log = structlog.get_logger()


# How often a worker makes sure this period's runs of the periodic jobs exist.
SCHEDULE_EVERY_SECONDS = 5.0
# Claims in a row that may lose a race on a lock key to another worker before this one waits.
CLAIM_TRIES = 3


class PermanentJobError(Exception):
    """A failure that retrying cannot fix: the job is dead-lettered at once with this reason."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler gets: its job, the database, the clock, and the services the app wired in."""

    job: Job
    database: Database
    # Settings, vault and the plugin registry, when the composition root wired them.
    services: Services | None = None
    clock: Clock = field(default_factory=SystemClock)


Handler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    kind: str
    every: timedelta


@dataclass
class WorkerStats:
    done: int = 0
    retried: int = 0
    dead: int = 0
    reaped: int = 0
    lost_leases: int = 0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Worker:
    database: Database
    handlers: Mapping[str, Handler]
    concurrency: int = 4
    lease: timedelta = timedelta(seconds=60)
    poll_interval: float = 0.5
    periodic: Sequence[PeriodicJob] = ()
    services: Services | None = None
    clock: Clock = field(default_factory=SystemClock)
    grace_seconds: float = 30.0
    retry_base_seconds: float = 2.0
    name: str = field(default_factory=worker_name)
    stats: WorkerStats = field(default_factory=WorkerStats)
    # Told of every job this worker finishes: (kind, DONE | DEAD | RETRIED), for metrics.
    on_outcome: Callable[[str, str], None] | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    _last_reap: float = 0.0
    _last_schedule: float = float("-inf")
    _claim_sql: Any = None
    _claim_kinds: frozenset[str] = frozenset()
    _fatal: BaseException | None = None
    _queue: QueueConnection | None = None
    _finishes: GroupFinish | None = None

    def _queue_connection(self) -> QueueConnection:
        if self._queue is None:
            self._queue = QueueConnection(self.database)
        return self._queue

    def _group_finish(self) -> GroupFinish:
        if self._finishes is None:
            self._finishes = GroupFinish(self._queue_connection(), self.name, self.clock)
        return self._finishes

    async def _close_queue(self) -> None:
        if self._queue is not None:
            await self._queue.close()

    def wake(self) -> None:
        """Look for work now instead of at the next poll (a hint; polling is the guarantee)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or release the jobs in hand."""
        log.info("worker started", worker=self.name, concurrency=self.concurrency)
        listener = (
            asyncio.create_task(listen_for_jobs(self.database.url, self.wake, stop))
            if self.database.is_postgres
            else None
        )
        try:
            await self._work(stop)
            await self._drain()
        finally:
            await self._close_queue()
        if listener is not None:
            await listener
        log.info("worker stopped", worker=self.name)

    async def _work(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self._raise_if_dead()
            try:
                await self._housekeeping()
                claimed = await self._fill()
                failures = 0
            except (SQLAlchemyError, OSError, ConnectionError) as error:
                # The database is away (restart, network): keep the process, back off, retry.
                failures += 1
                log.warning("worker cannot reach the database", error=str(error)[:200])
                await _sleep_or(stop, min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            if not claimed:
                await self._idle(stop)

    async def run_until_idle(self, *, within_seconds: float = 60.0) -> WorkerStats:
        """Run jobs until none of this worker's kinds is due or running anywhere.

        For tests and one-off runs; a job another worker holds counts as not yet done.
        """
        try:
            return await self._until_idle(within_seconds)
        finally:
            await self._close_queue()

    async def _until_idle(self, within_seconds: float) -> WorkerStats:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_seconds
        while loop.time() < deadline:
            self._raise_if_dead()
            await self._housekeeping()
            claimed = await self._fill()
            if self._running:
                await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)
                self._raise_if_dead()
            elif not claimed:
                if not await self._outstanding():
                    return self.stats
                await asyncio.sleep(self.poll_interval)
        raise TimeoutError("jobs still outstanding at the deadline")

    async def _outstanding(self) -> int:
        statement = select(sa.func.count()).where(
            col(Job.kind).in_(list(self.handlers)),
            sa.or_(
                col(Job.state) == JobState.RUNNING,
                sa.and_(col(Job.state) == JobState.QUEUED, col(Job.run_at) <= self.clock.now()),
            ),
        )
        async with self.database.read_session() as session:
            return int((await session.exec(statement)).one())

    async def _idle(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        if self._running:
            waiters.append(
                asyncio.ensure_future(
                    asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)
                )
            )
        # Jitter keeps workers started together from polling in step.
        timeout = self.poll_interval * random.uniform(0.5, 1.5)
        _done, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()

    async def _housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_reap >= self.lease.total_seconds() / 4:
            self._last_reap = loop.time()
            self.stats.reaped += await reap_expired_leases(self.database, self.clock)
        if self.periodic and loop.time() - self._last_schedule >= SCHEDULE_EVERY_SECONDS:
            self._last_schedule = loop.time()
            await schedule_periodic(self.database, self.periodic, self.clock.now())

    async def _fill(self) -> bool:
        """Claim jobs until every slot is busy; whether anything was claimed."""
        free = self.concurrency - len(self._running)
        if free <= 0:
            return False
        jobs = await self._claim(free)
        for job in jobs:
            task = asyncio.create_task(self._execute(job))
            self._running.add(task)
            task.add_done_callback(self._finished)
        return bool(jobs)

    def _lease_end(self, *, bound: bool = True) -> Any:
        """When a lease taken now ends. On PostgreSQL the database's clock decides, so workers on
        hosts whose clocks drift never reap each other's live leases; SQLite runs on one host."""
        if self.database.is_postgres:
            return sa.func.now() + sa.func.make_interval(
                0, 0, 0, 0, 0, 0, self.lease.total_seconds()
            )
        if bound:
            return sa.bindparam("until", type_=UtcDateTime())
        return self.clock.now() + self.lease

    def _claim_statement(self) -> Any:
        """The claim, built once per set of handlers (its times are bound per call)."""
        kinds = frozenset(self.handlers)
        if self._claim_sql is None or self._claim_kinds != kinds:
            self._claim_kinds = kinds
            self._claim_sql = select(Job).from_statement(claim_statement(kinds, self._lease_end()))
        return self._claim_sql

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, Exception):
            log.error("job task failed outside its handler", error=repr(error)[:300])
        if error is not None and not isinstance(error, Exception):
            # SystemExit, KeyboardInterrupt or a simulated crash: the worker itself must die,
            # leaving its jobs to the reaper like any dead worker.
            self._fatal = error

    def _raise_if_dead(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    async def _claim(self, limit: int) -> list[Job]:
        """Claim up to ``limit`` due jobs in one statement; none when the race was lost."""
        statement = self._claim_statement()

        async def claim(session: Any) -> list[Job]:
            now = self.clock.now()
            params = {"now": now, "until": now + self.lease, "limit": limit, "worker": self.name}
            return list((await session.exec(statement, params=params)).scalars().all())

        for _ in range(CLAIM_TRIES):
            try:
                return await self._queue_connection().run(claim)
            except SQLAlchemyError as error:
                # Another worker started a job with a lock key of this batch at this instant;
                # that job now counts as running, so the next claim passes over it.
                if not is_claim_conflict(error):
                    raise
        return []

    async def _execute(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            # The handlers changed since the claim: leave the job to a worker that has one.
            await _shielded(self._release(job))
            return
        running = asyncio.current_task()
        assert running is not None
        # This task's own context: every line the job logs names it (and its merchant).
        structlog.contextvars.bind_contextvars(
            job_id=str(job.id),
            job_kind=job.kind,
            merchant_id=str(job.merchant_id) if job.merchant_id else None,
        )
        heartbeat = asyncio.create_task(self._heartbeat(job, running))
        try:
            await handler(JobContext(job, self.database, self.services, self.clock))
        except asyncio.CancelledError:
            await _shielded(self._release(job))
            raise
        except Exception as error:
            permanent = isinstance(error, PermanentJobError)
            await _shielded(self._failed(job, error, permanent=permanent))
        else:
            await _shielded(self._finish(job))
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, job: Job, running: asyncio.Task[None]) -> None:
        """Renew the lease; once it is lost (or about to run out unrenewed), stop the handler.

        Another worker may have the job by then, so this one must not go on running it.
        """
        interval = self.lease.total_seconds() / 3
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self._update_own(job, locked_until=self._lease_end(bound=False))
            except (SQLAlchemyError, OSError):
                held = loop.time() - renewed_at < self.lease.total_seconds() * 0.8
            else:
                renewed_at = loop.time() if held else renewed_at
            if not held:
                self.stats.lost_leases += 1
                log.warning("job lease lost; stopping it", job_id=str(job.id), kind=job.kind)
                running.cancel()
                return

    async def _update_own(self, job: Job, **values: Any) -> bool:
        """Change a job this worker holds; False when it no longer holds it."""
        statement = (
            sa.update(Job)
            .where(
                col(Job.id) == job.id,
                col(Job.locked_by) == self.name,
                col(Job.state) == JobState.RUNNING,
            )
            .values(**values)
        )
        async with self.database.session() as session, session.begin():
            result = await session.exec(statement)
        return bool(result.rowcount)

    async def _finish(self, job: Job) -> None:
        if await self._group_finish().finish(job.id):
            self.stats.done += 1
            self._observe(job.kind, "DONE")

    def _observe(self, kind: str, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(kind, outcome)

    async def _failed(self, job: Job, error: Exception, *, permanent: bool) -> None:
        reason = f"{type(error).__name__}: {error}"[:2000]
        if permanent or job.attempts >= job.max_attempts:
            log.error("job dead-lettered", job_id=str(job.id), kind=job.kind, error=reason)
            if await self._update_own(
                job,
                state=JobState.DEAD,
                finished_at=self.clock.now(),
                locked_by=None,
                locked_until=None,
                last_error=reason,
            ):
                self.stats.dead += 1
                self._observe(job.kind, "DEAD")
            return
        delay = retry_delay(
            job.attempts, base_seconds=self.retry_base_seconds, jitter=random.random()
        )
        log.warning(
            "job failed, will retry",
            job_id=str(job.id),
            kind=job.kind,
            error=reason,
            retry_in=round(delay, 2),
            trace=traceback.format_exception(error)[-3:],
        )
        if await self._update_own(
            job,
            state=JobState.QUEUED,
            run_at=self.clock.now() + timedelta(seconds=delay),
            locked_by=None,
            locked_until=None,
            last_error=reason,
        ):
            self.stats.retried += 1
            self._observe(job.kind, "RETRIED")

    async def _release(self, job: Job) -> None:
        """Hand an unfinished job back (shutdown); the attempt does not count against it."""
        await self._update_own(
            job,
            state=JobState.QUEUED,
            locked_by=None,
            locked_until=None,
            attempts=Job.attempts - 1,
        )

    async def _drain(self) -> None:
        if not self._running:
            return
        _done, pending = await asyncio.wait(set(self._running), timeout=self.grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


async def reap_expired_leases(database: Database, clock: Clock, now: datetime | None = None) -> int:
    """Requeue (or dead-letter, when out of attempts) jobs whose worker stopped renewing.

    Leases are compared with the database's clock on PostgreSQL (the clock that set them), with
    ``clock`` on SQLite (one host), or with ``now`` when a test passes one.
    """
    moment: Any = now or (sa.func.now() if database.is_postgres else clock.now())
    exhausted = col(Job.attempts) >= col(Job.max_attempts)
    statement = (
        sa.update(Job)
        .where(col(Job.state) == JobState.RUNNING, col(Job.locked_until) < moment)
        .values(
            state=sa.case((exhausted, JobState.DEAD.value), else_=JobState.QUEUED.value),
            finished_at=sa.case((exhausted, moment), else_=None),
            locked_by=None,
            locked_until=None,
            last_error="lease expired: the worker stopped before finishing",
        )
    )
    async with database.session() as session, session.begin():
        result = await session.exec(statement)
    return int(result.rowcount)


async def schedule_periodic(
    database: Database, periodic: Sequence[PeriodicJob], now: datetime
) -> int:
    """Create this period's run of each periodic job unless a scheduler already did."""
    created = 0
    async with database.session() as session, session.begin():
        for entry in periodic:
            slot = slot_start(now, entry.every)
            if await enqueue_once(
                session,
                entry.kind,
                f"periodic:{entry.name}:{slot.isoformat()}",
                {"slot": slot.isoformat()},
                now=now,
                run_at=slot,
            ):
                created += 1
    return created


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _shielded(work: Awaitable[None]) -> None:
    """Record a job's outcome even if the task is being cancelled, and never crash the worker."""
    try:
        await asyncio.shield(work)
    except (SQLAlchemyError, OSError) as error:
        # The lease will expire and the reaper will requeue the job.
        log.warning("could not record a job's outcome", error=str(error)[:200])
