"""Refunds through the real stripe package and the fake Stripe: exactly once, whatever happens."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Customer, Job, Resolution, Rma, RmaEvent, StoreCreditEntry
from core.enums import (
    JobState,
    PaymentProviderName,
    ResolutionStatus,
    RmaStatus,
    StoreCreditKind,
)
from core.errors import DomainError, RefundExceedsPaid
from core.jobs import failpoints
from core.ports.payments import RefundReport, RefundStatus
from core.usecases.money_movement import retry_resolution
from core.usecases.orders import CustomerInput, OrderInput, OrderLineInput, upsert_order
from core.usecases.provider_reports import record_provider_refund
from core.usecases.resolutions import resolve_rma, store_credit_balance
from testkit.fakes import FakeStripe
from tests.integration.money_world import World, fake_stripe, make_world, money_db, money_url

__all__ = ["fake_stripe", "money_db", "money_url"]

CRASH_POINTS = [
    "refund.after_claim",
    "refund.after_attempt_recorded",
    "refund.after_provider_answered",
    "refund.before_job_acknowledged",
]


async def resolution_of(world: World, rma_id: object) -> Resolution:
    async with world.db.read_session() as session:
        rows = (await session.exec(select(Resolution).where(Resolution.rma_id == rma_id))).all()
    assert len(rows) == 1
    return rows[0]


async def status_of(world: World, rma_id: object) -> RmaStatus:
    async with world.db.read_session() as session:
        rma = await session.get(Rma, rma_id)
    assert rma is not None
    return rma.status


async def test_a_refund_is_made_once_with_the_stored_key_and_settles_the_rma(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    chosen = await world.choose_refund()
    rma = chosen.rma
    await world.run_jobs()

    [refund] = fake_stripe.refunds(world.account)
    assert refund["amount"] == chosen.resolution.amount_minor
    assert refund["metadata"] == {
        "merchant_id": str(world.merchant_id),
        "rma_number": rma.number,
        "resolution_id": str(chosen.resolution.id),
    }
    creates = [
        request
        for request in fake_stripe.requests_for("/v1/refunds", "POST")
        if request.account_id == world.account.id
    ]
    assert {request.idempotency_key for request in creates} == {chosen.resolution.idempotency_key}
    stored = await resolution_of(world, rma.id)
    assert stored.status is ResolutionStatus.SUCCEEDED
    assert stored.provider_reference == refund["id"]
    assert await status_of(world, rma.id) is RmaStatus.RESOLVED
    async with world.db.read_session() as session:
        money_events = (
            await session.exec(
                select(RmaEvent).where(
                    RmaEvent.rma_id == rma.id, RmaEvent.to_status == RmaStatus.RESOLVED
                )
            )
        ).all()
    assert money_events[0].data["providerReference"] == refund["id"]
    assert money_events[0].data["amountMinor"] == chosen.resolution.amount_minor


async def test_fifty_concurrent_resolves_make_one_refund(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    rma = await world.inspected()

    async def resolve(index: int) -> object:
        try:
            async with world.db.session() as session:
                return (
                    await resolve_rma(
                        session,
                        world.merchant_id,
                        rma.id,
                        kind="REFUND",
                        actor="s",
                        request_key=f"client-{index % 5}" if index % 2 else None,
                        now=SYSTEM_CLOCK.now(),
                    )
                ).resolution.id
        except DomainError as error:
            return error

    results = await asyncio.gather(*(resolve(index) for index in range(50)))
    resolutions = {result for result in results if not isinstance(result, DomainError)}
    assert len(resolutions) == 1, results
    assert all(isinstance(r, DomainError) for r in results if r not in resolutions)
    await world.run_jobs()
    assert len(fake_stripe.refunds(world.account)) == 1


async def test_partial_refunds_adding_up_to_150_percent_never_exceed_what_was_captured(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    # Twenty lines of 1,000 with only 13,334 captured: returning them all would be 150 %.
    order = await world.paid_order(amount_minor=20_000, captured_minor=13_334, lines=20)
    rmas = []
    for line in order.lines:
        rma = await world.inspected_one_line(order, line.id)
        rmas.append(rma)

    async def resolve(rma: Rma) -> object:
        try:
            async with world.db.session() as session:
                return await resolve_rma(
                    session,
                    world.merchant_id,
                    rma.id,
                    kind="REFUND",
                    actor="s",
                    now=SYSTEM_CLOCK.now(),
                )
        except RefundExceedsPaid as error:
            return error

    results = await asyncio.gather(*(resolve(rma) for rma in rmas))
    accepted = [r for r in results if not isinstance(r, RefundExceedsPaid)]
    assert len(accepted) == 13
    assert all(isinstance(r, RefundExceedsPaid) for r in results if r not in accepted)
    await world.run_jobs()
    refunded = sum(refund["amount"] for refund in fake_stripe.refunds(world.account))
    assert refunded == 13_000
    assert refunded <= 13_334


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_worker_dying_at_any_step_never_refunds_twice(
    money_db: Database, fake_stripe: FakeStripe, point: str
) -> None:
    world = await make_world(money_db, fake_stripe)
    rmas = []
    for _ in range(25):
        rma = (await world.choose_refund()).rma
        rmas.append(rma)
        failpoints.arm(point)
        with pytest.raises(failpoints.Crash):
            await world.worker(concurrency=1).run_until_idle(within_seconds=60)
        # The worker is gone; another starts after its leases ran out.
        await world.restart_after_crash()
    refunds = fake_stripe.refunds(world.account)
    assert len(refunds) == 25
    assert len({refund["metadata"]["resolution_id"] for refund in refunds}) == 25
    for rma in rmas:
        assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
        assert await status_of(world, rma.id) is RmaStatus.RESOLVED


async def test_a_connection_dropped_after_the_refund_three_times_still_makes_one_refund(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    chosen = await world.choose_refund()
    rma = chosen.rma
    fake_stripe.clear_requests()
    fake_stripe.inject("drop_after_execute", times=3, account=world.account)
    await world.run_jobs()
    assert len(fake_stripe.refunds(world.account)) == 1
    creates = [
        request
        for request in fake_stripe.requests_for("/v1/refunds", "POST")
        if request.account_id == world.account.id
    ]
    assert len(creates) >= 3
    assert {request.idempotency_key for request in creates} == {chosen.resolution.idempotency_key}
    stored = await resolution_of(world, rma.id)
    assert stored.status is ResolutionStatus.SUCCEEDED
    assert stored.attempts >= 2


async def test_a_key_stripe_rejects_fails_the_resolution_readably_and_moves_no_money(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    rma = (await world.choose_refund()).rma
    fake_stripe.inject("401", times=10, account=world.account)
    await world.run_jobs()
    stored = await resolution_of(world, rma.id)
    assert stored.status is ResolutionStatus.FAILED
    assert stored.failure_reason and stored.failure_reason.startswith("stripe refused the refund")
    assert fake_stripe.refunds(world.account) == []
    assert await status_of(world, rma.id) is RmaStatus.INSPECTED


async def test_a_replayed_server_error_ends_in_review_never_in_a_second_refund(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    rma = (await world.choose_refund()).rma
    # Stripe saves the 500 under the key and replays it on every retry with that key.
    fake_stripe.inject("500", times=1, account=world.account, should_retry=False)
    for _ in range(20):
        await world.run_jobs()
        stored = await resolution_of(world, rma.id)
        if stored.status is ResolutionStatus.REQUIRES_REVIEW:
            break
        async with world.db.session() as session, session.begin():
            # Let the backoff pass at once instead of waiting for it.
            await session.exec(
                sa.update(Job).where(col(Job.state) == JobState.QUEUED).values(run_at=sa.func.now())
            )
    assert stored.status is ResolutionStatus.REQUIRES_REVIEW
    assert fake_stripe.refunds(world.account) == []
    assert await status_of(world, rma.id) is RmaStatus.RESOLVING
    assert json.dumps(stored.failure_reason).count("check the provider") == 1


async def test_store_credit_is_mirrored_to_the_stripe_customer_balance_once(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, store_credit_bonus_percent=10)
    stripe_customer = fake_stripe.create_customer(world.account, email="credit@example.com")
    order = await world.paid_order(amount_minor=2000)
    async with world.db.session() as session, session.begin():
        customer = await session.get(Customer, order.customer_id)
        assert customer is not None
        customer.stripe_customer_id = stripe_customer
        session.add(customer)
    rma = await world.inspected(order)
    async with world.db.session() as session:
        chosen = await resolve_rma(
            session,
            world.merchant_id,
            rma.id,
            kind="STORE_CREDIT",
            actor="s",
            now=SYSTEM_CLOCK.now(),
        )
    await world.run_jobs()
    await world.run_jobs()
    [transaction] = fake_stripe.balance_transactions(world.account, stripe_customer)
    assert transaction["amount"] == -2200
    assert fake_stripe.customer(stripe_customer)["balance"] == -2200
    stored = await resolution_of(world, rma.id)
    assert stored.status is ResolutionStatus.SUCCEEDED
    assert stored.breakdown["mirroredAs"] == transaction["id"]
    assert stored.amount_minor == chosen.resolution.amount_minor == 2200
    assert fake_stripe.refunds(world.account) == []
    # Spendable in one place: the ledger records the move, and nothing is left to spend here.
    async with world.db.read_session() as session:
        moved = (
            await session.exec(
                select(StoreCreditEntry).where(
                    StoreCreditEntry.customer_id == order.customer_id,
                    StoreCreditEntry.kind == StoreCreditKind.TRANSFERRED,
                )
            )
        ).one()
        left = await store_credit_balance(session, world.merchant_id, order.customer_id)
    assert (moved.amount_minor, moved.reference) == (-2200, transaction["id"])
    assert left == {"USD": 0}


async def test_a_refund_sent_back_after_review_is_made_once_stripe_forgot_the_key(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    rma = (await world.choose_refund()).rma
    fake_stripe.inject("500", times=1, account=world.account, should_retry=False)
    for _ in range(30):
        await world.run_jobs()
        if (await resolution_of(world, rma.id)).status is ResolutionStatus.REQUIRES_REVIEW:
            break
    stored = await resolution_of(world, rma.id)
    assert stored.status is ResolutionStatus.REQUIRES_REVIEW
    # Staff see in Stripe that nothing was refunded; a day later Stripe has forgotten the key.
    fake_stripe.expire_idempotency_keys(older_than=0, account=world.account)
    async with world.db.session() as session:
        await retry_resolution(
            session, world.merchant_id, stored.id, actor="staff:ops", now=SYSTEM_CLOCK.now()
        )
    await world.run_jobs()
    assert len(fake_stripe.refunds(world.account)) == 1
    assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
    assert await status_of(world, rma.id) is RmaStatus.RESOLVED


async def test_a_refund_that_fails_after_it_succeeded_is_flagged_not_reversed(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    rma = (await world.choose_refund()).rma
    await world.run_jobs()
    [refund] = fake_stripe.refunds(world.account)
    async with world.db.session() as session:
        report = RefundReport(
            provider=PaymentProviderName.STRIPE,
            provider_reference=refund["id"],
            status=RefundStatus.FAILED,
            failure_reason="expired_or_canceled_card",
        )
        await record_provider_refund(session, world.merchant_id, report, now=SYSTEM_CLOCK.now())
    assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
    async with world.db.read_session() as session:
        flagged = (
            await session.exec(
                select(RmaEvent).where(
                    RmaEvent.rma_id == rma.id, RmaEvent.kind == "PROVIDER_DISAGREES"
                )
            )
        ).all()
    assert len(flagged) == 1
    assert flagged[0].data["reported"] == "failed"


async def test_a_resync_that_drops_the_payment_cannot_turn_an_unclear_refund_into_two(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order = await world.paid_order(amount_minor=10_000, lines=2)
    rma = await world.inspected_one_line(order, order.lines[0].id)
    async with world.db.session() as session:
        await resolve_rma(
            session, world.merchant_id, rma.id, kind="REFUND", actor="s", now=SYSTEM_CLOCK.now()
        )
    # The refund is made but the answer is lost; then the storefront pushes the order without
    # its payment. The resolution still knows where its money goes.
    fake_stripe.inject("drop_after_execute", times=3, account=world.account)
    first = world.worker(concurrency=1)
    await first.run_until_idle(within_seconds=60)
    async with world.db.session() as session:
        await upsert_order(
            session,
            world.merchant_id,
            OrderInput(
                platform="storefront",
                external_id=order.external_id,
                order_number=order.order_number,
                currency="USD",
                placed_at=order.placed_at,
                delivered_at=order.delivered_at,
                customer=CustomerInput(email=await world.email_of(order)),
                lines=[
                    OrderLineInput(line.external_id, line.title, 1, line.unit_price_minor)
                    for line in order.lines
                ],
            ),
            now=SYSTEM_CLOCK.now(),
        )
    await world.run_jobs()
    assert len(fake_stripe.refunds(world.account)) == 1
    assert (await resolution_of(world, rma.id)).status is ResolutionStatus.SUCCEEDED
