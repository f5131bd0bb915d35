"""Refunds of orders paid several ways (issue: staff control the money, item 2).

Before: the whole refund went to the order's largest Stripe payment, which Stripe refused
(``amount_too_large``) on every retry. Now each payment gets its share back, the last payment
first, each share exactly once and never more than that payment took.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order, Resolution, Rma
from core.enums import PaymentProviderName, ResolutionKind, ResolutionStatus, RmaStatus
from core.errors import DomainError
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.money_movement import retry_resolution
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import (
    complete_manual_refund,
    resolve_rma,
    store_credit_balance,
)
from core.usecases.store_credit import redeem_store_credit
from testkit.fakes import FakeStripe
from tests import factories as f
from tests.integration.money_world import World, fake_stripe, make_world, money_db, money_url

__all__ = ["fake_stripe", "money_db", "money_url"]

NOW = SYSTEM_CLOCK.now


async def split_order(
    world: World,
    payments: list[tuple[PaymentProviderName, int]],
    *,
    lines: int = 2,
    email: str | None = None,
) -> tuple[Order, list[str]]:
    """An order of ``lines`` lines paid with ``payments`` in that order; Stripe payments are
    real charges at the fake. Returns the order and each payment's reference."""
    total = sum(amount for _, amount in payments)
    references = []
    for provider, amount in payments:
        if provider is PaymentProviderName.STRIPE:
            intent, _charge = world.fake.create_payment(world.account, amount, "usd")
            references.append(intent)
        else:
            references.append(f"{provider.value}-{uuid.uuid4().hex[:10]}")
    async with world.db.session() as session:
        order = await upsert_order(
            session,
            world.merchant_id,
            OrderInput(
                platform="storefront",
                external_id=uuid.uuid4().hex,
                order_number=f"#{uuid.uuid4().hex[:6]}",
                currency="USD",
                placed_at=f.NOW,
                delivered_at=f.NOW,
                customer=CustomerInput(email=email or f"{uuid.uuid4().hex[:8]}@example.com"),
                lines=[
                    OrderLineInput(f"L{index}", f"Item {index}", 1, total // lines)
                    for index in range(lines)
                ],
                payments=[
                    PaymentInput(provider, reference, amount, "USD")
                    for (provider, amount), reference in zip(payments, references, strict=True)
                ],
            ),
            now=NOW(),
        )
    return order, references


async def inspected(world: World, order: Order, line_indexes: list[int]) -> Rma:
    async with world.db.session() as session:
        rma = await request_rma(
            session,
            world.merchant_id,
            order_id=order.id,
            actor="customer",
            now=f.NOW,
            lines=[
                ReturnLineInput(order.lines[index].id, 1, "SIZE_TOO_SMALL", "UNOPENED")
                for index in line_indexes
            ],
        )
    async with world.db.session() as session:
        rma = await receive_rma(
            session,
            world.merchant_id,
            rma.id,
            actor="staff",
            lines=[ReceivedLine(line.id, 1) for line in rma.lines],
            now=NOW(),
        )
    async with world.db.session() as session:
        return await inspect_rma(
            session,
            world.merchant_id,
            rma.id,
            actor="staff",
            lines=[InspectedLine(line.id, "UNOPENED", "RESTOCK") for line in rma.lines],
            now=NOW(),
        )


async def resolve(world: World, rma: Rma, kind: str = "REFUND") -> Resolution:
    async with world.db.session() as session:
        chosen = await resolve_rma(
            session, world.merchant_id, rma.id, kind=kind, actor="staff", now=NOW()
        )
    return chosen.resolution


async def parts(world: World, rma: Rma) -> list[Resolution]:
    async with world.db.read_session() as session:
        rows = await session.exec(
            select(Resolution)
            .where(Resolution.rma_id == rma.id)
            .order_by(col(Resolution.created_at), col(Resolution.part))
        )
        return list(rows.all())


async def status_of(world: World, rma: Rma) -> RmaStatus:
    async with world.db.read_session() as session:
        found = await session.get(Rma, rma.id)
    assert found is not None
    return found.status


def refunded_per_intent(world: World) -> dict[str, int]:
    """What the fake Stripe refunded on each payment intent (succeeded refunds only)."""
    totals: dict[str, int] = {}
    for refund in world.fake.refunds(world.account):
        if refund["status"] == "succeeded":
            intent = refund["payment_intent"]
            totals[intent] = totals.get(intent, 0) + refund["amount"]
    return totals


async def test_two_card_payments_are_refunded_each_once_last_payment_first(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order, (first, second) = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.STRIPE, 2000)]
    )
    rma = await inspected(world, order, [0, 1])
    chosen = await resolve(world, rma)

    [zero, one] = await parts(world, rma)
    assert (zero.part, zero.payment_reference, zero.amount_minor) == (0, second, 2000)
    assert (one.part, one.payment_reference, one.amount_minor) == (1, first, 3000)
    assert one.group_id == zero.id == chosen.id
    await world.run_jobs()
    await world.run_jobs()  # nothing is sent again

    assert refunded_per_intent(world) == {first: 3000, second: 2000}
    keys = {
        request.idempotency_key
        for request in fake_stripe.requests_for("/v1/refunds", "POST")
        if request.account_id == world.account.id
    }
    assert keys == {zero.idempotency_key, one.idempotency_key}
    assert [part.status for part in await parts(world, rma)] == [ResolutionStatus.SUCCEEDED] * 2
    assert await status_of(world, rma) is RmaStatus.RESOLVED


