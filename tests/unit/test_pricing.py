"""What a return is worth, in integer minor units, without ever drifting by a cent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.enums import ItemCondition, ReturnReason
from core.money import Money, parse_decimal, to_decimal_string
from core.rules.pricing import (
    LinePricing,
    LineRefund,
    QuoteAdjustments,
    RefundQuote,
    adjust_quote,
    percent_of,
    price_line,
    quote_refund,
    store_credit_bonus,
    unit_share,
)

R = ReturnReason
MERCHANT_FAULTS = [R.DEFECTIVE, R.WRONG_ITEM, R.NOT_AS_DESCRIBED]
CUSTOMER_REASONS = [reason for reason in ReturnReason if reason not in MERCHANT_FAULTS]
NOT_UNOPENED = [ItemCondition.OPENED, ItemCondition.USED, ItemCondition.DAMAGED]
DEFAULT_SHIPPING_REASONS = ["DEFECTIVE", "WRONG_ITEM", "NOT_AS_DESCRIBED"]


def line(**fields: Any) -> LinePricing:
    values: dict[str, Any] = {
        "order_line_id": uuid.uuid4(),
        "unit_price_minor": 1000,
        "quantity_ordered": 1,
        "discount_minor": 0,
        "tax_minor": 0,
        "already_refunded_quantity": 0,
        "quantity": 1,
        "reason": R.UNWANTED,
        "condition": ItemCondition.UNOPENED,
    }
    values.update(fields)
    return LinePricing(**values)


def quote(
    lines: Sequence[LinePricing],
    *,
    currency: str = "USD",
    restocking_fee_percent: int = 0,
    unauthorized: bool = False,
    order_goods_minor: int = 10_000,
    order_shipping_minor: int = 1_000,
    shipping_already_refunded_minor: int = 0,
    shipping_refund_reasons: Sequence[str] = DEFAULT_SHIPPING_REASONS,
) -> RefundQuote:
    return quote_refund(
        currency,
        lines,
        restocking_fee_percent=restocking_fee_percent,
        unauthorized=unauthorized,
        order_goods_minor=order_goods_minor,
        order_shipping_minor=order_shipping_minor,
        shipping_already_refunded_minor=shipping_already_refunded_minor,
        shipping_refund_reasons=shipping_refund_reasons,
    )


# --- unit shares -----------------------------------------------------------------------------


def test_an_evenly_divisible_total_is_shared_equally() -> None:
    assert [unit_share(3000, 3, j, 1) for j in range(3)] == [1000, 1000, 1000]


def test_the_odd_cents_go_to_the_later_units() -> None:
    assert [unit_share(1000, 3, j, 1) for j in range(3)] == [333, 333, 334]
    assert [unit_share(100, 3, j, 1) for j in range(3)] == [33, 33, 34]
    assert [unit_share(2, 3, j, 1) for j in range(3)] == [0, 1, 1]


def test_the_share_follows_the_floor_rule() -> None:
    # floor(T*(j+k)/n) - floor(T*j/n)
    assert unit_share(1000, 7, 2, 3) == (1000 * 5) // 7 - (1000 * 2) // 7 == 429
    assert unit_share(999, 4, 0, 4) == 999
    assert unit_share(999, 4, 1, 0) == 0


def test_a_zero_total_shares_nothing() -> None:
    assert unit_share(0, 5, 2, 3) == 0


@pytest.mark.parametrize(
    ("units", "already", "taking"),
    [(0, 0, 0), (-1, 0, 1), (3, -1, 1), (3, 0, -1), (3, 2, 2), (3, 4, 0), (1, 0, 2)],
)
def test_units_out_of_range_are_a_programming_error(units: int, already: int, taking: int) -> None:
    with pytest.raises(ValueError, match="unit"):
        unit_share(1000, units, already, taking)


@st.composite
def splits(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A line of ``n`` units and the sizes of the partial returns that bring all of them back."""
    units = draw(st.integers(min_value=1, max_value=50))
    parts: list[int] = []
    left = units
    while left:
        part = draw(st.integers(min_value=1, max_value=left))
        parts.append(part)
        left -= part
    return units, parts


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**12), splits())
def test_returning_every_unit_in_any_number_of_returns_refunds_exactly_the_total(
    total: int, split: tuple[int, list[int]]
) -> None:
    units, parts = split
    refunded = 0
    already = 0
    for taking in parts:
        share = unit_share(total, units, already, taking)
        # Each share is the exact proportion, give or take less than one minor unit.
        assert abs(share * units - total * taking) < units
        refunded += share
        already += taking
    assert refunded == total


