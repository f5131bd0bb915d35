"""Exchanges for another variant or product (issue: staff control the money, item 4).

Before: the policy could offer EXCHANGE, but ``resolveRma`` refused it ("not supported yet").
Now the returned goods pay for a replacement; the difference is refunded through the same
exactly-once money path, or is due from the customer; the exchange stays visible on the RMA
until it is fulfilled or cancelled.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Exchange, Rma, RmaEvent
from core.enums import (
    ExchangeStatus,
    PaymentProviderName,
    ResolutionKind,
    ResolutionStatus,
    RmaStatus,
)
from core.errors import Conflict, DomainError, InvalidInput, ResolutionNotAllowed
from core.usecases.exchanges import (
    ExchangeRequest,
    ReplacementLine,
    cancel_exchange,
    confirm_exchange_fulfilled,
)
from core.usecases.resolutions import ChosenResolution, resolve_rma
from testkit.fakes import FakeStripe
from tests.integration.money_world import World, fake_stripe, make_world, money_db, money_url
from tests.integration.test_split_tender import (
    inspected,
    parts,
    refunded_per_intent,
    split_order,
    status_of,
)

__all__ = ["fake_stripe", "money_db", "money_url"]

NOW = SYSTEM_CLOCK.now
EXCHANGES = {"allowed_resolutions": ["REFUND", "STORE_CREDIT", "EXCHANGE"]}


def replacement(price: int, quantity: int = 1) -> ExchangeRequest:
    return ExchangeRequest(
        lines=[ReplacementLine("Sweater, size M", quantity, price, "SW-M", "variant-42")],
        note="size up",
    )


async def exchange_for(world: World, rma: Rma, request: ExchangeRequest) -> ChosenResolution:
    async with world.db.session() as session:
        return await resolve_rma(
            session,
            world.merchant_id,
            rma.id,
            kind="EXCHANGE",
            exchange=request,
            actor="staff",
            now=NOW(),
        )


async def exchange_of(world: World, rma: Rma) -> Exchange:
    async with world.db.read_session() as session:
        [row] = (await session.exec(select(Exchange).where(Exchange.rma_id == rma.id))).all()
    return row


async def test_a_cheaper_replacement_refunds_the_difference_once(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, **EXCHANGES)
    order, [intent] = await split_order(world, [(PaymentProviderName.STRIPE, 5000)], lines=1)
    rma = await inspected(world, order, [0])
    chosen = await exchange_for(world, rma, replacement(3000))
    assert chosen.resolution.kind is ResolutionKind.EXCHANGE

    [kept, refund] = await parts(world, rma)
    assert (kept.kind, kept.amount_minor) == (ResolutionKind.EXCHANGE, 3000)
    assert (refund.kind, refund.provider, refund.amount_minor) == (
        ResolutionKind.REFUND,
        PaymentProviderName.STRIPE,
        2000,
    )
    exchange = await exchange_of(world, rma)
    assert exchange.status is ExchangeStatus.PLACING
    assert (exchange.returned_value_minor, exchange.refund_minor, exchange.due_minor) == (
        5000,
        2000,
        0,
    )
    await world.run_jobs()
    await world.run_jobs()

    assert refunded_per_intent(world) == {intent: 2000}
    exchange = await exchange_of(world, rma)
    # A storefront's order: the storefront fulfils the replacement and says so.
    assert exchange.status is ExchangeStatus.WAITING_FOR_FULFILMENT
    assert [part.status for part in await parts(world, rma)] == [ResolutionStatus.SUCCEEDED] * 2
    assert await status_of(world, rma) is RmaStatus.RESOLVED

    for _ in range(2):
        async with world.db.session() as session:
            done = await confirm_exchange_fulfilled(
                session,
                world.merchant_id,
                exchange.id,
                reference="shipment 1Z-42",
                actor="staff",
                now=NOW(),
            )
        assert done.status is ExchangeStatus.FULFILLED
    async with world.db.read_session() as session:
        kinds = (await session.exec(select(RmaEvent.kind).where(RmaEvent.rma_id == rma.id))).all()
    assert kinds.count("EXCHANGE_PLACED") == 1
    assert kinds.count("EXCHANGE_FULFILLED") == 1


async def test_a_dearer_replacement_leaves_the_difference_due(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, **EXCHANGES)
    order, _ = await split_order(world, [(PaymentProviderName.STRIPE, 5000)], lines=1)
    rma = await inspected(world, order, [0])
    await exchange_for(world, rma, replacement(3500, quantity=2))
    await world.run_jobs()

    [kept] = await parts(world, rma)
    assert (kept.amount_minor, kept.status) == (5000, ResolutionStatus.SUCCEEDED)
    exchange = await exchange_of(world, rma)
    assert (exchange.replacement_value_minor, exchange.due_minor, exchange.refund_minor) == (
        7000,
        2000,
        0,
    )
    assert refunded_per_intent(world) == {}
    assert await status_of(world, rma) is RmaStatus.RESOLVED

    async with world.db.session() as session:
        cancelled = await cancel_exchange(
            session, world.merchant_id, exchange.id, reason="out of stock", actor="staff", now=NOW()
        )
    assert cancelled.status is ExchangeStatus.CANCELED
    async with world.db.session() as session:
        with pytest.raises(Conflict):
            await confirm_exchange_fulfilled(
                session,
                world.merchant_id,
                exchange.id,
                reference="too late",
                actor="staff",
                now=NOW(),
            )


async def test_bad_exchanges_are_refused_and_change_nothing(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe)
    order, _ = await split_order(world, [(PaymentProviderName.STRIPE, 5000)], lines=1)
    rma = await inspected(world, order, [0])
    with pytest.raises(ResolutionNotAllowed):
        await exchange_for(world, rma, replacement(100))

    allowed = await make_world(money_db, fake_stripe, **EXCHANGES)
    order, _ = await split_order(allowed, [(PaymentProviderName.STRIPE, 5000)], lines=1)
    rma = await inspected(allowed, order, [0])
    for bad, field in (
        (ExchangeRequest(lines=[]), "exchange.lines"),
        (replacement(-1), "exchange.lines[0].unitPriceMinor"),
        (replacement(100, quantity=0), "exchange.lines[0].quantity"),
        (
            ExchangeRequest(lines=[ReplacementLine(" ", 1, 100)]),
            "exchange.lines[0].title",
        ),
        (
            ExchangeRequest(lines=[ReplacementLine("x", 1, 100, sku="s" * 101)]),
            "exchange.lines[0].sku",
        ),
    ):
        with pytest.raises(InvalidInput) as refused:
            await exchange_for(allowed, rma, bad)
        assert refused.value.field == field
    async with allowed.db.session() as session:
        with pytest.raises(InvalidInput):
            await resolve_rma(
                session,
                allowed.merchant_id,
                rma.id,
                kind="REFUND",
                exchange=replacement(100),
                actor="staff",
                now=NOW(),
            )
    assert await parts(allowed, rma) == []
    assert await status_of(allowed, rma) is RmaStatus.INSPECTED


async def test_twenty_concurrent_exchanges_make_one(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, **EXCHANGES)
    order, [intent] = await split_order(world, [(PaymentProviderName.STRIPE, 5000)], lines=1)
    rma = await inspected(world, order, [0])

    async def attempt() -> object:
        try:
            return await exchange_for(world, rma, replacement(1000))
        except DomainError as error:
            return error

    outcomes = await asyncio.gather(*(attempt() for _ in range(20)))
    made = {outcome.resolution.id for outcome in outcomes if isinstance(outcome, ChosenResolution)}
    assert len(made) == 1
    await asyncio.gather(world.run_jobs(), world.run_jobs())
    async with world.db.read_session() as session:
        exchanges = (await session.exec(select(Exchange).where(Exchange.rma_id == rma.id))).all()
    assert [exchange.status for exchange in exchanges] == [ExchangeStatus.WAITING_FOR_FULFILMENT]
    assert refunded_per_intent(world) == {intent: 4000}


async def test_an_exchange_being_placed_cannot_be_cancelled_under_the_job(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, **EXCHANGES)
    order, _ = await split_order(world, [(PaymentProviderName.STRIPE, 5000)], lines=1)
    rma = await inspected(world, order, [0])
    await exchange_for(world, rma, replacement(5000))
    exchange = await exchange_of(world, rma)
    async with world.db.session() as session:
        with pytest.raises(Conflict):
            await cancel_exchange(
                session, world.merchant_id, exchange.id, reason="changed mind", actor="s", now=NOW()
            )
    await world.run_jobs()
    assert (await exchange_of(world, rma)).status is ExchangeStatus.WAITING_FOR_FULFILMENT
    assert await status_of(world, rma) is RmaStatus.RESOLVED


async def test_a_policy_that_gives_no_money_back_gives_the_difference_as_credit(
    money_db: Database, fake_stripe: FakeStripe
) -> None:
    world = await make_world(money_db, fake_stripe, allowed_resolutions=["EXCHANGE"])
    order, _ = await split_order(world, [(PaymentProviderName.STRIPE, 5000)], lines=1)
    rma = await inspected(world, order, [0])
    await exchange_for(world, rma, replacement(1000))
    await world.run_jobs()
    [kept, credit] = await parts(world, rma)
    assert (kept.kind, credit.kind, credit.amount_minor) == (
        ResolutionKind.EXCHANGE,
        ResolutionKind.STORE_CREDIT,
        4000,
    )
    assert refunded_per_intent(world) == {}
    assert await status_of(world, rma) is RmaStatus.RESOLVED
