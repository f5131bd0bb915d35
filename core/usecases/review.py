"""Staff decisions on a request, the customer's cancellation, and expiry of authorizations."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Rma
from core.enums import Carrier, ReceiptStatus, RefusedGoodsOutcome, RmaStatus
from core.errors import InvalidInput, InvalidTransition, NotFound
from core.rules.tracking import normalize_tracking_number
from core.usecases.inputs import as_uuid, checked_now, clean_text, parse_enum
from core.usecases.owned_rows import lock_rma, policy_of
from core.usecases.receipts import UNDECIDED, follow_receipts, receipts_of
from core.usecases.requests import authorize_fields
from core.usecases.timeline import SYSTEM_ACTOR, record_event, transition


async def authorize_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    actor: str,
    note: str = "",
    now: datetime,
) -> Rma:
    """Authorize a requested (or reviewed) return; the clock for shipping starts now."""
    moment = checked_now(now)
    message = clean_text(note, "note")
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        await transition(
            session, rma, RmaStatus.AUTHORIZED, actor=actor, now=moment, message=message
        )
        authorize_fields(rma, await policy_of(session, rma), moment)
    return rma


async def reject_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> Rma:
    """Refuse a request; the customer is told why, so a reason is required."""
    message = clean_text(reason, "reason")
    if not message:
        raise InvalidInput("reason", "say why the return is rejected")
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        if rma.status in GOODS_HERE:
            raise InvalidTransition(
                rma.status.value,
                RmaStatus.REJECTED.value,
                hint="the goods have arrived: refuse them with refuseGoods, saying where they go",
            )
        await transition(session, rma, RmaStatus.REJECTED, actor=actor, now=moment, message=message)
    return rma


# Statuses in which the goods are at the warehouse: refusing them says where they go.
GOODS_HERE = frozenset({RmaStatus.RECEIVED, RmaStatus.INSPECTED})


async def refuse_goods(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    reason: str,
    outcome: RefusedGoodsOutcome | str,
    carrier: Carrier | str | None = None,
    tracking_number: str = "",
    customer_consented: bool = False,
    receipt_id: uuid.UUID | str | None = None,
    actor: str,
    now: datetime,
) -> Rma:
    """Refuse goods that arrived (received or inspected): sent back to the customer at their
    cost with the parcel's tracking, or disposed of with their consent. Nothing is refunded
    for them.

    ``receipt_id`` names the parcel; it may be left out when one parcel waits for a decision.
    A receipt already resolved keeps its money, and the RMA shows RESOLVED once the rest is
    refused; refusing every parcel ends the return (REJECTED), units not yet arrived included.
    """
    wanted = None if receipt_id is None else as_uuid(receipt_id, "receiptId")
    message = clean_text(reason, "reason")
    if not message:
        raise InvalidInput("reason", "say why the goods are refused")
    chosen = parse_enum(RefusedGoodsOutcome, outcome, "outcome")
    data: dict[str, object] = {"outcome": chosen.value}
    if chosen is RefusedGoodsOutcome.SEND_BACK:
        if carrier is None or not tracking_number.strip():
            raise InvalidInput(
                "trackingNumber", "goods sent back need the carrier and the tracking number"
            )
        data["carrier"] = parse_enum(Carrier, carrier, "carrier").value
        data["trackingNumber"] = normalize_tracking_number(tracking_number)
    elif not customer_consented:
        raise InvalidInput(
            "customerConsented", "goods are disposed of only with the customer's consent"
        )
    else:
        data["customerConsented"] = True
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        if rma.status not in GOODS_HERE:
            raise InvalidTransition(
                rma.status.value,
                RmaStatus.REJECTED.value,
                hint="only goods received or inspected can be refused",
            )
        receipts = await receipts_of(session, rma.id)
        refused = [
            receipt
            for receipt in receipts
            if receipt.status in UNDECIDED and wanted in (None, receipt.id)
        ]
        if wanted is None and len(refused) > 1:
            raise InvalidInput(
                "receiptId",
                f"{len(refused)} parcels wait for a decision: say which one is refused",
            )
        if not refused:
            if wanted is not None and all(receipt.id != wanted for receipt in receipts):
                raise NotFound("RmaReceipt", wanted, field="receiptId")
            raise InvalidTransition(
                rma.status.value,
                RmaStatus.REJECTED.value,
                hint="this receipt was resolved or refused already",
            )
        for receipt in refused:
            receipt.status = ReceiptStatus.REFUSED
            receipt.updated_at = moment
            session.add(receipt)
        await follow_receipts(session, rma, receipts, actor=actor, now=moment, message=message)
        data["receipts"] = [receipt.sequence for receipt in refused]
        await record_event(
            session,
            rma,
            actor=actor,
            kind="GOODS_REFUSED",
            now=moment,
            message=(
                f"sent back by {data['carrier']} ({data['trackingNumber']}): {message}"
                if chosen is RefusedGoodsOutcome.SEND_BACK
                else f"disposed of with the customer's consent: {message}"
            ),
            data=data,
        )
    return rma


async def cancel_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    actor: str,
    reason: str = "",
    customer_id: uuid.UUID | None = None,
    now: datetime,
) -> Rma:
    """Withdraw a return before the goods are on their way (customers cancel their own)."""
    message = clean_text(reason, "reason")
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id, customer_id=customer_id)
        await transition(
            session, rma, RmaStatus.CANCELLED, actor=actor, now=moment, message=message
        )
    return rma


async def expire_authorizations(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Expire authorized returns not shipped in time, for every merchant; returns the count.

    Rows another transaction holds are skipped (PostgreSQL ``SKIP LOCKED``) and picked up by the
    next run, so this never waits behind a customer adding tracking.
    """
    moment = checked_now(now)
    async with session.begin():
        statement = (
            select(Rma)
            .where(
                Rma.status == RmaStatus.AUTHORIZED,
                col(Rma.authorization_expires_at) < moment,
            )
            .order_by(col(Rma.authorization_expires_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        expired = (await session.exec(statement)).all()
        for rma in expired:
            await transition(
                session,
                rma,
                RmaStatus.EXPIRED,
                actor=SYSTEM_ACTOR,
                now=moment,
                message="not shipped before the authorization ran out",
            )
    return len(expired)