@settings(max_examples=100)
@given(st.integers(min_value=-(10**9), max_value=10**9), splits())
def test_the_shares_add_up_even_for_a_negative_total(
    total: int, split: tuple[int, list[int]]
) -> None:
    units, parts = split
    starts = [sum(parts[:index]) for index in range(len(parts))]
    assert sum(unit_share(total, units, s, k) for s, k in zip(starts, parts, strict=True)) == total


# --- one line --------------------------------------------------------------------------------


def test_a_whole_line_refunds_its_price_and_tax() -> None:
    refund = price_line(
        line(unit_price_minor=1999, quantity_ordered=2, quantity=2, tax_minor=320),
        0,
        unauthorized=False,
    )
    assert refund == LineRefund(refund.order_line_id, 2, 3998, 320, 0)
    assert refund.refund_minor == 4318


def test_the_line_discount_is_shared_by_every_unit() -> None:
    sold = line(
        unit_price_minor=1000, quantity_ordered=3, discount_minor=300, tax_minor=270, quantity=1
    )
    refund = price_line(sold, 0, unauthorized=False)
    assert refund.goods_minor == 900
    assert refund.tax_minor == 90
    assert refund.refund_minor == 990


def test_the_second_partial_return_takes_the_next_units_share() -> None:
    sold = {"unit_price_minor": 1000, "quantity_ordered": 3, "discount_minor": 1, "tax_minor": 100}
    first = price_line(line(**sold, quantity=1), 0, unauthorized=False)
    rest = price_line(line(**sold, quantity=2, already_refunded_quantity=1), 0, unauthorized=False)
    assert (first.goods_minor, first.tax_minor) == (999, 33)
    assert (rest.goods_minor, rest.tax_minor) == (2000, 67)
    assert first.goods_minor + rest.goods_minor == 2999
    assert first.tax_minor + rest.tax_minor == 100


def test_a_line_refund_carries_the_order_line_and_quantity() -> None:
    order_line_id = uuid.uuid4()
    refund = price_line(
        line(order_line_id=order_line_id, quantity_ordered=4, quantity=3), 0, unauthorized=False
    )
    assert refund.order_line_id == order_line_id
    assert refund.quantity == 3


@pytest.mark.parametrize("condition", NOT_UNOPENED, ids=str)
@pytest.mark.parametrize("reason", CUSTOMER_REASONS, ids=str)
def test_an_opened_item_returned_for_a_change_of_mind_pays_the_restocking_fee(
    reason: ReturnReason, condition: ItemCondition
) -> None:
    refund = price_line(
        line(unit_price_minor=2000, tax_minor=200, reason=reason, condition=condition),
        15,
        unauthorized=False,
    )
    assert refund.restocking_fee_minor == 300
    assert refund.refund_minor == 2000 + 200 - 300


def test_the_restocking_fee_is_taken_on_goods_only_not_on_tax() -> None:
    refund = price_line(
        line(unit_price_minor=1000, tax_minor=10_000, condition=ItemCondition.OPENED),
        10,
        unauthorized=False,
    )
    assert refund.restocking_fee_minor == 100


def test_the_restocking_fee_is_rounded_down_in_the_customers_favour() -> None:
    refund = price_line(
        line(unit_price_minor=999, condition=ItemCondition.OPENED), 15, unauthorized=False
    )
    assert refund.restocking_fee_minor == 149  # 149.85


