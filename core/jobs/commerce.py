"""Jobs that write a return back to the order's platform: stock, the platform's own return,
store credit; and the way every platform job reaches its connection.

Each reads the connection (renewing expiring credentials first), builds the plugin's platform
client, and applies what it learns through core's use cases. Order sync is in ``sync``.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection, Inspection, Order, OrderLine, Resolution, Rma, RmaLine
from core.enums import Disposition, RmaStatus
from core.errors import InsufficientCredit
from core.jobs.access import fresh_access, services_of
from core.jobs.worker import JobContext, PermanentJobError
from core.ports.commerce import (
    CREDIT_DESTINATION,
    CommercePlatform,
    PlatformCredit,
    PlatformRejected,
    RestockLine,
    ReturnLine,
    ReturnOutcome,
)
from core.usecases.connections import ConnectionAccess
from core.usecases.credit_transfers import (
    begin_credit_transfer,
    record_credit_transferred,
)
from core.usecases.platform_returns import record_return_mirrored
from core.usecases.rma_notes import note_on_rma
from core.usecases.store_credit import TRANSFER, release_transfer

log = structlog.get_logger()


@contextlib.asynccontextmanager
async def platform_for(
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


async def job_connection(context: JobContext) -> Connection | None:
    connection_id = uuid.UUID(context.job.payload["connectionId"])
    async with context.database.read_session() as session:
        connection = await session.get(Connection, connection_id)
    if connection is None or connection.disabled_at is not None:
        return None
    return connection


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
        factory = services_of(context).registry.commerce_platforms.get(order.platform)
        if factory is None:
            return  # a storefront's order: its stock is not ours to move
        if factory.restocks_with_refund:
            return  # restocked with the refund recorded on the order (``writeback``)
        connection = await order_connection(session, merchant_id, order)
        lines = await restock_lines(session, col(Inspection.id).in_(inspection_ids))
    if connection is None or not lines:
        return
    digest = hashlib.sha256(",".join(map(str, inspection_ids)).encode()).hexdigest()[:24]
    key = f"rma-restock-{rma_id}-{digest}"
    async with platform_for(context, connection) as (platform, _access):
        try:
            await platform.restock(order.external_id, lines, key)
        except PlatformRejected as error:
            message = f"the platform refused the restock: {error}"
            await note_on_job_rma(context, merchant_id, rma_id, "RESTOCK_REFUSED", message)
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


async def restock_lines(session: AsyncSession, *criteria: Any) -> list[RestockLine]:
    """The received units whose inspection (``criteria`` choose which) sends them back to
    stock, by the platform's line ids."""
    rows = (
        await session.exec(
            select(Inspection, RmaLine, OrderLine)
            .join(RmaLine, col(RmaLine.id) == col(Inspection.rma_line_id))
            .join(OrderLine, col(OrderLine.id) == col(RmaLine.order_line_id))
            .where(*criteria)
        )
    ).all()
    return [
        RestockLine(line_reference=order_line.external_id, quantity=inspection.quantity)
        for inspection, _rma_line, order_line in rows
        if inspection.disposition is Disposition.RESTOCK
    ]


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
        connection = await order_connection(session, merchant_id, order)
        lines = await _return_lines(session, rma)
    if connection is None:
        return
    ending = _ENDINGS.get(rma.status)
    if rma.status is RmaStatus.RESOLVED and rma.rest_ended_at is None:
        return  # more parcels are expected: the return stays open until they come or end
    if ending is not None and rma.platform_return_id is None:
        return  # never mirrored: nothing to end
    async with platform_for(context, connection) as (platform, _access):
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
            await note_on_job_rma(context, merchant_id, rma_id, "PLATFORM_RETURN_REFUSED", message)
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


async def note_on_job_rma(
    context: JobContext, merchant_id: uuid.UUID, rma_id: uuid.UUID, kind: str, message: str
) -> None:
    async with context.database.session() as session:
        await note_on_rma(
            session, merchant_id, rma_id, kind=kind, message=message, now=context.clock.now()
        )


async def order_connection(
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


async def transfer_store_credit(context: JobContext, resolution_id: uuid.UUID) -> bool:
    """Move a settled store credit to the order platform's own store credit, once, when the
    connection keeps credit there (True then, whatever the outcome). The platform may have no
    idempotency key for it: after an attempt with no clear outcome, it looks for the credit
    before giving it again."""
    async with context.database.read_session() as session:
        resolution = await session.get(Resolution, resolution_id)
        order = None if resolution is None else await session.get(Order, resolution.order_id)
        if resolution is None or order is None:
            return False
        if order.platform not in services_of(context).registry.commerce_platforms:
            return False
        connection = await order_connection(session, resolution.merchant_id, order)
    if connection is None or not keeps_credit_on_platform(context, connection):
        return False
    factory = services_of(context).registry.commerce_platforms.get(connection.platform)
    # The platform is reachable before the credit is held back for it.
    async with platform_for(context, connection) as (platform, _access):
        async with context.database.session() as session:
            try:
                transfer = await begin_credit_transfer(
                    session,
                    resolution_id,
                    now=context.clock.now(),
                    by_email=factory is not None and factory.customers_by_email,
                )
            except InsufficientCredit as error:
                kept: InsufficientCredit | None = error
                transfer = None
            else:
                kept = None
        if kept is not None:
            await note_on_job_rma(
                context,
                resolution.merchant_id,
                resolution.rma_id,
                "CREDIT_KEPT_HERE",
                kept.message,
            )
        if transfer is None:
            return True
        credit = PlatformCredit(
            customer_reference=transfer.customer_reference,
            amount_minor=transfer.amount_minor,
            currency=transfer.currency,
            idempotency_key=transfer.idempotency_key,
            note=transfer.note,
            look_since=transfer.first_attempt_at if transfer.attempts > 1 else None,
            claimed=transfer.claimed,
        )
        try:
            reference = await platform.issue_store_credit(credit)
        except PlatformRejected as error:
            # Not moved: the credit is spendable here again.
            async with context.database.session() as session:
                await release_transfer(session, resolution.merchant_id, resolution_id, TRANSFER)
            message = f"the platform refused the store credit, kept in the ledger: {error}"
            await note_on_job_rma(
                context, resolution.merchant_id, resolution.rma_id, "TRANSFER_REFUSED", message
            )
            raise PermanentJobError(str(error)) from error
    async with context.database.session() as session:
        await record_credit_transferred(session, resolution_id, reference, now=context.clock.now())
    return True
