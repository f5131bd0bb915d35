"""Warranty claims and store credit priced as the policy says (issue: the policy holds).

Before: a warranty claim refunded shipping and earned the store-credit bonus like any return,
and the restocking fee always came off store credit."""

from __future__ import annotations

import uuid

import pytest

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.enums import ItemCondition, ReturnReason, RmaStatus
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.resolutions import resolve_rma
from core.usecases.review import authorize_rma
from tests import factories as f


async def inspected_claim(
    db: Database,
    merchant_id: uuid.UUID,
    *,
    days_ago: int,
    reason: ReturnReason = ReturnReason.DEFECTIVE,
    condition: ItemCondition = ItemCondition.DAMAGED,
) -> uuid.UUID:
    order = await f.order(
        db,
        merchant_id,
        lines=[f.line(quantity=1, unit_price_minor=10_000)],
        shipping_minor=1_000,
        placed_days_ago=days_ago,
    )
    rma = await f.requested_rma(db, merchant_id, order, reason=reason)
    if rma.status is RmaStatus.NEEDS_REVIEW:
        async with db.session() as session:
            rma = await authorize_rma(
                session, merchant_id, rma.id, actor="staff", now=SYSTEM_CLOCK.now()
            )
    async with db.session() as session:
        await receive_rma(
            session,
            merchant_id,
            rma.id,
            lines=[ReceivedLine(rma.lines[0].id, 1)],
            actor="staff",
            now=SYSTEM_CLOCK.now(),
        )
    async with db.session() as session:
        await inspect_rma(
            session,
            merchant_id,
            rma.id,
            actor="staff",
            lines=[InspectedLine(rma.lines[0].id, condition, "SCRAP", reason_confirmed=True)],
            now=SYSTEM_CLOCK.now(),
        )
    return rma.id


async def priced(
    db: Database, merchant_id: uuid.UUID, rma_id: uuid.UUID, kind: str
) -> dict[str, int]:
    async with db.session() as session:
        chosen = await resolve_rma(
            session, merchant_id, rma_id, kind=kind, actor="staff", now=SYSTEM_CLOCK.now()
        )
    resolution = chosen.resolution
    return {
        "amount": resolution.amount_minor,
        "shipping": resolution.shipping_minor,
        "bonus": resolution.bonus_minor,
        "fee": resolution.restocking_fee_minor,
    }


WARRANTY = {"return_window_days": 30, "warranty_days": 365, "store_credit_bonus_percent": 10}


@pytest.mark.parametrize("kind", ["REFUND", "STORE_CREDIT"])
async def test_a_warranty_claim_gets_neither_shipping_nor_bonus_by_default(
    db: Database, kind: str
) -> None:
    shop = await f.merchant(db, **WARRANTY)
    rma_id = await inspected_claim(db, shop.id, days_ago=90)
    assert await priced(db, shop.id, rma_id, kind) == {
        "amount": 10_000,
        "shipping": 0,
        "bonus": 0,
        "fee": 0,
    }


async def test_a_policy_may_give_warranty_claims_shipping_and_bonus(db: Database) -> None:
    shop = await f.merchant(
        db, **WARRANTY, warranty_refunds_shipping=True, warranty_credit_bonus=True
    )
    rma_id = await inspected_claim(db, shop.id, days_ago=90)
    assert await priced(db, shop.id, rma_id, "STORE_CREDIT") == {
        "amount": 12_100,  # 10,000 + 1,000 shipping, and 10% of that as bonus
        "shipping": 1_000,
        "bonus": 1_100,
        "fee": 0,
    }


async def test_the_same_defect_within_the_window_gets_shipping_and_bonus(db: Database) -> None:
    shop = await f.merchant(db, **WARRANTY)
    rma_id = await inspected_claim(db, shop.id, days_ago=5)
    assert await priced(db, shop.id, rma_id, "STORE_CREDIT") == {
        "amount": 12_100,
        "shipping": 1_000,
        "bonus": 1_100,
        "fee": 0,
    }


@pytest.mark.parametrize(("fee_on_credit", "fee"), [(True, 1_000), (False, 0)])
async def test_the_policy_says_whether_the_restocking_fee_comes_off_store_credit(
    db: Database, fee_on_credit: bool, fee: int
) -> None:
    shop = await f.merchant(
        db, restocking_fee_percent=10, restocking_fee_on_store_credit=fee_on_credit
    )
    rma_id = await inspected_claim(
        db, shop.id, days_ago=5, reason=ReturnReason.UNWANTED, condition=ItemCondition.OPENED
    )
    result = await priced(db, shop.id, rma_id, "STORE_CREDIT")
    assert result["fee"] == fee and result["amount"] == 10_000 - fee
