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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.clock import Clock, SystemClock
from core.database import Database
from core.entities import Job, WebhookDelivery
from core.enums import JobState, Platform, WebhookState
from core.outbox.kinds import PROCESS_DELIVERY
from core.outbox.queue import DEFAULT_MAX_ATTEMPTS


@dataclass(frozen=True, slots=True)
class NewDelivery:
    merchant_id: uuid.UUID
    connection_id: uuid.UUID
    platform: Platform
    topic: str
    dedupe_key: str
    body: bytes
    headers: dict[str, str]


@dataclass
class _Pending:
    delivery: NewDelivery
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class InboxWriter:
    """Batches deliveries into shared transactions; :meth:`store` tells a duplicate."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        max_batch: int = 128,
        max_wait_seconds: float = 0.002,
    ) -> None:
        self.database = database
        self.clock = clock or SystemClock()
        self.max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        self._queue: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def store(self, delivery: NewDelivery) -> bool:
        """Store the delivery and its job; True when the platform had sent it before."""
        if self._queue is None or self._writer is None or self._writer.done():
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._run(self._queue))
        pending = _Pending(delivery)
        await self._queue.put(pending)
        return await pending.done

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            deadline = asyncio.get_running_loop().time() + self.max_wait_seconds
            while len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0 and queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), max(timeout, 0)))
                except TimeoutError:
                    break
            try:
                duplicates = await self._write([pending.delivery for pending in batch])
            except Exception:
                # One bad row must not cost the others: store them one by one instead.
                await self._write_each(batch)
                continue
            for pending, duplicate in zip(batch, duplicates, strict=True):
                if not pending.done.done():
                    pending.done.set_result(duplicate)

    async def _write_each(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                [duplicate] = await self._write([pending.delivery])
            except Exception as error:  # this request learns its delivery was not stored
                if not pending.done.done():
                    pending.done.set_exception(error)
            else:
                if not pending.done.done():
                    pending.done.set_result(duplicate)

    async def _write(self, deliveries: list[NewDelivery]) -> list[bool]:
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
        table = WebhookDelivery.__table__  # type: ignore[attr-defined]
        dialect_insert = postgresql.insert if self.database.is_postgres else sqlite.insert
        # One statement shape whatever the batch size, so SQLAlchemy compiles it once.
        statement = (
            dialect_insert(table)
            .on_conflict_do_nothing(index_elements=["connection_id", "dedupe_key"])
            .returning(table.c.id, table.c.connection_id, table.c.dedupe_key, table.c.merchant_id)
        )
        async with self.database.session() as session, session.begin():
            stored = (await session.exec(statement, params=rows)).all()
            if stored:
                await session.exec(
                    sa.insert(Job.__table__),  # type: ignore[attr-defined]
                    params=[
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
        new = {(row.connection_id, row.dedupe_key) for row in stored}
        return [
            not (
                first_of[(d.connection_id, d.dedupe_key)] == index
                and (d.connection_id, d.dedupe_key) in new
            )
            for index, d in enumerate(deliveries)
        ]
