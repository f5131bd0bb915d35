"""The warehouse's verdict on what came back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Inspection, OrderLine, Rma, RmaLine
from core.enums import Disposition, ItemCondition, ReceiptStatus, RmaStatus
from core.errors import InvalidInput, NotFound
from core.outbox.kinds import AUTO_RESOLVE, RESTOCK_RETURN
from core.outbox.queue import enqueue
from core.rules.policy import MERCHANT_FAULT_REASONS, opened_against_policy, passes_inspection
from core.usecases.inputs import as_uuid, checked_now, clean_text, parse_enum, require_unique
from core.usecases.owned_rows import lock_rma, policy_of
from core.usecases.receipts import follow_receipts, pick_receipt, receipts_of
from core.usecases.timeline import record_event


@dataclass(frozen=True, slots=True)
class InspectedLine:
    rma_line_id: uuid.UUID | str
    condition: ItemCondition | str
    disposition: Disposition | str
    note: str = ""
    # The verdict on a merchant-fault claim: confirmed, overturned, or not judged (None).
    reason_confirmed: bool | None = None


async def inspect_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    lines: Sequence[InspectedLine],
    actor: str,
    now: datetime,
) -> Rma:
    """Record condition and disposition for every line of the receipt waiting for inspection
    (the units that arrived since the last one), in one go."""
    parsed = []
    for index, line in enumerate(lines):
        condition = parse_enum(
            ItemCondition, line.condition, f"lines[{index}].condition", "unknown condition"
        )
        disposition = parse_enum(
            Disposition, line.disposition, f"lines[{index}].disposition", "unknown disposition"
        )
        parsed.append(
            (
                as_uuid(line.rma_line_id, f"lines[{index}].rmaLineId"),
                condition,
                disposition,
                clean_text(line.note, f"lines[{index}].note"),
                line.reason_confirmed,
            )
        )
    require_unique([entry[0] for entry in parsed], "lines")
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        receipts = await receipts_of(session, rma.id)
        receipt = pick_receipt(receipts, None, ReceiptStatus.RECEIVED, target=RmaStatus.INSPECTED)
        received = {line.rma_line_id: line.quantity for line in receipt.lines}
        for index, (line_id, *_rest) in enumerate(parsed):
            if line_id not in received:
                raise NotFound("received RmaLine", line_id, field=f"lines[{index}].rmaLineId")
        if set(received) - {entry[0] for entry in parsed}:
            raise InvalidInput("lines", "every received line must be inspected")
        receipt.status = ReceiptStatus.INSPECTED
        receipt.inspected_at = receipt.updated_at = moment
        session.add(receipt)
        await follow_receipts(session, rma, receipts, actor=actor, now=moment)
        rma.inspected_at = moment
        restocked: list[str] = []
        for line_id, condition, disposition, note, confirmed in parsed:
            inspection = Inspection(
                merchant_id=merchant_id,
                rma_id=rma.id,
                receipt_id=receipt.id,
                rma_line_id=line_id,
                quantity=received[line_id],
                condition=condition,
                disposition=disposition,
                note=note,
                inspected_by=actor,
                reason_confirmed=confirmed,
                created_at=moment,
            )
            session.add(inspection)
            if disposition is Disposition.RESTOCK:
                restocked.append(str(inspection.id))
        if restocked:
            # Back into the platform's stock, when the order came from one.
            enqueue(
                session,
                RESTOCK_RETURN,
                {"rmaId": str(rma.id), "merchantId": str(merchant_id), "inspections": restocked},
                now=moment,
                merchant_id=merchant_id,
                lock_key=f"rma:{rma.id}",
            )
        reasons = {line.id: line.reason for line in rma.lines}
        policy = await policy_of(session, rma)
        categories = await _categories(session, rma)
        opened = [
            line_id
            for line_id, condition, _d, _n, confirmed in parsed
            if opened_against_policy(
                policy, categories.get(line_id), reasons[line_id], confirmed, condition
            )
        ]
        for line_id in opened:
            await record_event(
                session,
                rma,
                actor=actor,
                kind="OPENED_UNOPENED_ONLY",
                now=moment,
                message="an unopened-only item arrived opened: refund it with the policy's "
                "fee, send it back with refuseGoods, or look closer",
                data={"rmaLineId": str(line_id)},
            )
        for line_id, _c, _d, note, confirmed in parsed:
            if reasons[line_id] in MERCHANT_FAULT_REASONS and confirmed is not True:
                # A claim the inspector did not confirm never settles by itself.
                verdict = "overturned" if confirmed is False else "not judged"
                await record_event(
                    session,
                    rma,
                    actor=actor,
                    kind="CLAIM_OVERTURNED" if confirmed is False else "CLAIM_NOT_JUDGED",
                    now=moment,
                    message=f"{reasons[line_id].value} {verdict} at inspection"
                    + (f": {note}" if note else "; staff decide"),
                    data={"rmaLineId": str(line_id)},
                )
        if (
            policy.auto_resolve
            and rma.preferred_resolution is not None
            and not opened
            and all(
                passes_inspection(reasons[line_id], c, confirmed)
                for line_id, c, _d, _n, confirmed in parsed
            )
        ):
            enqueue(
                session,
                AUTO_RESOLVE,
                {
                    "rmaId": str(rma.id),
                    "merchantId": str(merchant_id),
                    "receiptId": str(receipt.id),
                },
                now=moment,
                merchant_id=merchant_id,
                lock_key=f"rma:{rma.id}",
            )
        await record_event(
            session,
            rma,
            actor=actor,
            kind="INSPECTED",
            now=moment,
            message=f"parcel {receipt.sequence}",
            data={
                str(line_id): {
                    "condition": c.value,
                    "disposition": d.value,
                    "reasonConfirmed": confirmed,
                }
                for line_id, c, d, _n, confirmed in parsed
            },
        )
    return rma


async def _categories(session: AsyncSession, rma: Rma) -> dict[uuid.UUID, str | None]:
    """Each RMA line's product category (for the policy's unopened-only rule)."""
    rows = await session.exec(
        select(RmaLine.id, OrderLine.category)
        .join(OrderLine, col(OrderLine.id) == col(RmaLine.order_line_id))
        .where(RmaLine.rma_id == rma.id)
    )
    return dict(rows.all())
