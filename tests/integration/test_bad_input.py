"""Every use case refuses bad input with a typed error naming the problem, and writes nothing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import (
    Inspection,
    Merchant,
    Order,
    OrderLine,
    Resolution,
    Rma,
    RmaEvent,
    RmaLine,
    Shipment,
)
from core.errors import (
    CurrencyMismatch,
    DomainError,
    InvalidInput,
    InvalidRmaNumber,
    InvalidTransition,
    NotFound,
    QuantityExceeded,
    ResolutionNotAllowed,
)
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import (
    ReceivedLine,
    UnauthorizedLine,
    receive_rma,
    receive_unauthorized,
    record_shipment,
)
from core.usecases.lookup import get_rma_by_number
from core.usecases.orders import CustomerInput, OrderInput, PaymentInput, upsert_order
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import close_rma, resolve_rma
from core.usecases.review import authorize_rma, cancel_rma, reject_rma
from tests import factories as f

TABLES = [Rma, RmaLine, RmaEvent, Shipment, Inspection, Resolution, Order, OrderLine]


async def _row_counts(db: Database, merchant_id: uuid.UUID) -> dict[str, int]:
    async with db.read_session() as session:
        counts = {}
        for table in TABLES:
            counts[table.__name__] = (
                await session.exec(
                    select(sa.func.count())
                    .select_from(table)
                    .where(
                        table.merchant_id == merchant_id  # type: ignore[attr-defined]
                    )
                )
            ).one()
        return counts


async def expect_refusal(
    db: Database,
    merchant_id: uuid.UUID,
    error: type[DomainError],
    call: Callable[[AsyncSession], Awaitable[Any]],
    *,
    field: str | None = None,
) -> DomainError:
    before = await _row_counts(db, merchant_id)
    with pytest.raises(error) as raised:
        async with db.session() as session:
            await call(session)
    assert raised.value.message
    if field is not None:
        assert raised.value.field == field
    assert await _row_counts(db, merchant_id) == before, "a refused call wrote something"
    return raised.value


async def test_requests_name_each_bad_line(db: Database) -> None:
    shop = await f.merchant(db)
    other_shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    another_order = await f.order(db, shop.id)
    foreign_order = await f.order(db, other_shop.id)
    line_id = order.lines[0].id

    def request(lines: list[ReturnLineInput], order_id: object = order.id) -> Any:
        return lambda s: request_rma(
            s,
            shop.id,
            order_id=order_id,
            lines=lines,
            actor="customer",
            now=f.NOW,  # type: ignore[arg-type]
        )

    await expect_refusal(db, shop.id, InvalidInput, request([]), field="lines")
    for quantity in (0, -1):
        await expect_refusal(
            db,
            shop.id,
            InvalidInput,
            request([ReturnLineInput(line_id, quantity, "COLOR")]),
            field="lines[0].quantity",
        )
    await expect_refusal(
        db,
        shop.id,
        QuantityExceeded,
        request([ReturnLineInput(line_id, 3, "COLOR")]),
        field="lines[0].quantity",
    )
    await expect_refusal(
        db,
        shop.id,
        NotFound,
        request([ReturnLineInput(another_order.lines[0].id, 1, "COLOR")]),
        field="lines[0].orderLineId",
    )
    await expect_refusal(
        db,
        shop.id,
        InvalidInput,
        request([ReturnLineInput(line_id, 1, "BORED")]),
        field="lines[0].reason",
    )
    await expect_refusal(
        db,
        shop.id,
        InvalidInput,
        request([ReturnLineInput(line_id, 1, "COLOR"), ReturnLineInput(line_id, 1, "STYLE")]),
        field="lines",
    )
    await expect_refusal(
        db,
        shop.id,
        NotFound,
        request([ReturnLineInput(foreign_order.lines[0].id, 1, "COLOR")], foreign_order.id),
        field="orderId",
    )
    await expect_refusal(
        db,
        shop.id,
        NotFound,
        request([ReturnLineInput(line_id, 1, "COLOR")], "not-a-uuid"),
        field="orderId",
    )


async def test_another_merchants_rma_answers_exactly_like_a_missing_one(db: Database) -> None:
    shop = await f.merchant(db, auto_authorize=False)
    intruder = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    missing = uuid.uuid4()

    for rma_id in (rma.id, missing):
        error = await expect_refusal(
            db,
            intruder.id,
            NotFound,
            lambda s, rma_id=rma_id: authorize_rma(
                s, intruder.id, rma_id, actor="staff", now=SYSTEM_CLOCK.now()
            ),
        )
        assert error.message == f"Rma {rma_id} does not exist"
    async with db.read_session() as session:
        stored = await session.get(Rma, rma.id)
    assert stored is not None
    assert stored.status.value == "REQUESTED"


async def test_every_transition_refuses_an_illegal_move(db: Database) -> None:
    shop = await f.merchant(db, auto_authorize=False)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    line = rma.lines[0]
    illegal: list[Callable[[AsyncSession], Awaitable[Any]]] = [
        lambda s: record_shipment(
            s,
            shop.id,
            rma.id,
            carrier="UPS",
            tracking_number="1Z12345",
            actor="c",
            now=SYSTEM_CLOCK.now(),
        ),
        lambda s: receive_rma(
            s, shop.id, rma.id, lines=[ReceivedLine(line.id, 1)], actor="s", now=SYSTEM_CLOCK.now()
        ),
        lambda s: inspect_rma(
            s,
            shop.id,
            rma.id,
            lines=[InspectedLine(line.id, "OPENED", "RESTOCK")],
            actor="s",
            now=SYSTEM_CLOCK.now(),
        ),
        lambda s: resolve_rma(s, shop.id, rma.id, kind="REFUND", actor="s", now=SYSTEM_CLOCK.now()),
        lambda s: close_rma(s, shop.id, rma.id, actor="s", now=SYSTEM_CLOCK.now()),
    ]
    for call in illegal:
        refusal = await expect_refusal(db, shop.id, (InvalidTransition, NotFound), call)  # type: ignore[arg-type]
        assert isinstance(refusal, InvalidTransition | NotFound)


async def test_receiving_more_than_was_authorized_is_refused(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order, quantity=1)
    await expect_refusal(
        db,
        shop.id,
        QuantityExceeded,
        lambda s: receive_rma(
            s,
            shop.id,
            rma.id,
            lines=[ReceivedLine(rma.lines[0].id, 2)],
            actor="s",
            now=SYSTEM_CLOCK.now(),
        ),
        field="lines[0].quantity",
    )
    await expect_refusal(
        db,
        shop.id,
        NotFound,
        lambda s: receive_rma(
            s,
            shop.id,
            rma.id,
            lines=[ReceivedLine(uuid.uuid4(), 1)],
            actor="s",
            now=SYSTEM_CLOCK.now(),
        ),
        field="lines[0].rmaLineId",
    )
    await expect_refusal(
        db,
        shop.id,
        InvalidInput,
        lambda s: record_shipment(
            s,
            shop.id,
            rma.id,
            carrier="PIGEON",
            tracking_number="12345",
            actor="c",
            now=SYSTEM_CLOCK.now(),
        ),
        field="carrier",
    )
    await expect_refusal(
        db,
        shop.id,
        InvalidInput,
        lambda s: record_shipment(
            s,
            shop.id,
            rma.id,
            carrier="UPS",
            tracking_number="<script>",
            actor="c",
            now=SYSTEM_CLOCK.now(),
        ),
        field="trackingNumber",
    )


async def test_unauthorized_goods_beyond_what_was_bought_are_refused(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    await expect_refusal(
        db,
        shop.id,
        QuantityExceeded,
        lambda s: receive_unauthorized(
            s,
            shop.id,
            order_id=order.id,
            actor="s",
            lines=[UnauthorizedLine(order.lines[0].id, 5)],
            now=SYSTEM_CLOCK.now(),
        ),
    )


async def test_an_order_cannot_mix_currencies(db: Database) -> None:
    shop = await f.merchant(db)
    data = OrderInput(
        platform="storefront",
        external_id="mix-1",
        order_number="#1",
        currency="EUR",
        placed_at=f.NOW,
        customer=CustomerInput(email="a@example.com"),
        lines=[f.line()],
        payments=[PaymentInput("stripe", "pi_1", 5000, "USD")],
    )
    await expect_refusal(
        db,
        shop.id,
        CurrencyMismatch,
        lambda s: upsert_order(s, shop.id, data, now=SYSTEM_CLOCK.now()),
        field="payments[0].currency",
    )
    await expect_refusal(
        db,
        shop.id,
        InvalidInput,
        lambda s: upsert_order(
            s, shop.id, dataclasses.replace(data, currency="XXQ"), now=SYSTEM_CLOCK.now()
        ),
        field="currency",
    )
    order = await f.order(db, shop.id, currency="USD")
    as_euros = OrderInput(
        platform="storefront",
        external_id=order.external_id,
        order_number=order.order_number,
        currency="EUR",
        placed_at=order.placed_at,
        customer=CustomerInput(email="a@example.com"),
        lines=[f.line()],
    )
    await expect_refusal(
        db,
        shop.id,
        CurrencyMismatch,
        lambda s: upsert_order(s, shop.id, as_euros, now=SYSTEM_CLOCK.now()),
        field="currency",
    )


async def test_a_resolution_the_policy_does_not_offer_is_refused(db: Database) -> None:
    shop = await f.merchant(db, allowed_resolutions=["REFUND"])
    order = await f.order(db, shop.id)
    rma = await f.inspected_rma(db, shop.id, order)
    await expect_refusal(
        db,
        shop.id,
        ResolutionNotAllowed,
        lambda s: resolve_rma(
            s, shop.id, rma.id, kind="STORE_CREDIT", actor="s", now=SYSTEM_CLOCK.now()
        ),
    )
    await expect_refusal(
        db,
        shop.id,
        InvalidInput,
        lambda s: resolve_rma(s, shop.id, rma.id, kind="CASH", actor="s", now=SYSTEM_CLOCK.now()),
    )


async def test_malformed_and_mistyped_rma_numbers_are_refused(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    async with db.read_session() as session:
        found = await get_rma_by_number(session, shop.id, rma.number.lower().replace("-", ""))
    assert found.id == rma.id
    last = rma.number[-1]
    mistyped = rma.number[:-1] + ("2" if last != "2" else "3")
    for bad in ("RMA-123", "hello", mistyped, ""):
        with pytest.raises(InvalidRmaNumber):
            async with db.read_session() as session:
                await get_rma_by_number(session, shop.id, bad)
    other = await f.merchant(db)
    with pytest.raises(NotFound):
        async with db.read_session() as session:
            await get_rma_by_number(session, other.id, rma.number)


async def test_policy_values_out_of_range_are_refused(db: Database) -> None:
    shop = await f.merchant(db)
    for changes, field in [
        (PolicyChanges(return_window_days=-1), "return_window_days"),
        (PolicyChanges(restocking_fee_percent=101), "restocking_fee_percent"),
        (PolicyChanges(allowed_resolutions=[]), "allowed_resolutions"),
        (PolicyChanges(allowed_resolutions=["CASH"]), "allowed_resolutions"),
        (
            PolicyChanges(troubleshooting_required_reasons=["BORED"]),
            "troubleshooting_required_reasons",
        ),
        (PolicyChanges(special_instructions="x" * 2001), "special_instructions"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            async with db.session() as session:
                await update_return_policy(session, shop.id, changes, now=SYSTEM_CLOCK.now())
        assert raised.value.field == field


async def test_rejection_needs_a_reason_and_unknown_merchants_are_refused(db: Database) -> None:
    shop = await f.merchant(db, auto_authorize=False)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    await expect_refusal(
        db,
        shop.id,
        InvalidInput,
        lambda s: reject_rma(s, shop.id, rma.id, actor="s", reason="  ", now=SYSTEM_CLOCK.now()),
        field="reason",
    )
    await expect_refusal(
        db,
        shop.id,
        NotFound,
        lambda s: cancel_rma(
            s, shop.id, rma.id, actor="c", customer_id=uuid.uuid4(), now=SYSTEM_CLOCK.now()
        ),
    )
    async with db.read_session() as session:
        assert await session.get(Merchant, uuid.uuid4()) is None
    with pytest.raises(NotFound):
        async with db.session() as session:
            await upsert_order(
                session,
                uuid.uuid4(),
                OrderInput(
                    platform="storefront",
                    external_id="x",
                    order_number="#x",
                    currency="USD",
                    placed_at=f.NOW,
                    customer=CustomerInput(email="a@example.com"),
                    lines=[f.line()],
                ),
                now=SYSTEM_CLOCK.now(),
            )
