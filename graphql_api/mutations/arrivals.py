"""Root mutations for unmatched arrivals (staff): record, match to an order, refuse."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from core.errors import DomainError
from core.usecases import arrivals, logistics
from graphql_api.context import Info
from graphql_api.errors import user_error
from graphql_api.ids import expect_id
from graphql_api.mutations.running import run_use_case
from graphql_api.permissions import StaffWrite
from graphql_api.types.arrivals import (
    UnmatchedArrival,
    UnmatchedArrivalInput,
    UnmatchedArrivalPayload,
)
from graphql_api.types.mutation_io import UnauthorizedLineInput
from graphql_api.types.returns import Rma


async def _payload(
    info: Info, work: Callable[[AsyncSession], Awaitable[Any]]
) -> UnmatchedArrivalPayload:
    try:
        result = await run_use_case(info, work)
    except DomainError as error:
        return UnmatchedArrivalPayload(arrival=None, user_errors=[user_error(error)])
    if isinstance(result, tuple):
        arrival, rma = result
        return UnmatchedArrivalPayload(
            arrival=UnmatchedArrival.from_row(arrival), rma=Rma.from_row(rma)
        )
    return UnmatchedArrivalPayload(arrival=UnmatchedArrival.from_row(result))


@strawberry.type
class ArrivalMutations:
    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Keep goods that arrived with no RMA and match no order, to match later. "
        "userErrors: INVALID_INPUT (no description, text too long).",
    )
    async def record_unmatched_arrival(
        self, info: Info, input: UnmatchedArrivalInput
    ) -> UnmatchedArrivalPayload:
        details = arrivals.ArrivalDetails(
            input.description, input.sender, input.carrier, input.tracking_number
        )
        return await _payload(
            info,
            lambda session: arrivals.record_unmatched_arrival(
                session,
                info.context.merchant_id,
                details,
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="The order was found: the goods become an unauthorized RMA, RECEIVED, "
        "decided by the policy like any unauthorized arrival. userErrors: INVALID_INPUT, "
        "NOT_FOUND (id, orderId, orderLineId), QUANTITY_EXCEEDED, CONFLICT (matched or "
        "refused already).",
    )
    async def match_unmatched_arrival(
        self,
        info: Info,
        id: strawberry.ID,
        order_id: strawberry.ID,
        lines: list[UnauthorizedLineInput],
    ) -> UnmatchedArrivalPayload:
        def arrived() -> list[logistics.UnauthorizedLine]:
            return [
                logistics.UnauthorizedLine(
                    expect_id(line.order_line_id, "OrderLine", field=f"lines[{index}].orderLineId"),
                    line.quantity,
                    line.condition.value,
                    line.reason.value,
                )
                for index, line in enumerate(lines)
            ]

        return await _payload(
            info,
            lambda session: arrivals.match_arrival(
                session,
                info.context.merchant_id,
                expect_id(id, "UnmatchedArrival"),
                order_id=expect_id(order_id, "Order", field="orderId"),
                lines=arrived(),
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Refuse goods that match no order (sent back to the sender, or disposed "
        "of). userErrors: INVALID_INPUT (no reason), NOT_FOUND, CONFLICT (matched or refused "
        "already).",
    )
    async def refuse_unmatched_arrival(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> UnmatchedArrivalPayload:
        return await _payload(
            info,
            lambda session: arrivals.refuse_arrival(
                session,
                info.context.merchant_id,
                expect_id(id, "UnmatchedArrival"),
                reason=reason,
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )
