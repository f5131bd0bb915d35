"""Order sync: every order changed on a platform read into the core, page by page.

Each page is applied in one transaction (order by order when the core refuses one) and the
cursor kept after it, so a crashed or rate-limited sync resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.entities import Connection
from core.errors import DomainError
from core.jobs.access import services_of
from core.jobs.commerce import job_connection, keeps_credit_on_platform, platform_for
from core.jobs.worker import JobContext, PermanentJobError
from core.ports.commerce import (
    CommercePlatform,
    OrderPage,
    PlatformRejected,
    PlatformUnavailable,
)
from core.usecases.credit_transfers import customers_with_transfers, record_platform_spending
from core.usecases.orders import OrderInput, upsert_order, upsert_orders
from core.usecases.platform_sync import (
    queue_periodic_sync,
    record_connection_problem,
    record_sync_finished,
    record_sync_page,
    record_sync_started,
)

log = structlog.get_logger()

PAGE_SIZE = 250


async def sync_connection(context: JobContext) -> None:
    """The job: a sync asked for by staff, an install or the periodic reconciliation."""
    connection_id = uuid.UUID(context.job.payload["connectionId"])
    # A retried full sync resumes from its cursor instead of starting over.
    full = bool(context.job.payload.get("full")) and context.job.attempts <= 1
    await run_sync(context, connection_id, full=full)


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    applied: int
    refused: list[str]


async def run_sync(
    context: JobContext,
    connection_id: uuid.UUID,
    *,
    full: bool,
    on_page: Callable[[int], None] | None = None,
) -> SyncOutcome | None:
    """Read every order changed since the connection's cursor (all of them when ``full``).

    Each order is applied in its own transaction and the cursor kept after every page: a
    crash or a rate limit resumes where it stopped. An order the core refuses (a currency it
    does not know) is skipped and named in the sync's last error; the others still land.
    None when the connection is gone or disabled.
    """
    async with context.database.session() as session:
        started = await record_sync_started(
            session, connection_id, full=full, now=context.clock.now()
        )
    if started is None:
        return None
    merchant_id = started.merchant_id
    refused: list[str] = []
    applied_total = 0
    try:
        async with platform_for(context, started) as (platform, _access):
            page = await platform.orders_changed_since(started.sync_cursor, limit=PAGE_SIZE)
            while True:
                # The next page is read while this one is written: the platform and the
                # database each wait for the other only when one of them is the slower.
                following = (
                    asyncio.ensure_future(
                        platform.orders_changed_since(page.next_cursor, limit=PAGE_SIZE)
                    )
                    if page.has_more
                    else None
                )
                try:
                    applied = await _apply_page(
                        context, merchant_id, connection_id, page.orders, refused
                    )
                    refused.extend(page.refused)
                    async with context.database.session() as session:
                        await record_sync_page(session, connection_id, page.next_cursor, applied)
                except BaseException:
                    await _abandon(following)
                    raise
                applied_total += applied
                if on_page is not None:
                    on_page(applied)
                if following is None:
                    break
                page = await following
            await read_platform_spending(context, started, platform)
    except PlatformUnavailable:
        raise  # retried with backoff; the cursor kept so far is where it resumes
    except (PlatformRejected, PermanentJobError) as error:
        async with context.database.session() as session:
            await record_sync_finished(
                session, connection_id, error=str(error), now=context.clock.now()
            )
        raise PermanentJobError(str(error)) from error
    error_text = "; ".join(refused[:20]) + (f" (+{len(refused) - 20} more)" if refused[20:] else "")
    async with context.database.session() as session:
        await record_sync_finished(
            session, connection_id, error=error_text or None, now=context.clock.now()
        )
    return SyncOutcome(applied_total, refused)


async def _abandon(task: asyncio.Future[OrderPage] | None) -> None:
    """Stop reading a page nobody will write (the sync failed or the worker stops)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def _apply_page(
    context: JobContext,
    merchant_id: uuid.UUID,
    connection_id: uuid.UUID,
    orders: Sequence[OrderInput],
    refused: list[str],
) -> int:
    """A page in one transaction; when the core refuses one of its orders (or a webhook
    created one meanwhile), order by order, so that the others land and the refused one is
    named. How many were applied."""
    if not orders:
        return 0
    try:
        async with context.database.session() as session:
            return await upsert_orders(
                session, merchant_id, orders, now=context.clock.now(), connection_id=connection_id
            )
    except (DomainError, IntegrityError):
        pass
    applied = 0
    for order in orders:
        try:
            async with context.database.session() as session:
                await upsert_order(
                    session,
                    merchant_id,
                    order,
                    now=context.clock.now(),
                    connection_id=connection_id,
                )
            applied += 1
        except DomainError as error:
            refused.append(f"order {order.order_number}: {error.message}")
    return applied


