"""Storing verified deliveries with group commit.

Concurrent requests hand their delivery to one writer task, which stores everything that
arrived within a couple of milliseconds in one transaction: one commit (one fsync on SQLite)
for many deliveries. Each request still answers only after its delivery and its processing job
are committed, so a 200 always means "stored".
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import Clock, SystemClock
from core.database import Database
from core.entities import Connection, Job, WebhookDelivery
from core.enums import JobState, Platform, WebhookState
from core.outbox.kinds import PROCESS_DELIVERY
from core.outbox.queue import DEFAULT_MAX_ATTEMPTS

# Batches being committed at once on PostgreSQL (well within the pool).
WRITES_AT_ONCE_POSTGRES = 4


@dataclass(frozen=True, slots=True)
class NewDelivery:
    merchant_id: uuid.UUID
    connection_id: uuid.UUID
    platform: Platform
    topic: str
    dedupe_key: str
    body: bytes
    headers: dict[str, str]
    # The sealed webhook secrets the delivery was verified against: it is stored only if the
    # connection still has them (and is enabled) when the batch commits.
    verified_with: str
    # Stored even when the connection was disabled meanwhile (an app's privacy topics).
    even_if_disabled: bool = False


class Stored(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    # The connection was disabled or deleted since it was read: refuse the delivery.
    CONNECTION_GONE = "connection gone"
    # Its secrets were rotated since they were read: verify again against the current ones.
    SECRETS_CHANGED = "secrets changed"


@dataclass
class _Pending:
    delivery: NewDelivery
    done: asyncio.Future[Stored] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class InboxWriter:
    """Batches deliveries into shared transactions; :meth:`store` tells what became of one.

    The connection of every delivery is checked inside the same transaction as its insert, so
    a delivery verified a moment before its connection was disabled or its secrets rotated is
    not stored: disabling and rotating take effect at once in every process, at no extra
    round trip per delivery.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        max_batch: int = 128,
        max_wait_seconds: float = 0.002,
        writes_at_once: int | None = None,
    ) -> None:
        self.database = database
        self.clock = clock or SystemClock()
        self.max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        # SQLite has one writer at a time anyway; PostgreSQL commits several batches side by
        # side, so a batch need not wait for the round trips of the one before.
        self.writes_at_once = writes_at_once or (
            WRITES_AT_ONCE_POSTGRES if database.is_postgres else 1
        )
        self._built: _Statements | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()

    async def store(self, delivery: NewDelivery) -> Stored:
        """Store the delivery and its job, unless the platform had sent it before or its
        connection changed since the delivery was verified."""
        if self._queue is None or self._writer is None or self._writer.done():
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._run(self._queue))
        pending = _Pending(delivery)
        self._queue.put_nowait(pending)
        return await pending.done

    async def close(self) -> None:
        for task in (self._writer, *self._writes):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        slots = asyncio.Semaphore(self.writes_at_once)
        while True:
            await slots.acquire()
            batch = [await queue.get()]
            # Group what arrives within a couple of milliseconds (and whatever queued up while
            # the writes before were committing) into one transaction.
            await asyncio.sleep(self.max_wait_seconds)
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            task = asyncio.create_task(self._write_batch(batch))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._write([pending.delivery for pending in batch])
        except Exception:
            # One bad row must not cost the others: store them one by one instead.
            await self._write_each(batch)
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.done.done():
                pending.done.set_result(outcome)

    async def _write_each(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                [outcome] = await self._write([pending.delivery])
            except Exception as error:  # this request learns its delivery was not stored
                if not pending.done.done():
                    pending.done.set_exception(error)
            else:
                if not pending.done.done():
                    pending.done.set_result(outcome)

    async def _write(self, deliveries: list[NewDelivery]) -> list[Stored]:
        # Core statements on a plain connection: an ORM session here cost more CPU than the
        # rows themselves (see benchmarks/webhook_intake.py).
        statements = self._statements()
        async with self.database.write_engine.begin() as connection:
            ids = list({delivery.connection_id for delivery in deliveries})
            current = (await connection.execute(statements.connections, {"ids": ids})).all()
            refused = _refused_by_connection({row[0]: row for row in current}, deliveries)
            accepted = [d for index, d in enumerate(deliveries) if index not in refused]
            stored = await self._insert(connection, statements, accepted) if accepted else []
        new = {(row.connection_id, row.dedupe_key) for row in stored}
        outcomes = []
        claimed: set[tuple[uuid.UUID, str]] = set()
        for index, delivery in enumerate(deliveries):
            key = (delivery.connection_id, delivery.dedupe_key)
            if index in refused:
                outcomes.append(refused[index])
            elif key in new and key not in claimed:
                claimed.add(key)  # the same delivery twice in one batch: the first is new
                outcomes.append(Stored.NEW)
            else:
                outcomes.append(Stored.DUPLICATE)
        return outcomes

    def _statements(self) -> _Statements:
        if self._built is None:
            self._built = _Statements.build(self.database.is_postgres)
        return self._built

    async def _insert(
        self, connection: AsyncConnection, statements: _Statements, deliveries: list[NewDelivery]
    ) -> list[Any]:
        now = self.clock.now()
        first_of: dict[tuple[uuid.UUID, str], int] = {}
        rows: list[dict[str, Any]] = []
        for index, delivery in enumerate(deliveries):
            key = (delivery.connection_id, delivery.dedupe_key)
            if key in first_of:
                continue  # the same delivery twice in one batch: store it once
            first_of[key] = index
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "merchant_id": delivery.merchant_id,
                    "connection_id": delivery.connection_id,
                    "platform": delivery.platform,
                    "topic": delivery.topic,
                    "dedupe_key": delivery.dedupe_key,
                    "body": delivery.body,
                    "headers": delivery.headers,
                    "state": WebhookState.RECEIVED,
                    "received_at": now,
                }
            )
        stored = list((await connection.execute(statements.insert_deliveries, rows)).all())
        if stored:
            await connection.execute(
                statements.insert_jobs,
                [
                    {
                        "id": uuid.uuid4(),
                        "kind": PROCESS_DELIVERY,
                        "payload": {"deliveryId": str(row.id)},
                        "merchant_id": row.merchant_id,
                        "state": JobState.QUEUED,
                        "run_at": now,
                        "attempts": 0,
                        "max_attempts": DEFAULT_MAX_ATTEMPTS,
                        "created_at": now,
                    }
                    for row in stored
                ],
            )
        return stored


