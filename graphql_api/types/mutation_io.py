"""Inputs and payloads of the mutations: what frontends send and what they get back."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.errors import UserError
from graphql_api.types.commerce import Customer, Order
from graphql_api.types.common import (
    Carrier,
    Disposition,
    ItemCondition,
    PaymentProvider,
    Platform,
    RefusedGoodsOutcome,
    ResolutionKind,
    ReturnReason,
)
from graphql_api.types.exchanges import Exchange
from graphql_api.types.policy import ReturnPolicy
from graphql_api.types.returns import Resolution, Rma


@strawberry.type
class RmaPayload:
    rma: Rma | None
    user_errors: list[UserError]


@strawberry.type
class ResolveRmaPayload:
    rma: Rma | None
    resolution: Resolution | None
    user_errors: list[UserError]


@strawberry.type
class ReturnPolicyPayload:
    return_policy: ReturnPolicy | None
    user_errors: list[UserError]


@strawberry.type
class UpsertOrderPayload:
    order: Order | None
    user_errors: list[UserError]


@strawberry.type
class CustomerSessionPayload:
    token: str | None = strawberry.field(description="Send as Authorization: Bearer <token>.")
    expires_at: datetime | None
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.input
class RequestRmaLineInput:
    order_line_id: strawberry.ID
    quantity: int
    reason: ReturnReason
    condition: ItemCondition = ItemCondition.UNOPENED
    comment: str = ""
    troubleshooting_completed: bool = False


@strawberry.input
class RequestRmaInput:
    order_id: strawberry.ID
    lines: list[RequestRmaLineInput]
    preferred_resolution: ResolutionKind | None = None
    customer_note: str = ""


@strawberry.input(description="Goods that arrived and are refused: nothing is refunded.")
class RefuseGoodsInput:
    reason: str = strawberry.field(description="Why; the customer is told.")
    outcome: RefusedGoodsOutcome
    carrier: Carrier | None = strawberry.field(
        default=None, description="SEND_BACK: the parcel going back to the customer."
    )
    tracking_number: str = strawberry.field(
        default="", description="SEND_BACK: its tracking number (the customer pays for it)."
    )
    customer_consented: bool = strawberry.field(
        default=False, description="DISPOSE: the customer agreed that the goods are disposed of."
    )
    receipt_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The parcel (RmaReceipt) refused; needed when more than one waits for a "
        "decision.",
    )


@strawberry.input
class UnauthorizedLineInput:
    order_line_id: strawberry.ID
    quantity: int
    condition: ItemCondition = ItemCondition.OPENED
    reason: ReturnReason = strawberry.field(
        default=ReturnReason.OTHER, description="Why it came back, if the parcel says."
    )


@strawberry.input(description="Goods that arrived with no RMA, for an order staff recognised.")
class ReceiveUnauthorizedInput:
    order_id: strawberry.ID
    lines: list[UnauthorizedLineInput]


@strawberry.input
class ReceiveRmaLineInput:
    rma_line_id: strawberry.ID
    quantity: int


@strawberry.input
class InspectRmaLineInput:
    rma_line_id: strawberry.ID
    condition: ItemCondition
    disposition: Disposition
    note: str = strawberry.field(
        default="", description="What the inspector saw; shown to staff with an overturned claim."
    )
    reason_confirmed: bool | None = strawberry.field(
        default=None,
        description="The verdict on a DEFECTIVE, WRONG_ITEM or NOT_AS_DESCRIBED claim: true "
        "confirmed (the return may settle by itself), false overturned (priced as a return for "
        "no fault of the merchant, refused when final sale; staff decide), null not judged "
        "(staff decide).",
    )


@strawberry.input
class ReturnPolicyInput:
    return_window_days: int | None = None
    warranty_days: int | None = None
    unopened_only_categories: list[str] | None = None
    final_sale_tags: list[str] | None = None
    restocking_fee_percent: int | None = None
    shipping_refund_reasons: list[ReturnReason] | None = None
    allowed_resolutions: list[ResolutionKind] | None = None
    store_credit_bonus_percent: int | None = None
    warranty_refunds_shipping: bool | None = strawberry.field(
        default=None, description="Whether a warranty claim gets its share of shipping back."
    )
    warranty_credit_bonus: bool | None = strawberry.field(
        default=None,
        description="Whether a warranty claim settled as store credit earns the bonus.",
    )
    restocking_fee_on_store_credit: bool | None = strawberry.field(
        default=None, description="Whether the restocking fee also comes off store credit."
    )
    non_card_refunds_as_store_credit: bool | None = strawberry.field(
        default=None,
        description="Whether the share of a refund paid in a way no provider refunds (a gift "
        "card, cash) comes back as store credit instead of being refunded by staff.",
    )
    agent_override_limit_minor: int | None = strawberry.field(
        default=None,
        description="How much above the policy's price an AGENT may give on a resolution "
        "(minor units of the merchant's currency); more needs an ADMIN.",
    )
    auto_authorize: bool | None = None
    auto_authorize_max_risk: int | None = None
    auto_resolve: bool | None = None
    authorization_valid_days: int | None = None
    troubleshooting_required_reasons: list[ReturnReason] | None = None
    troubleshooting_steps: list[str] | None = None
    special_instructions: str | None = None


@strawberry.input
class OrderCustomerInput:
    email: str
    name: str = ""
    external_id: str | None = None
    stripe_customer_id: str | None = None


@strawberry.input
class OrderLineInput:
    external_id: str
    title: str
    quantity: int
    unit_price_minor: int
    discount_minor: int = 0
    tax_minor: int = 0
    sku: str = ""
    category: str | None = None
    tags: list[str] = strawberry.field(default_factory=list)


@strawberry.input
class OrderPaymentInput:
    provider: PaymentProvider
    reference: str
    captured_minor: int
    currency: str


@strawberry.input
class UpsertOrderInput:
    external_id: str
    order_number: str
    currency: str
    placed_at: datetime
    customer: OrderCustomerInput
    lines: list[OrderLineInput]
    platform: Platform = Platform.STOREFRONT
    delivered_at: datetime | None = None
    shipping_minor: int = 0
    payments: list[OrderPaymentInput] = strawberry.field(default_factory=list)


@strawberry.input
class LineRefundOverrideInput:
    rma_line_id: strawberry.ID
    refund_minor: int = strawberry.field(
        description="What this line's units in the parcel are refunded, at most their price."
    )


@strawberry.input(description="One item the customer gets instead, in the order's currency.")
class ReplacementLineInput:
    title: str
    quantity: int
    unit_price_minor: int = strawberry.field(
        description="What one unit costs (the storefront or staff price it from the catalogue)."
    )
    sku: str = ""
    variant_id: str = strawberry.field(
        default="", description="The platform's variant (or product) id, when there is one."
    )


@strawberry.input(description="What replaces the returned goods in an exchange.")
class ExchangeInput:
    lines: list[ReplacementLineInput]
    note: str = ""


@strawberry.type
class ExchangePayload:
    exchange: Exchange | None
    user_errors: list[UserError]


@strawberry.input(description="Staff's changes to the price, before any money moves.")
class ResolutionAdjustmentsInput:
    reason: str = strawberry.field(description="Why; kept on the RMA's timeline.")
    waive_restocking_fee: bool = False
    refund_shipping: bool = strawberry.field(
        default=False, description="Refund all the order's shipping not refunded yet."
    )
    goodwill_minor: int = strawberry.field(
        default=0, description="An amount given on top, tied to no line."
    )
    lines: list[LineRefundOverrideInput] = strawberry.field(default_factory=list)
