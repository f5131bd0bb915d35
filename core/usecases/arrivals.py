"""Parcels that arrived with no RMA and match no order: kept until staff match or refuse them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Rma, UnmatchedArrival
from core.enums import ArrivalStatus, Carrier
from core.errors import Conflict, InvalidInput, NotFound
from core.rules.tracking import normalize_tracking_number
from core.usecases.inputs import as_uuid, checked_now, clean_text, parse_enum
from core.usecases.logistics import (
    UnauthorizedLine,
    parse_unauthorized_lines,
    record_unauthorized,
)


@dataclass(frozen=True, slots=True)
class ArrivalDetails:
    description: str  # what is in the parcel, as staff see it
    sender: str = ""
    carrier: Carrier | str | None = None
    tracking_number: str = ""


async def record_unmatched_arrival(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    details: ArrivalDetails,
    *,
    actor: str,
    now: datetime,
) -> UnmatchedArrival:
    """Keep goods that match no order, for staff to match or refuse later."""
    description = clean_text(details.description, "description")
    if not description:
        raise InvalidInput("description", "say what arrived, so it can be matched later")
    carrier = None if details.carrier is None else parse_enum(Carrier, details.carrier, "carrier")
    tracking = (
        normalize_tracking_number(details.tracking_number)
        if details.tracking_number.strip()
        else None
    )
    moment = checked_now(now)
    async with session.begin():
        arrival = UnmatchedArrival(
            merchant_id=merchant_id,
            status=ArrivalStatus.OPEN,
            description=description,
            sender=clean_text(details.sender, "sender", limit=200),
            carrier=carrier,
            tracking_number=tracking,
            recorded_by=actor[:200],
            created_at=moment,
            updated_at=moment,
        )
        session.add(arrival)
    return arrival


async def _open_arrival(
    session: AsyncSession, merchant_id: uuid.UUID, arrival_id: uuid.UUID | str
) -> UnmatchedArrival:
    identifier = as_uuid(arrival_id, "id")
    arrival = (
        await session.exec(
            select(UnmatchedArrival)
            .where(
                UnmatchedArrival.id == identifier,
                UnmatchedArrival.merchant_id == merchant_id,
            )
            .with_for_update()
        )
    ).first()
    if arrival is None:
        raise NotFound("UnmatchedArrival", identifier, field="id")
    if arrival.status is not ArrivalStatus.OPEN:
        raise Conflict(f"this arrival is {arrival.status.value.lower()} already", field="id")
    return arrival


async def match_arrival(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    arrival_id: uuid.UUID | str,
    *,
    order_id: uuid.UUID | str,
    lines: list[UnauthorizedLine],
    actor: str,
    now: datetime,
) -> tuple[UnmatchedArrival, Rma]:
    """Staff found the order: the goods become an unauthorized RMA (the policy decides as for
    any unauthorized arrival), in the same transaction that marks the arrival matched."""
    parsed = parse_unauthorized_lines(lines)
    moment = checked_now(now)
    async with session.begin():
        arrival = await _open_arrival(session, merchant_id, arrival_id)
        rma = await record_unauthorized(
            session, merchant_id, order_id, parsed, actor=actor, now=moment
        )
        arrival.status = ArrivalStatus.MATCHED
        arrival.rma_id = rma.id
        arrival.outcome_note = f"matched to RMA {rma.number}"
        arrival.updated_at = moment
        session.add(arrival)
    return arrival, rma


async def refuse_arrival(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    arrival_id: uuid.UUID | str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> UnmatchedArrival:
    """Staff will not keep it (sent back to the sender, or disposed of): say why."""
    note = clean_text(reason, "reason")
    if not note:
        raise InvalidInput("reason", "say why, and where the goods went")
    moment = checked_now(now)
    async with session.begin():
        arrival = await _open_arrival(session, merchant_id, arrival_id)
        arrival.status = ArrivalStatus.REFUSED
        arrival.outcome_note = f"{note} ({actor[:100]})"[:2000]
        arrival.updated_at = moment
        session.add(arrival)
    return arrival


async def unmatched_arrivals(
    session: AsyncSession, merchant_id: uuid.UUID, *, status: ArrivalStatus | None, limit: int
) -> list[UnmatchedArrival]:
    """The merchant's arrivals, newest first."""
    statement = select(UnmatchedArrival).where(UnmatchedArrival.merchant_id == merchant_id)
    if status is not None:
        statement = statement.where(UnmatchedArrival.status == status)
    statement = statement.order_by(col(UnmatchedArrival.created_at).desc()).limit(limit)
    return list((await session.exec(statement)).all())