async def test_later_returns_take_what_each_payment_has_left(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order, (first, second) = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.STRIPE, 2000)]
    )
    one = await inspected(world, order, [0])
    await resolve(world, one)
    await world.run_jobs()
    assert refunded_per_intent(world) == {second: 2000, first: 500}

    other = await inspected(world, order, [1])
    await resolve(world, other)
    await world.run_jobs()
    # The second payment was used up: the rest comes off the first, and no more than it took.
    assert refunded_per_intent(world) == {second: 2000, first: 3000}
    assert await status_of(world, other) is RmaStatus.RESOLVED


async def test_store_credit_spent_here_comes_back_to_the_ledger(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    # The customer earns 1000 of credit with a first return...
    earned_on, _ = await split_order(
        world, [(PaymentProviderName.STRIPE, 1000)], lines=1, email=email
    )
    await resolve(world, await inspected(world, earned_on, [0]), kind="STORE_CREDIT")
    await world.run_jobs()
    customer = earned_on.customer_id
    # ...and spends it at checkout, with a card for the rest.
    async with world.db.session() as session:
        spent = await redeem_store_credit(
            session,
            world.merchant_id,
            customer,
            amount_minor=1000,
            currency="USD",
            reference="checkout",
            idempotency_key=uuid.uuid4().hex,
            actor="staff:checkout",
            now=NOW(),
        )
    order, (card, _ledger) = await split_order(
        world,
        [(PaymentProviderName.STRIPE, 4000), (PaymentProviderName.LEDGER, 1000)],
        email=email,
    )
    assert order.customer_id == customer
    assert spent.balance_minor == 0

    rma = await inspected(world, order, [0, 1])
    await resolve(world, rma)
    await world.run_jobs()

    [back, refunded] = await parts(world, rma)
    assert (back.kind, back.provider, back.amount_minor) == (
        ResolutionKind.STORE_CREDIT,
        PaymentProviderName.LEDGER,
        1000,
    )
    assert (refunded.provider, refunded.amount_minor) == (PaymentProviderName.STRIPE, 4000)
    async with world.db.read_session() as session:
        assert await store_credit_balance(session, world.merchant_id, customer) == {"USD": 1000}
    assert refunded_per_intent(world) == {card: 4000}
    assert await status_of(world, rma) is RmaStatus.RESOLVED


async def test_a_gift_card_share_waits_for_staff_or_becomes_store_credit_by_policy(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order, (card, gift) = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.OTHER, 1000)]
    )
    rma = await inspected(world, order, [0, 1])
    await resolve(world, rma)
    await world.run_jobs()
    [by_hand, carded] = await parts(world, rma)
    assert (by_hand.provider, by_hand.payment_reference, by_hand.status) == (
        PaymentProviderName.MANUAL,
        gift,
        ResolutionStatus.PENDING,
    )
    assert carded.status is ResolutionStatus.SUCCEEDED
    assert refunded_per_intent(world) == {card: 3000}
    # The card's share is back, the gift card's is not: the RMA waits for staff.
    assert await status_of(world, rma) is RmaStatus.RESOLVING
    async with world.db.session() as session:
        await complete_manual_refund(
            session,
            world.merchant_id,
            by_hand.id,
            reference="gift card GC-1 reloaded",
            actor="staff",
            now=NOW(),
        )
    assert await status_of(world, rma) is RmaStatus.RESOLVED

    credit_world = await make_world(money_db, fake_stripe, non_card_refunds_as_store_credit=True)
    order, (card, _gift) = await split_order(
        credit_world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.OTHER, 1000)]
    )
    rma = await inspected(credit_world, order, [0, 1])
    await resolve(credit_world, rma)
    await credit_world.run_jobs()
    [credit, carded] = await parts(credit_world, rma)
    assert (credit.kind, credit.status) == (
        ResolutionKind.STORE_CREDIT,
        ResolutionStatus.SUCCEEDED,
    )
    async with credit_world.db.read_session() as session:
        balance = await store_credit_balance(session, credit_world.merchant_id, order.customer_id)
    assert balance == {"USD": 1000}
    assert await status_of(credit_world, rma) is RmaStatus.RESOLVED


