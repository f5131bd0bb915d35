"""Putting jobs on the queue, inside the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Job
from core.enums import JobState
from core.outbox.kinds import (
    APPLY_STORE_CREDIT,
    AUTO_RESOLVE,
    EXECUTE_REFUND,
    MIRROR_RETURN,
    PLACE_EXCHANGE,
    RECORD_PLATFORM_REFUND,
    REFRESH_REFUND,
    RESTOCK_RETURN,
)

DEFAULT_MAX_ATTEMPTS = 10
# Claims take lower priorities first (across lock keys: the jobs of one key keep their order,
# core.jobs.batches). A customer whose return is in flight (its restock, the platform's mirror
# of it, the resolution, the refund, store credit, an exchange) must not wait behind a backlog
# of background work (a sync, a burst of webhooks, reconciliation), however long it is.
URGENT = 0
BACKGROUND = 1
URGENT_KINDS = frozenset(
    {
        AUTO_RESOLVE,
        RESTOCK_RETURN,
        MIRROR_RETURN,
        EXECUTE_REFUND,
        REFRESH_REFUND,
        APPLY_STORE_CREDIT,
        PLACE_EXCHANGE,
        RECORD_PLATFORM_REFUND,
    }
)


def priority_of(kind: str) -> int:
    return URGENT if kind in URGENT_KINDS else BACKGROUND


def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    now: datetime,
    merchant_id: uuid.UUID | None = None,
    lock_key: str | None = None,
    unique_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    priority: int | None = None,
) -> Job:
    """Add a job to the session; it exists exactly when the caller's transaction commits.

    It may start at ``run_at``, or at once (``now``, the caller's clock) when that is not given;
    before due jobs of a higher ``priority`` (by default its kind's, ``priority_of``).
    """
    job = Job(
        kind=kind,
        payload=payload or {},
        merchant_id=merchant_id,
        lock_key=lock_key,
        unique_key=unique_key,
        run_at=run_at or now,
        priority=priority_of(kind) if priority is None else priority,
        max_attempts=max_attempts,
        created_at=now,
    )
    session.add(job)
    return job


async def enqueue_once(
    session: AsyncSession,
    kind: str,
    unique_key: str,
    payload: dict[str, Any] | None = None,
    *,
    now: datetime,
    merchant_id: uuid.UUID | None = None,
    lock_key: str | None = None,
    run_at: datetime | None = None,
) -> bool:
    """Insert a job unless one with ``unique_key`` exists; True when this call created it.

    Several schedulers may race for the same key (a periodic slot): the database lets one win.
    """
    values = {
        "id": uuid.uuid4(),
        "kind": kind,
        "payload": payload or {},
        "merchant_id": merchant_id,
        "lock_key": lock_key,
        "unique_key": unique_key,
        "state": JobState.QUEUED.value,
        "run_at": run_at or now,
        "priority": priority_of(kind),
        "attempts": 0,
        "max_attempts": DEFAULT_MAX_ATTEMPTS,
        "created_at": now,
    }
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    statement: sa.Insert
    if dialect == "postgresql":
        statement = (
            postgresql.insert(Job)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["unique_key"])
        )
    else:
        statement = (
            sqlite.insert(Job)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["unique_key"])
        )
    statement = statement.returning(sa.column("id"))
    result = await session.exec(statement)
    return result.first() is not None