@pytest.mark.parametrize("condition", list(ItemCondition), ids=str)
@pytest.mark.parametrize("reason", MERCHANT_FAULTS, ids=str)
def test_the_merchants_mistakes_pay_no_restocking_fee(
    reason: ReturnReason, condition: ItemCondition
) -> None:
    refund = price_line(line(reason=reason, condition=condition), 25, unauthorized=False)
    assert refund.restocking_fee_minor == 0


@pytest.mark.parametrize("reason", list(ReturnReason), ids=str)
def test_an_unopened_item_pays_no_restocking_fee(reason: ReturnReason) -> None:
    refund = price_line(
        line(reason=reason, condition=ItemCondition.UNOPENED), 25, unauthorized=False
    )
    assert refund.restocking_fee_minor == 0


@pytest.mark.parametrize("condition", list(ItemCondition), ids=str)
@pytest.mark.parametrize("reason", list(ReturnReason), ids=str)
def test_an_unauthorized_return_pays_the_restocking_fee_even_for_a_defect(
    reason: ReturnReason, condition: ItemCondition
) -> None:
    refund = price_line(line(reason=reason, condition=condition), 20, unauthorized=True)
    assert refund.restocking_fee_minor == 200


def test_no_restocking_fee_when_the_policy_has_none() -> None:
    refund = price_line(line(condition=ItemCondition.USED), 0, unauthorized=True)
    assert refund.restocking_fee_minor == 0
    assert refund.refund_minor == 1000


def test_a_full_restocking_fee_leaves_only_the_tax() -> None:
    refund = price_line(line(tax_minor=80, condition=ItemCondition.USED), 100, unauthorized=False)
    assert refund.refund_minor == 80


def test_percent_of_rounds_down() -> None:
    assert percent_of(1999, 10) == 199
    assert percent_of(1, 99) == 0
    assert percent_of(100, 100) == 100
    assert percent_of(12345, 0) == 0


@settings(max_examples=150)
@given(
    unit_price=st.integers(min_value=0, max_value=10**7),
    discount_per_unit=st.integers(min_value=0, max_value=100),
    tax=st.integers(min_value=0, max_value=10**6),
    split=splits(),
)
def test_returning_a_line_in_parts_refunds_its_net_price_and_tax_exactly(
    unit_price: int, discount_per_unit: int, tax: int, split: tuple[int, list[int]]
) -> None:
    units, parts = split
    discount = min(discount_per_unit * units, unit_price * units)
    already = 0
    goods = taxes = 0
    for taking in parts:
        refund = price_line(
            line(
                unit_price_minor=unit_price,
                quantity_ordered=units,
                discount_minor=discount,
                tax_minor=tax,
                already_refunded_quantity=already,
                quantity=taking,
            ),
            0,
            unauthorized=False,
        )
        goods += refund.goods_minor
        taxes += refund.tax_minor
        already += taking
    assert goods == unit_price * units - discount
    assert taxes == tax


# --- whole return ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", MERCHANT_FAULTS, ids=str)
def test_shipping_comes_back_in_proportion_for_the_merchants_mistakes(reason: ReturnReason) -> None:
    result = quote([line(unit_price_minor=2500, reason=reason)])
    assert result.shipping_minor == 250
    assert result.total_minor == 2500 + 250


@pytest.mark.parametrize("reason", CUSTOMER_REASONS, ids=str)
def test_shipping_stays_with_the_merchant_for_a_change_of_mind(reason: ReturnReason) -> None:
    result = quote([line(unit_price_minor=2500, reason=reason)])
    assert result.shipping_minor == 0
    assert result.total_minor == 2500


def test_only_lines_returned_for_a_listed_reason_earn_shipping_back() -> None:
    result = quote(
        [
            line(unit_price_minor=2500, reason=R.DEFECTIVE),
            line(unit_price_minor=5000, reason=R.UNWANTED),
        ]
    )
    assert result.shipping_minor == 250
    assert result.total_minor == 7500 + 250


