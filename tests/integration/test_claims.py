"""A customer's stated reason is a claim, and inspection decides (issue: the policy holds).

Before: a NOT_AS_DESCRIBED line on a final-sale item inspected DAMAGED/SCRAP settled itself,
in full, with shipping and no fee."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job, Rma, RmaEvent
from core.enums import ItemCondition, ReturnReason, RmaStatus
from core.errors import NotEligible
from core.outbox.kinds import AUTO_RESOLVE
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.resolutions import resolve_rma
from tests import factories as f

POLICY = {
    "auto_resolve": True,
    "final_sale_tags": ["final-sale"],
    "restocking_fee_percent": 10,
}


async def inspected(
    db: Database,
    *,
    reason: ReturnReason,
    confirmed: bool | None,
    final_sale: bool,
    condition: ItemCondition = ItemCondition.DAMAGED,
    note: str = "",
) -> tuple[uuid.UUID, Rma]:
    shop = await f.merchant(db, **POLICY)
    tags = ["final-sale"] if final_sale else []
    order = await f.order(
        db,
        shop.id,
        lines=[f.line(quantity=1, unit_price_minor=10_000, tags=tags)],
        shipping_minor=1_000,
    )
    rma = await f.requested_rma(db, shop.id, order, reason=reason, preferred="REFUND")
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
        rma = await inspect_rma(
            session,
            shop.id,
            rma.id,
            actor="staff",
            lines=[InspectedLine(rma.lines[0].id, condition, "SCRAP", note, confirmed)],
            now=SYSTEM_CLOCK.now(),
        )
    return shop.id, rma


async def auto_resolutions(db: Database, merchant_id: uuid.UUID) -> int:
    async with db.read_session() as session:
        return int(
            (
                await session.exec(
                    select(sa.func.count()).where(
                        Job.merchant_id == merchant_id, Job.kind == AUTO_RESOLVE
                    )
                )
            ).one()
        )


async def events(db: Database, rma_id: uuid.UUID, kind: str) -> list[RmaEvent]:
    async with db.read_session() as session:
        statement = select(RmaEvent).where(RmaEvent.rma_id == rma_id, RmaEvent.kind == kind)
        return list((await session.exec(statement)).all())


async def resolve(db: Database, merchant_id: uuid.UUID, rma_id: uuid.UUID) -> dict[str, int]:
    async with db.session() as session:
        chosen = await resolve_rma(
            session, merchant_id, rma_id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
        )
    resolution = chosen.resolution
    return {
        "amount": resolution.amount_minor,
        "fee": resolution.restocking_fee_minor,
        "shipping": resolution.shipping_minor,
    }


@pytest.mark.parametrize(
    "reason", [ReturnReason.NOT_AS_DESCRIBED, ReturnReason.DEFECTIVE, ReturnReason.WRONG_ITEM]
)
async def test_an_unjudged_claim_on_a_final_sale_item_waits_for_staff(
    db: Database, reason: ReturnReason
) -> None:
    merchant_id, rma = await inspected(db, reason=reason, confirmed=None, final_sale=True)
    assert await auto_resolutions(db, merchant_id) == 0
    assert rma.status is RmaStatus.INSPECTED
    [waiting] = await events(db, rma.id, "CLAIM_NOT_JUDGED")
    assert "staff decide" in waiting.message


async def test_a_confirmed_claim_settles_itself_in_full_with_shipping(db: Database) -> None:
    merchant_id, rma = await inspected(
        db, reason=ReturnReason.NOT_AS_DESCRIBED, confirmed=True, final_sale=True
    )
    assert await auto_resolutions(db, merchant_id) == 1
    assert await resolve(db, merchant_id, rma.id) == {
        "amount": 11_000,
        "fee": 0,
        "shipping": 1_000,
    }


async def test_an_overturned_claim_on_a_final_sale_item_cannot_be_refunded(db: Database) -> None:
    merchant_id, rma = await inspected(
        db,
        reason=ReturnReason.NOT_AS_DESCRIBED,
        confirmed=False,
        final_sale=True,
        note="matches the listing photos",
    )
    assert await auto_resolutions(db, merchant_id) == 0
    [overturned] = await events(db, rma.id, "CLAIM_OVERTURNED")
    assert "matches the listing photos" in overturned.message
    with pytest.raises(NotEligible, match="final sale") as refused:
        await resolve(db, merchant_id, rma.id)
    assert refused.value.codes == ("FINAL_SALE",)
    async with db.read_session() as session:
        again = await session.get(Rma, rma.id)
    assert again is not None and again.status is RmaStatus.INSPECTED


async def test_an_overturned_claim_is_priced_as_what_it_really_is(db: Database) -> None:
    merchant_id, rma = await inspected(
        db,
        reason=ReturnReason.DEFECTIVE,
        confirmed=False,
        final_sale=False,
        condition=ItemCondition.USED,
    )
    assert await auto_resolutions(db, merchant_id) == 0
    # The policy's 10% fee on the goods, and no shipping back.
    assert await resolve(db, merchant_id, rma.id) == {
        "amount": 9_000,
        "fee": 1_000,
        "shipping": 0,
    }


async def test_unopened_only_goods_that_arrive_opened_wait_for_staff_and_pay_the_fee(
    db: Database,
) -> None:
    shop = await f.merchant(
        db, auto_resolve=True, unopened_only_categories=["cosmetics"], restocking_fee_percent=20
    )
    order = await f.order(
        db, shop.id, lines=[f.line(quantity=1, unit_price_minor=5_000, category="cosmetics")]
    )
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
            lines=[InspectedLine(rma.lines[0].id, ItemCondition.OPENED, "SCRAP")],
            now=SYSTEM_CLOCK.now(),
        )
    assert await auto_resolutions(db, shop.id) == 0
    [flagged] = await events(db, rma.id, "OPENED_UNOPENED_ONLY")
    assert "refuseGoods" in flagged.message
    # Staff may refund it with the policy's fee.
    assert await resolve(db, shop.id, rma.id) == {"amount": 4_000, "fee": 1_000, "shipping": 0}


async def test_unopened_only_goods_that_arrive_unopened_still_settle_by_themselves(
    db: Database,
) -> None:
    shop = await f.merchant(db, auto_resolve=True, unopened_only_categories=["cosmetics"])
    order = await f.order(db, shop.id, lines=[f.line(quantity=1, category="cosmetics")])
    rma = await f.inspected_rma(db, shop.id, order)  # UNOPENED, RESTOCK
    assert rma.status is RmaStatus.INSPECTED
    assert await events(db, rma.id, "OPENED_UNOPENED_ONLY") == []
