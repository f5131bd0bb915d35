"""How requests, receiving, inspection and resolutions behave, through the use cases."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order, OrderLine, Resolution, Rma, Shipment, StoreCreditEntry
from core.enums import ItemCondition, ResolutionStatus, ReturnReason, RmaStatus
from core.errors import Conflict, NotEligible, RefundExceedsPaid
from core.rules.numbers import parse_rma_number
from core.rules.policy import EligibilityCode
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import (
    ReceivedLine,
    UnauthorizedLine,
    receive_rma,
    receive_unauthorized,
    record_shipment,
)
from core.usecases.orders import CustomerInput, OrderInput, upsert_order
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.requests import ReturnLineInput, order_eligibility, request_rma
from core.usecases.resolutions import (
    record_resolution_outcome,
    resolve_rma,
    store_credit_balance,
)
from core.usecases.review import authorize_rma, expire_authorizations
from tests import factories as f


async def test_an_eligible_request_is_authorized_at_once_and_keeps_its_policy_version(
    db: Database,
) -> None:
    shop = await f.merchant(db)  # version 1: the default policy authorizes automatically
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)

    assert rma.status is RmaStatus.AUTHORIZED
    assert parse_rma_number(rma.number) == rma.number
    assert rma.policy_version == 1
    assert rma.decision["lines"][str(order.lines[0].id)]["codes"] == ["WITHIN_WINDOW"]
    assert rma.authorization_expires_at == f.NOW + timedelta(days=14)

    async with db.session() as session:
        await update_return_policy(
            session, shop.id, PolicyChanges(return_window_days=60), now=SYSTEM_CLOCK.now()
        )
    async with db.read_session() as session:
        stored = await session.get(Rma, rma.id)
    assert stored is not None
    assert stored.policy_version == 1


async def test_without_automatic_authorization_the_request_waits_for_staff(db: Database) -> None:
    shop = await f.merchant(db, auto_authorize=False)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    assert rma.status is RmaStatus.REQUESTED
    async with db.session() as session:
        authorized = await authorize_rma(session, shop.id, rma.id, actor=f.STAFF, now=f.NOW)
    assert authorized.status is RmaStatus.AUTHORIZED
    assert authorized.policy_version == 2


async def test_a_defect_reported_after_the_window_is_a_warranty_claim_for_review(
    db: Database,
) -> None:
    shop = await f.merchant(db, warranty_days=365)
    order = await f.order(db, shop.id, placed_days_ago=100)
    rma = await f.requested_rma(
        db, shop.id, order, reason=ReturnReason.DEFECTIVE, condition=ItemCondition.USED
    )
    assert rma.status is RmaStatus.NEEDS_REVIEW
    assert "WARRANTY_ONLY" in rma.lines[0].eligibility_codes
    with pytest.raises(NotEligible) as refused:
        await f.requested_rma(db, shop.id, order, reason=ReturnReason.STYLE)
    assert EligibilityCode.REASON_NOT_ACCEPTED in refused.value.codes


async def test_opened_software_cannot_be_returned_unless_defective(db: Database) -> None:
    shop = await f.merchant(db, unopened_only_categories=["software"])
    order = await f.order(db, shop.id, lines=[f.line(category="Software")])
    with pytest.raises(NotEligible) as refused:
        await f.requested_rma(db, shop.id, order, condition=ItemCondition.OPENED)
    assert refused.value.codes == (EligibilityCode.WITHIN_WINDOW, EligibilityCode.MUST_BE_UNOPENED)
    rma = await f.requested_rma(
        db, shop.id, order, reason=ReturnReason.DEFECTIVE, condition=ItemCondition.OPENED
    )
    assert rma.status is RmaStatus.AUTHORIZED


async def test_units_on_earlier_returns_are_not_returnable_again(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id, lines=[f.line(quantity=3)])
    await f.requested_rma(db, shop.id, order, quantity=2)
    async with db.read_session() as session:
        _order, _policy, decisions = await order_eligibility(session, shop.id, order.id, now=f.NOW)
    assert decisions[0].eligibility.max_quantity == 1
    assert EligibilityCode.ALREADY_RETURNED in decisions[0].eligibility.codes
    await f.requested_rma(db, shop.id, order, quantity=1)
    async with db.read_session() as session:
        _order, _policy, decisions = await order_eligibility(session, shop.id, order.id, now=f.NOW)
    assert not decisions[0].eligibility.eligible


async def test_a_clashing_rma_number_is_drawn_again(db: Database) -> None:
    shop = await f.merchant(db)
    first_order = await f.order(db, shop.id)
    second_order = await f.order(db, shop.id)
    draws = itertools.chain([12345, 12345, 67890])

    async def request(order: Order) -> Rma:
        async with db.session() as session:
            return await request_rma(
                session,
                shop.id,
                order_id=order.id,
                actor="c",
                now=f.NOW,
                lines=[ReturnLineInput(order.lines[0].id, 1, "COLOR")],
                number_source=lambda: next(draws),
            )

    first = await request(first_order)
    second = await request(second_order)
    assert first.number != second.number
    assert next(draws, None) is None, "the clash should have used the third draw"


async def test_a_parcel_recorded_twice_is_one_shipment(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    for typed in ("1z 999 aa1 01234 56784", "1Z999AA10123456784"):
        async with db.session() as session:
            await record_shipment(
                session,
                shop.id,
                rma.id,
                carrier="ups",
                tracking_number=typed,
                actor="c",
                now=SYSTEM_CLOCK.now(),
            )
    async with db.read_session() as session:
        shipments = (await session.exec(select(Shipment).where(Shipment.rma_id == rma.id))).all()
    assert len(shipments) == 1
    assert shipments[0].tracking_url == "https://www.ups.com/track?tracknum=1Z999AA10123456784"


async def test_partial_receipt_is_priced_for_what_arrived(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id, lines=[f.line(quantity=3, unit_price_minor=1000)])
    rma = await f.requested_rma(db, shop.id, order, quantity=3)
    async with db.session() as session:
        await receive_rma(
            session,
            shop.id,
            rma.id,
            lines=[ReceivedLine(rma.lines[0].id, 2)],
            actor=f.STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    async with db.session() as session:
        await inspect_rma(
            session,
            shop.id,
            rma.id,
            actor=f.STAFF,
            lines=[InspectedLine(rma.lines[0].id, "UNOPENED", "RESTOCK")],
            now=SYSTEM_CLOCK.now(),
        )
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind="REFUND", actor=f.STAFF, now=SYSTEM_CLOCK.now()
        )
    assert chosen.resolution.amount_minor == 2000
    assert chosen.resolution.provider.value == "stripe"


async def test_unauthorized_goods_are_recorded_at_received_and_pay_the_restocking_fee(
    db: Database,
) -> None:
    shop = await f.merchant(db, restocking_fee_percent=15)
    order = await f.order(db, shop.id, lines=[f.line(quantity=1, unit_price_minor=10000)])
    async with db.session() as session:
        rma = await receive_unauthorized(
            session,
            shop.id,
            order_id=order.id,
            actor=f.STAFF,
            lines=[UnauthorizedLine(order.lines[0].id, 1, "UNOPENED", "UNWANTED")],
            now=SYSTEM_CLOCK.now(),
        )
    assert rma.status is RmaStatus.RECEIVED
    assert rma.unauthorized
    async with db.session() as session:
        await inspect_rma(
            session,
            shop.id,
            rma.id,
            actor=f.STAFF,
            lines=[InspectedLine(rma.lines[0].id, "UNOPENED", "RESTOCK")],
            now=SYSTEM_CLOCK.now(),
        )
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind="REFUND", actor=f.STAFF, now=SYSTEM_CLOCK.now()
        )
    assert chosen.resolution.restocking_fee_minor == 1500
    assert chosen.resolution.amount_minor == 8500


async def test_store_credit_adds_the_bonus_and_lands_in_the_ledger_once(db: Database) -> None:
    shop = await f.merchant(db, store_credit_bonus_percent=10)
    order = await f.order(db, shop.id, lines=[f.line(quantity=1, unit_price_minor=4999)])
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind="STORE_CREDIT", actor=f.STAFF, now=SYSTEM_CLOCK.now()
        )
    assert chosen.resolution.bonus_minor == 499
    assert chosen.resolution.amount_minor == 5498
    for _ in range(2):
        async with db.session() as session:
            await record_resolution_outcome(
                session,
                shop.id,
                chosen.resolution.id,
                succeeded=True,
                actor="system",
                now=SYSTEM_CLOCK.now(),
            )
    async with db.read_session() as session:
        balance = await store_credit_balance(session, shop.id, rma.customer_id)
        entries = (
            await session.exec(
                select(sa.func.count()).where(StoreCreditEntry.customer_id == rma.customer_id)
            )
        ).one()
        stored = await session.get(Rma, rma.id)
    assert balance == {"USD": 5498}
    assert entries == 1
    assert stored is not None
    assert stored.status is RmaStatus.RESOLVED
    with pytest.raises(Conflict):
        async with db.session() as session:
            await record_resolution_outcome(
                session,
                shop.id,
                chosen.resolution.id,
                succeeded=False,
                actor="system",
                failure_reason="too late",
                now=SYSTEM_CLOCK.now(),
            )


async def test_a_failed_refund_sends_the_rma_back_to_inspected_for_another_choice(
    db: Database,
) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        first = await resolve_rma(
            session, shop.id, rma.id, kind="REFUND", actor=f.STAFF, now=SYSTEM_CLOCK.now()
        )
    async with db.session() as session:
        failed = await record_resolution_outcome(
            session,
            shop.id,
            first.resolution.id,
            succeeded=False,
            actor="system",
            failure_reason="card expired",
            now=SYSTEM_CLOCK.now(),
        )
    assert failed.rma.status is RmaStatus.INSPECTED
    assert failed.resolution.status is ResolutionStatus.FAILED
    async with db.session() as session:
        second = await resolve_rma(
            session, shop.id, rma.id, kind="STORE_CREDIT", actor=f.STAFF, now=SYSTEM_CLOCK.now()
        )
    assert second.resolution.id != first.resolution.id
    assert second.rma.status is RmaStatus.RESOLVING


async def test_a_repeated_resolve_with_the_same_key_returns_the_first_resolution(
    db: Database,
) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.inspected_rma(db, shop.id, order)
    results = []
    for _ in range(3):
        async with db.session() as session:
            results.append(
                await resolve_rma(
                    session,
                    shop.id,
                    rma.id,
                    kind="REFUND",
                    actor=f.STAFF,
                    request_key="k-1",
                    now=SYSTEM_CLOCK.now(),
                )
            )
    assert len({r.resolution.id for r in results}) == 1
    async with db.read_session() as session:
        count = (
            await session.exec(select(sa.func.count()).where(Resolution.rma_id == rma.id))
        ).one()
    assert count == 1
    with pytest.raises(Conflict):
        async with db.session() as session:
            await resolve_rma(
                session,
                shop.id,
                rma.id,
                kind="STORE_CREDIT",
                actor=f.STAFF,
                request_key="k-1",
                now=SYSTEM_CLOCK.now(),
            )


async def test_refunds_on_one_order_never_exceed_what_was_paid(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id, lines=[f.line(quantity=2, unit_price_minor=5000)])
    # The merchant refunded part of the payment elsewhere: only 6000 of 10000 remains captured.
    async with db.session() as session:
        await upsert_order(
            session,
            shop.id,
            OrderInput(
                platform="storefront",
                external_id=order.external_id,
                order_number=order.order_number,
                currency="USD",
                placed_at=order.placed_at,
                delivered_at=order.delivered_at,
                customer=CustomerInput(email="p@example.com"),
                lines=[f.line(quantity=2, unit_price_minor=5000)],
                payments=[f.PaymentInput("stripe", order.payments[0].reference, 6000, "USD")],
            ),
            now=SYSTEM_CLOCK.now(),
        )
    first = await f.inspected_rma(db, shop.id, order)
    second = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        await resolve_rma(
            session, shop.id, first.id, kind="REFUND", actor=f.STAFF, now=SYSTEM_CLOCK.now()
        )
    with pytest.raises(RefundExceedsPaid):
        async with db.session() as session:
            await resolve_rma(
                session, shop.id, second.id, kind="REFUND", actor=f.STAFF, now=SYSTEM_CLOCK.now()
            )
    async with db.read_session() as session:
        stored = await session.get(Rma, second.id)
    assert stored is not None
    assert stored.status is RmaStatus.INSPECTED


async def test_authorizations_not_shipped_in_time_expire(db: Database) -> None:
    shop = await f.merchant(db, authorization_valid_days=7)
    order = await f.order(db, shop.id)
    stale = await f.requested_rma(db, shop.id, order)
    later = f.NOW + timedelta(days=8)
    async with db.session() as session:
        await expire_authorizations(session, now=later)
    async with db.read_session() as session:
        stored = await session.get(Rma, stale.id)
    assert stored is not None
    assert stored.status is RmaStatus.EXPIRED


async def test_syncing_the_same_order_again_changes_nothing(db: Database) -> None:
    shop = await f.merchant(db)
    data = OrderInput(
        platform="shopify",
        external_id="gid-450789469",
        order_number="#1001",
        currency="JPY",
        placed_at=f.NOW,
        customer=CustomerInput(email="Bob@Example.com", name="Bob"),
        lines=[f.line("L1", unit_price_minor=1200), f.line("L2", unit_price_minor=800)],
    )
    ids = []
    for _ in range(3):
        async with db.session() as session:
            order = await upsert_order(session, shop.id, data, now=SYSTEM_CLOCK.now())
        ids.append((order.id, tuple(line.id for line in order.lines)))
    assert len(set(ids)) == 1
    async with db.read_session() as session:
        lines = (await session.exec(select(OrderLine).where(OrderLine.order_id == ids[0][0]))).all()
    assert len(lines) == 2
    assert order.currency == "JPY"
