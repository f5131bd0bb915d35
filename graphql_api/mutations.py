"""Root mutations: input -> use case -> payload; expected failures become ``userErrors``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from core import entities
from core.enums import ResolutionKind as CoreResolutionKind
from core.errors import DomainError, InvalidInput
from core.usecases import (
    inspection,
    logistics,
    lookup,
    money_movement,
    orders,
    policies,
    requests,
    resolutions,
    review,
)
from graphql_api.auth import CustomerSession
from graphql_api.context import Info
from graphql_api.errors import ErrorCode, UserError, user_error
from graphql_api.ids import expect_id
from graphql_api.permissions import Admin, CustomerOrStaffWrite, Public, StaffWrite
from graphql_api.types.commerce import Customer, Order
from graphql_api.types.common import (
    Carrier,
    ResolutionKind,
)
from graphql_api.types.mutation_io import (
    CustomerSessionPayload,
    InspectRmaLineInput,
    ReceiveRmaLineInput,
    RequestRmaInput,
    ResolveRmaPayload,
    ReturnPolicyInput,
    ReturnPolicyPayload,
    RmaPayload,
    UpsertOrderInput,
    UpsertOrderPayload,
)
from graphql_api.types.policy import ReturnPolicy
from graphql_api.types.returns import Resolution, Rma

T = TypeVar("T")
MAX_TEXT = 2000


async def _run(info: Info, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with info.context.database.session() as session:
        result = await work(session)
    # A write may have queued jobs: let the in-process worker look now, not at its next poll.
    if info.context.on_write is not None:
        info.context.on_write()
    return result


def _check_text(**fields: str | None) -> None:
    for name, value in fields.items():
        if value is not None and len(value) > MAX_TEXT:
            raise InvalidInput(name, f"{name} is longer than {MAX_TEXT} characters")


async def _rma_payload(
    info: Info, work: Callable[[AsyncSession], Awaitable[entities.Rma]]
) -> RmaPayload:
    try:
        result = await _run(info, work)
    except DomainError as error:
        return RmaPayload(rma=None, user_errors=[user_error(error)])
    return RmaPayload(rma=Rma.from_row(result), user_errors=[])


async def _resolution_payload(
    info: Info, work: Callable[[AsyncSession], Awaitable[resolutions.ChosenResolution]]
) -> ResolveRmaPayload:
    try:
        chosen = await _run(info, work)
    except DomainError as error:
        return ResolveRmaPayload(rma=None, resolution=None, user_errors=[user_error(error)])
    return ResolveRmaPayload(
        rma=Rma.from_row(chosen.rma),
        resolution=Resolution.from_row(chosen.resolution),
        user_errors=[],
    )


def _rma_line_id(global_id: str, index: int) -> uuid.UUID:
    return expect_id(global_id, "RmaLine", field=f"lines[{index}].rmaLineId")


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[Public],
        description="Sign a customer in with an order number and the e-mail it was placed with.",
    )
    async def start_customer_session(
        self, info: Info, merchant_id: strawberry.ID, order_number: str, email: str
    ) -> CustomerSessionPayload:
        context = info.context
        client = context.request.client.host if context.request.client else "unknown"
        keys = (f"ip:{client}", f"order:{merchant_id}:{order_number.strip().lower()[:64]}")
        if any(context.limiter.blocked(key) for key in keys):
            return CustomerSessionPayload(
                token=None,
                expires_at=None,
                customer=None,
                user_errors=[
                    UserError(
                        field=None,
                        code=ErrorCode.RATE_LIMITED,
                        message="too many attempts; try again in a few minutes",
                    )
                ],
            )
        customer = None
        if len(order_number) <= 64 and len(email) <= 320:
            merchant = expect_id_or_none(merchant_id, "Merchant")
            if merchant is not None:
                async with context.database.read_session() as session:
                    customer = await lookup.find_customer_by_order(
                        session, merchant, order_number, email
                    )
        if customer is None:
            for key in keys:
                context.limiter.record_failure(key)
            return CustomerSessionPayload(
                token=None,
                expires_at=None,
                customer=None,
                user_errors=[
                    UserError(
                        field=["orderNumber"],
                        code=ErrorCode.INVALID_CREDENTIALS,
                        message="no order matches that number and e-mail",
                    )
                ],
            )
        session_principal = CustomerSession(customer.merchant_id, customer.id)
        return CustomerSessionPayload(
            token=context.tokens.issue(session_principal),
            expires_at=context.clock.now() + timedelta(seconds=context.tokens.max_age),
            customer=Customer.from_row(customer),
            user_errors=[],
        )

    @strawberry.mutation(permission_classes=[CustomerOrStaffWrite])
    async def request_rma(self, info: Info, input: RequestRmaInput) -> RmaPayload:
        context = info.context

        async def work(session: AsyncSession) -> entities.Rma:
            _check_text(customerNote=input.customer_note)
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

        return await _rma_payload(info, work)

    @strawberry.mutation(permission_classes=[StaffWrite])
    async def authorize_rma(self, info: Info, id: strawberry.ID, note: str = "") -> RmaPayload:
        return await _rma_payload(
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
        return await _rma_payload(
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

    @strawberry.mutation(permission_classes=[CustomerOrStaffWrite])
    async def cancel_rma(self, info: Info, id: strawberry.ID, reason: str = "") -> RmaPayload:
        return await _rma_payload(
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
        return await _rma_payload(
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

    @strawberry.mutation(permission_classes=[StaffWrite])
    async def receive_rma(
        self, info: Info, id: strawberry.ID, lines: list[ReceiveRmaLineInput]
    ) -> RmaPayload:
        def received() -> list[logistics.ReceivedLine]:
            return [
                logistics.ReceivedLine(_rma_line_id(line.rma_line_id, index), line.quantity)
                for index, line in enumerate(lines)
            ]

        return await _rma_payload(
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

    @strawberry.mutation(permission_classes=[StaffWrite])
    async def inspect_rma(
        self, info: Info, id: strawberry.ID, lines: list[InspectRmaLineInput]
    ) -> RmaPayload:
        def inspected() -> list[inspection.InspectedLine]:
            return [
                inspection.InspectedLine(
                    _rma_line_id(line.rma_line_id, index),
                    line.condition.value,
                    line.disposition.value,
                    line.note,
                )
                for index, line in enumerate(lines)
            ]

        return await _rma_payload(
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

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Choose a refund or store credit; the same idempotencyKey returns the same "
        "resolution however often it is sent.",
    )
    async def resolve_rma(
        self,
        info: Info,
        id: strawberry.ID,
        resolution: ResolutionKind,
        idempotency_key: str | None = None,
    ) -> ResolveRmaPayload:
        return await _resolution_payload(
            info,
            lambda session: resolutions.resolve_rma(
                session,
                info.context.merchant_id,
                expect_id(id, "Rma"),
                kind=CoreResolutionKind(resolution.value),
                actor=info.context.actor,
                now=info.context.clock.now(),
                request_key=idempotency_key,
            ),
        )

    @strawberry.mutation(
        permission_classes=[StaffWrite],
        description="Confirm a refund that staff made by hand (orders not paid through Stripe).",
    )
    async def record_manual_refund(
        self, info: Info, resolution_id: strawberry.ID, reference: str
    ) -> ResolveRmaPayload:
        return await _resolution_payload(
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
        return await _resolution_payload(
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
        return await _rma_payload(
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

    @strawberry.mutation(permission_classes=[Admin], description="Writes a new policy version.")
    async def update_return_policy(
        self, info: Info, input: ReturnPolicyInput
    ) -> ReturnPolicyPayload:
        # Enum lists arrive as enums; the policy stores their string values.
        values: dict[str, Any] = {
            name: [getattr(item, "value", item) for item in value]
            if isinstance(value, list)
            else value
            for name, value in vars(input).items()
        }
        changes = policies.PolicyChanges(**values)
        try:
            policy = await _run(
                info,
                lambda session: policies.update_return_policy(
                    session, info.context.merchant_id, changes, now=info.context.clock.now()
                ),
            )
        except DomainError as error:
            return ReturnPolicyPayload(return_policy=None, user_errors=[user_error(error)])
        return ReturnPolicyPayload(return_policy=ReturnPolicy.from_row(policy), user_errors=[])

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
            order = await _run(
                info,
                lambda session: orders.upsert_order(
                    session, info.context.merchant_id, data, now=info.context.clock.now()
                ),
            )
        except DomainError as error:
            return UpsertOrderPayload(order=None, user_errors=[user_error(error)])
        return UpsertOrderPayload(order=Order.from_row(order), user_errors=[])


def expect_id_or_none(global_id: str, type_name: str) -> uuid.UUID | None:
    try:
        return expect_id(global_id, type_name)
    except DomainError:
        return None
