"""Goods on their way back and arriving at the warehouse."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Receipt, ReceiptLine, Rma, RmaLine, Shipment
from core.enums import Carrier, ItemCondition, ReceiptStatus, ReturnReason, RmaStatus
from core.errors import InvalidInput, InvalidTransition, NotFound, QuantityExceeded
from core.rules.policy import BLOCKING_CODES, LineRequest, evaluate_line
from core.rules.tracking import normalize_tracking_number, tracking_url
from core.usecases.inputs import as_uuid, checked_now, parse_enum, require_positive, require_unique
from core.usecases.owned_rows import current_policy, load_order, lock_rma, policy_of
from core.usecases.receipts import (
    expect_the_rest,
    follow_receipts,
    outstanding_units,
    receipts_of,
)
from core.usecases.requests import (
    NumberSource,
    line_facts,
    random_number_bits,
    unique_rma_number,
)
from core.usecases.returned_units import returned_quantities
from core.usecases.timeline import record_event, transition


def _carrier(value: Carrier | str) -> Carrier:
    return parse_enum(Carrier, value, "carrier")


async def record_shipment(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    carrier: Carrier | str,
    tracking_number: str,
    actor: str,
    customer_id: uuid.UUID | None = None,
    now: datetime,
) -> Rma:
    """Add a parcel's tracking; the first one puts an authorized RMA in transit.

    More parcels may be added while in transit, and after the first one arrived while the rest
    is still expected; sending the same tracking number again changes nothing.
    """
    chosen = _carrier(carrier)
    number = normalize_tracking_number(tracking_number)
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id, customer_id=customer_id)
        existing = (
            await session.exec(
                select(Shipment).where(
                    Shipment.rma_id == rma.id,
                    Shipment.carrier == chosen,
                    Shipment.tracking_number == number,
                )
            )
        ).first()
        if existing is not None:
            return rma
        if rma.received_at is not None:
            # A later parcel of a return that already started arriving.
            if rma.rest_ended_at is not None:
                raise InvalidTransition(
                    rma.status.value,
                    RmaStatus.IN_TRANSIT.value,
                    hint="nothing more is expected on this return",
                )
        elif rma.status is not RmaStatus.IN_TRANSIT:
            await transition(session, rma, RmaStatus.IN_TRANSIT, actor=actor, now=moment)
        url = tracking_url(chosen, number)
        session.add(
            Shipment(
                merchant_id=merchant_id,
                rma_id=rma.id,
                carrier=chosen,
                tracking_number=number,
                tracking_url=url,
                created_at=moment,
            )
        )
        await record_event(
            session,
            rma,
            actor=actor,
            kind="SHIPMENT_ADDED",
            now=moment,
            message=f"{chosen.value} {number}",
            data={"carrier": chosen.value, "trackingNumber": number, "trackingUrl": url},
        )
    return rma


@dataclass(frozen=True, slots=True)
class ReceivedLine:
    rma_line_id: uuid.UUID | str
    quantity: int


async def receive_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    lines: Sequence[ReceivedLine],
    actor: str,
    now: datetime,
) -> Rma:
    """Record units arriving at the warehouse.

    Parcels that arrive before an inspection join one receipt; a parcel after it starts the
    next receipt, inspected and resolved on its own. A walk-in return goes straight from
    AUTHORIZED to RECEIVED.
    """
    if not lines:
        raise InvalidInput("lines", "say which lines arrived")
    for index, line in enumerate(lines):
        require_positive(line.quantity, f"lines[{index}].quantity")
    ids = [
        as_uuid(line.rma_line_id, f"lines[{index}].rmaLineId") for index, line in enumerate(lines)
    ]
    require_unique(ids, "lines")
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        if rma.rest_ended_at is not None:
            raise InvalidTransition(
                rma.status.value,
                RmaStatus.RECEIVED.value,
                hint="nothing more is expected on this return; record goods that came anyway "
                "with receiveUnauthorized",
            )
        by_id = {line.id: line for line in rma.lines}
        for index, (line_id, received) in enumerate(zip(ids, lines, strict=True)):
            rma_line = by_id.get(line_id)
            if rma_line is None:
                raise NotFound("RmaLine", line_id, field=f"lines[{index}].rmaLineId")
            if rma_line.received_quantity + received.quantity > rma_line.quantity:
                raise QuantityExceeded(
                    f"line {index + 1}: {rma_line.received_quantity} of {rma_line.quantity} "
                    f"already received, {received.quantity} more is too many",
                    field=f"lines[{index}].quantity",
                )
        receipts = await receipts_of(session, rma.id)
        receipt = next((r for r in receipts if r.status is ReceiptStatus.RECEIVED), None)
        if receipt is None:
            # Everything received before was inspected: this parcel starts the next receipt.
            receipt = Receipt(
                merchant_id=merchant_id,
                rma_id=rma.id,
                sequence=len(receipts) + 1,
                status=ReceiptStatus.RECEIVED,
                received_at=moment,
                created_at=moment,
                updated_at=moment,
                lines=[],
            )
            receipts.append(receipt)
            session.add(receipt)
        in_receipt = {line.rma_line_id: line for line in receipt.lines}
        for line_id, received in zip(ids, lines, strict=True):
            by_id[line_id].received_quantity += received.quantity
            session.add(by_id[line_id])
            if line_id in in_receipt:
                in_receipt[line_id].quantity += received.quantity
            else:
                receipt.lines.append(
                    ReceiptLine(
                        merchant_id=merchant_id,
                        receipt_id=receipt.id,
                        rma_line_id=line_id,
                        quantity=received.quantity,
                        created_at=moment,
                    )
                )
        receipt.updated_at = moment
        await follow_receipts(session, rma, receipts, actor=actor, now=moment)
        rma.received_at = rma.received_at or moment
        policy = await policy_of(session, rma)
        expect_the_rest(rma, valid_days=policy.authorization_valid_days, now=moment)
        await record_event(
            session,
            rma,
            actor=actor,
            kind="ITEMS_RECEIVED",
            now=moment,
            message=f"parcel {receipt.sequence}"
            + (
                f"; {outstanding_units(rma)} unit(s) still to come"
                if outstanding_units(rma)
                else ""
            ),
            data={
                "receipt": receipt.sequence,
                "lines": {str(i): r.quantity for i, r in zip(ids, lines, strict=True)},
            },
        )
    return rma


@dataclass(frozen=True, slots=True)
class UnauthorizedLine:
    order_line_id: uuid.UUID | str
    quantity: int
    condition: ItemCondition | str = ItemCondition.OPENED
    reason: ReturnReason | str = ReturnReason.OTHER


ArrivedLine = tuple[uuid.UUID, int, ItemCondition, ReturnReason]


def parse_unauthorized_lines(lines: Sequence[UnauthorizedLine]) -> list[ArrivedLine]:
    """Checked lines of goods that arrived unauthorized: (order line, quantity, condition,
    reason)."""
    if not lines:
        raise InvalidInput("lines", "say which lines arrived")
    parsed: list[ArrivedLine] = []
    for index, line in enumerate(lines):
        require_positive(line.quantity, f"lines[{index}].quantity")
        message = "unknown condition or reason"
        condition = parse_enum(ItemCondition, line.condition, f"lines[{index}]", message)
        reason = parse_enum(ReturnReason, line.reason, f"lines[{index}]", message)
        parsed.append(
            (
                as_uuid(line.order_line_id, f"lines[{index}].orderLineId"),
                line.quantity,
                condition,
                reason,
            )
        )
    require_unique([entry[0] for entry in parsed], "lines")
    return parsed


async def receive_unauthorized(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    *,
    order_id: uuid.UUID | str,
    lines: Sequence[UnauthorizedLine],
    actor: str,
    now: datetime,
    number_source: NumberSource = random_number_bits,
) -> Rma:
    """Record goods that arrived with no authorization, as an RMA created at RECEIVED.

    It is flagged unauthorized, so the policy's restocking fee applies when it is resolved.
    """
    parsed = parse_unauthorized_lines(lines)
    moment = checked_now(now)
    async with session.begin():
        return await record_unauthorized(
            session,
            merchant_id,
            order_id,
            parsed,
            actor=actor,
            now=moment,
            number_source=number_source,
        )


async def record_unauthorized(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    order_id: uuid.UUID | str,
    parsed: Sequence[ArrivedLine],
    *,
    actor: str,
    now: datetime,
    number_source: NumberSource = random_number_bits,
) -> Rma:
    """Within the caller's transaction: the unauthorized RMA for lines already checked."""
    moment = now
    order = await load_order(session, merchant_id, order_id, for_update=True)
    policy = await current_policy(session, merchant_id)
    returned = await returned_quantities(session, order.id)
    by_id = {line.id: line for line in order.lines}
    rma = Rma(
        merchant_id=merchant_id,
        number=await unique_rma_number(session, merchant_id, number_source),
        order_id=order.id,
        customer_id=order.customer_id,
        status=RmaStatus.RECEIVED,
        currency=order.currency,
        policy_id=policy.id,
        policy_version=policy.version,
        decision={"policyVersion": policy.version, "unauthorized": True},  # lines below
        unauthorized=True,
        received_at=moment,
        rest_ended_at=moment,  # everything it holds is here
        created_at=moment,
        updated_at=moment,
    )
    rma_lines = []
    decided: dict[str, dict[str, object]] = {}
    for index, (order_line_id, quantity, condition, reason) in enumerate(parsed):
        order_line = by_id.get(order_line_id)
        if order_line is None:
            raise NotFound("OrderLine", order_line_id, field=f"lines[{index}].orderLineId")
        # The goods are here whatever the policy says; its decision is stored, and a line
        # it refuses (final sale, past the window and warranty) is never refunded: staff
        # send it back or dispose of it with refuseGoods.
        eligibility = evaluate_line(
            policy,
            line_facts(order, order_line, returned),
            moment,
            # Troubleshooting is for requests: these goods are already here.
            LineRequest(quantity, reason, condition, troubleshooting_completed=True),
        )
        decided[str(order_line_id)] = {
            "eligible": eligibility.eligible,
            "codes": list(eligibility.codes),
        }
        returnable = order_line.quantity - returned.get(order_line.id, 0)
        if quantity > returnable:
            raise QuantityExceeded(
                f"{order_line.title}: {quantity} received, {returnable} returnable",
                field=f"lines[{index}].quantity",
            )
        rma_lines.append(
            RmaLine(
                merchant_id=merchant_id,
                rma_id=rma.id,
                order_line_id=order_line_id,
                position=index,
                quantity=quantity,
                received_quantity=quantity,
                reason=reason,
                condition=condition,
                created_at=moment,
            )
        )
    rma.lines = rma_lines
    rma.decision = {**rma.decision, "lines": decided}
    session.add(rma)
    await session.flush()  # the receipt's lines refer to the RMA's lines
    receipt_id = uuid.uuid4()
    session.add(
        Receipt(
            id=receipt_id,
            merchant_id=merchant_id,
            rma_id=rma.id,
            sequence=1,
            status=ReceiptStatus.RECEIVED,
            received_at=moment,
            created_at=moment,
            updated_at=moment,
            lines=[
                ReceiptLine(
                    merchant_id=merchant_id,
                    receipt_id=receipt_id,
                    rma_line_id=line.id,
                    quantity=line.quantity,
                    created_at=moment,
                )
                for line in rma_lines
            ],
        )
    )
    refused = sorted(
        {
            str(code)
            for line in decided.values()
            if not line["eligible"]
            for code in line["codes"]  # type: ignore[attr-defined]
            if code in BLOCKING_CODES
        }
    )
    await record_event(
        session,
        rma,
        actor=actor,
        kind="RECEIVED_UNAUTHORIZED",
        to_status=RmaStatus.RECEIVED,
        now=moment,
        message="goods arrived without an authorization"
        + (
            f"; the policy refuses them ({', '.join(refused)}): send them back or dispose "
            "of them with refuseGoods"
            if refused
            else "; the unauthorized restocking fee applies"
        ),
        data={"refusedCodes": refused},
    )
    return rma
