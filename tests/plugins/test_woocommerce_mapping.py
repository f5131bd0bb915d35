"""WooCommerce orders mapped from the REST v3 sample (an order.created body is the same JSON)."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.enums import PaymentProviderName, Platform
from core.errors import InvalidInput
from plugins.woocommerce.mapping import REFUND_MARKER, order_input, stripe_payment

SAMPLE = (
    Path(__file__).resolve().parents[2] / "testkit" / "fixtures" / "woocommerce_order_created.json"
)


def sample(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = json.loads(SAMPLE.read_text())
    order.update(changes)
    return order


def test_the_sample_order_maps_to_minor_units_lines_taxes_and_shipping() -> None:
    order = order_input(sample())
    assert order.platform is Platform.WOOCOMMERCE
    assert (order.external_id, order.order_number, order.currency) == ("727", "727", "USD")
    assert order.placed_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)  # the _gmt field
    assert order.source_updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert order.customer.email == "john.doe@example.com"
    assert order.customer.name == "John Doe"
    assert order.customer.stripe_customer_id == "cus_QXg1o8vcGmoR32"
    assert order.shipping_minor == 1000
    first = order.lines[0]
    assert (first.external_id, first.quantity, first.unit_price_minor) == ("315", 2, 300)
    assert (first.discount_minor, first.tax_minor) == (0, 45)
    total = sum(
        line.unit_price_minor * line.quantity - line.discount_minor + line.tax_minor
        for line in order.lines
    )
    assert total + order.shipping_minor == 2935  # the order's "29.35"


def test_a_stripe_gateway_order_is_a_stripe_payment_on_its_payment_intent() -> None:
    [payment] = order_input(sample()).payments
    assert payment.provider is PaymentProviderName.STRIPE
    assert payment.reference == "pi_3PgafuB7WZ01zgkW0jvR8a2C"
    assert (payment.captured_minor, payment.gateway) == (2935, "stripe")
    without_intent = sample(meta_data=[])
    assert stripe_payment(without_intent) == "ch_3PgafuB7WZ01zgkW0M5pXr7s"


def test_other_gateways_are_manual_and_unpaid_orders_have_no_payment() -> None:
    [cheque] = order_input(sample(payment_method="cheque", transaction_id="")).payments
    assert cheque.provider is PaymentProviderName.MANUAL
    assert cheque.gateway == "cheque"
    assert order_input(sample(status="pending", date_paid_gmt=None)).payments == []


def test_line_discounts_come_from_subtotal_and_total() -> None:
    order = sample()
    order["line_items"][0].update({"subtotal": "10.00", "total": "7.01", "quantity": 3})
    line = order_input(order).lines[0]
    # 10.00 over 3 units: 3.34 each, and the rounding joins the discount.
    assert (line.unit_price_minor, line.discount_minor) == (334, 301)
    assert line.unit_price_minor * line.quantity - line.discount_minor == 701


def test_refunds_made_in_the_store_count_ours_do_not() -> None:
    ours = f"RMA-1 ({REFUND_MARKER}{uuid.uuid4()})"
    order = sample(
        refunds=[
            {"id": 1, "reason": "damaged in transit", "total": "-5.00"},
            {"id": 2, "reason": ours, "total": "-3.00"},
        ]
    )
    assert order_input(order).refunded_elsewhere_minor == 500


def test_categories_and_tags_come_from_the_products() -> None:
    products = {
        93: {
            "categories": [{"name": "Software"}, {"name": "Games"}],
            "tags": [{"name": "final-sale"}],
        }
    }
    line = order_input(sample(), products).lines[0]
    assert line.category == "Software"
    assert list(line.tags) == ["Games", "final-sale"]


def test_a_completed_order_is_delivered_when_it_was_completed() -> None:
    order = order_input(sample(date_completed_gmt="2017-03-25T10:00:00"))
    assert order.delivered_at == datetime(2017, 3, 25, 10, 0, tzinfo=UTC)


def test_an_order_without_an_email_still_maps_and_an_unknown_currency_is_refused() -> None:
    order = sample()
    order["billing"] = copy.deepcopy(order["billing"]) | {"email": ""}
    assert order_input(order).customer.email == "order-727@no-email.invalid"
    with pytest.raises(InvalidInput):
        order_input(sample(currency="QQQ"))
