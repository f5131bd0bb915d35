"""The return-risk score: named signals with fixed weights, 0 to 100."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.rules.risk import CustomerHistory, Risk, risk_score

WEIGHTS = {
    "FREQUENT_RETURNER": 40,
    "HIGH_RETURN_RATE": 30,
    "UNAUTHORIZED_RETURNS": 20,
    "REPEATED_REJECTIONS": 10,
}


def history(
    orders: int = 10, rmas: int = 0, unauthorized: int = 0, rejected: int = 0
) -> CustomerHistory:
    return CustomerHistory(
        orders=orders,
        rmas_last_365_days=rmas,
        unauthorized_returns=unauthorized,
        rejected_rmas=rejected,
    )


def test_a_new_customer_carries_no_risk() -> None:
    assert risk_score(history(orders=0)) == Risk(0, ())


def test_a_customer_who_never_returned_carries_no_risk() -> None:
    assert risk_score(history(orders=50)) == Risk(0, ())


def test_five_returns_in_a_year_make_a_frequent_returner() -> None:
    assert risk_score(history(orders=100, rmas=5)) == Risk(40, ("FREQUENT_RETURNER",))


def test_four_returns_in_a_year_are_not_frequent() -> None:
    assert risk_score(history(orders=100, rmas=4)) == Risk(0, ())


def test_returning_more_than_half_of_the_orders_is_a_high_return_rate() -> None:
    assert risk_score(history(orders=5, rmas=3)) == Risk(30, ("HIGH_RETURN_RATE",))


def test_returning_exactly_half_of_the_orders_is_not_a_high_return_rate() -> None:
    assert risk_score(history(orders=8, rmas=4)) == Risk(0, ())


def test_without_orders_there_is_no_return_rate() -> None:
    assert risk_score(history(orders=0, rmas=3)) == Risk(0, ())


@pytest.mark.parametrize("unauthorized", [1, 2, 10])
def test_any_unauthorized_return_is_a_signal_of_fixed_weight(unauthorized: int) -> None:
    assert risk_score(history(unauthorized=unauthorized)) == Risk(20, ("UNAUTHORIZED_RETURNS",))


def test_one_rejected_return_is_not_a_signal() -> None:
    assert risk_score(history(rejected=1)) == Risk(0, ())


@pytest.mark.parametrize("rejected", [2, 3, 20])
def test_two_or_more_rejected_returns_are_repeated_rejections(rejected: int) -> None:
    assert risk_score(history(rejected=rejected)) == Risk(10, ("REPEATED_REJECTIONS",))


def test_a_frequent_returner_with_a_high_rate_scores_both_weights() -> None:
    assert risk_score(history(orders=6, rmas=6)) == Risk(
        70, ("FREQUENT_RETURNER", "HIGH_RETURN_RATE")
    )


def test_every_signal_at_once_scores_the_maximum_of_100() -> None:
    risk = risk_score(history(orders=1, rmas=50, unauthorized=9, rejected=9))
    assert risk.score == 100
    assert risk.signals == (
        "FREQUENT_RETURNER",
        "HIGH_RETURN_RATE",
        "UNAUTHORIZED_RETURNS",
        "REPEATED_REJECTIONS",
    )


counts = st.integers(min_value=0, max_value=1_000)


@settings(max_examples=200)
@given(counts, counts, counts, counts)
def test_the_score_is_the_sum_of_its_named_signals_and_never_above_100(
    orders: int, rmas: int, unauthorized: int, rejected: int
) -> None:
    risk = risk_score(history(orders, rmas, unauthorized, rejected))
    assert 0 <= risk.score <= 100
    assert risk.score == min(sum(WEIGHTS[signal] for signal in risk.signals), 100)
    assert len(set(risk.signals)) == len(risk.signals)
    assert ("FREQUENT_RETURNER" in risk.signals) == (rmas >= 5)
    assert ("HIGH_RETURN_RATE" in risk.signals) == (orders > 0 and 2 * rmas > orders)
    assert ("UNAUTHORIZED_RETURNS" in risk.signals) == (unauthorized > 0)
    assert ("REPEATED_REJECTIONS" in risk.signals) == (rejected >= 2)


@settings(max_examples=100)
@given(counts, counts, counts, counts)
def test_more_returns_never_lower_the_score_for_the_same_orders(
    orders: int, rmas: int, unauthorized: int, rejected: int
) -> None:
    before = risk_score(history(orders, rmas, unauthorized, rejected))
    after = risk_score(history(orders, rmas + 1, unauthorized + 1, rejected + 1))
    assert after.score >= before.score
