"""Root mutations: Orders pushed by storefronts."""

from __future__ import annotations

import strawberry

from core.errors import DomainError
from core.usecases import (
    orders,
)
from graphql_api.context import Info
from graphql_api.errors import user_error
from graphql_api.mutations.running import run_use_case
from graphql_api.permissions import StaffWrite
from graphql_api.types.commerce import Order
from graphql_api.types.mutation_io import (
    UpsertOrderInput,
    UpsertOrderPayload,
)


@strawberry.type
class OrderMutations:
    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Create or update an order pushed by a storefront; safe to repeat.",
    )
    async def upsert_order(self, info: Info, input: UpsertOrderInput) -> UpsertOrderPayload:
        data = orders.OrderInput(
            platform=input.platform.value,
            external_id=input.external_id,
            order_number=input.order_number,
            currency=input.currency,
            placed_at=input.placed_at,
            delivered_at=input.delivered_at,
            shipping_minor=input.shipping_minor,
            customer=orders.CustomerInput(
                email=input.customer.email,
                name=input.customer.name,
                external_id=input.customer.external_id,
                stripe_customer_id=input.customer.stripe_customer_id,
            ),
            lines=[orders.OrderLineInput(**vars(line)) for line in input.lines],
            payments=[
                orders.PaymentInput(p.provider.value, p.reference, p.captured_minor, p.currency)
                for p in input.payments
            ],
        )
        try:
            order = await run_use_case(
                info,
                lambda session: orders.upsert_order(
                    session, info.context.merchant_id, data, now=info.context.clock.now()
                ),
            )
        except DomainError as error:
            return UpsertOrderPayload(order=None, user_errors=[user_error(error)])
        return UpsertOrderPayload(order=Order.from_row(order), user_errors=[])
