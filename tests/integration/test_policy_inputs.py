"""Policy inputs that make no sense are refused with a field error and change nothing, and
eligibility says which reasons a request will accept (issue: the policy holds)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.enums import ReturnReason
from core.errors import InvalidInput, NotEligible
from core.usecases.owned_rows import current_policy
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.requests import ReturnLineInput, order_eligibility, request_rma
from tests import factories as f


async def change(db: Database, merchant_id: object, **changes: object) -> None:
    async with db.session() as session:
        await update_return_policy(
            session,
            merchant_id,  # type: ignore[arg-type]
            PolicyChanges(**changes),  # type: ignore[arg-type]
            now=SYSTEM_CLOCK.now(),
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"return_window_days": 0}, "return_window_days"),
        ({"return_window_days": 366}, "return_window_days"),
        ({"return_window_days": 30, "warranty_days": 10}, "warranty_days"),
        ({"restocking_fee_percent": -1}, "restocking_fee_percent"),
        ({"restocking_fee_percent": 101}, "restocking_fee_percent"),
        ({"store_credit_bonus_percent": 101}, "store_credit_bonus_percent"),
    ],
)
async def test_policy_inputs_that_make_no_sense_are_refused(
    db: Database, changes: dict[str, object], field: str
) -> None:
    shop = await f.merchant(db)
    async with db.read_session() as session:
        before = (await current_policy(session, shop.id)).version
    with pytest.raises(InvalidInput) as refused:
        await change(db, shop.id, **changes)
    assert refused.value.field == field
    async with db.read_session() as session:
        assert (await current_policy(session, shop.id)).version == before


async def test_a_window_may_not_outgrow_the_warranty_already_set(db: Database) -> None:
    shop = await f.merchant(db, return_window_days=30, warranty_days=90)
    with pytest.raises(InvalidInput, match="ends before"):
        await change(db, shop.id, return_window_days=120)
    await change(db, shop.id, return_window_days=90)  # as long as the warranty: fine
    await change(db, shop.id, warranty_days=0, return_window_days=365)


async def test_eligibility_under_warranty_accepts_only_defects(db: Database) -> None:
    shop = await f.merchant(db, return_window_days=30, warranty_days=365)
    order = await f.order(db, shop.id, placed_days_ago=90, delivered=False)
    final = await f.order(db, shop.id, lines=[f.line(tags=["final-sale"])])
    await change(db, shop.id, final_sale_tags=["final-sale"])
    async with db.read_session() as session:
        _o, _p, [line] = await order_eligibility(session, shop.id, order.id, now=SYSTEM_CLOCK.now())
        _o, _p, [final_line] = await order_eligibility(
            session, shop.id, final.id, now=SYSTEM_CLOCK.now()
        )
    assert line.eligibility.accepted_reasons == (ReturnReason.DEFECTIVE,)
    assert set(final_line.eligibility.accepted_reasons) == {
        ReturnReason.DEFECTIVE,
        ReturnReason.WRONG_ITEM,
        ReturnReason.NOT_AS_DESCRIBED,
    }
    # What eligibility says is what a request gets.
    with pytest.raises(NotEligible):
        async with db.session() as session:
            await request_rma(
                session,
                shop.id,
                order_id=order.id,
                lines=[ReturnLineInput(order.lines[0].id, 1, "SIZE_TOO_SMALL", "UNOPENED")],
                actor="customer:test",
                now=SYSTEM_CLOCK.now() + timedelta(seconds=1),
            )
