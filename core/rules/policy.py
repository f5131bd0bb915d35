"""Return-policy evaluation for one order line.

The window runs from the delivery date when the order knows it, else from the purchase date. After
the window, a defective item may still come back until the warranty ends (counted from the same
start). Categories listed as unopened-only come back unopened, and final-sale tags close the line
to returns, except for the merchant's own mistakes (defective, wrong item, not as described). Units
already on earlier live RMAs are subtracted from what may be returned.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from core.enums import ItemCondition, ReturnReason


class EligibilityCode(StrEnum):
    WITHIN_WINDOW = "WITHIN_WINDOW"
    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    WARRANTY_ONLY = "WARRANTY_ONLY"
    FINAL_SALE = "FINAL_SALE"
    MUST_BE_UNOPENED = "MUST_BE_UNOPENED"
    ALREADY_RETURNED = "ALREADY_RETURNED"
    QUANTITY_EXCEEDED = "QUANTITY_EXCEEDED"
    TROUBLESHOOTING_REQUIRED = "TROUBLESHOOTING_REQUIRED"
    RESTOCKING_FEE = "RESTOCKING_FEE"
    REASON_NOT_ACCEPTED = "REASON_NOT_ACCEPTED"


# Reasons that are the merchant's fault: they override final sale and the unopened-only rule,
# and never carry a restocking fee.
MERCHANT_FAULT_REASONS = frozenset(
    {ReturnReason.DEFECTIVE, ReturnReason.WRONG_ITEM, ReturnReason.NOT_AS_DESCRIBED}
)

# Codes that refuse a line on their own.
BLOCKING_CODES = frozenset(
    {
        EligibilityCode.OUTSIDE_WINDOW,
        EligibilityCode.FINAL_SALE,
        EligibilityCode.MUST_BE_UNOPENED,
        EligibilityCode.ALREADY_RETURNED,
        EligibilityCode.QUANTITY_EXCEEDED,
        EligibilityCode.TROUBLESHOOTING_REQUIRED,
        EligibilityCode.REASON_NOT_ACCEPTED,
    }
)


class PolicyTerms(Protocol):
    """What the evaluation reads from a return policy (the ``ReturnPolicy`` entity has it)."""

    return_window_days: int
    warranty_days: int
    unopened_only_categories: list[str]
    final_sale_tags: list[str]
    restocking_fee_percent: int
    troubleshooting_required_reasons: list[str]


@dataclass(frozen=True, slots=True)
class LineFacts:
    """What the evaluation needs to know about one order line."""

    quantity: int
    category: str | None
    tags: Sequence[str]
    placed_at: datetime
    delivered_at: datetime | None
    already_returned: int


@dataclass(frozen=True, slots=True)
class LineRequest:
    """What the customer asks for one line; evaluation without it answers for any reason."""

    quantity: int
    reason: ReturnReason
    condition: ItemCondition
    troubleshooting_completed: bool = False


@dataclass(frozen=True, slots=True)
class LineEligibility:
    eligible: bool
    codes: tuple[EligibilityCode, ...]
    max_quantity: int
    window_ends_at: datetime
    warranty_ends_at: datetime
    restocking_fee_applies: bool
    # The reasons a request for this line may give now: every reason in the window (only the
    # merchant's mistakes on final sale), only DEFECTIVE under warranty, none after.
    accepted_reasons: tuple[ReturnReason, ...] = ()

    @property
    def needs_review(self) -> bool:
        """A warranty claim is accepted only once staff have looked at it."""
        return self.eligible and EligibilityCode.WARRANTY_ONLY in self.codes


def _matches(values: Collection[str], listed: Collection[str]) -> bool:
    wanted = {value.strip().lower() for value in listed}
    return any(value.strip().lower() in wanted for value in values)


def restocking_fee_applies(
    policy_fee_percent: int, reason: ReturnReason, condition: ItemCondition, *, unauthorized: bool
) -> bool:
    """Opened non-defective items and unauthorized returns pay the policy's restocking fee."""
    if policy_fee_percent <= 0:
        return False
    if unauthorized:
        return True
    return condition is not ItemCondition.UNOPENED and reason not in MERCHANT_FAULT_REASONS


