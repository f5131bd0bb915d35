"""Root mutations: The return itself: request, review, shipment, receipt and inspection."""

from __future__ import annotations

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from core import entities
from core.usecases import (
    inspection,
    logistics,
    remaining_units,
    requests,
    review,
)
from graphql_api.context import Info
from graphql_api.ids import expect_id, expect_receipt_id
from graphql_api.mutations.running import (
    check_text,
    rma_line_id,
    rma_payload,
)
from graphql_api.permissions import CustomerOrStaffWrite, StaffWrite
from graphql_api.types.common import (
    Carrier,
)
from graphql_api.types.mutation_io import (
    InspectRmaLineInput,
    ReceiveRmaLineInput,
    ReceiveUnauthorizedInput,
    RefuseGoodsInput,
    RequestRmaInput,
    RmaPayload,
)


@strawberry.type
class ReturnMutations:
    @strawberry.mutation(permission_classes=[CustomerOrStaffWrite])
    async def request_rma(self, info: Info, input: RequestRmaInput) -> RmaPayload:
        context = info.context

        async def work(session: AsyncSession) -> entities.Rma:
            check_text(customerNote=input.customer_note)
            lines = [
                requests.ReturnLineInput(
                    order_line_id=expect_id(
                        line.order_line_id, "OrderLine", field=f"lines[{index}].orderLineId"
                    ),
                    quantity=line.quantity,
                    reason=line.reason.value,
                    condition=line.condition.value,
                    comment=line.comment,
                    troubleshooting_completed=line.troubleshooting_completed,
                )
                for index, line in enumerate(input.lines)
            ]
            return await requests.request_rma(
                session,
                context.merchant_id,
                order_id=expect_id(input.order_id, "Order", field="orderId"),
                lines=lines,
                actor=context.actor,
                now=context.clock.now(),
                customer_id=context.customer_id,
                preferred_resolution=(
                    input.preferred_resolution.value if input.preferred_resolution else None
                ),
                customer_note=input.customer_note,
            )

        return await rma_payload(info, work)

    @strawberry.mutation(permission_classes=[StaffWrite])
    async def authorize_rma(self, info: Info, id: strawberry.ID, note: str = "") -> RmaPayload:
        return await rma_payload(
            info,
            lambda session: review.authorize_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                actor=info.context.actor,
                now=info.context.clock.now(),
                note=note,
            ),
        )

    @strawberry.mutation(permission_classes=[StaffWrite])
    async def reject_rma(self, info: Info, id: strawberry.ID, reason: str) -> RmaPayload:
        return await rma_payload(
            info,
            lambda session: review.reject_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                actor=info.context.actor,
                now=info.context.clock.now(),
                reason=reason,
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Refuse goods that were received or inspected: sent back to the customer "
        "with tracking, or disposed of with their consent. No money moves for them; the RMA is "
        "REJECTED unless an earlier parcel was resolved (then it stays RESOLVED). userErrors: "
        "INVALID_INPUT (no reason; SEND_BACK without carrier and tracking; DISPOSE without "
        "consent), NOT_FOUND (id, receiptId), INVALID_TRANSITION (no goods wait for a decision).",
    )
    async def refuse_goods(
        self, info: Info, id: strawberry.ID, input: RefuseGoodsInput
    ) -> RmaPayload:
        return await rma_payload(
            info,
            lambda session: review.refuse_goods(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                reason=input.reason,
                outcome=input.outcome,
                carrier=input.carrier,
                tracking_number=input.tracking_number,
                customer_consented=input.customer_consented,
                receipt_id=expect_receipt_id(input.receipt_id),
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Stop waiting for the units of a partly received return that have not "
        "arrived (they no longer count as returned); the parcels that came are unaffected. "
        "userErrors: INVALID_INPUT (no reason), NOT_FOUND, INVALID_TRANSITION (nothing arrived "
        "yet: use cancelRma; nothing more is expected).",
    )
    async def cancel_remaining_units(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> RmaPayload:
        return await rma_payload(
            info,
            lambda session: remaining_units.cancel_remaining_units(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                reason=reason,
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(permission_classes=[CustomerOrStaffWrite])
    async def cancel_rma(self, info: Info, id: strawberry.ID, reason: str = "") -> RmaPayload:
        return await rma_payload(
            info,
            lambda session: review.cancel_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                actor=info.context.actor,
                now=info.context.clock.now(),
                reason=reason,
                customer_id=info.context.customer_id,
            ),
        )

    @strawberry.mutation(permission_classes=[CustomerOrStaffWrite])
    async def record_rma_shipment(
        self, info: Info, id: strawberry.ID, carrier: Carrier, tracking_number: str
    ) -> RmaPayload:
        return await rma_payload(
            info,
            lambda session: logistics.record_shipment(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                carrier=carrier.value,
                tracking_number=tracking_number,
                actor=info.context.actor,
                now=info.context.clock.now(),
                customer_id=info.context.customer_id,
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Record units arriving. Parcels before an inspection join one receipt; a "
        "parcel after it starts the next receipt (the RMA goes back to RECEIVED). userErrors: "
        "INVALID_INPUT, NOT_FOUND (id, rmaLineId), QUANTITY_EXCEEDED (more than asked for), "
        "INVALID_TRANSITION (not authorized yet, ended, or nothing more is expected).",
    )
    async def receive_rma(
        self, info: Info, id: strawberry.ID, lines: list[ReceiveRmaLineInput]
    ) -> RmaPayload:
        def received() -> list[logistics.ReceivedLine]:
            return [
                logistics.ReceivedLine(rma_line_id(line.rma_line_id, index), line.quantity)
                for index, line in enumerate(lines)
            ]

        return await rma_payload(
            info,
            lambda session: logistics.receive_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                lines=received(),
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Record goods that arrived without an RMA as an unauthorized RMA, already "
        "RECEIVED. The policy decides as for a request (window, warranty, final sale) and the "
        "unauthorized restocking fee applies; goods it refuses are never refunded. userErrors: "
        "INVALID_INPUT, NOT_FOUND (orderId, orderLineId), QUANTITY_EXCEEDED (more than "
        "returnable).",
    )
    async def receive_unauthorized(self, info: Info, input: ReceiveUnauthorizedInput) -> RmaPayload:
        def arrived() -> list[logistics.UnauthorizedLine]:
            return [
                logistics.UnauthorizedLine(
                    expect_id(line.order_line_id, "OrderLine", field=f"lines[{index}].orderLineId"),
                    line.quantity,
                    line.condition.value,
                    line.reason.value,
                )
                for index, line in enumerate(input.lines)
            ]

        return await rma_payload(
            info,
            lambda session: logistics.receive_unauthorized(
                session,
                info.context.merchant_id,
                order_id=expect_id(input.order_id, "Order", field="orderId"),
                lines=arrived(),
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Record condition, disposition and the verdict on a merchant-fault claim "
        "(reasonConfirmed) for every line of the receipt waiting for inspection. userErrors: "
        "INVALID_INPUT (unknown condition or disposition, a line left out), NOT_FOUND (a line "
        "not in this receipt), INVALID_TRANSITION (nothing waits for inspection).",
    )
    async def inspect_rma(
        self, info: Info, id: strawberry.ID, lines: list[InspectRmaLineInput]
    ) -> RmaPayload:
        def inspected() -> list[inspection.InspectedLine]:
            return [
                inspection.InspectedLine(
                    rma_line_id(line.rma_line_id, index),
                    line.condition.value,
                    line.disposition.value,
                    line.note,
                    line.reason_confirmed,
                )
                for index, line in enumerate(lines)
            ]

        return await rma_payload(
            info,
            lambda session: inspection.inspect_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                lines=inspected(),
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )
