"""Jobs that keep a merchant's orders in step with its platform and write returns back.

Each reads the connection (renewing expiring credentials first), builds the plugin's platform
client, and applies what it reads through core's use cases, one order per transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection, Inspection, Order, OrderLine, Resolution, Rma, RmaLine
from core.enums import Disposition, RmaStatus
from core.errors import DomainError
from core.jobs.access import fresh_access, services_of
from core.jobs.worker import JobContext, PermanentJobError
from core.ports.commerce import (
    CREDIT_DESTINATION,
    CommercePlatform,
    PlatformCredit,
    PlatformRejected,
    PlatformUnavailable,
    RestockLine,
    ReturnLine,
    ReturnOutcome,
)
from core.usecases.connections import ConnectionAccess
from core.usecases.credit_transfers import (
    begin_credit_transfer,
    customers_with_transfers,
    record_credit_transferred,
    record_platform_spending,
)
from core.usecases.orders import OrderInput, upsert_order, upsert_orders
from core.usecases.platform_returns import record_return_mirrored
from core.usecases.platform_sync import (
    queue_periodic_sync,
    record_sync_finished,
    record_sync_page,
    record_sync_started,
)
from core.usecases.rma_notes import note_on_rma

log = structlog.get_logger()

PAGE_SIZE = 250


@contextlib.asynccontextmanager
async def _platform_for(
    context: JobContext, connection: Connection
) -> AsyncIterator[tuple[CommercePlatform, ConnectionAccess]]:
    """The connection's platform client, closed afterwards. ``PermanentJobError`` when the
    platform has no plugin, the connection is gone, or its access was revoked."""
    factory = services_of(context).registry.commerce_platforms.get(connection.platform)
    if factory is None:
        raise PermanentJobError(f"no installed plugin syncs {connection.platform.value}")
    try:
        access = await fresh_access(
            context, connection.merchant_id, connection.platform, connection_id=connection.id
        )
    except PlatformRejected as error:
        raise PermanentJobError(f"the platform refused to renew access: {error}") from error
    if access is None:
        raise PermanentJobError("the connection is disabled or gone")
    # An empty value stands for the default.
    settings = {**factory.settings_defaults, **{k: v for k, v in access.settings.items() if v}}
    platform = factory.build(access.account, access.credentials, settings)
    try:
        yield platform, access
    finally:
        await platform.close()


async def _connection(context: JobContext) -> Connection | None:
    connection_id = uuid.UUID(context.job.payload["connectionId"])
    async with context.database.read_session() as session:
        connection = await session.get(Connection, connection_id)
    if connection is None or connection.disabled_at is not None:
        return None
    return connection


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
        async with _platform_for(context, started) as (platform, _access):
            cursor = started.sync_cursor
            while True:
                page = await platform.orders_changed_since(cursor, limit=PAGE_SIZE)
                applied = await _apply_page(
                    context, merchant_id, connection_id, page.orders, refused
                )
                refused.extend(page.refused)
                cursor = page.next_cursor
                async with context.database.session() as session:
                    await record_sync_page(session, connection_id, cursor, applied)
                applied_total += applied
                if on_page is not None:
                    on_page(applied)
                if not page.has_more:
                    break
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
    connection = await _connection(context)
    if connection is None:
        return
    reference = str(context.job.payload["orderReference"])
    async with _platform_for(context, connection) as (platform, _access):
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
    """After an install: ask the platform to send us its webhooks."""
    connection = await _connection(context)
    if connection is None:
        return
    public_url = services_of(context).settings.public_url.rstrip("/")
    async with _platform_for(context, connection) as (platform, _access):
        try:
            await platform.subscribe_webhooks(public_url, str(connection.id))
        except PlatformRejected as error:
            raise PermanentJobError(str(error)) from error


async def restock_return(context: JobContext) -> None:
    """Put inspected units marked RESTOCK back into the platform's stock, once.

    The key names the inspections, so a retry (or a crash after the platform answered) sends
    the same adjustment, which the platform applies once.
    """
    rma_id = uuid.UUID(context.job.payload["rmaId"])
    merchant_id = uuid.UUID(context.job.payload["merchantId"])
    inspection_ids = sorted(uuid.UUID(value) for value in context.job.payload["inspections"])
    async with context.database.read_session() as session:
        rma = await session.get(Rma, rma_id)
        order = None if rma is None else await session.get(Order, rma.order_id)
        if rma is None or order is None or rma.merchant_id != merchant_id:
            return
        registry = services_of(context).registry
        if order.platform not in registry.commerce_platforms:
            return  # a storefront's order: its stock is not ours to move
        connection = await _order_connection(session, merchant_id, order)
        lines = await _restock_lines(session, inspection_ids)
    if connection is None or not lines:
        return
    digest = hashlib.sha256(",".join(map(str, inspection_ids)).encode()).hexdigest()[:24]
    key = f"rma-restock-{rma_id}-{digest}"
    async with _platform_for(context, connection) as (platform, _access):
        try:
            await platform.restock(order.external_id, lines, key)
        except PlatformRejected as error:
            message = f"the platform refused the restock: {error}"
            await _note(context, merchant_id, rma_id, "RESTOCK_REFUSED", message)
            raise PermanentJobError(str(error)) from error
    async with context.database.session() as session:
        await note_on_rma(
            session,
            merchant_id,
            rma_id,
            kind="RESTOCKED",
            message=f"{sum(line.quantity for line in lines)} unit(s) back in stock on "
            f"{order.platform.value}",
            data={"key": key},
            now=context.clock.now(),
        )


async def _restock_lines(
    session: AsyncSession, inspection_ids: list[uuid.UUID]
) -> list[RestockLine]:
    rows = (
        await session.exec(
            select(Inspection, RmaLine, OrderLine)
            .join(RmaLine, col(RmaLine.id) == col(Inspection.rma_line_id))
            .join(OrderLine, col(OrderLine.id) == col(RmaLine.order_line_id))
            .where(col(Inspection.id).in_(inspection_ids))
        )
    ).all()
    return [
        RestockLine(line_reference=order_line.external_id, quantity=rma_line.received_quantity)
        for inspection, rma_line, order_line in rows
        if inspection.disposition is Disposition.RESTOCK and rma_line.received_quantity > 0
    ]


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


async def mirror_return(context: JobContext) -> None:
    """Keep the platform's return in step with the RMA: opened once it is authorized, closed
    when it is resolved or closed, cancelled when it is rejected, cancelled or expired."""
    rma_id = uuid.UUID(context.job.payload["rmaId"])
    merchant_id = uuid.UUID(context.job.payload["merchantId"])
    async with context.database.read_session() as session:
        rma = await session.get(Rma, rma_id)
        order = None if rma is None else await session.get(Order, rma.order_id)
        if rma is None or order is None or rma.merchant_id != merchant_id:
            return
        if order.platform not in services_of(context).registry.commerce_platforms:
            return
        connection = await _order_connection(session, merchant_id, order)
        lines = await _return_lines(session, rma)
    if connection is None:
        return
    ending = _ENDINGS.get(rma.status)
    if ending is not None and rma.platform_return_id is None:
        return  # never mirrored: nothing to end
    async with _platform_for(context, connection) as (platform, _access):
        try:
            if ending is not None:
                assert rma.platform_return_id is not None
                await platform.end_return(rma.platform_return_id, ending)
                return
            # Looked up first on the platform: a live return for this RMA is given back, so
            # a retry (or an RMA authorized again after review) never makes a second one.
            reference = await platform.open_return(order.external_id, rma.number, lines)
        except PlatformRejected as error:
            message = f"the platform refused to mirror the return: {error}"
            await _note(context, merchant_id, rma_id, "PLATFORM_RETURN_REFUSED", message)
            return
    if reference is None:
        return  # the platform cannot hold it (nothing fulfilled yet)
    async with context.database.session() as session:
        await record_return_mirrored(
            session, merchant_id, rma_id, reference, now=context.clock.now()
        )


_ENDINGS = {
    RmaStatus.RESOLVED: ReturnOutcome.CLOSED,
    RmaStatus.CLOSED: ReturnOutcome.CLOSED,
    RmaStatus.REJECTED: ReturnOutcome.CANCELED,
    RmaStatus.CANCELLED: ReturnOutcome.CANCELED,
    RmaStatus.EXPIRED: ReturnOutcome.CANCELED,
}


async def _note(
    context: JobContext, merchant_id: uuid.UUID, rma_id: uuid.UUID, kind: str, message: str
) -> None:
    async with context.database.session() as session:
        await note_on_rma(
            session, merchant_id, rma_id, kind=kind, message=message, now=context.clock.now()
        )


async def _order_connection(
    session: AsyncSession, merchant_id: uuid.UUID, order: Order
) -> Connection | None:
    """The enabled connection the order came from (the merchant's oldest one to its
    platform for an order pushed before orders knew their connection)."""
    if order.connection_id is not None:
        connection = await session.get(Connection, order.connection_id)
        if connection is None or connection.disabled_at is not None:
            return None
        return connection
    return (
        await session.exec(
            select(Connection)
            .where(
                Connection.merchant_id == merchant_id,
                Connection.platform == order.platform,
                col(Connection.disabled_at).is_(None),
            )
            .order_by(col(Connection.created_at))
        )
    ).first()


async def _return_lines(session: AsyncSession, rma: Rma) -> list[ReturnLine]:
    rows = (
        await session.exec(
            select(RmaLine, OrderLine)
            .join(OrderLine, col(OrderLine.id) == col(RmaLine.order_line_id))
            .where(RmaLine.rma_id == rma.id)
        )
    ).all()
    return [
        ReturnLine(order_line.external_id, rma_line.quantity, rma_line.reason.value)
        for rma_line, order_line in rows
    ]


def _connection_settings(context: JobContext, connection: Connection) -> dict[str, object]:
    factory = services_of(context).registry.commerce_platforms.get(connection.platform)
    defaults = dict(factory.settings_defaults) if factory else {}
    return {**defaults, **{k: v for k, v in connection.settings.items() if v != ""}}


def keeps_credit_on_platform(context: JobContext, connection: Connection) -> bool:
    return _connection_settings(context, connection).get(CREDIT_DESTINATION) == "platform"


async def transfer_store_credit(context: JobContext, resolution_id: uuid.UUID) -> None:
    """Move a settled store credit to the order platform's own store credit, once, when the
    connection keeps credit there. The platform may have no idempotency key for it: after an
    attempt with no clear outcome, it looks for the credit before giving it again."""
    async with context.database.read_session() as session:
        resolution = await session.get(Resolution, resolution_id)
        order = None if resolution is None else await session.get(Order, resolution.order_id)
        if resolution is None or order is None:
            return
        if order.platform not in services_of(context).registry.commerce_platforms:
            return
        connection = await _order_connection(session, resolution.merchant_id, order)
    if connection is None or not keeps_credit_on_platform(context, connection):
        return
    async with context.database.session() as session:
        transfer = await begin_credit_transfer(session, resolution_id, now=context.clock.now())
    if transfer is None:
        return
    credit = PlatformCredit(
        customer_reference=transfer.customer_reference,
        amount_minor=transfer.amount_minor,
        currency=transfer.currency,
        idempotency_key=transfer.idempotency_key,
        note=transfer.note,
        look_since=transfer.first_attempt_at if transfer.attempts > 1 else None,
        claimed=transfer.claimed,
    )
    async with _platform_for(context, connection) as (platform, _access):
        try:
            reference = await platform.issue_store_credit(credit)
        except PlatformRejected as error:
            # The ledger still holds the credit: the customer can spend it through us.
            message = f"the platform refused the store credit, kept in the ledger: {error}"
            await _note(
                context, resolution.merchant_id, resolution.rma_id, "TRANSFER_REFUSED", message
            )
            raise PermanentJobError(str(error)) from error
    async with context.database.session() as session:
        await record_credit_transferred(session, resolution_id, reference, now=context.clock.now())


async def read_platform_spending(
    context: JobContext, connection: Connection, platform: CommercePlatform
) -> int:
    """After a sync: what customers spent of the credit moved to this platform, into the
    ledger's history. How many new entries."""
    if not keeps_credit_on_platform(context, connection):
        return 0
    async with context.database.read_session() as session:
        customers = await customers_with_transfers(session, connection.merchant_id)
    recorded = 0
    for customer_id, reference in customers:
        spent = await platform.store_credit_spent(reference)
        async with context.database.session() as session:
            recorded += await record_platform_spending(
                session, connection.merchant_id, customer_id, spent, now=context.clock.now()
            )
    return recorded
