"""Concurrent requests on one RMA or one order: exactly one wins, the others get typed errors."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Rma, RmaEvent
from core.enums import RmaStatus
from core.errors import DomainError, InvalidTransition, QuantityExceeded
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import resolve_rma
from core.usecases.review import authorize_rma, cancel_rma, reject_rma
from tests import factories as f


async def _attempt(db: Database, call: object) -> object:
    try:
        async with db.session() as session:
            return await call(session)  # type: ignore[operator]
    except DomainError as error:
        return error


async def test_two_staff_authorizing_at_once_end_with_one_success_and_one_typed_error(
    db: Database,
) -> None:
    shop = await f.merchant(db, auto_authorize=False)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    assert rma.status is RmaStatus.REQUESTED

    results = await asyncio.gather(
        _attempt(db, lambda s: authorize_rma(s, shop.id, rma.id, actor="staff:a", now=f.NOW)),
        _attempt(db, lambda s: authorize_rma(s, shop.id, rma.id, actor="staff:b", now=f.NOW)),
    )

    successes = [r for r in results if isinstance(r, Rma)]
    failures = [r for r in results if isinstance(r, InvalidTransition)]
    assert len(successes) == 1
    assert len(failures) == 1
    assert failures[0].current == "AUTHORIZED"
    async with db.read_session() as session:
        moves = (
            await session.exec(
                select(sa.func.count()).where(
                    RmaEvent.rma_id == rma.id, RmaEvent.to_status == RmaStatus.AUTHORIZED
                )
            )
        ).one()
    assert moves == 1


async def test_reject_and_cancel_racing_leave_one_final_status(db: Database) -> None:
    shop = await f.merchant(db, auto_authorize=False)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)

    results = await asyncio.gather(
        _attempt(
            db,
            lambda s: reject_rma(
                s, shop.id, rma.id, actor="staff", reason="no", now=SYSTEM_CLOCK.now()
            ),
        ),
        _attempt(
            db, lambda s: cancel_rma(s, shop.id, rma.id, actor="customer", now=SYSTEM_CLOCK.now())
        ),
    )

    assert sum(isinstance(r, Rma) for r in results) == 1
    assert sum(isinstance(r, InvalidTransition) for r in results) == 1


async def test_concurrent_requests_cannot_both_take_the_last_returnable_unit(db: Database) -> None:
    shop = await f.merchant(db)
    order = await f.order(db, shop.id, lines=[f.line(quantity=1)])
    line_id = order.lines[0].id

    def ask(session: object) -> object:
        return request_rma(
            session,  # type: ignore[arg-type]
            shop.id,
            order_id=order.id,
            actor="customer",
            now=f.NOW,
            lines=[ReturnLineInput(line_id, 1, "SIZE_TOO_SMALL")],
        )

    results = await asyncio.gather(*(_attempt(db, ask) for _ in range(4)))

    assert sum(isinstance(r, Rma) for r in results) == 1
    assert sum(isinstance(r, QuantityExceeded) for r in results) == 3


async def test_many_concurrent_writers_never_see_database_is_locked(db: Database) -> None:
    """Fifty requests at once, half through a second engine as another process would be."""
    shop = await f.merchant(db)
    orders = [await f.order(db, shop.id) for _ in range(10)]
    other_process = Database(db.url, pool_size=5)
    try:
        calls = []
        for index in range(50):
            order = orders[index % len(orders)]
            database = other_process if index % 2 else db
            calls.append(
                _attempt(
                    database,
                    lambda s, order=order: request_rma(
                        s,
                        shop.id,
                        order_id=order.id,
                        actor="customer",
                        now=f.NOW,
                        lines=[ReturnLineInput(order.lines[0].id, 1, "COLOR")],
                    ),
                )
            )
        results = await asyncio.gather(*calls)
    finally:
        await other_process.dispose()

    # Each order has two units: exactly two requests per order succeed, the rest are typed.
    assert sum(isinstance(r, Rma) for r in results) == 20
    assert all(isinstance(r, Rma | QuantityExceeded) for r in results), results


async def test_two_returns_resolved_at_once_with_one_key_end_with_one_conflict(
    db: Database,
) -> None:
    """PostgreSQL lets both read that the key is free before either writes; the loser must
    still get a typed CONFLICT, as SQLite's serialized writes give it."""
    shop = await f.merchant(db)
    for round_ in range(3):
        first = await f.inspected_rma(db, shop.id, await f.order(db, shop.id))
        second = await f.inspected_rma(db, shop.id, await f.order(db, shop.id))
        key = f"desk-{round_}-{first.id}"
        results = await asyncio.gather(
            *(
                _attempt(
                    db,
                    lambda s, rma=rma, key=key: resolve_rma(
                        s, shop.id, rma.id, kind="REFUND", actor="staff", request_key=key, now=f.NOW
                    ),
                )
                for rma in (first, second)
            )
        )
        assert sorted(type(result).__name__ for result in results) == [
            "ChosenResolution",
            "Conflict",
        ]