def test_a_policy_may_refund_shipping_for_other_reasons() -> None:
    result = quote(
        [line(unit_price_minor=2500, reason=R.UNWANTED)], shipping_refund_reasons=["UNWANTED"]
    )
    assert result.shipping_minor == 250


def test_a_policy_may_never_refund_shipping() -> None:
    result = quote([line(unit_price_minor=2500, reason=R.DEFECTIVE)], shipping_refund_reasons=[])
    assert result.shipping_minor == 0


def test_returning_the_whole_order_refunds_all_of_the_shipping() -> None:
    result = quote([line(unit_price_minor=10_000, reason=R.WRONG_ITEM)])
    assert result.shipping_minor == 1000


def test_the_shipping_share_is_rounded_down() -> None:
    result = quote(
        [line(unit_price_minor=1, reason=R.DEFECTIVE)],
        order_goods_minor=3,
        order_shipping_minor=1000,
    )
    assert result.shipping_minor == 333


def test_shipping_already_refunded_is_not_refunded_twice() -> None:
    result = quote(
        [line(unit_price_minor=2500, reason=R.DEFECTIVE)], shipping_already_refunded_minor=900
    )
    assert result.shipping_minor == 100


@pytest.mark.parametrize("already", [1000, 1500])
def test_no_shipping_is_left_once_it_was_all_refunded(already: int) -> None:
    result = quote(
        [line(unit_price_minor=2500, reason=R.DEFECTIVE)], shipping_already_refunded_minor=already
    )
    assert result.shipping_minor == 0


def test_an_order_without_goods_refunds_no_shipping() -> None:
    result = quote([line(unit_price_minor=0, reason=R.DEFECTIVE)], order_goods_minor=0)
    assert result.shipping_minor == 0


def test_an_order_with_free_shipping_refunds_none() -> None:
    result = quote([line(unit_price_minor=2500, reason=R.DEFECTIVE)], order_shipping_minor=0)
    assert result.shipping_minor == 0


def test_the_quote_shows_restocking_fees_of_every_line() -> None:
    result = quote(
        [
            line(unit_price_minor=1000, condition=ItemCondition.OPENED),
            line(unit_price_minor=3000, condition=ItemCondition.USED),
            line(unit_price_minor=5000, condition=ItemCondition.UNOPENED),
        ],
        restocking_fee_percent=10,
    )
    assert [refund.restocking_fee_minor for refund in result.lines] == [100, 300, 0]
    assert result.restocking_fee_minor == 400
    assert result.total_minor == 9000 - 400


def test_an_unauthorized_return_pays_the_fee_on_every_line() -> None:
    result = quote(
        [line(unit_price_minor=1000, reason=R.DEFECTIVE), line(unit_price_minor=2000)],
        restocking_fee_percent=10,
        unauthorized=True,
    )
    assert result.restocking_fee_minor == 300
    assert result.shipping_minor == 100
    assert result.total_minor == 3000 - 300 + 100


def test_the_quote_keeps_its_currency_and_the_order_of_its_lines() -> None:
    lines = [line(), line(), line()]
    result = quote(lines, currency="EUR")
    assert result.currency == "EUR"
    assert [refund.order_line_id for refund in result.lines] == [
        item.order_line_id for item in lines
    ]


def test_an_empty_return_is_worth_nothing() -> None:
    result = quote([])
    assert result.lines == ()
    assert result.total_minor == 0
    assert result.shipping_minor == 0


reasons = st.sampled_from(list(ReturnReason))
conditions = st.sampled_from(list(ItemCondition))


