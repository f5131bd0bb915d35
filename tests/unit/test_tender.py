"""The split of a refund over an order's payments: last payment first, each capped."""

from __future__ import annotations

import pytest

from core.enums import PaymentProviderName as P
from core.rules.tender import Tender, TenderShare, merge_platform_tenders, split_refund


def tender(provider: P, reference: str, position: int, refundable: int) -> Tender:
    return Tender(provider, reference, position, refundable)


def test_the_last_payment_is_refunded_first_and_each_only_what_it_has() -> None:
    tenders = [tender(P.STRIPE, "pi_a", 0, 3000), tender(P.STRIPE, "pi_b", 1, 2000)]
    assert split_refund(4500, tenders) == [
        TenderShare(P.STRIPE, "pi_b", 2000),
        TenderShare(P.STRIPE, "pi_a", 2500),
    ]
    assert split_refund(1500, tenders) == [TenderShare(P.STRIPE, "pi_b", 1500)]


def test_the_split_does_not_depend_on_the_order_payments_were_loaded_in() -> None:
    tenders = [
        tender(P.STRIPE, "pi_b", 0, 1000),
        tender(P.LEDGER, "credit", 1, 500),
        tender(P.STRIPE, "pi_a", 0, 1000),
    ]
    assert split_refund(2000, tenders) == split_refund(2000, list(reversed(tenders)))
    assert split_refund(2000, tenders)[0] == TenderShare(P.LEDGER, "credit", 500)


def test_what_no_payment_can_take_is_left_for_staff() -> None:
    tenders = [tender(P.STRIPE, "pi_a", 0, 1000), tender(P.STRIPE, "pi_b", 1, 0)]
    assert split_refund(1500, tenders) == [
        TenderShare(P.STRIPE, "pi_a", 1000),
        TenderShare(P.MANUAL, None, 500),
    ]
    assert split_refund(700, []) == [TenderShare(P.MANUAL, None, 700)]
    assert split_refund(0, tenders) == []
    with pytest.raises(ValueError, match="never negative"):
        split_refund(-1, tenders)


def test_a_platforms_payments_are_one_share_that_the_platform_spreads() -> None:
    merged = merge_platform_tenders(
        [
            tender(P.SHOPIFY_PAYMENTS, "gid://card", 0, 4000),
            tender(P.MANUAL, "cash", 1, 1000),
            tender(P.SHOPIFY_PAYMENTS, "gid://gift", 2, 500),
        ]
    )
    assert sorted(merged, key=lambda t: t.position) == [
        tender(P.MANUAL, "cash", 1, 1000),
        tender(P.SHOPIFY_PAYMENTS, "gid://card", 2, 4500),
    ]
    assert split_refund(5000, merged) == [
        TenderShare(P.SHOPIFY_PAYMENTS, "gid://card", 4500),
        TenderShare(P.MANUAL, "cash", 500),
    ]
