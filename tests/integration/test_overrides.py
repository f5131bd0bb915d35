"""Staff change a resolution's price before money moves (issue: staff control the money,
item 1). Before: the policy's price was the only price."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order, Resolution, Rma, RmaEvent
from core.enums import ItemCondition, ResolutionStatus
from core.errors import (
    DomainError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    OverrideNeedsAdmin,
    RefundExceedsPaid,
)
from core.usecases.overrides import Adjustments, LineRefundOverride
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.resolutions import ChosenResolution, resolve_rma
from tests import factories as f


async def opened_return(db: Database, **policy: object) -> tuple[uuid.UUID, Order, Rma]:
    """One of two 40.00 + 10.00 tax units (5.00 shipping), returned opened: the policy keeps
    a 10% fee."""
    shop = await f.merchant(db, restocking_fee_percent=10, **policy)
    order = await f.order(
        db,
        shop.id,
        lines=[f.line(quantity=2, unit_price_minor=4000, tax_minor=2000)],
        shipping_minor=500,
        stripe_paid=False,
    )
    rma = await f.inspected_rma(db, shop.id, order, condition=ItemCondition.OPENED)
    return shop.id, order, rma


async def choose(
    db: Database,
    merchant_id: uuid.UUID,
    rma: Rma,
    adjustments: Adjustments | None,
    *,
    admin: bool = False,
    key: str | None = None,
) -> ChosenResolution:
    async with db.session() as session:
        return await resolve_rma(
            session,
            merchant_id,
            rma.id,
            kind="REFUND",
            actor="staff:desk",
            adjustments=adjustments,
            beyond_agent_limit=admin,
            request_key=key,
            now=SYSTEM_CLOCK.now(),
        )


async def test_an_agent_waives_the_fee_refunds_shipping_and_adds_goodwill_with_a_reason(
    db: Database,
) -> None:
    merchant_id, _order, rma = await opened_return(db, agent_override_limit_minor=2000)
    chosen = await choose(
        db,
        merchant_id,
        rma,
        Adjustments(
            reason="courier damaged the box",
            waive_restocking_fee=True,
            refund_shipping=True,
            goodwill_minor=300,
        ),
    )
    resolution = chosen.resolution
    # Policy: 4000 + 1000 - 400 fee = 4600. Changed: + 400 fee + 500 shipping + 300 goodwill.
    assert resolution.amount_minor == 5800
    assert (resolution.restocking_fee_minor, resolution.shipping_minor) == (0, 500)
    override = resolution.breakdown["override"]
    assert override["quotedMinor"] == 4600 and override["adjustedMinor"] == 5800
    assert override["reason"] == "courier damaged the box"
    async with db.read_session() as session:
        event = (
            await session.exec(
                select(RmaEvent).where(
                    RmaEvent.rma_id == rma.id, RmaEvent.kind == "RESOLUTION_OVERRIDDEN"
                )
            )
        ).one()
    assert "courier damaged the box" in event.message


async def test_a_partial_refund_needs_no_one_and_a_raise_past_the_limit_needs_an_admin(
    db: Database,
) -> None:
    merchant_id, _order, rma = await opened_return(db, agent_override_limit_minor=100)
    line = LineRefundOverride(rma.lines[0].id, 2500)
    lower = Adjustments(reason="a scratch the photos did not show", lines=[line])
    higher = Adjustments(reason="loyal customer", goodwill_minor=101)
    with pytest.raises(OverrideNeedsAdmin):
        await choose(db, merchant_id, rma, higher)
    async with db.read_session() as session:
        assert (await session.get(Rma, rma.id)).status.value == "INSPECTED"  # type: ignore[union-attr]
    by_admin = await choose(db, merchant_id, rma, higher, admin=True)
    assert by_admin.resolution.amount_minor == 4600 + 101

    merchant_id, _order, other = await opened_return(db, agent_override_limit_minor=0)
    partial = await choose(
        db,
        merchant_id,
        other,
        Adjustments(reason=lower.reason, lines=[LineRefundOverride(other.lines[0].id, 2500)]),
    )
    assert partial.resolution.amount_minor == 2500
    [entry] = partial.resolution.breakdown["lines"]
    assert (entry["refundMinor"], entry["adjustmentMinor"]) == (2500, 2500 - 4600)


@pytest.mark.parametrize(
    ("adjustments", "error", "field"),
    [
        (Adjustments(reason=" ", goodwill_minor=1), InvalidInput, "adjustments.reason"),
        (Adjustments(reason="x", goodwill_minor=-1), InvalidInput, "adjustments.goodwillMinor"),
        (Adjustments(reason="x", goodwill_minor=2**31), InvalidInput, "adjustments.goodwillMinor"),
        ("line over price", InvalidInput, "adjustments.lines[0].refundMinor"),
        ("unknown line", NotFound, "adjustments.lines[0].rmaLineId"),
        ("same line twice", InvalidInput, "adjustments.lines"),
    ],
)
async def test_bad_adjustments_are_refused_and_change_nothing(
    db: Database, adjustments: Adjustments | str, error: type[DomainError], field: str
) -> None:
    merchant_id, _order, rma = await opened_return(db, agent_override_limit_minor=10**6)
    line_id = rma.lines[0].id
    if adjustments == "line over price":
        adjustments = Adjustments(reason="x", lines=[LineRefundOverride(line_id, 5001)])
    elif adjustments == "unknown line":
        adjustments = Adjustments(reason="x", lines=[LineRefundOverride(uuid.uuid4(), 1)])
    elif adjustments == "same line twice":
        twice = [LineRefundOverride(line_id, 1), LineRefundOverride(line_id, 2)]
        adjustments = Adjustments(reason="x", lines=twice)
    assert isinstance(adjustments, Adjustments)
    with pytest.raises(error) as caught:
        await choose(db, merchant_id, rma, adjustments)
    assert caught.value.field == field
    async with db.read_session() as session:
        count = len(
            (await session.exec(select(Resolution).where(Resolution.rma_id == rma.id))).all()
        )
    assert count == 0


async def test_twenty_generous_overrides_at_once_never_exceed_what_was_paid(db: Database) -> None:
    shop = await f.merchant(db, agent_override_limit_minor=1000)
    # Two units for 10.00 in all; each return alone may get 4.00 of goodwill, not both.
    order = await f.order(
        db, shop.id, lines=[f.line(quantity=2, unit_price_minor=500)], stripe_paid=False
    )
    first = await f.inspected_rma(db, shop.id, order)
    second = await f.inspected_rma(db, shop.id, order)
    generous = Adjustments(reason="sorry for the wait", goodwill_minor=400)

    async def attempt(index: int) -> ChosenResolution | DomainError:
        rma = first if index % 2 else second
        try:
            return await choose(db, shop.id, rma, generous, key=f"desk-{index}-{rma.id}")
        except DomainError as error:
            return error

    outcomes = await asyncio.gather(*(attempt(index) for index in range(20)))
    made = [o for o in outcomes if isinstance(o, ChosenResolution)]
    assert len(made) == 1
    assert made[0].resolution.amount_minor == 900
    assert all(
        isinstance(o, InvalidTransition | RefundExceedsPaid) for o in outcomes if o not in made
    )
    assert any(isinstance(o, RefundExceedsPaid) for o in outcomes)
    async with db.read_session() as session:
        live = (
            await session.exec(
                select(Resolution.amount_minor).where(
                    Resolution.order_id == order.id,
                    col(Resolution.status).not_in(
                        [ResolutionStatus.FAILED.value, ResolutionStatus.CANCELED.value]
                    ),
                )
            )
        ).all()
    assert sum(live) <= 1000


async def test_the_credit_bonus_a_raise_earns_counts_against_the_limit(db: Database) -> None:
    merchant_id, _order, rma = await opened_return(
        db, agent_override_limit_minor=150, store_credit_bonus_percent=100
    )
    generous = Adjustments(reason="make it right", goodwill_minor=100)  # 200 with the bonus
    async with db.session() as session:
        with pytest.raises(OverrideNeedsAdmin):
            await resolve_rma(
                session,
                merchant_id,
                rma.id,
                kind="STORE_CREDIT",
                actor="staff:desk",
                adjustments=generous,
                now=SYSTEM_CLOCK.now(),
            )


async def test_the_limit_is_the_merchants_current_one_in_its_own_currency(db: Database) -> None:
    merchant_id, _order, rma = await opened_return(db, agent_override_limit_minor=1000)
    async with db.session() as session:
        await update_return_policy(
            session,
            merchant_id,
            PolicyChanges(agent_override_limit_minor=10),
            now=SYSTEM_CLOCK.now(),
        )
    with pytest.raises(OverrideNeedsAdmin):
        await choose(db, merchant_id, rma, Adjustments(reason="x", goodwill_minor=11))

    shop = await f.merchant(db, agent_override_limit_minor=1000)
    euros = await f.order(db, shop.id, currency="EUR", stripe_paid=False)
    abroad = await f.inspected_rma(db, shop.id, euros)
    with pytest.raises(OverrideNeedsAdmin):
        await choose(db, shop.id, abroad, Adjustments(reason="x", goodwill_minor=1))


async def test_lowering_a_price_to_nothing_is_refused(db: Database) -> None:
    merchant_id, _order, rma = await opened_return(db)
    nothing = Adjustments(reason="x", lines=[LineRefundOverride(rma.lines[0].id, 0)])
    with pytest.raises(InvalidInput) as caught:
        await choose(db, merchant_id, rma, nothing)
    assert caught.value.field == "adjustments"


async def test_a_reason_as_long_as_allowed_fits_on_the_timeline_on_both_databases(
    db: Database,
) -> None:
    # The timeline's message adds the amounts to the reason; PostgreSQL refused the longer
    # message where SQLite stored it.
    shop_id, _order, rma = await opened_return(db)
    reason = "r" * 2000
    chosen = await choose(
        db, shop_id, rma, Adjustments(reason=reason, waive_restocking_fee=True), admin=True
    )
    async with db.read_session() as session:
        events = (
            await session.exec(
                select(RmaEvent).where(
                    RmaEvent.rma_id == rma.id, RmaEvent.kind == "RESOLUTION_OVERRIDDEN"
                )
            )
        ).all()
    [event] = events
    assert len(event.message) <= 2000
    assert event.message.endswith("…")
    assert event.data["reason"] == reason
    assert chosen.resolution.breakdown["override"]["reason"] == reason
