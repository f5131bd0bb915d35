"""The worker's hot path in batches: one statement claims the jobs for every free slot, one
statement finishes every job that ended meanwhile, both on one connection the worker keeps.

Why (profile of one worker draining no-op jobs on PostgreSQL, benchmarks/jobs.py): a job used to
cost two transactions of its own, a claim and a finish, each a pool checkout with a pre-ping,
BEGIN, an ORM statement and COMMIT: about twelve round trips and 5 to 10 ms of worker CPU per
no-op job, most of it in the socket sends that wake PostgreSQL and in building and compiling the
ORM statements. Batched on a kept autocommit connection, a batch costs one round trip per
statement whatever its size.

Nothing is weakened: a claim is still one conditional ``UPDATE`` over rows taken with ``FOR
UPDATE SKIP LOCKED`` (no two workers hold one job), the unique index on running lock keys still
refuses a second running job of a key, and a finish still only changes a job this worker holds.
Handlers commit their own effects before their job is finished, as before; a worker that dies
between the two leaves the job to the reaper, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import Clock
from core.database import Database
from core.entities import Job
from core.entities.columns import UtcDateTime
from core.enums import JobState
from core.outbox.queue import BACKGROUND

# PostgreSQL's code for a deadlock: two batch claims that met on two lock keys in opposite
# order. Nothing was claimed; the worker simply claims again.
DEADLOCK = "40P01"
T = TypeVar("T")


def claim_statement(kinds: Iterable[str], lease_end: Any) -> Any:
    """Take up to ``:limit`` due jobs of ``kinds`` for ``:worker``, at most one per lock key.

    Bound per call: ``now``, ``limit``, ``worker`` (and ``until`` when ``lease_end`` binds it).
    """
    running = aliased(Job)
    key_busy = (
        sa.select(col(running.id))
        .where(col(running.lock_key) == col(Job.lock_key), col(running.state) == JobState.RUNNING)
        .exists()
    )
    # Priority orders keys, never the jobs of one key: an urgent job waits for a queued job of
    # its key that is as old or older (an RMA's restock before its refund). Only urgent jobs
    # (the fewer) look, and only those with a key.
    sibling = aliased(Job)
    waits_for_older = (
        sa.select(col(sibling.id))
        .where(
            col(sibling.lock_key) == col(Job.lock_key),
            col(sibling.state) == JobState.QUEUED,
            col(sibling.priority) > col(Job.priority),
            col(sibling.run_at) <= col(Job.run_at),
        )
        .exists()
    )
    # A CTE with FOR UPDATE is evaluated once: an UPDATE ... WHERE id IN (subquery ... SKIP
    # LOCKED) may re-run the subquery when it meets a row another worker changed, and take two.
    candidate = (
        sa.select(col(Job.id), col(Job.lock_key), col(Job.run_at))
        .where(
            col(Job.state) == JobState.QUEUED,
            col(Job.run_at) <= sa.bindparam("now", type_=UtcDateTime()),
            # A worker takes only the kinds it can run, so workers of different versions or
            # with different plugins can share one queue.
            # Equalities rather than IN: an IN list is rendered again at every execution.
            sa.or_(*(col(Job.kind) == kind for kind in sorted(kinds))),
            sa.or_(
                col(Job.lock_key).is_(None),
                sa.and_(~key_busy, sa.or_(col(Job.priority) == BACKGROUND, ~waits_for_older)),
            ),
        )
        # The most urgent first, then the oldest: the order of the ready index.
        .order_by(col(Job.priority), col(Job.run_at))
        .limit(sa.bindparam("limit", type_=sa.Integer()))
        .with_for_update(skip_locked=True)
        .cte("candidate")
    )
    # Two queued jobs of one key may both be candidates; only the first in the claim's order
    # runs now (the unique index would refuse the pair), the other stays locked until the claim
    # commits, then queued. The claim's order is the one a single-job claim had: the ready
    # index's, so jobs enqueued together (one ``now``) keep the order they were added in. A
    # window without ORDER BY numbers the rows as the CTE gives them.
    numbered = sa.select(
        candidate.c.id, candidate.c.lock_key, sa.func.row_number().over().label("position")
    ).cte("numbered")
    ranked = sa.select(
        numbered.c.id,
        numbered.c.lock_key,
        sa.func.row_number()
        .over(partition_by=numbered.c.lock_key, order_by=numbered.c.position)
        .label("rank"),
    ).cte("ranked")
    chosen = sa.select(ranked.c.id).where(sa.or_(ranked.c.lock_key.is_(None), ranked.c.rank == 1))
    return (
        sa.update(Job)
        .where(col(Job.id).in_(chosen), col(Job.state) == JobState.QUEUED)
        .values(
            state=JobState.RUNNING,
            locked_by=sa.bindparam("worker", type_=sa.String()),
            locked_until=lease_end,
            attempts=Job.attempts + 1,
            started_at=sa.bindparam("now", type_=UtcDateTime()),
        )
        .returning(*Job.__table__.columns)  # type: ignore[attr-defined]
    )


def finish_statement(*, postgres: bool) -> Any:
    """Mark ``:ids`` DONE at ``:now``, those that ``:worker`` still holds; returns their ids."""
    # On PostgreSQL one array parameter: an expanding IN is rendered again at every execution.
    ids = (
        col(Job.id) == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Uuid())))
        if postgres
        else col(Job.id).in_(sa.bindparam("ids", expanding=True))
    )
    return (
        sa.update(Job)
        .where(
            ids,
            col(Job.locked_by) == sa.bindparam("worker", type_=sa.String()),
            col(Job.state) == JobState.RUNNING,
        )
        .values(
            state=JobState.DONE,
            finished_at=sa.bindparam("now", type_=UtcDateTime()),
            locked_by=None,
            locked_until=None,
            last_error=None,
        )
        .returning(col(Job.id))
    )


def is_claim_conflict(error: SQLAlchemyError) -> bool:
    """A claim that lost a race on a lock key to another worker's claim: claim again."""
    if isinstance(error, IntegrityError):
        return True
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) == DEADLOCK


