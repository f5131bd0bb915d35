"""The migrations are the schema: an empty database migrated to head matches the models exactly."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Inspection, Receipt, ReceiptLine, Resolution, Rma, metadata
from core.enums import ReceiptStatus
from core.migrate import alembic_config, upgrade
from core.settings import async_url
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.resolutions import resolve_rma
from tests import factories as f


async def _differences(url: str) -> list[object]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: list(
                    compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
            )
    finally:
        await engine.dispose()


def test_an_empty_database_migrates_to_exactly_the_models(empty_database: str) -> None:
    upgrade(empty_database)
    assert asyncio.run(_differences(empty_database)) == []


def test_migrations_go_down_to_nothing_and_up_again(empty_database: str) -> None:
    upgrade(empty_database)
    command.downgrade(alembic_config(empty_database), "base")
    tables = asyncio.run(_differences(empty_database))
    assert tables, "after downgrading to base the models' tables should be missing"
    upgrade(empty_database)
    assert asyncio.run(_differences(empty_database)) == []


async def _partly_received_and_resolving(url: str) -> tuple[object, object, object]:
    """An RMA with one of two units received, inspected and being refunded; one with one of
    two received, not inspected; one with all its units here."""
    db = Database(url)
    try:
        shop = await f.merchant(db)
        partly = await f.requested_rma(
            db, shop.id, await f.order(db, shop.id, stripe_paid=False), quantity=2
        )
        whole = await f.requested_rma(db, shop.id, await f.order(db, shop.id), quantity=1)
        waiting = await f.requested_rma(db, shop.id, await f.order(db, shop.id), quantity=2)
        for rma in (partly, whole, waiting):
            async with db.session() as session:
                await receive_rma(
                    session,
                    shop.id,
                    rma.id,
                    lines=[ReceivedLine(rma.lines[0].id, 1)],
                    actor="staff",
                    now=SYSTEM_CLOCK.now(),
                )
        async with db.session() as session:
            await inspect_rma(
                session,
                shop.id,
                partly.id,
                lines=[InspectedLine(partly.lines[0].id, "UNOPENED", "RESTOCK")],
                actor="staff",
                now=SYSTEM_CLOCK.now(),
            )
        async with db.session() as session:
            await resolve_rma(
                session, shop.id, partly.id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
            )
        return partly.id, whole.id, waiting.id
    finally:
        await db.dispose()


async def _receipts_after_upgrade(
    url: str, partly_id: object, whole_id: object, waiting_id: object
) -> None:
    db = Database(url)
    try:
        async with db.read_session() as session:
            [receipt] = (
                await session.exec(select(Receipt).where(Receipt.rma_id == partly_id))
            ).all()
            [line] = (
                await session.exec(select(ReceiptLine).where(ReceiptLine.receipt_id == receipt.id))
            ).all()
            [inspection] = (
                await session.exec(select(Inspection).where(Inspection.rma_id == partly_id))
            ).all()
            [resolution] = (
                await session.exec(select(Resolution).where(Resolution.rma_id == partly_id))
            ).all()
            partly = await session.get(Rma, partly_id)
            whole = await session.get(Rma, whole_id)
            waiting = await session.get(Rma, waiting_id)
            [whole_receipt] = (
                await session.exec(select(Receipt).where(Receipt.rma_id == whole_id))
            ).all()
        assert (receipt.sequence, receipt.status, line.quantity) == (
            1,
            ReceiptStatus.RESOLVING,
            1,
        )
        assert (inspection.receipt_id, inspection.quantity) == (receipt.id, 1)
        assert resolution.receipt_id == receipt.id
        assert partly is not None and whole is not None and waiting is not None
        # Past inspection nothing more could arrive before receipts: it stays that way.
        assert partly.rest_ended_at is not None
        assert whole.rest_ended_at is not None
        # Still at RECEIVED, the second unit could come: it is still expected.
        assert waiting.rest_ended_at is None and waiting.rest_expires_at is not None
        assert whole_receipt.status is ReceiptStatus.RECEIVED
    finally:
        await db.dispose()


def test_an_rma_received_before_receipts_existed_gets_one_holding_its_goods(
    empty_database: str,
) -> None:
    upgrade(empty_database)
    ids = asyncio.run(_partly_received_and_resolving(empty_database))
    # Back to the schema before receipts (their rows go), then forward: the upgrade rebuilds them.
    command.downgrade(alembic_config(empty_database), "0012")
    upgrade(empty_database)
    asyncio.run(_receipts_after_upgrade(empty_database, *ids))
