"""An RMA from request to close, through the use cases, on every database backend."""

from __future__ import annotations

from sqlalchemy.orm import selectinload
from sqlmodel import select

from core.database import Database
from core.entities import Resolution, Rma, RmaEvent, Shipment
from core.enums import ResolutionKind, ResolutionStatus, RmaStatus
from core.usecases.resolutions import close_rma, record_resolution_outcome, resolve_rma
from tests import factories as f


async def test_a_return_goes_from_request_to_close_with_a_timeline(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind="REFUND", actor=f.STAFF, now=f.NOW
        )
    assert chosen.rma.status is RmaStatus.RESOLVING
    assert chosen.resolution.amount_minor == 2500
    async with db.session() as session:
        await record_resolution_outcome(
            session,
            shop.id,
            chosen.resolution.id,
            succeeded=True,
            actor="system",
            provider_reference="re_123",
            now=f.NOW,
        )
    async with db.session() as session:
        closed = await close_rma(session, shop.id, rma.id, actor=f.STAFF, now=f.NOW)
    assert closed.status is RmaStatus.CLOSED

    async with db.read_session() as session:
        stored = (
            await session.exec(
                select(Rma).where(Rma.id == rma.id).options(selectinload(Rma.events))
            )
        ).one()
        statuses = [e.to_status for e in stored.events if e.kind == "STATUS_CHANGED"]
        shipments = (await session.exec(select(Shipment).where(Shipment.rma_id == rma.id))).all()
        resolution = await session.get(Resolution, chosen.resolution.id)
    assert statuses == [
        RmaStatus.AUTHORIZED,
        RmaStatus.IN_TRANSIT,
        RmaStatus.RECEIVED,
        RmaStatus.INSPECTED,
        RmaStatus.RESOLVING,
        RmaStatus.RESOLVED,
        RmaStatus.CLOSED,
    ]
    assert [e.sequence for e in stored.events] == list(range(1, len(stored.events) + 1))
    assert (
        shipments[0].tracking_url is not None and "1Z999AA10123456784" in shipments[0].tracking_url
    )
    assert resolution is not None and resolution.status is ResolutionStatus.SUCCEEDED
    assert resolution.kind is ResolutionKind.REFUND
    assert isinstance(stored.events[0], RmaEvent)
