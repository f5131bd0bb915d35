"""Shared GraphQL types: Money, enums, page info, the Node interface."""

from __future__ import annotations

import strawberry

from core import enums
from core.money import Money as MoneyValue
from core.rules.policy import EligibilityCode as CoreEligibilityCode

# Core's enums become GraphQL enums as they are: strawberry marks the classes, nothing is copied.
strawberry.enum(enums.RmaStatus, description="Where an RMA is in its lifecycle.")
strawberry.enum(enums.ReturnReason, description="Shopify's return reasons.")
strawberry.enum(enums.ItemCondition)
strawberry.enum(enums.Disposition, description="What happens to inspected goods.")
strawberry.enum(enums.ResolutionKind)
strawberry.enum(enums.ResolutionStatus)
strawberry.enum(enums.PaymentProviderName, name="PaymentProvider")
strawberry.enum(enums.Platform)
strawberry.enum(enums.ApiKeyRole)
strawberry.enum(enums.Carrier)
strawberry.enum(enums.RefusedGoodsOutcome, description="Where goods staff refuse go.")
strawberry.enum(enums.ReceiptStatus, description="Where one parcel's goods stand.")
strawberry.enum(enums.ExchangeStatus, description="Where an exchange's replacement stands.")
strawberry.enum(
    CoreEligibilityCode, description="A return-policy rule that decided a line's eligibility."
)
RmaStatus = enums.RmaStatus
ReturnReason = enums.ReturnReason
ItemCondition = enums.ItemCondition
Disposition = enums.Disposition
ResolutionKind = enums.ResolutionKind
ResolutionStatus = enums.ResolutionStatus
PaymentProvider = enums.PaymentProviderName
Platform = enums.Platform
ApiKeyRole = enums.ApiKeyRole
Carrier = enums.Carrier
RefusedGoodsOutcome = enums.RefusedGoodsOutcome
ReceiptStatus = enums.ReceiptStatus
ExchangeStatus = enums.ExchangeStatus
EligibilityCode = CoreEligibilityCode


@strawberry.type(description="An amount in the currency's minor unit (cents, yen, fils).")
class Money:
    amount_minor: int = strawberry.field(description="Integer minor units; never a float.")
    currency: str = strawberry.field(description="ISO-4217 code.")

    @strawberry.field(description="For display, e.g. $19.99 or ¥1,200.")
    def formatted(self) -> str:
        return MoneyValue(self.amount_minor, self.currency).formatted()


def money(amount_minor: int, currency: str) -> Money:
    return Money(amount_minor=amount_minor, currency=currency)


@strawberry.interface(description="An object with a global ID, fetchable with node(id:).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
