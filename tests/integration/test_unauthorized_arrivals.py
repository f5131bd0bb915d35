"""Goods that arrive without an RMA follow the policy (issue: the policy holds).

Before: an unauthorized arrival skipped every check, so a final-sale item or one years past
its window was refunded like any other."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order, RmaEvent
from core.enums import ItemCondition, RmaStatus
from core.errors import NotEligible
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import UnauthorizedLine, receive_unauthorized
from core.usecases.resolutions import resolve_rma
from core.usecases.review import refuse_goods
from tests import factories as f

POLICY = {"final_sale_tags": ["final-sale"], "restocking_fee_percent": 10}


async def arrived(db: Database, merchant_id: uuid.UUID, order: Order) -> uuid.UUID:
    async with db.session() as session:
        rma = await receive_unauthorized(
            session,
            merchant_id,
            order_id=order.id,
            lines=[UnauthorizedLine(order.lines[0].id, 1, ItemCondition.UNOPENED)],
            actor="staff",
            now=SYSTEM_CLOCK.now(),
        )
    assert rma.status is RmaStatus.RECEIVED and rma.unauthorized
    async with db.session() as session:
        await inspect_rma(
            session,
            merchant_id,
            rma.id,
            actor="staff",
            lines=[InspectedLine(rma.lines[0].id, ItemCondition.UNOPENED, "RESTOCK")],
            now=SYSTEM_CLOCK.now(),
        )
    return rma.id


async def resolve(db: Database, merchant_id: uuid.UUID, rma_id: uuid.UUID) -> tuple[int, int]:
    async with db.session() as session:
        chosen = await resolve_rma(
            session, merchant_id, rma_id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
        )
    return chosen.resolution.amount_minor, chosen.resolution.restocking_fee_minor


async def test_an_unauthorized_arrival_within_the_window_pays_the_unauthorized_fee(
    db: Database,
) -> None:
    shop = await f.merchant(db, **POLICY)
    order = await f.order(db, shop.id, lines=[f.line(quantity=1, unit_price_minor=8_000)])
    rma_id = await arrived(db, shop.id, order)
    assert await resolve(db, shop.id, rma_id) == (7_200, 800)


@pytest.mark.parametrize(
    ("tags", "days_ago", "code"),
    [(["final-sale"], 5, "FINAL_SALE"), ([], 400, "OUTSIDE_WINDOW")],
    ids=["final sale", "past the window"],
)
async def test_an_unauthorized_arrival_the_policy_refuses_is_never_refunded(
    db: Database, tags: list[str], days_ago: int, code: str
) -> None:
    shop = await f.merchant(db, **POLICY)
    order = await f.order(
        db, shop.id, lines=[f.line(quantity=1, tags=tags)], placed_days_ago=days_ago
    )
    rma_id = await arrived(db, shop.id, order)
    async with db.read_session() as session:
        [event] = (
            await session.exec(
                select(RmaEvent).where(
                    RmaEvent.rma_id == rma_id, RmaEvent.kind == "RECEIVED_UNAUTHORIZED"
                )
            )
        ).all()
    assert code in event.message and "refuseGoods" in event.message
    with pytest.raises(NotEligible) as refused:
        await resolve(db, shop.id, rma_id)
    assert refused.value.codes == (code,)
    async with db.session() as session:
        rejected = await refuse_goods(
            session,
            shop.id,
            rma_id,
            reason=f"{code.lower()}: not returnable",
            outcome="SEND_BACK",
            carrier="DHL",
            tracking_number="JD014600006281230704",
            actor="staff",
            now=SYSTEM_CLOCK.now(),
        )
    assert rejected.status is RmaStatus.REJECTED


async def test_troubleshooting_is_not_asked_of_goods_that_already_arrived(db: Database) -> None:
    shop = await f.merchant(db, troubleshooting_required_reasons=["DEFECTIVE"])
    order = await f.order(db, shop.id, lines=[f.line(quantity=1, unit_price_minor=3_000)])
    async with db.session() as session:
        rma = await receive_unauthorized(
            session,
            shop.id,
            order_id=order.id,
            lines=[UnauthorizedLine(order.lines[0].id, 1, ItemCondition.DAMAGED, "DEFECTIVE")],
            actor="staff",
            now=SYSTEM_CLOCK.now(),
        )
    async with db.session() as session:
        await inspect_rma(
            session,
            shop.id,
            rma.id,
            actor="staff",
            lines=[InspectedLine(rma.lines[0].id, ItemCondition.DAMAGED, "SCRAP", "", True)],
            now=SYSTEM_CLOCK.now(),
        )
    amount, _fee = await resolve(db, shop.id, rma.id)
    assert amount == 3_000