async def sync_order(context: JobContext) -> None:
    """Read one order again (a webhook said it changed: its payload may be stale)."""
    connection = await job_connection(context)
    if connection is None:
        return
    reference = str(context.job.payload["orderReference"])
    async with platform_for(context, connection) as (platform, _access):
        try:
            order = await platform.fetch_order(reference)
        except PlatformRejected as error:
            raise PermanentJobError(str(error)) from error
    if order is None:
        log.info("order no longer on the platform", order=reference)
        return
    try:
        async with context.database.session() as session:
            await upsert_order(
                session,
                connection.merchant_id,
                order,
                now=context.clock.now(),
                connection_id=connection.id,
            )
    except DomainError as error:
        raise PermanentJobError(f"order {order.order_number}: {error.message}") from error


async def subscribe_webhooks(context: JobContext) -> None:
    """After an install, and each period: make the platform send us its webhooks (those
    deleted or disabled since are made again). A refusal (revoked keys) is shown to staff
    on the connection."""
    connection = await job_connection(context)
    if connection is None:
        return
    public_url = services_of(context).settings.public_url.rstrip("/")
    try:
        async with platform_for(context, connection) as (platform, _access):
            await platform.subscribe_webhooks(public_url, str(connection.id))
    except (PlatformRejected, PermanentJobError) as error:
        async with context.database.session() as session:
            await record_connection_problem(
                session, connection.id, f"webhooks could not be registered: {error}"
            )
        raise PermanentJobError(str(error)) from error


async def reconcile_connections(context: JobContext) -> None:
    """Every period, an incremental sync of every enabled connection a plugin can sync:
    webhooks can be missed or reordered, and some platforms never send them again."""
    platforms = list(services_of(context).registry.commerce_platforms)
    if not platforms:
        return
    now = context.clock.now()
    slot = context.job.payload.get("slot", now.isoformat())
    async with context.database.session() as session, session.begin():
        connections = (
            await session.exec(
                select(Connection).where(
                    col(Connection.platform).in_([p.value for p in platforms]),
                    col(Connection.disabled_at).is_(None),
                )
            )
        ).all()
        for connection in connections:
            await queue_periodic_sync(session, connection, slot, now=now)


def _by_email(context: JobContext, connection: Connection) -> bool:
    factory = services_of(context).registry.commerce_platforms.get(connection.platform)
    return factory is not None and factory.customers_by_email


async def read_platform_spending(
    context: JobContext, connection: Connection, platform: CommercePlatform
) -> int:
    """After a sync: what customers spent of the credit moved to this platform, into the
    ledger's history. How many new entries."""
    if not keeps_credit_on_platform(context, connection):
        return 0
    async with context.database.read_session() as session:
        customers = await customers_with_transfers(
            session, connection.merchant_id, by_email=_by_email(context, connection)
        )
    recorded = 0
    for customer_id, reference in customers:
        spent = await platform.store_credit_spent(reference)
        async with context.database.session() as session:
            recorded += await record_platform_spending(
                session, connection.merchant_id, customer_id, spent, now=context.clock.now()
            )
    return recorded
