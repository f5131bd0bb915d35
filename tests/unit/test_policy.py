"""Return-policy evaluation of one order line: window, warranty, final sale, unopened-only, ..."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.entities import ReturnPolicy
from core.enums import ItemCondition, ReturnReason
from core.rules.policy import (
    BLOCKING_CODES,
    MERCHANT_FAULT_REASONS,
    EligibilityCode,
    LineEligibility,
    LineFacts,
    LineRequest,
    evaluate_line,
    passes_inspection,
    priced_reason,
    restocking_fee_applies,
)

C = EligibilityCode
R = ReturnReason
PLACED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DELIVERED = PLACED + timedelta(days=5)
MICROSECOND = timedelta(microseconds=1)

MERCHANT_FAULTS = [R.DEFECTIVE, R.WRONG_ITEM, R.NOT_AS_DESCRIBED]
CUSTOMER_REASONS = [reason for reason in ReturnReason if reason not in MERCHANT_FAULT_REASONS]
NOT_DEFECTIVE = [reason for reason in ReturnReason if reason is not R.DEFECTIVE]
NOT_UNOPENED = [ItemCondition.OPENED, ItemCondition.USED, ItemCondition.DAMAGED]


def make_policy(**terms: Any) -> ReturnPolicy:
    return ReturnPolicy(merchant_id=uuid.uuid4(), version=1, **terms)


def make_line(
    *,
    quantity: int = 1,
    category: str | None = None,
    tags: Sequence[str] = (),
    placed_at: datetime = PLACED,
    delivered_at: datetime | None = DELIVERED,
    already_returned: int = 0,
) -> LineFacts:
    return LineFacts(
        quantity=quantity,
        category=category,
        tags=tags,
        placed_at=placed_at,
        delivered_at=delivered_at,
        already_returned=already_returned,
    )


def ask(
    reason: ReturnReason = R.UNWANTED,
    condition: ItemCondition = ItemCondition.UNOPENED,
    quantity: int = 1,
    *,
    troubleshooting_completed: bool = False,
) -> LineRequest:
    return LineRequest(
        quantity=quantity,
        reason=reason,
        condition=condition,
        troubleshooting_completed=troubleshooting_completed,
    )


def days_after_delivery(days: float) -> datetime:
    return DELIVERED + timedelta(days=days)


def evaluate(
    *,
    policy: ReturnPolicy | None = None,
    line: LineFacts | None = None,
    now: datetime | None = None,
    request: LineRequest | None = None,
) -> LineEligibility:
    return evaluate_line(
        policy or make_policy(),
        line or make_line(),
        now or days_after_delivery(1),
        request,
    )


# --- the policy entity -----------------------------------------------------------------------


def test_a_new_policy_has_a_30_day_window_and_no_other_restrictions() -> None:
    policy = make_policy()
    assert policy.return_window_days == 30
    assert policy.warranty_days == 0
    assert policy.final_sale_tags == []
    assert policy.unopened_only_categories == []
    assert policy.restocking_fee_percent == 0
    assert policy.troubleshooting_required_reasons == []
    assert policy.shipping_refund_reasons == ["DEFECTIVE", "WRONG_ITEM", "NOT_AS_DESCRIBED"]


def test_policies_do_not_share_their_lists() -> None:
    first, second = make_policy(), make_policy()
    first.final_sale_tags.append("final-sale")
    assert second.final_sale_tags == []


# --- the return window -----------------------------------------------------------------------


def test_a_plain_return_within_the_window_is_eligible() -> None:
    result = evaluate(request=ask(R.SIZE_TOO_SMALL))
    assert result.eligible
    assert result.codes == (C.WITHIN_WINDOW,)
    assert result.max_quantity == 1
    assert not result.needs_review
    assert not result.restocking_fee_applies


def test_the_window_runs_from_delivery_when_the_order_knows_it() -> None:
    delivered = PLACED + timedelta(days=20)
    line = make_line(delivered_at=delivered)
    now = PLACED + timedelta(days=40)  # 40 days after purchase, 20 after delivery
    result = evaluate(line=line, now=now, request=ask())
    assert result.eligible
    assert result.codes == (C.WITHIN_WINDOW,)
    assert result.window_ends_at == delivered + timedelta(days=30)


def test_the_window_runs_from_purchase_when_delivery_is_unknown() -> None:
    line = make_line(delivered_at=None)
    result = evaluate(line=line, now=PLACED + timedelta(days=31), request=ask())
    assert not result.eligible
    assert result.codes == (C.OUTSIDE_WINDOW,)
    assert result.window_ends_at == PLACED + timedelta(days=30)
    assert result.max_quantity == 0


def test_a_return_at_the_very_last_moment_of_the_window_is_eligible() -> None:
    policy = make_policy(return_window_days=14)
    window_end = DELIVERED + timedelta(days=14)
    result = evaluate(policy=policy, now=window_end, request=ask())
    assert result.eligible
    assert result.codes == (C.WITHIN_WINDOW,)
    assert result.window_ends_at == window_end


def test_a_return_a_moment_after_the_window_is_outside_it() -> None:
    policy = make_policy(return_window_days=14)
    result = evaluate(policy=policy, now=DELIVERED + timedelta(days=14) + MICROSECOND)
    assert not result.eligible
    assert result.codes == (C.OUTSIDE_WINDOW,)


def test_a_zero_day_window_closes_at_delivery() -> None:
    policy = make_policy(return_window_days=0)
    assert evaluate(policy=policy, now=DELIVERED, request=ask()).eligible
    assert not evaluate(policy=policy, now=DELIVERED + MICROSECOND, request=ask()).eligible


def test_the_window_end_is_reported_in_utc() -> None:
    result = evaluate()
    assert result.window_ends_at.tzinfo is not None
    assert result.window_ends_at.utcoffset() == timedelta(0)


def test_without_a_warranty_the_warranty_ends_with_the_window() -> None:
    result = evaluate(policy=make_policy(return_window_days=30, warranty_days=0))
    assert result.warranty_ends_at == result.window_ends_at


def test_a_warranty_shorter_than_the_window_does_not_shorten_it() -> None:
    result = evaluate(policy=make_policy(return_window_days=30, warranty_days=10))
    assert result.warranty_ends_at == result.window_ends_at == DELIVERED + timedelta(days=30)


def test_the_warranty_is_counted_from_the_same_start_as_the_window() -> None:
    policy = make_policy(return_window_days=30, warranty_days=365)
    result = evaluate(policy=policy, line=make_line(delivered_at=None))
    assert result.warranty_ends_at == PLACED + timedelta(days=365)


# --- warranty --------------------------------------------------------------------------------

WARRANTY = make_policy(return_window_days=30, warranty_days=365)


def test_a_defective_item_after_the_window_comes_back_under_warranty_after_review() -> None:
    result = evaluate(
        policy=WARRANTY, now=days_after_delivery(100), request=ask(R.DEFECTIVE, ItemCondition.USED)
    )
    assert result.eligible
    assert result.codes == (C.WARRANTY_ONLY,)
    assert result.needs_review
    assert result.max_quantity == 1


@pytest.mark.parametrize("reason", NOT_DEFECTIVE, ids=str)
def test_only_defects_are_accepted_under_warranty(reason: ReturnReason) -> None:
    result = evaluate(policy=WARRANTY, now=days_after_delivery(100), request=ask(reason))
    assert not result.eligible
    assert result.codes == (C.WARRANTY_ONLY, C.REASON_NOT_ACCEPTED)
    assert not result.needs_review
    assert result.max_quantity == 0


def test_a_line_under_warranty_without_a_reason_yet_is_eligible_for_review() -> None:
    result = evaluate(policy=WARRANTY, now=days_after_delivery(100))
    assert result.eligible
    assert result.codes == (C.WARRANTY_ONLY,)
    assert result.needs_review


def test_a_defect_reported_on_the_last_day_of_the_warranty_is_accepted() -> None:
    result = evaluate(
        policy=WARRANTY, now=days_after_delivery(365), request=ask(R.DEFECTIVE, ItemCondition.USED)
    )
    assert result.eligible
    assert result.codes == (C.WARRANTY_ONLY,)


def test_a_defect_reported_after_the_warranty_is_outside_the_window() -> None:
    now = days_after_delivery(365) + MICROSECOND
    result = evaluate(policy=WARRANTY, now=now, request=ask(R.DEFECTIVE, ItemCondition.USED))
    assert not result.eligible
    assert result.codes == (C.OUTSIDE_WINDOW,)
    assert not result.needs_review


def test_a_defect_within_the_window_needs_no_review() -> None:
    result = evaluate(policy=WARRANTY, request=ask(R.DEFECTIVE, ItemCondition.USED))
    assert result.eligible
    assert result.codes == (C.WITHIN_WINDOW,)
    assert not result.needs_review


@pytest.mark.parametrize("reason", list(ReturnReason), ids=str)
def test_nothing_comes_back_after_the_window_without_a_warranty(reason: ReturnReason) -> None:
    result = evaluate(now=days_after_delivery(31), request=ask(reason))
    assert not result.eligible
    assert C.OUTSIDE_WINDOW in result.codes


# --- final sale ------------------------------------------------------------------------------

FINAL_SALE_POLICY = make_policy(final_sale_tags=["final-sale", "Clearance"])


@pytest.mark.parametrize(
    "tag", ["final-sale", "FINAL-SALE", "Final-Sale", " final-sale ", "clearance"]
)
def test_final_sale_tags_are_matched_whatever_their_case(tag: str) -> None:
    result = evaluate(policy=FINAL_SALE_POLICY, line=make_line(tags=["summer", tag]), request=ask())
    assert not result.eligible
    assert C.FINAL_SALE in result.codes


@pytest.mark.parametrize("reason", CUSTOMER_REASONS, ids=str)
def test_a_final_sale_item_cannot_be_returned_for_a_change_of_mind(reason: ReturnReason) -> None:
    line = make_line(tags=["final-sale"])
    result = evaluate(policy=FINAL_SALE_POLICY, line=line, request=ask(reason))
    assert not result.eligible
    assert result.codes == (C.WITHIN_WINDOW, C.FINAL_SALE)
    assert result.max_quantity == 0


@pytest.mark.parametrize("reason", MERCHANT_FAULTS, ids=str)
def test_a_final_sale_item_comes_back_when_the_merchant_got_it_wrong(reason: ReturnReason) -> None:
    line = make_line(tags=["final-sale"])
    result = evaluate(
        policy=FINAL_SALE_POLICY, line=line, request=ask(reason, ItemCondition.OPENED)
    )
    assert result.eligible
    assert C.FINAL_SALE not in result.codes
    assert result.codes == (C.WITHIN_WINDOW,)


def test_a_final_sale_item_without_a_reason_yet_is_shown_as_final_sale() -> None:
    result = evaluate(policy=FINAL_SALE_POLICY, line=make_line(tags=["Final-Sale"]))
    assert not result.eligible
    assert result.codes == (C.WITHIN_WINDOW, C.FINAL_SALE)


def test_tags_the_policy_does_not_list_do_not_matter() -> None:
    line = make_line(tags=["final", "sale", "final-sale-2025"])
    result = evaluate(policy=FINAL_SALE_POLICY, line=line, request=ask())
    assert result.eligible
    assert C.FINAL_SALE not in result.codes


def test_a_defective_final_sale_item_under_warranty_still_goes_to_review() -> None:
    policy = make_policy(final_sale_tags=["final-sale"], warranty_days=365)
    line = make_line(tags=["final-sale"])
    result = evaluate(
        policy=policy, line=line, now=days_after_delivery(60), request=ask(R.DEFECTIVE)
    )
    assert result.eligible
    assert result.codes == (C.WARRANTY_ONLY,)
    assert result.needs_review


# --- unopened-only categories ----------------------------------------------------------------

SOFTWARE_POLICY = make_policy(unopened_only_categories=["Software", "cosmetics"])


@pytest.mark.parametrize("condition", NOT_UNOPENED, ids=str)
def test_opened_software_cannot_be_returned_unless_defective(condition: ItemCondition) -> None:
    line = make_line(category="software")
    result = evaluate(policy=SOFTWARE_POLICY, line=line, request=ask(R.UNWANTED, condition))
    assert not result.eligible
    assert C.MUST_BE_UNOPENED in result.codes
    assert result.max_quantity == 0


@pytest.mark.parametrize("condition", NOT_UNOPENED, ids=str)
def test_opened_defective_software_can_be_returned(condition: ItemCondition) -> None:
    line = make_line(category="Software")
    result = evaluate(policy=SOFTWARE_POLICY, line=line, request=ask(R.DEFECTIVE, condition))
    assert result.eligible
    assert result.codes == (C.WITHIN_WINDOW,)


@pytest.mark.parametrize("reason", NOT_DEFECTIVE, ids=str)
def test_unopened_software_can_be_returned_for_any_reason(reason: ReturnReason) -> None:
    line = make_line(category="SOFTWARE")
    result = evaluate(
        policy=SOFTWARE_POLICY, line=line, request=ask(reason, ItemCondition.UNOPENED)
    )
    assert result.eligible
    assert C.MUST_BE_UNOPENED not in result.codes


@pytest.mark.parametrize("reason", [R.WRONG_ITEM, R.NOT_AS_DESCRIBED], ids=str)
def test_the_merchants_mistakes_excuse_opening_unopened_only_goods(reason: ReturnReason) -> None:
    # Opening the box is how a customer finds out it is the wrong item or not as described.
    line = make_line(category="cosmetics")
    result = evaluate(policy=SOFTWARE_POLICY, line=line, request=ask(reason, ItemCondition.OPENED))
    assert result.eligible
    assert C.MUST_BE_UNOPENED not in result.codes


def test_software_without_a_request_is_shown_as_unopened_only_but_stays_eligible() -> None:
    result = evaluate(policy=SOFTWARE_POLICY, line=make_line(category="Software"))
    assert result.eligible
    assert result.codes == (C.WITHIN_WINDOW, C.MUST_BE_UNOPENED)
    assert result.max_quantity == 1


@pytest.mark.parametrize("category", [None, "hardware", "soft", "software-bundle"])
def test_other_categories_may_come_back_opened(category: str | None) -> None:
    line = make_line(category=category)
    result = evaluate(
        policy=SOFTWARE_POLICY, line=line, request=ask(R.UNWANTED, ItemCondition.USED)
    )
    assert result.eligible
    assert C.MUST_BE_UNOPENED not in result.codes


# --- quantities ------------------------------------------------------------------------------


def test_units_already_returned_reduce_what_may_still_be_returned() -> None:
    line = make_line(quantity=5, already_returned=2)
    result = evaluate(line=line, request=ask(quantity=3))
    assert result.eligible
    assert result.max_quantity == 3
    assert result.codes == (C.WITHIN_WINDOW, C.ALREADY_RETURNED)


def test_units_already_returned_are_shown_without_a_request_too() -> None:
    result = evaluate(line=make_line(quantity=5, already_returned=4))
    assert result.eligible
    assert result.max_quantity == 1
    assert C.ALREADY_RETURNED in result.codes


@pytest.mark.parametrize("with_request", [True, False])
def test_a_line_whose_units_all_came_back_is_no_longer_eligible(with_request: bool) -> None:
    line = make_line(quantity=3, already_returned=3)
    result = evaluate(line=line, request=ask(quantity=1) if with_request else None)
    assert not result.eligible
    assert result.max_quantity == 0
    assert C.ALREADY_RETURNED in result.codes
    assert C.QUANTITY_EXCEEDED not in result.codes


def test_more_returned_than_bought_counts_as_all_returned() -> None:
    result = evaluate(line=make_line(quantity=2, already_returned=5))
    assert not result.eligible
    assert result.max_quantity == 0


def test_asking_for_more_units_than_were_bought_is_refused() -> None:
    result = evaluate(line=make_line(quantity=2), request=ask(quantity=3))
    assert not result.eligible
    assert result.codes == (C.WITHIN_WINDOW, C.QUANTITY_EXCEEDED)
    assert result.max_quantity == 0


def test_asking_for_more_units_than_are_left_is_refused() -> None:
    line = make_line(quantity=4, already_returned=3)
    result = evaluate(line=line, request=ask(quantity=2))
    assert not result.eligible
    assert result.codes == (C.WITHIN_WINDOW, C.ALREADY_RETURNED, C.QUANTITY_EXCEEDED)


def test_asking_for_exactly_the_units_left_is_fine() -> None:
    line = make_line(quantity=4, already_returned=1)
    result = evaluate(line=line, request=ask(quantity=3))
    assert result.eligible
    assert C.QUANTITY_EXCEEDED not in result.codes


# --- troubleshooting -------------------------------------------------------------------------

TROUBLESHOOTING_POLICY = make_policy(troubleshooting_required_reasons=["DEFECTIVE"])


def test_a_defect_must_be_troubleshot_before_the_return_is_accepted() -> None:
    result = evaluate(policy=TROUBLESHOOTING_POLICY, request=ask(R.DEFECTIVE, ItemCondition.USED))
    assert not result.eligible
    assert result.codes == (C.WITHIN_WINDOW, C.TROUBLESHOOTING_REQUIRED)


def test_a_troubleshot_defect_is_accepted() -> None:
    request = ask(R.DEFECTIVE, ItemCondition.USED, troubleshooting_completed=True)
    result = evaluate(policy=TROUBLESHOOTING_POLICY, request=request)
    assert result.eligible
    assert result.codes == (C.WITHIN_WINDOW,)


@pytest.mark.parametrize("reason", NOT_DEFECTIVE, ids=str)
def test_reasons_the_policy_does_not_list_need_no_troubleshooting(reason: ReturnReason) -> None:
    result = evaluate(policy=TROUBLESHOOTING_POLICY, request=ask(reason))
    assert C.TROUBLESHOOTING_REQUIRED not in result.codes


def test_troubleshooting_is_not_asked_before_a_reason_is_given() -> None:
    result = evaluate(policy=TROUBLESHOOTING_POLICY)
    assert result.eligible
    assert C.TROUBLESHOOTING_REQUIRED not in result.codes


# --- restocking fee --------------------------------------------------------------------------

FEE_POLICY = make_policy(restocking_fee_percent=15)


@pytest.mark.parametrize("condition", NOT_UNOPENED, ids=str)
@pytest.mark.parametrize("reason", CUSTOMER_REASONS, ids=str)
def test_an_opened_item_returned_for_a_change_of_mind_pays_the_restocking_fee(
    reason: ReturnReason, condition: ItemCondition
) -> None:
    result = evaluate(policy=FEE_POLICY, request=ask(reason, condition))
    assert result.eligible
    assert result.restocking_fee_applies
    assert result.codes == (C.WITHIN_WINDOW, C.RESTOCKING_FEE)


@pytest.mark.parametrize("reason", list(ReturnReason), ids=str)
def test_an_unopened_item_pays_no_restocking_fee(reason: ReturnReason) -> None:
    result = evaluate(policy=FEE_POLICY, request=ask(reason, ItemCondition.UNOPENED))
    assert not result.restocking_fee_applies
    assert C.RESTOCKING_FEE not in result.codes


@pytest.mark.parametrize("condition", NOT_UNOPENED, ids=str)
@pytest.mark.parametrize("reason", MERCHANT_FAULTS, ids=str)
def test_the_merchants_mistakes_never_pay_a_restocking_fee(
    reason: ReturnReason, condition: ItemCondition
) -> None:
    result = evaluate(policy=FEE_POLICY, request=ask(reason, condition))
    assert result.eligible
    assert not result.restocking_fee_applies
    assert C.RESTOCKING_FEE not in result.codes


def test_without_a_fee_in_the_policy_opened_items_pay_nothing() -> None:
    result = evaluate(policy=make_policy(), request=ask(R.UNWANTED, ItemCondition.USED))
    assert not result.restocking_fee_applies
    assert result.codes == (C.WITHIN_WINDOW,)


def test_no_restocking_fee_is_announced_before_the_condition_is_known() -> None:
    result = evaluate(policy=FEE_POLICY)
    assert not result.restocking_fee_applies
    assert C.RESTOCKING_FEE not in result.codes


def test_a_restocking_fee_does_not_refuse_the_return() -> None:
    assert C.RESTOCKING_FEE not in BLOCKING_CODES
    assert C.WITHIN_WINDOW not in BLOCKING_CODES
    assert C.WARRANTY_ONLY not in BLOCKING_CODES


@pytest.mark.parametrize("condition", list(ItemCondition), ids=str)
@pytest.mark.parametrize("reason", list(ReturnReason), ids=str)
def test_an_unauthorized_return_pays_the_restocking_fee_whatever_its_reason(
    reason: ReturnReason, condition: ItemCondition
) -> None:
    assert restocking_fee_applies(10, reason, condition, unauthorized=True)
    assert not restocking_fee_applies(0, reason, condition, unauthorized=True)


def test_a_negative_fee_percent_never_applies() -> None:
    assert not restocking_fee_applies(-5, R.UNWANTED, ItemCondition.USED, unauthorized=True)


# --- combinations and invariants -------------------------------------------------------------


def test_every_refusal_is_named() -> None:
    policy = make_policy(
        final_sale_tags=["final-sale"],
        unopened_only_categories=["software"],
        troubleshooting_required_reasons=["UNWANTED"],
        restocking_fee_percent=20,
    )
    line = make_line(quantity=2, category="software", tags=["final-sale"], already_returned=1)
    result = evaluate(
        policy=policy,
        line=line,
        now=days_after_delivery(40),
        request=ask(R.UNWANTED, ItemCondition.OPENED, quantity=2),
    )
    assert not result.eligible
    assert result.codes == (
        C.OUTSIDE_WINDOW,
        C.FINAL_SALE,
        C.MUST_BE_UNOPENED,
        C.ALREADY_RETURNED,
        C.QUANTITY_EXCEEDED,
        C.TROUBLESHOOTING_REQUIRED,
        C.RESTOCKING_FEE,
    )
    assert result.max_quantity == 0


conditions = st.sampled_from(list(ItemCondition))
reasons = st.sampled_from(list(ReturnReason))
requests = st.one_of(
    st.none(),
    st.builds(
        LineRequest,
        quantity=st.integers(min_value=1, max_value=6),
        reason=reasons,
        condition=conditions,
        troubleshooting_completed=st.booleans(),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    window=st.integers(min_value=0, max_value=60),
    warranty=st.integers(min_value=0, max_value=400),
    fee=st.integers(min_value=0, max_value=100),
    quantity=st.integers(min_value=1, max_value=5),
    already=st.integers(min_value=0, max_value=6),
    final_sale=st.booleans(),
    software=st.booleans(),
    troubleshooting=st.lists(reasons, max_size=3),
    delivered=st.booleans(),
    elapsed=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=500)),
    request=requests,
)
def test_eligibility_always_follows_the_codes(
    window: int,
    warranty: int,
    fee: int,
    quantity: int,
    already: int,
    final_sale: bool,
    software: bool,
    troubleshooting: list[ReturnReason],
    delivered: bool,
    elapsed: timedelta,
    request: LineRequest | None,
) -> None:
    policy = make_policy(
        return_window_days=window,
        warranty_days=warranty,
        restocking_fee_percent=fee,
        final_sale_tags=["final-sale"],
        unopened_only_categories=["software"],
        troubleshooting_required_reasons=[reason.value for reason in troubleshooting],
    )
    line = make_line(
        quantity=quantity,
        category="software" if software else "apparel",
        tags=["final-sale"] if final_sale else [],
        delivered_at=DELIVERED if delivered else None,
        already_returned=already,
    )
    start = DELIVERED if delivered else PLACED
    result = evaluate_line(policy, line, start + elapsed, request)

    periods = {C.WITHIN_WINDOW, C.WARRANTY_ONLY, C.OUTSIDE_WINDOW}
    assert len(set(result.codes) & periods) == 1
    assert result.codes[0] in periods
    assert len(set(result.codes)) == len(result.codes)
    assert result.window_ends_at == start + timedelta(days=window)
    assert result.warranty_ends_at >= result.window_ends_at
    assert result.restocking_fee_applies == (C.RESTOCKING_FEE in result.codes)

    left = max(quantity - already, 0)
    ignored = {C.ALREADY_RETURNED} | ({C.MUST_BE_UNOPENED} if request is None else set())
    refused = left == 0 or bool((set(result.codes) & BLOCKING_CODES) - ignored)
    assert result.eligible is not refused
    assert result.max_quantity == (left if result.eligible else 0)
    if result.eligible and request is not None:
        assert request.quantity <= result.max_quantity
    assert result.needs_review == (result.eligible and C.WARRANTY_ONLY in result.codes)


@pytest.mark.parametrize("condition", list(ItemCondition), ids=str)
@pytest.mark.parametrize("reason", sorted(MERCHANT_FAULT_REASONS), ids=str)
def test_a_confirmed_claim_passes_inspection_in_any_condition(
    reason: ReturnReason, condition: ItemCondition
) -> None:
    assert passes_inspection(reason, condition, reason_confirmed=True)


@pytest.mark.parametrize("verdict", [None, False], ids=["not judged", "overturned"])
@pytest.mark.parametrize("condition", list(ItemCondition), ids=str)
@pytest.mark.parametrize("reason", sorted(MERCHANT_FAULT_REASONS), ids=str)
def test_a_claim_not_confirmed_never_settles_by_itself(
    reason: ReturnReason, condition: ItemCondition, verdict: bool | None
) -> None:
    assert not passes_inspection(reason, condition, reason_confirmed=verdict)


@pytest.mark.parametrize("reason", list(ReturnReason), ids=str)
def test_only_an_overturned_claim_is_priced_as_another_reason(reason: ReturnReason) -> None:
    assert priced_reason(reason, None) is reason
    assert priced_reason(reason, True) is reason
    overturned = priced_reason(reason, False)
    expected = ReturnReason.OTHER if reason in MERCHANT_FAULT_REASONS else reason
    assert overturned is expected


@pytest.mark.parametrize(
    ("condition", "passes"),
    [
        (ItemCondition.UNOPENED, True),
        (ItemCondition.OPENED, True),
        (ItemCondition.USED, False),
        (ItemCondition.DAMAGED, False),
    ],
)
def test_an_unwanted_item_passes_inspection_only_unused_and_undamaged(
    condition: ItemCondition, passes: bool
) -> None:
    assert passes_inspection(ReturnReason.UNWANTED, condition) is passes


@pytest.mark.parametrize(
    ("day", "tags", "accepted"),
    [
        (10, (), set(ReturnReason)),
        (10, ("final-sale",), set(MERCHANT_FAULT_REASONS)),
        (100, (), {ReturnReason.DEFECTIVE}),
        (100, ("final-sale",), {ReturnReason.DEFECTIVE}),
        (400, (), set()),
    ],
    ids=["window", "final sale", "warranty", "final sale under warranty", "after"],
)
def test_eligibility_names_the_reasons_a_request_will_accept(
    day: int, tags: tuple[str, ...], accepted: set[ReturnReason]
) -> None:
    policy = make_policy(return_window_days=30, warranty_days=365, final_sale_tags=["final-sale"])
    result = evaluate(policy=policy, line=make_line(tags=tags), now=days_after_delivery(day))
    assert set(result.accepted_reasons) == accepted
    for reason in ReturnReason:
        request = LineRequest(1, reason, ItemCondition.UNOPENED)
        asked = evaluate(
            policy=policy, line=make_line(tags=tags), now=days_after_delivery(day), request=request
        )
        assert asked.eligible is (reason in accepted), reason