class QueueConnection:
    """Where the claims and finishes run.

    On PostgreSQL, one connection the worker keeps, in autocommit (each statement is its own
    transaction, as the claim and the finish always were), so a statement is one round trip with
    no pool checkout, pre-ping, BEGIN or COMMIT. Statements take turns on it. A connection that
    was lost while kept is replaced, and the statement tried once more on the new one. On SQLite
    it is the write session of the process, taken per statement (a kept one would lock out every
    other writer).
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._connection: AsyncConnection | None = None
        self._driver: Any = None
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose one statement commits on its own (in a transaction on SQLite)."""
        if not self.database.is_postgres:
            async with self.database.session() as session, session.begin():
                yield session
            return
        async with self._turn:
            connection = await self._kept()
            try:
                async with AsyncSession(bind=connection, expire_on_commit=False) as session:
                    yield session
                    await session.commit()
            except IntegrityError:
                raise
            except BaseException:
                # Unknown state (cut, cancelled mid-statement): never reuse it.
                await self.close()
                raise

    async def run(self, operation: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``operation`` in a session, once more on a new connection if the kept one was
        found dead (then the statement never ran, or ran and committed: both are safe to repeat
        for a conditional claim or finish)."""
        for attempt in (1, 2):
            try:
                async with self.session() as session:
                    return await operation(session)
            except DBAPIError as error:
                if attempt == 2 or not error.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def _kept(self) -> AsyncConnection:
        if self._connection is not None and self._driver is not None and self._driver.is_closed():
            await self.close()
        if self._connection is None:
            connection = await self.database.write_engine.connect()
            try:
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                raw = await connection.get_raw_connection()
            except BaseException:
                await connection.close()
                raise
            self._connection, self._driver = connection, raw.driver_connection
        return self._connection

    async def close(self) -> None:
        """Give the kept connection back (call when the worker stops)."""
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await connection.invalidate()
                await connection.close()


class GroupFinish:
    """Finishes jobs together: a job that ends while a finish is being written waits for the
    next one, which then writes every job that ended meanwhile (a group commit). One finish is
    in flight at a time, so a lone job is finished at once and a busy worker in few statements.
    """

    def __init__(self, queue: QueueConnection, worker: str, clock: Clock) -> None:
        self.queue = queue
        self.worker = worker
        self.clock = clock
        self.statement = finish_statement(postgres=queue.database.is_postgres)
        self._waiting: dict[uuid.UUID, asyncio.Future[bool]] = {}
        self._writer: asyncio.Task[None] | None = None

    async def finish(self, job_id: uuid.UUID) -> bool:
        """Mark the job DONE; True when this worker still held it."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = done
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # Shielded: a job cancelled now (shutdown, lost lease) must not drop the others' finish.
        return await asyncio.shield(done)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            params = {"ids": list(batch), "worker": self.worker, "now": self.clock.now()}

            async def write(session: AsyncSession, params: dict[str, Any] = params) -> list[Any]:
                connection = await session.connection()
                return list((await connection.execute(self.statement, params)).all())

            try:
                rows = await self.queue.run(write)
            except Exception as error:  # handed to every job of the batch
                for waiter in batch.values():
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            held = {row[0] for row in rows}
            for job_id, waiter in batch.items():
                if not waiter.done():
                    waiter.set_result(job_id in held)