def evaluate_line(
    policy: PolicyTerms, line: LineFacts, now: datetime, request: LineRequest | None = None
) -> LineEligibility:
    """Decide whether a line may be returned, with every code that decided it."""
    codes: list[EligibilityCode] = []
    start = line.delivered_at or line.placed_at
    window_ends_at = start + timedelta(days=policy.return_window_days)
    warranty_ends_at = start + timedelta(days=max(policy.warranty_days, policy.return_window_days))
    reason = request.reason if request else None
    merchant_fault = reason in MERCHANT_FAULT_REASONS
    defective = reason is ReturnReason.DEFECTIVE

    if now <= window_ends_at:
        codes.append(EligibilityCode.WITHIN_WINDOW)
    elif now <= warranty_ends_at:
        codes.append(EligibilityCode.WARRANTY_ONLY)
        if request is not None and not defective:
            codes.append(EligibilityCode.REASON_NOT_ACCEPTED)
    else:
        codes.append(EligibilityCode.OUTSIDE_WINDOW)

    if _matches(line.tags, policy.final_sale_tags):
        codes.append(EligibilityCode.FINAL_SALE)
        if request is not None and merchant_fault:
            # Final sale never excuses the merchant's own mistakes.
            codes.remove(EligibilityCode.FINAL_SALE)

    unopened_only = line.category is not None and _matches(
        [line.category], policy.unopened_only_categories
    )
    if unopened_only and not merchant_fault:
        if request is None:
            # Shown as a condition of the return, not a refusal: unopened goods may come back.
            codes.append(EligibilityCode.MUST_BE_UNOPENED)
        elif request.condition is not ItemCondition.UNOPENED:
            codes.append(EligibilityCode.MUST_BE_UNOPENED)

    max_quantity = max(line.quantity - line.already_returned, 0)
    if line.already_returned > 0:
        codes.append(EligibilityCode.ALREADY_RETURNED)
    if request is not None and request.quantity > max_quantity > 0:
        codes.append(EligibilityCode.QUANTITY_EXCEEDED)

    if (
        request is not None
        and reason is not None
        and reason.value in policy.troubleshooting_required_reasons
        and not request.troubleshooting_completed
    ):
        codes.append(EligibilityCode.TROUBLESHOOTING_REQUIRED)

    fee = request is not None and restocking_fee_applies(
        policy.restocking_fee_percent, request.reason, request.condition, unauthorized=False
    )
    if fee:
        codes.append(EligibilityCode.RESTOCKING_FEE)

    eligible = not _is_refused(codes, request, max_quantity)
    if not max_quantity or EligibilityCode.OUTSIDE_WINDOW in codes:
        accepted: tuple[ReturnReason, ...] = ()
    elif EligibilityCode.WARRANTY_ONLY in codes:
        accepted = (ReturnReason.DEFECTIVE,)
    elif _matches(line.tags, policy.final_sale_tags):
        accepted = tuple(r for r in ReturnReason if r in MERCHANT_FAULT_REASONS)
    else:
        accepted = tuple(ReturnReason)
    return LineEligibility(
        eligible=eligible,
        codes=tuple(codes),
        max_quantity=max_quantity if eligible else 0,
        window_ends_at=window_ends_at,
        warranty_ends_at=warranty_ends_at,
        restocking_fee_applies=fee,
        accepted_reasons=accepted,
    )


def _is_refused(
    codes: Sequence[EligibilityCode], request: LineRequest | None, max_quantity: int
) -> bool:
    if max_quantity == 0:
        return True
    blocking = set(codes) & BLOCKING_CODES
    if request is None:
        # Without a request, "unopened only" and "already returned" describe limits, not refusals.
        blocking -= {EligibilityCode.MUST_BE_UNOPENED, EligibilityCode.ALREADY_RETURNED}
    else:
        blocking -= {EligibilityCode.ALREADY_RETURNED}
    return bool(blocking)


def passes_inspection(
    reason: ReturnReason, inspected: ItemCondition, reason_confirmed: bool | None = None
) -> bool:
    """Whether what arrived is what the reason allows, so the return may settle by itself.

    A merchant-fault reason is the customer's claim: it settles by itself only when the
    inspector confirmed it (then the item may arrive in any state: a defect can arrive
    broken). Unjudged, it waits for staff; overturned, staff settle it as what it really is.
    An item returned for any other reason must come back unused and undamaged.
    """
    if reason in MERCHANT_FAULT_REASONS:
        return reason_confirmed is True
    return inspected in (ItemCondition.UNOPENED, ItemCondition.OPENED)


def priced_reason(reason: ReturnReason, reason_confirmed: bool | None) -> ReturnReason:
    """The reason a line is priced for: an overturned merchant-fault claim is priced as a
    return for no fault of the merchant (the policy's fee, no shipping back)."""
    if reason in MERCHANT_FAULT_REASONS and reason_confirmed is False:
        return ReturnReason.OTHER
    return reason


def is_final_sale(policy: PolicyTerms, tags: Sequence[str]) -> bool:
    return _matches(tags, policy.final_sale_tags)


def opened_against_policy(
    policy: PolicyTerms,
    category: str | None,
    reason: ReturnReason,
    reason_confirmed: bool | None,
    inspected: ItemCondition,
) -> bool:
    """An unopened-only item that arrived opened (or worse), without a confirmed merchant
    mistake to excuse it: staff decide between a refund with the policy's fee, sending it
    back, or a closer look; it never settles by itself."""
    if category is None or not _matches([category], policy.unopened_only_categories):
        return False
    if reason in MERCHANT_FAULT_REASONS and reason_confirmed is True:
        return False
    return inspected is not ItemCondition.UNOPENED