@dataclass(frozen=True, slots=True)
class _Statements:
    """The writer's statements, built once: one shape whatever the batch size, so SQLAlchemy
    compiles each once."""

    connections: sa.Select[Any]
    insert_deliveries: sa.Insert
    insert_jobs: sa.Insert

    @classmethod
    def build(cls, is_postgres: bool) -> _Statements:
        connection = Connection.__table__  # type: ignore[attr-defined]
        delivery = WebhookDelivery.__table__  # type: ignore[attr-defined]
        dialect_insert = postgresql.insert if is_postgres else sqlite.insert
        return cls(
            connections=sa.select(
                connection.c.id, connection.c.disabled_at, connection.c.webhook_secrets_encrypted
            ).where(connection.c.id.in_(sa.bindparam("ids", expanding=True))),
            insert_deliveries=dialect_insert(delivery)
            .on_conflict_do_nothing(index_elements=["connection_id", "dedupe_key"])
            .returning(
                delivery.c.id,
                delivery.c.connection_id,
                delivery.c.dedupe_key,
                delivery.c.merchant_id,
            ),
            insert_jobs=sa.insert(Job.__table__),  # type: ignore[attr-defined]
        )


def _refused_by_connection(
    current: dict[uuid.UUID, Any], deliveries: list[NewDelivery]
) -> dict[int, Stored]:
    """Deliveries (by position) whose connection is gone, disabled or re-keyed by now."""
    refused: dict[int, Stored] = {}
    for index, delivery in enumerate(deliveries):
        row = current.get(delivery.connection_id)
        if row is None or (row[1] is not None and not delivery.even_if_disabled):
            refused[index] = Stored.CONNECTION_GONE
        elif row[2] != delivery.verified_with:
            refused[index] = Stored.SECRETS_CHANGED
    return refused
