"""Root mutations: an exchange's replacement fulfilled or called off."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from core import entities
from core.errors import DomainError
from core.usecases import exchanges
from graphql_api.context import Info
from graphql_api.errors import user_error
from graphql_api.ids import expect_id
from graphql_api.mutations.running import run_use_case
from graphql_api.permissions import StaffWrite
from graphql_api.types.exchanges import Exchange
from graphql_api.types.mutation_io import ExchangePayload


async def _exchange_payload(
    info: Info, work: Callable[[AsyncSession], Awaitable[entities.Exchange]]
) -> ExchangePayload:
    try:
        row = await run_use_case(info, work)
    except DomainError as error:
        return ExchangePayload(exchange=None, user_errors=[user_error(error)])
    return ExchangePayload(exchange=Exchange.from_row(row), user_errors=[])


@strawberry.type
class ExchangeMutations:
    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Say that an exchange's replacement went out (a storefront's order, or one "
        "placed by hand), with a shipment or order reference; again is a no-op. userErrors: "
        "NOT_FOUND, INVALID_INPUT (no reference), CONFLICT (cancelled, or not placed yet).",
    )
    async def confirm_exchange_fulfilled(
        self, info: Info, id: strawberry.ID, reference: str
    ) -> ExchangePayload:
        return await _exchange_payload(
            info,
            lambda session: exchanges.confirm_exchange_fulfilled(
                session,
                info.context.merchant_id,
                expect_id(id, "Exchange"),
                reference=reference,
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Call off a replacement that was not fulfilled, with the reason; the value "
        "the returned goods gave it is then for staff to settle (the timeline says how much). "
        "userErrors: NOT_FOUND, INVALID_INPUT (no reason), CONFLICT (fulfilled already).",
    )
    async def cancel_exchange(self, info: Info, id: strawberry.ID, reason: str) -> ExchangePayload:
        return await _exchange_payload(
            info,
            lambda session: exchanges.cancel_exchange(
                session,
                info.context.merchant_id,
                expect_id(id, "Exchange"),
                reason=reason,
                actor=info.context.actor,
                now=info.context.clock.now(),
            ),
        )
