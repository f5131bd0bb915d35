"""Loading helpers and the one place that moves an RMA and writes its timeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.orm import selectinload
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Order, ReturnPolicy, Rma, RmaEvent, RmaLine
from core.enums import RmaStatus
from core.errors import InvalidInput, NotFound
from core.rules.status import check_transition

MAX_TEXT = 2000
SYSTEM_ACTOR = "system"

Row = TypeVar("Row", bound=SQLModel)

# Statuses whose units have physically come back; before them, the requested quantity counts.
_ARRIVED = frozenset(
    {
        RmaStatus.RECEIVED,
        RmaStatus.INSPECTED,
        RmaStatus.RESOLVING,
        RmaStatus.RESOLVED,
        RmaStatus.CLOSED,
    }
)
_LIVE_BEFORE_ARRIVAL = frozenset(
    {RmaStatus.REQUESTED, RmaStatus.NEEDS_REVIEW, RmaStatus.AUTHORIZED, RmaStatus.IN_TRANSIT}
)


def as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    """Accept a UUID or its text; anything else is an unknown id, not a crash."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as error:
        raise NotFound(field, value, field=field) from error


def clean_text(value: str | None, field: str, *, limit: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise InvalidInput(field, f"{field} is longer than {limit} characters")
    if "\x00" in text:
        raise InvalidInput(field, f"{field} contains a NUL character")
    return text


# The oldest and newest times the service stores; anything outside is a typo, not a date.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def require_time(value: datetime, field: str) -> datetime:
    """A timezone-aware time within the years the service stores, converted to UTC."""
    if value.tzinfo is None:
        raise InvalidInput(field, f"{field} needs a timezone (e.g. 2026-11-01T12:00:00Z)")
    try:
        moment = value.astimezone(UTC)
    except OverflowError as error:
        raise InvalidInput(field, f"{field} is out of range") from error
    if not EARLIEST <= moment < LATEST:
        raise InvalidInput(field, f"{field} is out of range")
    return moment


def checked_now(now: datetime) -> datetime:
    """The caller's "now" (read once from its clock), refused when it has no timezone."""
    if now.tzinfo is None:
        raise InvalidInput("now", "times must be timezone-aware")
    return now


async def get_owned(
    session: AsyncSession,
    entity: type[Row],
    merchant_id: uuid.UUID,
    row_id: uuid.UUID | str,
    *,
    field: str = "id",
    for_update: bool = False,
) -> Row:
    """Load a row of this merchant; another merchant's row answers like a missing one."""
    identifier = as_uuid(row_id, field)
    statement = select(entity).where(
        entity.id == identifier,  # type: ignore[attr-defined]
        entity.merchant_id == merchant_id,  # type: ignore[attr-defined]
    )
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    row = (await session.exec(statement)).first()
    if row is None:
        raise NotFound(entity.__name__, identifier, field=field)
    return row


async def lock_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    customer_id: uuid.UUID | None = None,
) -> Rma:
    """Load an RMA with its lines, holding its row lock until the transaction ends.

    Concurrent transitions on one RMA queue behind this lock, so the second one sees the status
    the first one left and fails with a typed error instead of overwriting it. A customer only
    reaches their own RMAs.
    """
    identifier = as_uuid(rma_id, "id")
    statement = (
        select(Rma)
        .where(Rma.id == identifier, Rma.merchant_id == merchant_id)
        .with_for_update()
        .options(selectinload(Rma.lines))  # type: ignore[arg-type]
        .execution_options(populate_existing=True)
    )
    rma = (await session.exec(statement)).first()
    if rma is None or (customer_id is not None and rma.customer_id != customer_id):
        raise NotFound("Rma", identifier, field="id")
    # Later log lines of this request or job name the RMA they concern.
    structlog.contextvars.bind_contextvars(rma_id=str(rma.id))
    return rma


async def load_order(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    order_id: uuid.UUID | str,
    *,
    for_update: bool = False,
    field: str = "orderId",
) -> Order:
    identifier = as_uuid(order_id, field)
    statement = (
        select(Order)
        .where(Order.id == identifier, Order.merchant_id == merchant_id)
        .options(selectinload(Order.lines), selectinload(Order.payments))  # type: ignore[arg-type]
    )
    if for_update:
        statement = statement.with_for_update(of=Order).execution_options(populate_existing=True)
    order = (await session.exec(statement)).first()
    if order is None:
        raise NotFound("Order", identifier, field=field)
    return order


async def current_policy(session: AsyncSession, merchant_id: uuid.UUID) -> ReturnPolicy:
    statement = (
        select(ReturnPolicy)
        .where(ReturnPolicy.merchant_id == merchant_id)
        .order_by(col(ReturnPolicy.version).desc())
        .limit(1)
    )
    policy = (await session.exec(statement)).first()
    if policy is None:
        raise NotFound("ReturnPolicy", merchant_id, field="merchantId")
    return policy


async def policy_of(session: AsyncSession, rma: Rma) -> ReturnPolicy:
    """The policy version that decided this RMA (the current one if it has none)."""
    if rma.policy_id is not None:
        policy = await session.get(ReturnPolicy, rma.policy_id)
        if policy is not None:
            return policy
    return await current_policy(session, rma.merchant_id)


async def returned_quantities(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    excluding_rma: uuid.UUID | None = None,
    statuses: Iterable[RmaStatus] | None = None,
) -> dict[uuid.UUID, int]:
    """Units of each order line already on their way back or returned, per order line.

    Before arrival the requested quantity counts; after, what was actually received.
    """
    counted = sa.case(
        (col(Rma.status).in_([s.value for s in _ARRIVED]), col(RmaLine.received_quantity)),
        else_=col(RmaLine.quantity),
    )
    wanted = statuses if statuses is not None else _ARRIVED | _LIVE_BEFORE_ARRIVAL
    statement = (
        select(RmaLine.order_line_id, sa.func.sum(counted))
        .join(Rma, col(Rma.id) == col(RmaLine.rma_id))
        .where(Rma.order_id == order_id, col(Rma.status).in_([s.value for s in wanted]))
        .group_by(col(RmaLine.order_line_id))
    )
    if excluding_rma is not None:
        statement = statement.where(Rma.id != excluding_rma)
    rows = (await session.exec(statement)).all()
    return {order_line_id: int(total or 0) for order_line_id, total in rows}


async def record_event(
    session: AsyncSession,
    rma: Rma,
    *,
    actor: str,
    kind: str,
    message: str = "",
    from_status: RmaStatus | None = None,
    to_status: RmaStatus | None = None,
    data: dict[str, Any] | None = None,
    now: datetime,
) -> RmaEvent:
    """Append an entry to the RMA's timeline (the caller holds the RMA's lock)."""
    last = (
        await session.exec(select(sa.func.max(RmaEvent.sequence)).where(RmaEvent.rma_id == rma.id))
    ).one()
    event = RmaEvent(
        merchant_id=rma.merchant_id,
        rma_id=rma.id,
        sequence=(last or 0) + 1,
        actor=actor,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        message=message,
        data=data or {},
        created_at=now,
    )
    session.add(event)
    return event


async def transition(
    session: AsyncSession,
    rma: Rma,
    target: RmaStatus,
    *,
    actor: str,
    now: datetime,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Move the RMA if the status machine allows it, and record the move in the timeline."""
    check_transition(rma.status, target)
    current = rma.status
    rma.status = target
    rma.updated_at = now
    session.add(rma)
    await record_event(
        session,
        rma,
        actor=actor,
        kind="STATUS_CHANGED",
        message=message,
        from_status=current,
        to_status=target,
        data=data,
        now=now,
    )


def require_unique(values: Sequence[object], field: str) -> None:
    if len(set(values)) != len(values):
        raise InvalidInput(field, f"{field} lists the same line twice")


def require_positive(quantity: int, field: str) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InvalidInput(field, "quantity must be a whole number above zero")
