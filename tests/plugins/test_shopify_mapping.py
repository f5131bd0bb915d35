"""The pure parts of the Shopify plugin: order mapping, refund allocation, topics, signatures."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.clock import SYSTEM_CLOCK
from core.enums import PaymentProviderName, Platform
from core.errors import InvalidInput
from core.ports.payments import RefundReport, RefundStatus
from core.ports.webhooks import AccessRevoked, DeliveryRefused, OrderChanged, TopicContext
from plugins.shopify.mapping import (
    REFUND_MARKER,
    allocate,
    order_input,
    refundable_transactions,
)
from plugins.shopify.topics import TOPICS
from plugins.shopify.webhooks import ShopifyAppWebhookSource, normalize_shop

FIXTURES = Path(__file__).resolve().parents[2] / "testkit" / "fixtures"


def money(amount: str, currency: str = "USD") -> dict[str, Any]:
    return {"presentmentMoney": {"amount": amount, "currencyCode": currency}}


def order_node(**changes: Any) -> dict[str, Any]:
    """An order as the GraphQL Admin API answers the plugin's query (values from Shopify's
    orders/create sample: two lines, shipping, a card and a gift card)."""
    node: dict[str, Any] = {
        "id": "gid://shopify/Order/820982911946154508",
        "name": "#9999",
        "email": "Jon@Example.com",
        "createdAt": "2026-11-02T10:00:00-05:00",
        "processedAt": "2026-11-02T10:00:00-05:00",
        "updatedAt": "2026-11-03T09:00:00-05:00",
        "cancelledAt": None,
        "presentmentCurrencyCode": "USD",
        "customer": {
            "id": "gid://shopify/Customer/115310627314723954",
            "email": "jon@example.com",
            "firstName": "John",
            "lastName": "Smith",
        },
        "totalShippingPriceSet": money("10.00"),
        "lineItems": {
            "pageInfo": {"hasNextPage": False},
            "nodes": [
                {
                    "id": "gid://shopify/LineItem/866550311766439020",
                    "sku": "IPOD-342-N",
                    "title": "IPod Nano - 8GB",
                    "quantity": 1,
                    "originalUnitPriceSet": money("199.00"),
                    "totalDiscountSet": money("3.33"),
                    "taxLines": [{"priceSet": money("10.50")}, {"priceSet": money("1.25")}],
                    "product": {"productType": "Cult Products", "tags": ["final-sale"]},
                },
                {
                    "id": "gid://shopify/LineItem/141249953214522974",
                    "sku": "IPOD2008BLACK",
                    "title": "IPod Nano - 8GB",
                    "quantity": 2,
                    "originalUnitPriceSet": money("199.00"),
                    "totalDiscountSet": money("0.00"),
                    "taxLines": [],
                    "product": None,
                },
            ],
        },
        "fulfillments": [{"deliveredAt": None}, {"deliveredAt": "2026-11-05T12:00:00Z"}],
        "transactions": [
            {
                "id": "gid://shopify/OrderTransaction/1",
                "kind": "AUTHORIZATION",
                "status": "SUCCESS",
                "gateway": "shopify_payments",
                "amountSet": money("500.00"),
                "parentTransaction": None,
            },
            {
                "id": "gid://shopify/OrderTransaction/2",
                "kind": "CAPTURE",
                "status": "SUCCESS",
                "gateway": "shopify_payments",
                "amountSet": money("548.08"),
                "parentTransaction": {"id": "gid://shopify/OrderTransaction/1"},
            },
            {
                "id": "gid://shopify/OrderTransaction/3",
                "kind": "SALE",
                "status": "SUCCESS",
                "gateway": "gift_card",
                "amountSet": money("70.00"),
                "parentTransaction": None,
            },
            {
                "id": "gid://shopify/OrderTransaction/4",
                "kind": "SALE",
                "status": "FAILURE",
                "gateway": "paypal",
                "amountSet": money("70.00"),
                "parentTransaction": None,
            },
        ],
        "refunds": [
            {
                "id": "gid://shopify/Refund/1",
                "note": "Damaged in transit",
                "totalRefundedSet": money("5.00"),
            },
            {
                "id": "gid://shopify/Refund/2",
                "note": f"Return RMA-X ({REFUND_MARKER}{uuid.UUID(int=7)})",
                "totalRefundedSet": money("20.00"),
            },
        ],
    }
    node.update(changes)
    return node


def test_an_order_maps_to_minor_units_with_lines_taxes_and_discounts() -> None:
    order = order_input(order_node())
    assert order.platform is Platform.SHOPIFY
    assert order.external_id == "gid://shopify/Order/820982911946154508"
    assert order.order_number == "#9999"
    assert order.currency == "USD"
    assert order.placed_at == datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    assert order.delivered_at == datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    assert order.source_updated_at == datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    assert order.shipping_minor == 1000
    assert order.customer.email == "Jon@Example.com"
    assert order.customer.name == "John Smith"
    first, second = order.lines
    assert (first.unit_price_minor, first.discount_minor, first.tax_minor) == (19900, 333, 1175)
    assert (first.category, list(first.tags), first.sku) == (
        "Cult Products",
        ["final-sale"],
        "IPOD-342-N",
    )
    assert (second.quantity, second.category, list(second.tags)) == (2, None, [])


def test_every_successful_sale_or_capture_is_a_payment_with_its_gateway() -> None:
    order = order_input(order_node())
    assert [(p.reference, p.captured_minor, p.gateway) for p in order.payments] == [
        ("gid://shopify/OrderTransaction/2", 54808, "shopify_payments"),
        ("gid://shopify/OrderTransaction/3", 7000, "gift_card"),
    ]
    assert {p.provider for p in order.payments} == {PaymentProviderName.SHOPIFY_PAYMENTS}


def test_refunds_made_in_the_shopify_admin_are_counted_ours_are_not() -> None:
    assert order_input(order_node()).refunded_elsewhere_minor == 500


def test_zero_decimal_currencies_keep_their_exponent() -> None:
    node = order_node(
        presentmentCurrencyCode="JPY",
        totalShippingPriceSet=money("500.0", "JPY"),
        transactions=[],
        refunds=[],
    )
    for line in node["lineItems"]["nodes"]:
        line["originalUnitPriceSet"] = money("1200.0", "JPY")
        line["totalDiscountSet"] = money("0.0", "JPY")
        line["taxLines"] = []
    order = order_input(node)
    assert order.shipping_minor == 500
    assert order.lines[0].unit_price_minor == 1200


def test_an_unknown_currency_or_a_foreign_amount_is_refused() -> None:
    with pytest.raises(InvalidInput):
        order_input(order_node(presentmentCurrencyCode="XXZ"))
    with pytest.raises(ValueError, match="EUR"):
        order_input(order_node(totalShippingPriceSet=money("1.00", "EUR")))


def test_a_delivery_before_the_purchase_is_ignored() -> None:
    node = order_node(fulfillments=[{"deliveredAt": "2020-01-01T00:00:00Z"}])
    assert order_input(node).delivered_at is None


def test_refunds_are_spread_last_payment_first_never_above_what_each_took() -> None:
    node = order_node()
    node["transactions"].append(
        {
            "id": "gid://shopify/OrderTransaction/9",
            "kind": "REFUND",
            "status": "SUCCESS",
            "gateway": "gift_card",
            "amountSet": money("50.00"),
            "parentTransaction": {"id": "gid://shopify/OrderTransaction/3"},
        }
    )
    refundable = refundable_transactions(node["transactions"], "USD")
    assert [(t["id"][-1], left) for t, left in refundable] == [("2", 54808), ("3", 2000)]
    parts = allocate(3000, refundable)
    assert [(t["gateway"], part) for t, part in parts] == [
        ("gift_card", 2000),
        ("shopify_payments", 1000),
    ]
    assert allocate(3000, refundable) == parts  # the same on every retry
    with pytest.raises(ValueError, match="less than asked"):
        allocate(56809, refundable)


def context(topic: str) -> TopicContext:
    return TopicContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), topic, {}, SYSTEM_CLOCK.now())


async def test_order_topics_ask_for_the_order_to_be_read_again() -> None:
    sample = json.loads((FIXTURES / "shopify_orders_create.json").read_text())
    result = await TOPICS["orders/updated"](context("orders/updated"), sample)
    assert result == OrderChanged("gid://shopify/Order/820982911946154508")
    with pytest.raises((KeyError, ValueError, TypeError)):
        await TOPICS["orders/create"](context("orders/create"), {"not": "an order"})


async def test_a_refund_made_by_the_admin_only_refreshes_the_order() -> None:
    sample = json.loads((FIXTURES / "shopify_refunds_create.json").read_text())
    results = await TOPICS["refunds/create"](context("refunds/create"), sample)
    assert results == [OrderChanged("gid://shopify/Order/820982911946154508")]


async def test_our_own_refund_coming_back_settles_its_resolution() -> None:
    sample = json.loads((FIXTURES / "shopify_refunds_create.json").read_text())
    ours = copy.deepcopy(sample)
    resolution = uuid.uuid4()
    ours["note"] = f"Return RMA-1 ({REFUND_MARKER}{resolution})"
    results = list(await TOPICS["refunds/create"](context("refunds/create"), ours))
    report = results[0]
    assert isinstance(report, RefundReport)
    assert report.resolution_id == str(resolution)
    assert report.status is RefundStatus.SUCCEEDED
    assert report.provider_reference == sample["admin_graphql_api_id"]
    assert results[1] == OrderChanged("gid://shopify/Order/820982911946154508")


async def test_uninstalling_the_app_revokes_access() -> None:
    result = await TOPICS["app/uninstalled"](context("app/uninstalled"), {"id": 1, "domain": "x"})
    assert isinstance(result, AccessRevoked)


SECRET = "app-secret-current"
PREVIOUS = "app-secret-before"


def signed(
    body: bytes, secret: str, topic: str = "orders/updated", shop: str = "the-shop.myshopify.com"
) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "x-shopify-hmac-sha256": digest,
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": shop,
        "x-shopify-event-id": str(uuid.uuid4()),
    }


def test_app_deliveries_are_verified_with_the_app_secret_or_the_one_before() -> None:
    source = ShopifyAppWebhookSource(lambda: [SECRET, PREVIOUS])
    body = b'{"id": 1}'
    now = SYSTEM_CLOCK.now()
    assert (
        source.verify_app(body, signed(body, SECRET), now=now).account == "the-shop.myshopify.com"
    )
    assert source.verify_app(body, signed(body, PREVIOUS), now=now).topic == "orders/updated"
    with pytest.raises(DeliveryRefused) as refused:
        source.verify_app(body, signed(body, "someone-else"), now=now)
    assert refused.value.status == 401
    with pytest.raises(DeliveryRefused):
        source.verify_app(body, signed(body, SECRET, shop="evil.com"), now=now)
    with pytest.raises(DeliveryRefused) as unconfigured:
        ShopifyAppWebhookSource(list).verify_app(body, signed(body, SECRET), now=now)
    assert unconfigured.value.status == 404


def test_a_replayed_body_under_a_new_event_id_is_the_same_delivery() -> None:
    source = ShopifyAppWebhookSource(lambda: [SECRET])
    body = b'{"id": 2}'
    now = SYSTEM_CLOCK.now()
    first = source.verify_app(body, signed(body, SECRET), now=now)
    again = source.verify_app(body, signed(body, SECRET), now=now)
    assert first.dedupe_key == again.dedupe_key


def test_privacy_topics_reach_an_uninstalled_shop_others_do_not() -> None:
    source = ShopifyAppWebhookSource(lambda: [SECRET])
    body = b"{}"
    now = SYSTEM_CLOCK.now()
    assert source.verify_app(body, signed(body, SECRET, "shop/redact"), now=now).reaches_disabled
    assert not source.verify_app(body, signed(body, SECRET), now=now).reaches_disabled


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("the-shop.myshopify.com", "the-shop.myshopify.com"),
        ("https://The-Shop.myshopify.com/", "the-shop.myshopify.com"),
        ("the-shop", "the-shop.myshopify.com"),
    ],
)
def test_shop_domains_are_normalised(given: str, expected: str) -> None:
    assert normalize_shop(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "evil.com",
        "a.myshopify.com.evil.com",
        "127.0.0.1:8080",
        "",
        "x" * 300,
        "shöp.myshopify.com",
        "sh op.myshopify.com",
    ],
)
def test_anything_but_a_shop_domain_is_refused(given: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_shop(given)