@st.composite
def priced_lines(draw: st.DrawFn) -> LinePricing:
    ordered = draw(st.integers(min_value=1, max_value=10))
    unit_price = draw(st.integers(min_value=0, max_value=100_000))
    already = draw(st.integers(min_value=0, max_value=ordered - 1))
    return line(
        unit_price_minor=unit_price,
        quantity_ordered=ordered,
        discount_minor=draw(st.integers(min_value=0, max_value=unit_price * ordered)),
        tax_minor=draw(st.integers(min_value=0, max_value=20_000)),
        already_refunded_quantity=already,
        quantity=draw(st.integers(min_value=1, max_value=ordered - already)),
        reason=draw(reasons),
        condition=draw(conditions),
    )


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(priced_lines(), max_size=6),
    fee=st.integers(min_value=0, max_value=100),
    unauthorized=st.booleans(),
    order_goods=st.integers(min_value=0, max_value=10**7),
    order_shipping=st.integers(min_value=0, max_value=10**5),
    shipping_refunded=st.integers(min_value=0, max_value=2 * 10**5),
    shipping_reasons=st.lists(st.sampled_from([reason.value for reason in ReturnReason])),
)
def test_the_total_is_always_the_line_refunds_plus_shipping(
    lines: list[LinePricing],
    fee: int,
    unauthorized: bool,
    order_goods: int,
    order_shipping: int,
    shipping_refunded: int,
    shipping_reasons: list[str],
) -> None:
    result = quote(
        lines,
        restocking_fee_percent=fee,
        unauthorized=unauthorized,
        order_goods_minor=order_goods,
        order_shipping_minor=order_shipping,
        shipping_already_refunded_minor=shipping_refunded,
        shipping_refund_reasons=shipping_reasons,
    )
    assert result.total_minor == (
        sum(refund.refund_minor for refund in result.lines) + result.shipping_minor
    )
    assert result.restocking_fee_minor == sum(r.restocking_fee_minor for r in result.lines)
    assert len(result.lines) == len(lines)
    assert 0 <= result.shipping_minor <= max(order_shipping - shipping_refunded, 0)
    for refund in result.lines:
        assert 0 <= refund.restocking_fee_minor <= refund.goods_minor
        assert refund.refund_minor >= refund.tax_minor >= 0
    qualifying = [
        refund.goods_minor
        for refund, item in zip(result.lines, lines, strict=True)
        if item.reason.value in shipping_reasons
    ]
    if not any(qualifying):
        assert result.shipping_minor == 0
    elif order_goods > 0 and sum(qualifying) <= order_goods:
        assert result.shipping_minor <= order_shipping * sum(qualifying) // order_goods


# --- store credit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "percent", "bonus"),
    [(10_000, 10, 1000), (1999, 10, 199), (1999, 5, 99), (1, 50, 0), (5000, 0, 0), (0, 10, 0)],
)
def test_the_store_credit_bonus_is_rounded_down(total: int, percent: int, bonus: int) -> None:
    assert store_credit_bonus(total, percent) == bonus


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=100))
def test_the_store_credit_bonus_never_exceeds_the_exact_percentage(
    total: int, percent: int
) -> None:
    bonus = store_credit_bonus(total, percent)
    assert bonus * 100 <= total * percent < (bonus + 1) * 100


# --- currencies with other minor units -------------------------------------------------------


def test_a_yen_line_is_shared_in_whole_yen() -> None:
    sold = {
        "unit_price_minor": parse_decimal("1200", "JPY"),
        "quantity_ordered": 3,
        "tax_minor": parse_decimal("100", "JPY"),
    }
    taxes = [
        price_line(line(**sold, already_refunded_quantity=j), 0, unauthorized=False).tax_minor
        for j in range(3)
    ]
    assert taxes == [33, 33, 34]
    refund = price_line(line(**sold), 0, unauthorized=False)
    assert Money(refund.refund_minor, "JPY").formatted() == "¥1,233"
    assert to_decimal_string(refund.refund_minor, "JPY") == "1233"


