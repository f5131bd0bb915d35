"""Order sync with a platform: asking for one, and recording how far it got and how it ended.

The sync itself runs as a job (``core.jobs.commerce``); each order it reads is applied with
``upsert_order`` in its own transaction, so a failure leaves no order half written, and the
cursor is kept after every page, so a crashed sync resumes where it stopped.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection
from core.errors import Conflict, NotFound
from core.outbox.kinds import SUBSCRIBE_WEBHOOKS, SYNC_CONNECTION, SYNC_ORDER
from core.outbox.queue import enqueue, enqueue_once
from core.usecases.inputs import as_uuid, checked_now


class SyncStatus:
    NEVER = "NEVER"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def connection_lock(connection_id: uuid.UUID) -> str:
    """The job lock key of a connection: its syncs never run two at a time."""
    return f"connection:{connection_id}"


def queue_sync(session: AsyncSession, connection: Connection, *, full: bool, now: datetime) -> None:
    """Within the caller's transaction: enqueue a sync of ``connection``."""
    connection.sync_status = SyncStatus.QUEUED
    session.add(connection)
    enqueue(
        session,
        SYNC_CONNECTION,
        {"connectionId": str(connection.id), "full": full},
        now=now,
        merchant_id=connection.merchant_id,
        lock_key=connection_lock(connection.id),
    )


async def request_sync(
    session: AsyncSession,
    connection_id: uuid.UUID | str,
    *,
    merchant_id: uuid.UUID | None,
    full: bool,
    now: datetime,
) -> Connection:
    """Ask for a sync of a connection (of ``merchant_id`` when given: staff see only theirs).

    ``full`` reads every order again from the start; otherwise only what changed since the
    last sync. A sync already queued or running is not queued twice.
    """
    identifier = as_uuid(connection_id, "connection")
    moment = checked_now(now)
    async with session.begin():
        connection = await session.get(Connection, identifier, with_for_update=True)
        if connection is None or (
            merchant_id is not None and connection.merchant_id != merchant_id
        ):
            raise NotFound("Connection", identifier, field="id")
        if connection.disabled_at is not None:
            raise Conflict("the connection is disabled; enable it first", field="id")
        if connection.sync_status not in (SyncStatus.QUEUED, SyncStatus.RUNNING):
            queue_sync(session, connection, full=full, now=moment)
    return connection


async def queue_periodic_sync(
    session: AsyncSession, connection: Connection, slot: str, *, now: datetime
) -> None:
    """Within the caller's transaction: this period's reconciling sync, at most once."""
    await enqueue_once(
        session,
        SYNC_CONNECTION,
        f"periodic-sync:{connection.id}:{slot}",
        {"connectionId": str(connection.id), "full": False},
        now=now,
        merchant_id=connection.merchant_id,
        lock_key=connection_lock(connection.id),
    )
    if connection.installed_by_app:
        # The service registered this connection's webhooks: a merchant may have deleted
        # them, or the platform disabled them after failures. Checked (and made again) each
        # period, since a platform that never retries a missed delivery only polls catch up.
        await enqueue_once(
            session,
            SUBSCRIBE_WEBHOOKS,
            f"periodic-webhooks:{connection.id}:{slot}",
            {"connectionId": str(connection.id)},
            now=now,
            merchant_id=connection.merchant_id,
            lock_key=connection_lock(connection.id),
        )


async def record_connection_problem(
    session: AsyncSession, connection_id: uuid.UUID, problem: str
) -> None:
    """Show staff why a connection does not work as it should (``lastSyncError``)."""
    async with session.begin():
        connection = await session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return
        connection.last_sync_error = problem[:2000]
        session.add(connection)


async def queue_order_sync(
    session: AsyncSession,
    connection_id: uuid.UUID,
    merchant_id: uuid.UUID,
    reference: str,
    *,
    now: datetime,
) -> None:
    """Enqueue a re-read of one order (a webhook said it changed), in its own transaction."""
    async with session.begin():
        enqueue(
            session,
            SYNC_ORDER,
            {"connectionId": str(connection_id), "orderReference": reference},
            now=checked_now(now),
            merchant_id=merchant_id,
            lock_key=f"order:{connection_id}:{reference}",
        )


async def record_sync_started(
    session: AsyncSession, connection_id: uuid.UUID, *, full: bool, now: datetime
) -> Connection | None:
    """Mark the sync running; returns the connection, or None when it is gone or disabled."""
    async with session.begin():
        connection = await session.get(Connection, connection_id, with_for_update=True)
        if connection is None or connection.disabled_at is not None:
            return None
        connection.sync_status = SyncStatus.RUNNING
        connection.sync_progress = 0
        if full:
            connection.sync_cursor = None
        session.add(connection)
    return connection


async def record_sync_page(
    session: AsyncSession, connection_id: uuid.UUID, cursor: str | None, applied: int
) -> None:
    """Keep the cursor after a page, so a crashed sync resumes after it."""
    async with session.begin():
        connection = await session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return
        connection.sync_cursor = cursor
        connection.sync_progress += applied
        session.add(connection)


async def record_sync_finished(
    session: AsyncSession, connection_id: uuid.UUID, *, error: str | None, now: datetime
) -> None:
    async with session.begin():
        connection = await session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return
        connection.sync_status = SyncStatus.FAILED if error else SyncStatus.SUCCEEDED
        connection.last_sync_error = error[:2000] if error else None
        connection.last_synced_at = checked_now(now)
        session.add(connection)
