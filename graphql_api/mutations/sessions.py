"""Root mutations: Signing customers in."""

from __future__ import annotations

import uuid
from datetime import timedelta

import strawberry

from core.errors import DomainError
from core.usecases import (
    lookup,
)
from graphql_api.auth import CustomerSession
from graphql_api.context import Info
from graphql_api.errors import ErrorCode, UserError
from graphql_api.ids import expect_id
from graphql_api.permissions import Public
from graphql_api.types.commerce import Customer
from graphql_api.types.mutation_io import (
    CustomerSessionPayload,
)


@strawberry.type
class SessionMutations:
    @strawberry.mutation(
        permission_classes=[Public],
        description="Sign a customer in with an order number and the e-mail it was placed with.",
    )
    async def start_customer_session(
        self, info: Info, merchant_id: strawberry.ID, order_number: str, email: str
    ) -> CustomerSessionPayload:
        context = info.context
        client = context.request.client.host if context.request.client else "unknown"
        merchant = expect_id_or_none(merchant_id, "Merchant")
        # One budget per order however it is written (#1008, 1008, ##1008; any letter case
        # of the merchant's id), and one per address.
        number = order_number.strip().lstrip("#").strip().lower()[:64]
        order_key = context.limiter.key(
            "order", str(merchant) if merchant else merchant_id.strip().lower()[:100], number
        )
        address_key = context.limiter.key("address", client)
        limiter = context.limiter
        blocked = await limiter.blocked(
            {order_key: limiter.per_order, address_key: limiter.per_address}
        )
        if order_key in blocked:
            return _rate_limited()
        customer = None
        if merchant is not None and len(order_number) <= 64 and len(email) <= 320:
            async with context.database.read_session() as session:
                customer = await lookup.find_customer_by_order(
                    session, merchant, order_number, email
                )
        if customer is None:
            await context.limiter.record_failure({order_key, address_key})
            if address_key in blocked:
                return _rate_limited()
            return _refused(
                ErrorCode.INVALID_CREDENTIALS,
                "no order matches that number and e-mail",
                field=["orderNumber"],
            )
        session_principal = CustomerSession(customer.merchant_id, customer.id)
        return CustomerSessionPayload(
            token=context.tokens.issue(session_principal),
            expires_at=context.clock.now() + timedelta(seconds=context.tokens.max_age),
            customer=Customer.from_row(customer),
            user_errors=[],
        )


def _rate_limited() -> CustomerSessionPayload:
    return _refused(ErrorCode.RATE_LIMITED, "too many attempts; try again in a few minutes")


def _refused(
    code: ErrorCode, message: str, *, field: list[str] | None = None
) -> CustomerSessionPayload:
    return CustomerSessionPayload(
        token=None,
        expires_at=None,
        customer=None,
        user_errors=[UserError(field=field, code=code, message=message)],
    )


def expect_id_or_none(global_id: str, type_name: str) -> uuid.UUID | None:
    try:
        return expect_id(global_id, type_name)
    except DomainError:
        return None