def test_a_yen_restocking_fee_is_rounded_down_to_the_yen() -> None:
    refund = price_line(
        line(unit_price_minor=parse_decimal("999", "JPY"), condition=ItemCondition.OPENED),
        15,
        unauthorized=False,
    )
    assert refund.restocking_fee_minor == 149
    assert to_decimal_string(refund.refund_minor, "JPY") == "850"


def test_a_dinar_line_is_shared_in_fils() -> None:
    sold = {
        "unit_price_minor": parse_decimal("1.250", "KWD"),
        "quantity_ordered": 2,
        "tax_minor": parse_decimal("0.125", "KWD"),
    }
    first = price_line(line(**sold), 0, unauthorized=False)
    second = price_line(line(**sold, already_refunded_quantity=1), 0, unauthorized=False)
    assert (first.goods_minor, first.tax_minor) == (1250, 62)
    assert (second.goods_minor, second.tax_minor) == (1250, 63)
    assert to_decimal_string(first.refund_minor, "KWD") == "1.312"
    assert to_decimal_string(first.refund_minor + second.refund_minor, "KWD") == "2.625"


def test_a_dinar_quote_refunds_shipping_to_the_fils() -> None:
    result = quote(
        [line(unit_price_minor=parse_decimal("3.333", "KWD"), reason=R.DEFECTIVE)],
        currency="KWD",
        order_goods_minor=parse_decimal("10.000", "KWD"),
        order_shipping_minor=parse_decimal("2.000", "KWD"),
    )
    assert result.shipping_minor == 666  # 0.6666 rounded down
    assert to_decimal_string(result.total_minor, "KWD") == "3.999"
    assert Money(result.total_minor, "KWD").formatted() == "KWD3.999"


def test_a_refund_priced_again_after_later_units_still_adds_up_to_the_line() -> None:
    """3 units for 100: unit 1 priced (33) and its refund failed while units 2-3 were
    refunded (67). Priced again by position it would be unit 3's share (34): 101 in all."""
    three = {"unit_price_minor": 100, "quantity_ordered": 3, "discount_minor": 200}
    later = price_line(
        line(**three, already_refunded_quantity=1, quantity=2), 0, unauthorized=False
    )
    assert later.goods_minor == 67
    again = price_line(
        line(**three, already_refunded_quantity=2, already_refunded_goods_minor=67),
        0,
        unauthorized=False,
    )
    assert later.goods_minor + again.goods_minor == 100


def test_a_share_after_known_amounts_never_goes_below_zero() -> None:
    # 1 minor unit over 3 units: shares 0, 0, 1; the last unit was refunded first.
    tiny = {"unit_price_minor": 1, "quantity_ordered": 3, "discount_minor": 2}
    first = price_line(
        line(**tiny, already_refunded_quantity=1, already_refunded_goods_minor=1),
        0,
        unauthorized=False,
    )
    last = price_line(
        line(**tiny, already_refunded_quantity=2, already_refunded_goods_minor=1),
        0,
        unauthorized=False,
    )
    assert (first.goods_minor, last.goods_minor) == (0, 0)  # 1 in all, as sold


def test_staff_adjustments_change_the_quote_and_keep_the_policys_figures() -> None:
    policy = quote(
        [
            line(order_line_id="a", unit_price_minor=4000, condition=ItemCondition.OPENED),
            line(order_line_id="b", unit_price_minor=1000),
        ],
        restocking_fee_percent=10,
    )
    assert policy.total_minor == 3600 + 1000
    adjusted = adjust_quote(
        policy,
        QuoteAdjustments(
            waive_restocking_fee=True,
            line_refunds={"b": 600},
            goodwill_minor=250,
            shipping_minor=90,
        ),
    )
    a, b = adjusted.lines
    assert (a.restocking_fee_minor, a.refund_minor) == (0, 4000)
    assert (b.goods_minor, b.adjustment_minor, b.refund_minor) == (1000, -400, 600)
    assert adjusted.total_minor == 4000 + 600 + 90 + 250
    assert adjust_quote(policy, QuoteAdjustments()) == policy
