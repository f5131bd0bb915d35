"""Staff refuse goods that arrived: the warehouse never hits a dead end (issue: the policy
holds). Before: RECEIVED and INSPECTED had no way to REJECTED."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Rma, RmaEvent
from core.enums import RmaStatus
from core.errors import InvalidInput, InvalidTransition
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.review import refuse_goods, reject_rma
from tests import factories as f


async def received(db: Database) -> tuple[uuid.UUID, Rma]:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    async with db.session() as session:
        rma = await receive_rma(
            session,
            shop.id,
            rma.id,
            lines=[ReceivedLine(rma.lines[0].id, 1)],
            actor="staff",
            now=SYSTEM_CLOCK.now(),
        )
    return shop.id, rma


async def refuse(db: Database, merchant_id: uuid.UUID, rma_id: uuid.UUID, **details: object) -> Rma:
    async with db.session() as session:
        return await refuse_goods(
            session,
            merchant_id,
            rma_id,
            actor="staff",
            now=SYSTEM_CLOCK.now(),
            **details,  # type: ignore[arg-type]
        )


async def status_and_events(db: Database, rma_id: uuid.UUID) -> tuple[RmaStatus, list[str]]:
    async with db.read_session() as session:
        rma = await session.get(Rma, rma_id)
        events = (await session.exec(select(RmaEvent.kind).where(RmaEvent.rma_id == rma_id))).all()
    assert rma is not None
    return rma.status, list(events)


async def test_received_goods_are_sent_back_with_tracking(db: Database) -> None:
    merchant_id, rma = await received(db)
    refused = await refuse(
        db,
        merchant_id,
        rma.id,
        reason="not the item we sold",
        outcome="SEND_BACK",
        carrier="UPS",
        tracking_number="1z999aa10123456784",
    )
    assert refused.status is RmaStatus.REJECTED
    async with db.read_session() as session:
        [event] = (
            await session.exec(
                select(RmaEvent).where(RmaEvent.rma_id == rma.id, RmaEvent.kind == "GOODS_REFUSED")
            )
        ).all()
    assert event.data == {
        "outcome": "SEND_BACK",
        "carrier": "UPS",
        "trackingNumber": "1Z999AA10123456784",
        "receipts": [1],
    }


async def test_inspected_goods_are_disposed_of_only_with_consent(db: Database) -> None:
    shop = await f.merchant(db)
    rma = await f.inspected_rma(db, shop.id, await f.order(db, shop.id))
    before = await status_and_events(db, rma.id)
    with pytest.raises(InvalidInput) as refused:
        await refuse(db, shop.id, rma.id, reason="worn for weeks", outcome="DISPOSE")
    assert refused.value.field == "customerConsented"
    assert await status_and_events(db, rma.id) == before
    done = await refuse(
        db, shop.id, rma.id, reason="worn for weeks", outcome="DISPOSE", customer_consented=True
    )
    assert done.status is RmaStatus.REJECTED


@pytest.mark.parametrize(
    ("details", "field"),
    [
        (
            {"reason": "", "outcome": "SEND_BACK", "carrier": "UPS", "tracking_number": "1Z9"},
            "reason",
        ),
        ({"reason": "x", "outcome": "SEND_BACK", "carrier": "UPS"}, "trackingNumber"),
        ({"reason": "x", "outcome": "SEND_BACK", "tracking_number": "1Z9"}, "trackingNumber"),
        ({"reason": "x", "outcome": "BURN"}, "outcome"),
    ],
)
async def test_a_refusal_without_what_it_needs_changes_nothing(
    db: Database, details: dict[str, object], field: str
) -> None:
    merchant_id, rma = await received(db)
    before = await status_and_events(db, rma.id)
    with pytest.raises(InvalidInput) as refused:
        await refuse(db, merchant_id, rma.id, **details)
    assert refused.value.field == field
    assert await status_and_events(db, rma.id) == before


async def test_goods_not_here_cannot_be_refused_and_arrived_goods_need_refuse_goods(
    db: Database,
) -> None:
    shop = await f.merchant(db)
    authorized = await f.requested_rma(db, shop.id, await f.order(db, shop.id))
    with pytest.raises(InvalidTransition, match="only goods received or inspected"):
        await refuse(
            db, shop.id, authorized.id, reason="x", outcome="DISPOSE", customer_consented=True
        )
    merchant_id, rma = await received(db)
    with pytest.raises(InvalidTransition, match="refuseGoods"):
        async with db.session() as session:
            await reject_rma(
                session, merchant_id, rma.id, actor="staff", reason="x", now=SYSTEM_CLOCK.now()
            )