async def test_a_share_refused_before_any_money_moved_calls_off_the_rest(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order, (first, second) = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.STRIPE, 2000)]
    )
    rma = await inspected(world, order, [0, 1])
    await resolve(world, rma)
    fake_stripe.inject("400", times=1, account=world.account)
    await world.run_jobs()

    assert [part.status for part in await parts(world, rma)] == [
        ResolutionStatus.FAILED,
        ResolutionStatus.CANCELED,
    ]
    assert refunded_per_intent(world) == {}
    # Nothing moved: the parcel can be resolved again, split the same way.
    assert await status_of(world, rma) is RmaStatus.INSPECTED
    await resolve(world, rma)
    await world.run_jobs()
    assert refunded_per_intent(world) == {first: 3000, second: 2000}
    assert await status_of(world, rma) is RmaStatus.RESOLVED


async def test_a_share_refused_after_another_paid_out_waits_for_staff(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order, (first, second) = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.STRIPE, 2000)]
    )
    rma = await inspected(world, order, [0, 1])
    await resolve(world, rma)
    # Someone refunds the first payment in Stripe's dashboard meanwhile: its share is refused
    # after the second payment's share was paid out.
    fake_stripe.create_refund(world.account, payment_intent=first, amount=3000)
    await world.run_jobs()

    [paid, stuck] = await parts(world, rma)
    assert paid.status is ResolutionStatus.SUCCEEDED
    assert stuck.status is ResolutionStatus.REQUIRES_REVIEW
    assert "already been refunded" in (stuck.failure_reason or "")
    assert await status_of(world, rma) is RmaStatus.RESOLVING

    # A retry looks first, and is refused again: still for staff, nothing paid twice.
    async with world.db.session() as session:
        await retry_resolution(session, world.merchant_id, stuck.id, actor="staff", now=NOW())
    await world.run_jobs()
    assert (await parts(world, rma))[1].status is ResolutionStatus.REQUIRES_REVIEW
    assert refunded_per_intent(world) == {first: 3000, second: 2000}

    # Staff settle it another way and say so: the RMA is resolved.
    async with world.db.session() as session:
        await complete_manual_refund(
            session,
            world.merchant_id,
            stuck.id,
            reference="bank transfer 77",
            actor="staff",
            now=NOW(),
        )
    assert await status_of(world, rma) is RmaStatus.RESOLVED


async def test_twenty_concurrent_choices_split_once(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order, (first, second) = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.STRIPE, 2000)]
    )
    rma = await inspected(world, order, [0, 1])

    async def attempt() -> object:
        try:
            return await resolve(world, rma)
        except DomainError as error:
            return error

    outcomes = await asyncio.gather(*(attempt() for _ in range(20)))
    made = [outcome for outcome in outcomes if isinstance(outcome, Resolution)]
    assert len({resolution.id for resolution in made}) == 1
    assert len(await parts(world, rma)) == 2
    await asyncio.gather(world.run_jobs(), world.run_jobs())
    assert refunded_per_intent(world) == {first: 3000, second: 2000}
    assert await status_of(world, rma) is RmaStatus.RESOLVED


async def test_a_gift_cards_share_is_given_back_once_across_returns(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, non_card_refunds_as_store_credit=True)
    order, (card, _gift) = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.OTHER, 1000)]
    )
    for line in (0, 1):
        await resolve(world, await inspected(world, order, [line]))
        await world.run_jobs()
    async with world.db.read_session() as session:
        balance = await store_credit_balance(session, world.merchant_id, order.customer_id)
    # The gift card took 1000: that much comes back as credit, the rest from the card.
    assert balance == {"USD": 1000}
    assert refunded_per_intent(world) == {card: 3000}


async def test_repeating_a_refund_whose_first_part_is_credit_returns_the_same_resolution(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, non_card_refunds_as_store_credit=True)
    order, _ = await split_order(
        world, [(PaymentProviderName.STRIPE, 3000), (PaymentProviderName.OTHER, 1000)]
    )
    rma = await inspected(world, order, [0, 1])
    chosen = []
    for _ in range(2):
        async with world.db.session() as session:
            chosen.append(
                await resolve_rma(
                    session,
                    world.merchant_id,
                    rma.id,
                    kind="REFUND",
                    request_key="checkout-42",
                    actor="staff",
                    now=NOW(),
                )
            )
    assert chosen[0].resolution.id == chosen[1].resolution.id
    assert chosen[0].resolution.kind is ResolutionKind.STORE_CREDIT  # the gift card's share
    assert chosen[0].resolution.breakdown["kind"] == "REFUND"
