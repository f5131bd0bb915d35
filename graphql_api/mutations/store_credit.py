"""Root mutations: spending a customer's store credit (a storefront's checkout, as staff)."""

from __future__ import annotations

import strawberry

from core.errors import DomainError
from core.usecases import store_credit
from graphql_api.context import Info
from graphql_api.errors import user_error
from graphql_api.ids import expect_id
from graphql_api.mutations.running import run_use_case
from graphql_api.permissions import StaffWrite
from graphql_api.types.common import money
from graphql_api.types.store_credit import (
    RedeemStoreCreditInput,
    RedeemStoreCreditPayload,
    StoreCreditEntry,
)


@strawberry.type
class StoreCreditMutations:
    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Spend a customer's store credit kept by this service (credit transferred "
        "to a platform is spent there). Never below zero, however many calls at once; the "
        "same idempotencyKey returns the same entry. userErrors: INVALID_INPUT, NOT_FOUND "
        "(customerId), INSUFFICIENT_CREDIT, CONFLICT (the key was used for another spending).",
    )
    async def redeem_store_credit(
        self, info: Info, input: RedeemStoreCreditInput
    ) -> RedeemStoreCreditPayload:
        try:
            redeemed = await run_use_case(
                info,
                lambda session: store_credit.redeem_store_credit(
                    session,
                    info.context.merchant_id,
                    expect_id(input.customer_id, "Customer", field="customerId"),
                    amount_minor=input.amount.amount_minor,
                    currency=input.amount.currency,
                    reference=input.reference,
                    idempotency_key=input.idempotency_key,
                    actor=info.context.actor,
                    now=info.context.clock.now(),
                ),
            )
        except DomainError as error:
            return RedeemStoreCreditPayload(
                entry=None, balance=None, user_errors=[user_error(error)]
            )
        return RedeemStoreCreditPayload(
            entry=StoreCreditEntry.from_row(redeemed.entry),
            balance=money(redeemed.balance_minor, redeemed.entry.currency),
            user_errors=[],
        )
