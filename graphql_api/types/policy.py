"""The return policy, and what it says about an order today."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core import entities
from core.usecases.requests import LineDecision
from graphql_api.types.commerce import Order, OrderLine
from graphql_api.types.common import EligibilityCode, Money, ReturnReason, money


@strawberry.type
class ReturnPolicy:
    version: int
    return_window_days: int
    warranty_days: int
    unopened_only_categories: list[str]
    final_sale_tags: list[str]
    restocking_fee_percent: int
    shipping_refund_reasons: list[str]
    allowed_resolutions: list[str]
    store_credit_bonus_percent: int
    warranty_refunds_shipping: bool
    warranty_credit_bonus: bool
    restocking_fee_on_store_credit: bool
    agent_override_limit_minor: int
    non_card_refunds_as_store_credit: bool
    auto_authorize: bool
    auto_authorize_max_risk: int
    auto_resolve: bool
    authorization_valid_days: int
    troubleshooting_required_reasons: list[str]
    troubleshooting_steps: list[str]
    special_instructions: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: entities.ReturnPolicy) -> ReturnPolicy:
        return cls(
            version=row.version,
            return_window_days=row.return_window_days,
            warranty_days=row.warranty_days,
            unopened_only_categories=list(row.unopened_only_categories),
            final_sale_tags=list(row.final_sale_tags),
            restocking_fee_percent=row.restocking_fee_percent,
            shipping_refund_reasons=list(row.shipping_refund_reasons),
            allowed_resolutions=list(row.allowed_resolutions),
            store_credit_bonus_percent=row.store_credit_bonus_percent,
            warranty_refunds_shipping=row.warranty_refunds_shipping,
            warranty_credit_bonus=row.warranty_credit_bonus,
            restocking_fee_on_store_credit=row.restocking_fee_on_store_credit,
            agent_override_limit_minor=row.agent_override_limit_minor,
            non_card_refunds_as_store_credit=row.non_card_refunds_as_store_credit,
            auto_authorize=row.auto_authorize,
            auto_authorize_max_risk=row.auto_authorize_max_risk,
            auto_resolve=row.auto_resolve,
            authorization_valid_days=row.authorization_valid_days,
            troubleshooting_required_reasons=list(row.troubleshooting_required_reasons),
            troubleshooting_steps=list(row.troubleshooting_steps),
            special_instructions=row.special_instructions,
            created_at=row.created_at,
        )


@strawberry.type
class LineEligibility:
    order_line: OrderLine
    eligible: bool
    codes: list[EligibilityCode]
    max_quantity: int
    window_ends_at: datetime
    warranty_ends_at: datetime
    accepted_reasons: list[ReturnReason] = strawberry.field(
        description="The reasons a request may give for this line now: any within the window "
        "(only DEFECTIVE, WRONG_ITEM and NOT_AS_DESCRIBED on final sale), only DEFECTIVE under "
        "warranty, none after."
    )
    refund: Money = strawberry.field(description="For the returnable units, before any fee.")
    restocking_fee_if_opened: Money = strawberry.field(
        description="Taken off the refund if the items come back opened (not for defects)."
    )

    @classmethod
    def from_decision(cls, decision: LineDecision, currency: str) -> LineEligibility:
        result = decision.eligibility
        return cls(
            order_line=OrderLine.from_row(decision.order_line, currency),
            eligible=result.eligible,
            codes=list(result.codes),
            max_quantity=result.max_quantity,
            window_ends_at=result.window_ends_at,
            warranty_ends_at=result.warranty_ends_at,
            accepted_reasons=list(result.accepted_reasons),
            refund=money(decision.refund_minor, currency),
            restocking_fee_if_opened=money(decision.restocking_fee_if_opened_minor, currency),
        )


@strawberry.type
class ReturnEligibility:
    order: Order
    policy_version: int
    lines: list[LineEligibility]
