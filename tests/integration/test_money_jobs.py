"""The jobs that move money, run by the real worker: store credit, manual and automatic paths."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job, Resolution, Rma, StoreCreditEntry
from core.enums import ItemCondition, ResolutionStatus, ReturnReason, RmaStatus
from core.outbox.kinds import AUTO_RESOLVE
from core.settings import Settings
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.resolutions import complete_manual_refund, resolve_rma, store_credit_balance
from graphql_api.composition import build_worker
from tests import factories as f


async def run_jobs(db: Database, merchant_id: uuid.UUID) -> None:
    """Run this merchant's due jobs with the app's real handlers."""
    worker = build_worker(Settings(database_url=db.url), db, clock=SYSTEM_CLOCK, concurrency=2)
    async with db.read_session() as session:
        kinds = set(
            (await session.exec(select(Job.kind).where(Job.merchant_id == merchant_id))).all()
        )
    worker.handlers = {kind: handler for kind, handler in worker.handlers.items() if kind in kinds}
    if worker.handlers:
        await worker.run_until_idle()


async def rma_of(db: Database, rma_id: uuid.UUID) -> Rma:
    async with db.read_session() as session:
        rma = await session.get(Rma, rma_id)
    assert rma is not None
    return rma


async def test_store_credit_lands_in_the_ledger_through_its_job(db: Database) -> None:
    shop = await f.merchant(db, store_credit_bonus_percent=10)
    order = await f.order(db, shop.id, lines=[f.line(quantity=1, unit_price_minor=3000)])
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind="STORE_CREDIT", actor="staff", now=SYSTEM_CLOCK.now()
        )
    await run_jobs(db, shop.id)
    await run_jobs(db, shop.id)  # a second run finds nothing left to do
    async with db.read_session() as session:
        balance = await store_credit_balance(session, shop.id, rma.customer_id)
        entries = (
            await session.exec(
                select(sa.func.count()).where(
                    StoreCreditEntry.resolution_id == chosen.resolution.id
                )
            )
        ).one()
    assert balance == {"USD": 3300}
    assert entries == 1
    assert (await rma_of(db, rma.id)).status is RmaStatus.RESOLVED


async def test_an_inspected_return_that_passed_settles_itself_with_the_preferred_resolution(
    db: Database,
) -> None:
    shop = await f.merchant(db, auto_resolve=True)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order, preferred="STORE_CREDIT")
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
            rma.id,
            actor="staff",
            lines=[InspectedLine(rma.lines[0].id, "OPENED", "RESTOCK")],
            now=SYSTEM_CLOCK.now(),
        )
    await run_jobs(db, shop.id)  # auto-resolve chooses store credit, which enqueues the credit
    await run_jobs(db, shop.id)
    settled = await rma_of(db, rma.id)
    assert settled.status is RmaStatus.RESOLVED
    async with db.read_session() as session:
        [resolution] = (
            await session.exec(select(Resolution).where(Resolution.rma_id == rma.id))
        ).all()
    assert resolution.kind.value == "STORE_CREDIT"
    assert resolution.status is ResolutionStatus.SUCCEEDED


async def test_an_unwanted_item_that_comes_back_used_waits_for_staff(db: Database) -> None:
    shop = await f.merchant(db, auto_resolve=True)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(
        db, shop.id, order, reason=ReturnReason.UNWANTED, preferred="REFUND"
    )
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
            rma.id,
            actor="staff",
            lines=[InspectedLine(rma.lines[0].id, ItemCondition.USED, "SCRAP")],
            now=SYSTEM_CLOCK.now(),
        )
    async with db.read_session() as session:
        queued = (
            await session.exec(
                select(sa.func.count()).where(Job.merchant_id == shop.id, Job.kind == AUTO_RESOLVE)
            )
        ).one()
    assert queued == 0
    assert (await rma_of(db, rma.id)).status is RmaStatus.INSPECTED


async def test_a_refund_for_an_order_not_paid_through_stripe_is_done_by_hand(
    db: Database,
) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id, stripe_paid=False)
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
        )
    assert chosen.resolution.provider.value == "manual"
    await run_jobs(db, shop.id)
    assert (await rma_of(db, rma.id)).status is RmaStatus.RESOLVING
    async with db.session() as session:
        done = await complete_manual_refund(
            session,
            shop.id,
            chosen.resolution.id,
            reference="bank transfer 889",
            actor="staff",
            now=SYSTEM_CLOCK.now(),
        )
    assert done.rma.status is RmaStatus.RESOLVED
    assert done.resolution.provider_reference == "bank transfer 889"


async def test_a_stripe_refund_without_a_stripe_connection_fails_readably_and_moves_nothing(
    db: Database,
) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)  # paid through Stripe, but no connection is set up
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
        )
    await run_jobs(db, shop.id)
    async with db.read_session() as session:
        resolution = await session.get(Resolution, chosen.resolution.id)
    assert resolution is not None
    assert resolution.status is ResolutionStatus.FAILED
    assert resolution.failure_reason == "the merchant has no stripe connection"
    assert (await rma_of(db, rma.id)).status is RmaStatus.INSPECTED
