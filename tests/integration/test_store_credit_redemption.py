"""Spending store credit through the API (issue: staff control the money, item 3).

Before: credit could only grow; a storefront had no way to spend it here.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Customer, Resolution, StoreCreditEntry
from core.enums import StoreCreditKind
from core.errors import Conflict, DomainError, InsufficientCredit, InvalidInput, NotFound
from core.usecases.resolutions import resolve_rma, store_credit_balance
from core.usecases.store_credit import (
    MIRROR,
    TRANSFER,
    Redemption,
    redeem_store_credit,
    release_transfer,
    reserve_for_transfer,
)
from tests import factories as f
from tests.integration.test_money_jobs import run_jobs


async def credited(
    db: Database, amount_minor: int, merchant_id: uuid.UUID | None = None, email: str | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    """A customer given ``amount_minor`` USD of store credit for a return, the real way."""
    shop = merchant_id or (await f.merchant(db)).id
    order = await f.order(
        db, shop, lines=[f.line(quantity=1, unit_price_minor=amount_minor)], email=email
    )
    rma = await f.inspected_rma(db, shop, order)
    async with db.session() as session:
        await resolve_rma(
            session, shop, rma.id, kind="STORE_CREDIT", actor="staff", now=SYSTEM_CLOCK.now()
        )
    await run_jobs(db, shop)
    assert await balance(db, shop, order.customer_id) == amount_minor
    return shop, order.customer_id


async def balance(db: Database, merchant_id: uuid.UUID, customer_id: uuid.UUID) -> int:
    async with db.read_session() as session:
        return (await store_credit_balance(session, merchant_id, customer_id)).get("USD", 0)


async def redeem(
    db: Database,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID | str,
    amount_minor: object,
    key: str,
    *,
    currency: str = "USD",
    reference: str = "checkout 1001",
) -> Redemption:
    async with db.session() as session:
        return await redeem_store_credit(
            session,
            merchant_id,
            customer_id,
            amount_minor=amount_minor,  # type: ignore[arg-type]
            currency=currency,
            reference=reference,
            idempotency_key=key,
            actor="staff:checkout",
            now=SYSTEM_CLOCK.now(),
        )


async def entries(db: Database, customer_id: uuid.UUID) -> list[StoreCreditEntry]:
    async with db.read_session() as session:
        rows = await session.exec(
            select(StoreCreditEntry)
            .where(StoreCreditEntry.customer_id == customer_id)
            .order_by(col(StoreCreditEntry.created_at))
        )
        return list(rows.all())


async def test_spending_takes_credit_off_the_ledger_once_per_key(db: Database) -> None:
    shop, customer = await credited(db, 3000)
    first = await redeem(db, shop, customer, 1200, "checkout-1001")
    assert first.entry.kind is StoreCreditKind.REDEEMED
    assert (first.entry.amount_minor, first.balance_minor) == (-1200, 1800)
    again = await redeem(db, shop, customer, 1200, "checkout-1001")
    assert again.entry.id == first.entry.id and again.balance_minor == 1800
    assert await balance(db, shop, customer) == 1800
    with pytest.raises(Conflict):
        await redeem(db, shop, customer, 500, "checkout-1001")  # the key, another amount


async def test_spending_more_than_is_there_changes_nothing(db: Database) -> None:
    shop, customer = await credited(db, 1000)
    with pytest.raises(InsufficientCredit) as caught:
        await redeem(db, shop, customer, 1001, "too-much")
    assert caught.value.field == "amount.amountMinor"
    with pytest.raises(InsufficientCredit):
        await redeem(db, shop, customer, 10, "other-currency", currency="EUR")
    assert len(await entries(db, customer)) == 1  # the credit given, nothing else


@pytest.mark.parametrize(
    ("amount", "currency", "reference", "key", "field"),
    [
        (0, "USD", "r", "k", "amount.amountMinor"),
        (-5, "USD", "r", "k", "amount.amountMinor"),
        (True, "USD", "r", "k", "amount.amountMinor"),
        (2**31, "USD", "r", "k", "amount.amountMinor"),
        (10, "XXQ", "r", "k", "amount.currency"),
        (10, "USD", " ", "k", "reference"),
        (10, "USD", "r", "", "idempotencyKey"),
        (10, "USD", "r", "k" * 241, "idempotencyKey"),
    ],
)
async def test_bad_input_is_refused_with_its_field(
    db: Database, amount: object, currency: str, reference: str, key: str, field: str
) -> None:
    shop, customer = await credited(db, 500)
    with pytest.raises(InvalidInput) as caught:
        await redeem(db, shop, customer, amount, key, currency=currency, reference=reference)
    assert caught.value.field == field
    assert await balance(db, shop, customer) == 500


async def test_another_merchants_customer_is_unknown(db: Database) -> None:
    shop, customer = await credited(db, 500)
    other = await f.merchant(db)
    with pytest.raises(NotFound):
        await redeem(db, other.id, customer, 100, "elsewhere")
    assert await balance(db, shop, customer) == 500


async def test_twenty_checkouts_at_once_never_spend_below_zero(db: Database) -> None:
    shop, customer = await credited(db, 1000)

    async def attempt(index: int) -> Redemption | DomainError:
        try:
            return await redeem(db, shop, customer, 100 + index % 3, f"checkout-{index}")
        except DomainError as error:
            return error

    outcomes = await asyncio.gather(*(attempt(index) for index in range(20)))
    spent = [o for o in outcomes if isinstance(o, Redemption)]
    refused = [o for o in outcomes if not isinstance(o, Redemption)]
    assert all(isinstance(error, InsufficientCredit) for error in refused)
    total = sum(-redemption.entry.amount_minor for redemption in spent)
    assert total <= 1000 and 1000 - total < 100  # as much as fits, never more
    assert await balance(db, shop, customer) == 1000 - total >= 0


async def test_twenty_retries_of_one_spending_spend_once(db: Database) -> None:
    shop, customer = await credited(db, 1000)
    outcomes = await asyncio.gather(
        *(redeem(db, shop, customer, 700, "checkout-retried") for _ in range(20))
    )
    assert len({outcome.entry.id for outcome in outcomes}) == 1
    assert await balance(db, shop, customer) == 300


async def test_credit_moving_to_another_place_is_held_back_and_released_if_refused(
    db: Database,
) -> None:
    shop, customer = await credited(db, 1000)
    async with db.read_session() as session:
        resolution = (
            await session.exec(
                select(Resolution).where(
                    Resolution.merchant_id == shop, col(Resolution.kind) == "STORE_CREDIT"
                )
            )
        ).one()
    async with db.session() as session, session.begin():
        assert await reserve_for_transfer(
            session, resolution, customer, TRANSFER, note="moving", now=SYSTEM_CLOCK.now()
        )
    # Held for the platform: nothing left to spend here, nor to move anywhere else.
    with pytest.raises(InsufficientCredit):
        await redeem(db, shop, customer, 1, "while-moving")
    async with db.session() as session, session.begin():
        assert not await reserve_for_transfer(
            session, resolution, customer, MIRROR, note="moving", now=SYSTEM_CLOCK.now()
        )
    # The platform refused it: spendable here again.
    async with db.session() as session:
        await release_transfer(session, shop, resolution.id, TRANSFER)
    assert (await redeem(db, shop, customer, 1000, "after-refusal")).balance_minor == 0
    async with db.session() as session, session.begin():
        # Spent here first: it cannot move anywhere any more.
        assert not await reserve_for_transfer(
            session, resolution, customer, TRANSFER, note="moving", now=SYSTEM_CLOCK.now()
        )
    async with db.read_session() as session:
        kinds = (
            await session.exec(
                select(StoreCreditEntry.kind, sa.func.count())
                .where(StoreCreditEntry.customer_id == customer)
                .group_by(col(StoreCreditEntry.kind))
            )
        ).all()
    assert dict(kinds) == {StoreCreditKind.ISSUED: 1, StoreCreditKind.REDEEMED: 1}


async def test_a_callers_key_never_names_the_services_own_entries(db: Database) -> None:
    shop, customer = await credited(db, 1000)
    async with db.read_session() as session:
        resolution = (
            await session.exec(select(Resolution).where(Resolution.merchant_id == shop))
        ).one()
    await redeem(db, shop, customer, 1, f"{TRANSFER}:{resolution.id}")
    async with db.session() as session, session.begin():
        # 999 left: the full credit cannot move, and the spending is not taken for a hold.
        assert not await reserve_for_transfer(
            session, resolution, customer, TRANSFER, note="moving", now=SYSTEM_CLOCK.now()
        )
    async with db.session() as session:
        await release_transfer(session, shop, resolution.id, TRANSFER)
    assert [entry.kind for entry in await entries(db, customer)] == [
        StoreCreditKind.ISSUED,
        StoreCreditKind.REDEEMED,
    ]


async def test_credit_stays_here_when_the_customer_balance_cannot_be_reached(
    db: Database,
) -> None:
    """The customer has a Stripe id but the merchant has no Stripe connection: nothing is
    held back for a move that cannot happen."""
    shop = await f.merchant(db)
    order = await f.order(db, shop.id, lines=[f.line(quantity=1, unit_price_minor=1500)])
    async with db.session() as session, session.begin():
        customer = await session.get(Customer, order.customer_id)
        assert customer is not None
        customer.stripe_customer_id = "cus_unreachable"
        session.add(customer)
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        await resolve_rma(
            session, shop.id, rma.id, kind="STORE_CREDIT", actor="staff", now=SYSTEM_CLOCK.now()
        )
    await run_jobs(db, shop.id)
    assert await balance(db, shop.id, order.customer_id) == 1500
    assert [entry.kind for entry in await entries(db, order.customer_id)] == [
        StoreCreditKind.ISSUED
    ]
