"""Root mutations: Settling a return: the money, then closing it."""

from __future__ import annotations

import strawberry

from core.enums import ApiKeyRole
from core.enums import ResolutionKind as CoreResolutionKind
from core.usecases import (
    money_movement,
    resolutions,
)
from core.usecases.exchanges import ExchangeRequest, ReplacementLine
from core.usecases.overrides import Adjustments, LineRefundOverride
from graphql_api.context import Info
from graphql_api.ids import expect_id, expect_receipt_id
from graphql_api.mutations.running import (
    resolution_payload,
    rma_payload,
)
from graphql_api.permissions import StaffWrite
from graphql_api.types.common import (
    ResolutionKind,
)
from graphql_api.types.mutation_io import (
    ExchangeInput,
    ResolutionAdjustmentsInput,
    ResolveRmaPayload,
    RmaPayload,
)


def _adjustments(given: ResolutionAdjustmentsInput) -> Adjustments:
    return Adjustments(
        reason=given.reason,
        waive_restocking_fee=given.waive_restocking_fee,
        refund_shipping=given.refund_shipping,
        goodwill_minor=given.goodwill_minor,
        lines=[
            LineRefundOverride(
                expect_id(line.rma_line_id, "RmaLine", field=f"adjustments.lines[{i}].rmaLineId"),
                line.refund_minor,
            )
            for i, line in enumerate(given.lines)
        ],
    )


def _exchange(given: ExchangeInput) -> ExchangeRequest:
    return ExchangeRequest(
        lines=[
            ReplacementLine(
                title=line.title,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                sku=line.sku,
                variant_reference=line.variant_id,
            )
            for line in given.lines
        ],
        note=given.note,
    )


@strawberry.type
class SettlementMutations:
    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Choose a refund, store credit or an exchange (naming its replacement in "
        "`exchange`) for an inspected parcel (receiptId; the oldest one waiting when omitted); "
        "the same idempotencyKey returns the same resolution however often it is sent. "
        "userErrors: INVALID_INPUT (exchange lines), NOT_FOUND (id, receiptId), INVALID_TRANSITION "
        "(no inspected receipt waits), RESOLUTION_NOT_ALLOWED (not in the policy), NOT_ELIGIBLE "
        "(the policy refuses the goods, or an overturned claim on a final-sale item), "
        "REFUND_EXCEEDS_PAID, CONFLICT (the idempotencyKey was used for another request), "
        "OVERRIDE_NEEDS_ADMIN (adjustments raise the price more than the policy's "
        "agentOverrideLimitMinor for an AGENT).",
    )
    async def resolve_rma(
        self,
        info: Info,
        id: strawberry.ID,
        resolution: ResolutionKind,
        idempotency_key: str | None = None,
        receipt_id: strawberry.ID | None = None,
        adjustments: ResolutionAdjustmentsInput | None = None,
        exchange: ExchangeInput | None = None,
    ) -> ResolveRmaPayload:
        staff = info.context.staff
        return await resolution_payload(
            info,
            lambda session: resolutions.resolve_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                kind=CoreResolutionKind(resolution.value),
                actor=info.context.actor,
                now=info.context.clock.now(),
                request_key=idempotency_key,
                receipt_id=expect_receipt_id(receipt_id),
                adjustments=None if adjustments is None else _adjustments(adjustments),
                beyond_agent_limit=staff is not None and staff.role is ApiKeyRole.ADMIN,
                exchange=None if exchange is None else _exchange(exchange),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Confirm a refund that staff made by hand (orders not paid through Stripe).",
    )
    async def record_manual_refund(
        self, info: Info, resolution_id: strawberry.ID, reference: str
    ) -> ResolveRmaPayload:
        return await resolution_payload(
            info,
            lambda session: resolutions.complete_manual_refund(
                session,
                info.context.merchant_id,
                expect_id(resolution_id, "Resolution", field="resolutionId"),
                reference=reference,
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Send a refund that needed review back to the provider, once checked; it "
        "looks for an existing refund before sending anything.",
    )
    async def retry_resolution(self, info: Info, resolution_id: strawberry.ID) -> ResolveRmaPayload:
        return await resolution_payload(
            info,
            lambda session: money_movement.retry_resolution(
                session,
                info.context.merchant_id,
                expect_id(resolution_id, "Resolution", field="resolutionId"),
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(permission_classes=[StaffWrite])
    async def close_rma(self, info: Info, id: strawberry.ID, note: str = "") -> RmaPayload:
        return await rma_payload(
            info,
            lambda session: resolutions.close_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                actor=info.context.actor,
                now=info.context.clock.now(),
                note=note,
            ),
        )
