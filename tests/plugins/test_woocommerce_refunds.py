"""The refunds posted to record a return in the store: pure, on the store's order JSON."""

from __future__ import annotations

from typing import Any

from core.enums import PaymentProviderName
from core.ports.commerce import PlatformRefund, RefundLine, RestockLine
from plugins.woocommerce.refunds import KEY_META, refund_parts

RESOLUTION = "rma-resolution-0b6f3f8e-6a7e-4d7b-9a53-1f0c2a9a6c11"
ORDER: dict[str, Any] = {
    "line_items": [
        # 2 x 50.00 with 20% tax on rate 7 (20.00 tax).
        {"id": 11, "total": "100.00", "total_tax": "20.00", "taxes": [{"id": 7, "total": "20"}]},
        # Untaxed.
        {"id": 12, "total": "30.00", "total_tax": "0.00", "taxes": []},
    ],
    "shipping_lines": [
        {"id": 21, "total": "5.00", "total_tax": "1.00", "taxes": [{"id": 7, "total": "1.00"}]}
    ],
}


def refund(**changes: Any) -> PlatformRefund:
    values: dict[str, Any] = {
        "order_reference": "900",
        "lines": [RefundLine("11", 1, 6000), RefundLine("12", 1, 3000)],
        "shipping_minor": 600,
        "amount_minor": 9600,
        "currency": "USD",
        "reason": "RMA-ABC: refunded through stripe (re_1)",
        "idempotency_key": RESOLUTION,
        "paid_by": PaymentProviderName.STRIPE,
        **changes,
    }
    return PlatformRefund(**values)


def test_one_refund_recorded_only_with_tax_on_the_line_s_rates() -> None:
    [part] = refund_parts(refund(), ORDER)
    body = part.body
    assert part.key == RESOLUTION
    assert body["api_refund"] is False and body["api_restock"] is False
    assert body["amount"] == "96.00"
    assert body["line_items"] == [
        {
            "id": 11,
            "refund_total": "50.00",
            "quantity": 1,
            "refund_tax": [{"id": 7, "refund_total": "10.00"}],
        },
        {"id": 12, "refund_total": "30.00", "quantity": 1},
        {"id": 21, "refund_total": "5.00", "refund_tax": [{"id": 7, "refund_total": "1.00"}]},
    ]
    assert {"key": KEY_META, "value": RESOLUTION} in body["meta_data"]
    assert "(rma-resolution:0b6f3f8e-6a7e-4d7b-9a53-1f0c2a9a6c11)" in body["reason"]


def test_restocked_lines_are_a_refund_of_their_own() -> None:
    restock, rest = refund_parts(refund(restock=[RestockLine("11", 1)]), ORDER)
    assert restock.key == f"{RESOLUTION}:restock" and restock.body["api_restock"] is True
    assert [item["id"] for item in restock.body["line_items"]] == [11]
    assert restock.body["amount"] == "60.00"
    assert rest.key == RESOLUTION and rest.body["api_restock"] is False
    assert [item["id"] for item in rest.body["line_items"]] == [12, 21]
    assert rest.body["amount"] == "36.00"


def test_what_the_lines_do_not_cover_comes_off_the_last_part() -> None:
    # A fee of 4.00 kept back: the amount is what the store records.
    [part] = refund_parts(refund(amount_minor=9200), ORDER)
    assert part.body["amount"] == "92.00"


def test_everything_restocked_and_no_shipping_is_one_restocking_refund() -> None:
    [part] = refund_parts(
        refund(
            lines=[RefundLine("12", 1, 3000)],
            shipping_minor=0,
            amount_minor=3000,
            restock=[RestockLine("12", 1)],
        ),
        ORDER,
    )
    assert part.key == f"{RESOLUTION}:restock" and part.body["api_restock"] is True
    assert part.body["amount"] == "30.00"


def test_a_fee_comes_off_the_goods_never_the_tax() -> None:
    # One unit: goods 50.00 less a 5.00 fee, and its full 10.00 tax.
    [part] = refund_parts(
        refund(
            lines=[RefundLine("11", 1, 5500, tax_minor=1000)], shipping_minor=0, amount_minor=5500
        ),
        ORDER,
    )
    assert part.body["line_items"] == [
        {
            "id": 11,
            "refund_total": "45.00",
            "quantity": 1,
            "refund_tax": [{"id": 7, "refund_total": "10.00"}],
        },
    ]
