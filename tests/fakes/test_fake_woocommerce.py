"""The fake WooCommerce store, driven by the real ``woocommerce`` package (3.0.0) and httpx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from woocommerce import API

from testkit.fakes import FakeWooCommerce, sign_woo_webhook

JSON = dict[str, Any]
Received = list[tuple[dict[str, str], bytes]]

# A secret as WooCommerce stores it after ``wc_clean``/``esc_html``: the key is the unescaped one.
RAW_SECRET = "s3cr&amp;t-hook"
KEY_SECRET = "s3cr&t-hook"


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeWooCommerce]:
    with FakeWooCommerce() as server:
        yield server
        assert server.server_errors() == []


def client(fake: FakeWooCommerce, ck: str, cs: str) -> API:
    return API(url=fake.base_url, consumer_key=ck, consumer_secret=cs, version="wc/v3", timeout=5)


@pytest.fixture
def api(fake: FakeWooCommerce) -> API:
    return client(fake, *fake.add_keys())


def gmt(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%S"))


def site(fake: FakeWooCommerce, moment: Any) -> str:
    return gmt(moment.astimezone(fake.site_timezone))


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def expected_signature(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A delivery endpoint that checks ``X-WC-Webhook-Signature`` as the service should."""
    received: Received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            given = self.headers.get("X-WC-Webhook-Signature", "")
            ok = hmac.compare_digest(given, expected_signature(body, KEY_SECRET))
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/woo", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def order_line(fake: FakeWooCommerce, order_id: int) -> JSON:
    line: JSON = fake.order(order_id)["line_items"][0]
    return line


# --------------------------------------------------------------------------------------------
# authentication
# --------------------------------------------------------------------------------------------


def test_oauth_over_http_through_the_package(fake: FakeWooCommerce) -> None:
    ck, cs = fake.add_keys()
    order_id = fake.create_order(email="ann@example.com", lines=[{"sku": "MUG", "price": "9"}])

    response = client(fake, ck, cs).get(f"orders/{order_id}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["billing"]["email"] == "ann@example.com"
    assert body["total"] == "14.00"  # 9 + 5 shipping
    (request,) = fake.requests()
    assert request.consumer_key == ck and request.status == 200
    assert "oauth_signature" not in request.query


def test_wrong_consumer_secret_is_a_signature_error(fake: FakeWooCommerce) -> None:
    ck, _ = fake.add_keys()

    response = client(fake, ck, "cs_not_the_secret").get("orders")

    assert response.status_code == 401
    assert response.json()["code"] == "woocommerce_rest_authentication_error"
    assert response.json()["message"] == "Invalid signature - provided signature does not match."


def test_revoked_keys_are_refused(fake: FakeWooCommerce) -> None:
    ck, cs = fake.add_keys()
    api = client(fake, ck, cs)
    assert api.get("orders").status_code == 200

    fake.revoke_keys(ck)
    response = api.get("orders")

    assert response.status_code == 401
    assert response.json()["code"] == "woocommerce_rest_authentication_error"
    assert response.json()["message"] == "Consumer key is invalid."


def test_read_key_can_read_but_not_write(fake: FakeWooCommerce) -> None:
    api = client(fake, *fake.add_keys("read"))

    assert api.get("coupons").status_code == 200
    response = api.post("coupons", {"code": "nope"})

    assert response.status_code == 401
    assert response.json()["code"] == "woocommerce_rest_authentication_error"
    assert response.json()["message"] == "The API key provided does not have write permissions."
    assert fake.coupons() == []


# --------------------------------------------------------------------------------------------
# orders
# --------------------------------------------------------------------------------------------


def test_orders_paging_headers_and_page_past_the_end(fake: FakeWooCommerce, api: API) -> None:
    created = fake.create_orders_bulk(5)

    first = api.get("orders", params={"per_page": "2"})
    last = api.get("orders", params={"per_page": "2", "page": "3"})
    beyond = api.get("orders", params={"per_page": "2", "page": "4"})

    assert ids(first) == [created[4], created[3]]  # newest first
    assert first.headers["X-WP-Total"] == "5" and first.headers["X-WP-TotalPages"] == "3"
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    assert ids(last) == [created[0]]
    assert 'rel="next"' not in last.headers["Link"]
    assert ids(beyond) == []
    assert beyond.headers["X-WP-Total"] == "5"


def test_modified_after_is_exclusive_and_gmt_or_site_time(fake: FakeWooCommerce, api: API) -> None:
    base = fake.now() - timedelta(hours=1)
    a = fake.create_order(email="a@example.com", created_at=base)
    b = fake.create_order(email="b@example.com", created_at=base + timedelta(minutes=10))
    c = fake.create_order(email="c@example.com", created_at=base + timedelta(minutes=20))
    bound = base + timedelta(minutes=10)
    order_b = fake.order(b)
    assert order_b["date_modified_gmt"] == gmt(bound)
    assert order_b["date_modified"] == site(fake, bound) != gmt(bound)  # site time is UTC+2

    as_gmt = {"modified_after": gmt(bound), "dates_are_gmt": "true", "order": "asc"}
    as_site = {"modified_after": site(fake, bound), "order": "asc"}
    gmt_read_as_site = {"modified_after": gmt(bound), "order": "asc"}

    assert ids(api.get("orders", params=as_gmt)) == [c]  # b's modification equals the bound
    assert ids(api.get("orders", params=as_site)) == [c]
    assert ids(api.get("orders", params=gmt_read_as_site)) == [a, b, c]  # two hours earlier

    fake.update_order(a, customer_note="late change", modified_at=base + timedelta(minutes=30))
    assert ids(api.get("orders", params=as_gmt)) == [a, c]
    assert ids(api.get("orders", params={**as_gmt, "orderby": "modified"})) == [c, a]


def test_modified_before_is_exclusive(fake: FakeWooCommerce, api: API) -> None:
    base = fake.now() - timedelta(minutes=5)
    a = fake.create_order(email="a@example.com", created_at=base)
    fake.advance_time(60)
    b = fake.create_order(email="b@example.com")
    assert fake.order(b)["date_modified_gmt"] == gmt(fake.now())

    params = {"modified_before": gmt(fake.now()), "dates_are_gmt": "1"}
    assert ids(api.get("orders", params=params)) == [a]
    later = {"modified_before": gmt(fake.now() + timedelta(seconds=1)), "dates_are_gmt": "1"}
    assert ids(api.get("orders", params=later)) == [b, a]


def test_trashed_orders_are_hidden_until_restored(fake: FakeWooCommerce, api: API) -> None:
    keep = fake.create_order(email="keep@example.com", status="completed")
    gone = fake.create_order(email="gone@example.com", status="on-hold")

    fake.delete_order(gone)

    assert ids(api.get("orders")) == [keep]
    assert ids(api.get("orders", params={"status": "any"})) == [keep]
    assert ids(api.get("orders", params={"status": "trash"})) == [gone]
    assert api.get(f"orders/{gone}").json()["status"] == "trash"

    fake.restore_order(gone)

    assert sorted(ids(api.get("orders"))) == sorted([keep, gone])
    assert api.get(f"orders/{gone}").json()["status"] == "on-hold"


# --------------------------------------------------------------------------------------------
# creating orders
# --------------------------------------------------------------------------------------------


def created(response: Any) -> JSON:
    assert response.status_code == 201, response.text
    body: JSON = response.json()
    return body


def test_create_order_prices_catalog_lines_and_adds_up_custom_lines_and_a_credit(
    fake: FakeWooCommerce, api: API
) -> None:
    mug = fake.add_product(name="Mug", sku="MUG", price="12.50")

    response = api.post(
        "orders",
        {
            "currency": "EUR",
            "customer_id": 7,
            "customer_note": "exchange for RMA-1",
            "billing": {"first_name": "Ann", "email": "ann@example.com"},
            "shipping": {"first_name": "Ann", "city": "Lyon"},
            "payment_method": "cod",
            "payment_method_title": "Cash on delivery",
            "meta_data": [{"key": "_rma_id", "value": "RMA-1"}],
            "line_items": [
                {"product_id": mug, "quantity": 2},
                {"product_id": mug, "name": "Mug (engraved)", "subtotal": "4.00", "total": "3.00"},
            ],
            "shipping_lines": [{"method_id": "flat_rate", "method_title": "Flat", "total": "4"}],
            "fee_lines": [{"name": "Store credit", "total": "-5.00"}],
        },
    )

    order = created(response)
    assert response.headers["Location"] == f"{fake.base_url}/wp-json/wc/v3/orders/{order['id']}"
    assert (order["status"], order["parent_id"], order["created_via"]) == ("pending", 0, "rest-api")
    assert order["date_paid"] is None and order["transaction_id"] == ""
    assert (order["currency"], order["customer_id"]) == ("EUR", 7)
    assert order["billing"]["email"] == "ann@example.com" and order["billing"]["last_name"] == ""
    assert order["shipping"]["city"] == "Lyon"
    assert [(m["key"], m["value"]) for m in order["meta_data"]] == [("_rma_id", "RMA-1")]
    catalog, custom = order["line_items"]
    assert (catalog["name"], catalog["sku"], catalog["quantity"]) == ("Mug", "MUG", 2)
    assert (catalog["subtotal"], catalog["total"], catalog["price"]) == ("25.00", "25.00", 12.5)
    assert (custom["name"], custom["product_id"], custom["quantity"]) == ("Mug (engraved)", mug, 1)
    assert (custom["subtotal"], custom["total"], custom["price"]) == ("4.00", "3.00", 3)
    assert [(f["name"], f["total"]) for f in order["fee_lines"]] == [("Store credit", "-5.00")]
    assert [(s["method_id"], s["total"]) for s in order["shipping_lines"]] == [
        ("flat_rate", "4.00")
    ]
    assert order["discount_total"] == "1.00"
    assert order["shipping_total"] == "4.00"
    assert order["total"] == "27.00"  # 25 + 3 + 4 shipping - 5 credit
    assert order["total_tax"] == "0.00" and order["tax_lines"] == []
    assert api.get(f"orders/{order['id']}").json() == order == fake.order(order["id"])
    assert ids(api.get("orders")) == [order["id"]]


def test_a_credit_larger_than_the_order_is_capped_at_its_total(
    fake: FakeWooCommerce, api: API
) -> None:
    mug = fake.add_product(name="Mug", price="12.50")

    order = created(
        api.post(
            "orders",
            {
                "line_items": [{"product_id": mug}],
                "fee_lines": [{"name": "Store credit", "total": "-50.00"}],
            },
        )
    )

    assert [f["total"] for f in order["fee_lines"]] == ["-12.50"]  # as calculate_totals
    assert order["total"] == "0.00"


def test_set_paid_pays_the_order_and_makes_it_processing(fake: FakeWooCommerce, api: API) -> None:
    mug = fake.add_product(name="Mug", price="9.00")

    order = created(
        api.post(
            "orders",
            {
                "set_paid": True,
                "payment_method": "stripe",
                "transaction_id": "ch_123",
                "line_items": [{"product_id": mug}],
            },
        )
    )

    assert order["status"] == "processing" and order["transaction_id"] == "ch_123"
    assert order["date_paid_gmt"] == order["date_created_gmt"] is not None
    assert order["date_completed"] is None
    # Nothing to ship (only a fee): payment_complete makes it completed.
    fee_only = created(
        api.post("orders", {"set_paid": "true", "fee_lines": [{"name": "Fee", "total": "2"}]})
    )
    assert fee_only["status"] == "completed" and fee_only["date_completed"] is not None
    assert fee_only["date_paid"] is not None and fee_only["total"] == "2.00"
    # A status given with the order is set first; set_paid then pays an on-hold one too.
    held = created(
        api.post(
            "orders",
            {"status": "on-hold", "set_paid": True, "line_items": [{"product_id": mug}]},
        )
    )
    assert held["status"] == "processing" and held["date_paid"] is not None


def test_a_line_of_a_product_the_store_lacks_has_no_product_as_in_woocommerce(
    fake: FakeWooCommerce, api: API
) -> None:
    order = created(
        api.post(
            "orders",
            {
                "line_items": [
                    {"product_id": 999_999, "quantity": 2},
                    {"product_id": 999_999, "name": "Old mug", "total": "7.00"},
                    {"sku": "NO-SUCH-SKU", "product_id": 999_999},
                ]
            },
        )
    )

    lost, named, by_sku = order["line_items"]
    assert (lost["product_id"], lost["sku"], lost["name"], lost["total"]) == (0, None, "", "0.00")
    assert (named["name"], named["subtotal"], named["total"]) == ("Old mug", "0.00", "7.00")
    assert by_sku["product_id"] == 0
    assert order["total"] == "7.00"


def test_child_orders_and_the_parent_filters(fake: FakeWooCommerce, api: API) -> None:
    ck, cs = fake.add_keys()
    first = fake.create_order(email="a@example.com")
    second = fake.create_order(email="b@example.com")
    child_of_first = created(api.post("orders", {"parent_id": first}))
    child_of_second = created(api.post("orders", {"parent_id": str(second)}))
    assert child_of_first["parent_id"] == first
    assert child_of_first["_links"]["up"] == [
        {"href": f"{fake.base_url}/wp-json/wc/v3/orders/{first}"}
    ]
    assert fake.order(first)["parent_id"] == 0
    children = {child_of_first["id"], child_of_second["id"]}

    def listed(params: Any) -> set[int]:
        return set(ids(api.get("orders", params=params)))

    assert listed({"parent": str(first)}) == {child_of_first["id"]}
    assert listed({"parent": f"{first},{second}"}) == children
    assert listed({"parent[]": str(second)}) == {child_of_second["id"]}
    assert listed({"parent": "0"}) == {first, second}
    assert listed({"parent_exclude": "0"}) == children
    assert listed({"parent_exclude": str(first)}) == {first, second, child_of_second["id"]}
    # parent[] repeated (PHP reads all of them), over Basic auth as a client other than the
    # package would send it.
    repeated = httpx.get(
        f"{fake.base_url}/wp-json/wc/v3/orders",
        params=[("parent[]", str(first)), ("parent[]", str(second))],
        auth=(ck, cs),
        timeout=5,
    )
    assert set(ids(repeated)) == children
    bad = api.get("orders", params={"parent": "abc"})
    assert bad.status_code == 400 and bad.json()["code"] == "rest_invalid_param"


def test_parent_id_must_be_an_existing_order(fake: FakeWooCommerce, api: API) -> None:
    response = api.post("orders", {"parent_id": 999_999, "line_items": []})

    assert response.status_code == 400
    assert response.json() == {
        "code": "order_invalid_parent_id",
        "message": "Invalid parent ID",
        "data": {"status": 400},
    }
    assert fake.orders() == []


@pytest.mark.parametrize(
    ("body", "param", "detail"),
    [
        ({"status": "shipped"}, "status", "status is not one of pending,"),
        (
            {"line_items": [{"product_id": 1, "quantity": 0}]},
            "line_items",
            "line_items[0][quantity] must be greater than or equal to 1",
        ),
        (
            {"line_items": [{"product_id": 1, "total": "abc"}]},
            "line_items",
            "line_items[0][total] is not a number.",
        ),
        (
            {"line_items": [{"product_id": 1, "total": 9.5}]},
            "line_items",
            "line_items[0][total] is not of type string.",
        ),
        (
            {"fee_lines": [{"name": "Credit", "total": "-x"}]},
            "fee_lines",
            "fee_lines[0][total] is not a number.",
        ),
        ({"parent_id": "first"}, "parent_id", "parent_id is not of type integer."),
        ({"set_paid": "maybe"}, "set_paid", "set_paid is not of type boolean."),
    ],
)
def test_invalid_order_bodies_are_rest_invalid_param(
    fake: FakeWooCommerce, api: API, body: JSON, param: str, detail: str
) -> None:
    fake.add_webhook(topic="order.created", delivery_url="https://rma.example.com/h")

    response = api.post("orders", body)

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "rest_invalid_param"
    assert error["message"] == f"Invalid parameter(s): {param}"
    assert error["data"]["status"] == 400
    assert error["data"]["params"][param].startswith(detail)
    assert fake.orders() == [] and fake.pending_webhooks() == []


def test_items_woocommerce_refuses_when_creating(fake: FakeWooCommerce, api: API) -> None:
    no_product = api.post("orders", {"line_items": [{"quantity": 1}]})
    no_fee_name = api.post("orders", {"fee_lines": [{"total": "-5.00"}]})
    no_method = api.post("orders", {"shipping_lines": [{"total": "5.00"}]})
    with_item_id = api.post("orders", {"line_items": [{"id": 5, "product_id": 1}]})

    assert [r.status_code for r in (no_product, no_fee_name, no_method, with_item_id)] == [400] * 4
    assert no_product.json()["code"] == "woocommerce_rest_required_product_reference"
    assert no_fee_name.json()["code"] == "woocommerce_rest_invalid_fee_item"
    assert no_method.json()["code"] == "woocommerce_rest_invalid_shipping_item"
    assert with_item_id.json()["code"] == "woocommerce_rest_invalid_item_id"
    assert fake.orders() == []


def test_created_order_queues_order_created(fake: FakeWooCommerce, api: API) -> None:
    parent = fake.create_order(email="ann@example.com")
    hook_id = fake.add_webhook(topic="order.created", delivery_url="https://rma.example.com/h")
    fake.add_webhook(topic="order.updated", delivery_url="https://rma.example.com/h")

    order = created(api.post("orders", {"parent_id": parent, "set_paid": True}))

    (webhook,) = fake.pending_webhooks()
    assert (webhook.topic, webhook.webhook_id, webhook.resource_id) == (
        "order.created",
        hook_id,
        order["id"],
    )
    assert webhook.json() == order
    assert webhook.json()["parent_id"] == parent


def test_read_key_cannot_create_orders(fake: FakeWooCommerce) -> None:
    api = client(fake, *fake.add_keys("read"))

    response = api.post("orders", {"line_items": []})

    assert response.status_code == 401
    assert response.json()["code"] == "woocommerce_rest_authentication_error"
    assert response.json()["message"] == "The API key provided does not have write permissions."
    assert fake.orders() == []


# --------------------------------------------------------------------------------------------
# refunds
# --------------------------------------------------------------------------------------------


def test_refund_defaults_call_the_gateway_and_restock(fake: FakeWooCommerce, api: API) -> None:
    order_id = fake.create_order(
        email="ann@example.com", lines=[{"sku": "MUG", "price": "9", "quantity": 2, "stock": 10}]
    )
    line = order_line(fake, order_id)

    response = api.post(
        f"orders/{order_id}/refunds",
        {"line_items": [{"id": line["id"], "quantity": 1, "refund_total": 9}]},
    )

    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["amount"] == "9.00" and refund["refunded_payment"] is True
    (call,) = fake.gateway_refunds()
    assert (call.order_id, call.refund_id, call.amount, call.ok) == (
        order_id,
        refund["id"],
        "9.00",
        True,
    )
    assert call.transaction_id == fake.order(order_id)["transaction_id"]
    assert fake.stock_quantity(line["product_id"]) == 11


def test_refund_without_api_refund_or_restock(fake: FakeWooCommerce, api: API) -> None:
    order_id = fake.create_order(email="ann@example.com", lines=[{"sku": "MUG", "price": "9"}])
    line = order_line(fake, order_id)

    response = api.post(
        f"orders/{order_id}/refunds",
        {
            "api_refund": False,
            "api_restock": False,
            "line_items": [{"id": line["id"], "quantity": 1, "refund_total": 9}],
        },
    )

    assert response.status_code == 201, response.text
    assert response.json()["refunded_payment"] is False
    assert fake.gateway_refunds() == []
    assert fake.stock_quantity(line["product_id"]) == 10


def test_api_refund_as_a_string_still_calls_the_gateway(fake: FakeWooCommerce, api: API) -> None:
    order_id = fake.create_order(email="ann@example.com")

    response = api.post(f"orders/{order_id}/refunds", {"amount": "1.00", "api_refund": "false"})

    assert response.status_code == 201, response.text
    assert [c.amount for c in fake.gateway_refunds()] == ["1.00"]


def test_refund_above_what_remains_is_refused(fake: FakeWooCommerce, api: API) -> None:
    order_id = fake.create_order(email="ann@example.com", lines=[{"sku": "MUG", "price": "9"}])
    ok = api.post(f"orders/{order_id}/refunds", {"amount": "10.00", "api_refund": False})
    assert ok.status_code == 201, ok.text

    response = api.post(f"orders/{order_id}/refunds", {"amount": "4.01", "api_refund": False})

    assert response.status_code == 500
    assert response.json()["code"] == "woocommerce_rest_cannot_create_order_refund"
    assert response.json()["message"] == "Invalid refund amount."
    assert len(fake.refunds(order_id)) == 1
    rest = api.post(f"orders/{order_id}/refunds", {"amount": "4.00", "api_refund": False})
    assert rest.status_code == 201
    assert fake.order(order_id)["status"] == "refunded"


def test_refund_listing_carries_meta_data(fake: FakeWooCommerce, api: API) -> None:
    order_id = fake.create_order(email="ann@example.com")
    meta = [{"key": "_rma_id", "value": "RMA-42"}]
    created = api.post(
        f"orders/{order_id}/refunds", {"amount": "2.50", "reason": "rma", "meta_data": meta}
    ).json()

    listed = api.get(f"orders/{order_id}/refunds")

    assert listed.status_code == 200
    (refund,) = listed.json()
    assert refund["id"] == created["id"] and refund["reason"] == "rma"
    assert [(m["key"], m["value"]) for m in refund["meta_data"]] == [("_rma_id", "RMA-42")]
    assert api.get(f"orders/{order_id}/refunds/{created['id']}").json() == refund


def test_failing_gateway_leaves_no_refund(fake: FakeWooCommerce, api: API) -> None:
    order_id = fake.create_order(email="ann@example.com", lines=[{"sku": "MUG", "price": "9"}])
    line = order_line(fake, order_id)
    fake.fail_gateway("Stripe: charge already refunded")

    response = api.post(
        f"orders/{order_id}/refunds",
        {"line_items": [{"id": line["id"], "quantity": 1, "refund_total": 9}]},
    )

    assert response.status_code == 500
    assert response.json()["code"] == "woocommerce_rest_cannot_create_order_refund"
    assert response.json()["message"] == "Stripe: charge already refunded"
    assert api.get(f"orders/{order_id}/refunds").json() == []
    assert fake.refunds(order_id) == []
    (call,) = fake.gateway_refunds()
    assert call.ok is False and call.message == "Stripe: charge already refunded"
    assert fake.stock_quantity(line["product_id"]) == 10
    assert fake.order(order_id)["status"] == "processing"
    # The failure was for one call only.
    again = api.post(f"orders/{order_id}/refunds", {"amount": "9.00"})
    assert again.status_code == 201, again.text


# --------------------------------------------------------------------------------------------
# products and coupons
# --------------------------------------------------------------------------------------------


def test_products_include_returns_those_with_terms(fake: FakeWooCommerce, api: API) -> None:
    mug = fake.add_product(name="Mug", sku="MUG", categories=["Kitchen"], tags=["gift"])
    fake.add_product(name="Cap", sku="CAP")
    tee = fake.add_product(name="Blue Tee", sku="TEE", categories=["Clothing", "Summer Sale"])

    response = api.get("products", params={"include": f"{mug},{tee}"})

    assert response.status_code == 200, response.text
    products = {p["id"]: p for p in response.json()}
    assert set(products) == {mug, tee}
    assert response.headers["X-WP-Total"] == "2"
    assert [c["name"] for c in products[mug]["categories"]] == ["Kitchen"]
    assert [t["name"] for t in products[mug]["tags"]] == ["gift"]
    assert [c["slug"] for c in products[tee]["categories"]] == ["clothing", "summer-sale"]
    assert products[tee]["tags"] == []
    assert products[mug]["sku"] == "MUG" and products[mug]["stock_quantity"] == 10


def test_coupons_are_lower_cased_unique_and_searchable(fake: FakeWooCommerce, api: API) -> None:
    created = api.post("coupons", {"code": "SUMMER10", "amount": "10", "discount_type": "percent"})
    api.post("coupons", {"code": "winter5", "amount": "5"})

    assert created.status_code == 201, created.text
    coupon = created.json()
    assert coupon["code"] == "summer10" and coupon["amount"] == "10.00"
    assert coupon["discount_type"] == "percent"
    assert ids(api.get("coupons", params={"search": "SUMM"})) == [coupon["id"]]
    assert ids(api.get("coupons", params={"code": "Summer10"})) == [coupon["id"]]
    assert api.get(f"coupons/{coupon['id']}").json()["code"] == "summer10"

    duplicate = api.post("coupons", {"code": "Summer10", "amount": "20"})

    assert duplicate.status_code == 400
    assert duplicate.json()["code"] == "woocommerce_rest_coupon_code_already_exists"
    assert sorted(c["code"] for c in fake.coupons()) == ["summer10", "winter5"]


# --------------------------------------------------------------------------------------------
# webhooks
# --------------------------------------------------------------------------------------------


def test_creating_a_webhook_records_a_ping(fake: FakeWooCommerce, api: API) -> None:
    response = api.post(
        "webhooks",
        {"name": "rma", "topic": "order.updated", "delivery_url": "https://rma.example.com/h"},
    )

    assert response.status_code == 201, response.text
    hook = response.json()
    assert (hook["topic"], hook["resource"], hook["event"]) == ("order.updated", "order", "updated")
    assert hook["status"] == "active" and "secret" not in hook
    (ping,) = fake.pings()
    assert ping.is_ping and ping.webhook_id == hook["id"]
    assert ping.body == f"webhook_id={hook['id']}".encode()
    assert "X-WC-Webhook-Signature" not in ping.headers
    assert fake.pending_webhooks() == []


def test_order_updates_collapse_into_one_delivery_built_at_send_time(
    fake: FakeWooCommerce, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    order_id = fake.create_order(email="ann@example.com", status="processing")
    hook_id = fake.add_webhook(topic="order.updated", delivery_url=url, secret=RAW_SECRET)
    assert fake.pending_webhooks() == []  # order.created is another topic

    fake.update_order(order_id, status="completed")
    (pending,) = fake.pending_webhooks()
    assert pending.json()["status"] == "completed" and pending.json()["customer_note"] == ""

    fake.update_order(order_id, customer_note="leave at the door")
    (pending,) = fake.pending_webhooks()
    assert pending.resource_id == order_id and pending.webhook_id == hook_id
    assert pending.json()["customer_note"] == "leave at the door"

    results = fake.deliver_pending()

    assert [(w.topic, status) for w, status in results] == [("order.updated", 200)]
    assert fake.pending_webhooks() == []
    (sent,) = fake.sent_webhooks("order.updated")
    (headers, body) = received[0]
    assert len(received) == 1 and body == sent.body
    assert json.loads(body)["status"] == "completed"
    assert json.loads(body)["customer_note"] == "leave at the door"
    assert headers["X-WC-Webhook-Topic"] == "order.updated"
    assert headers["X-WC-Webhook-ID"] == str(hook_id)

    fake.update_order(order_id, customer_note="again")
    assert len(fake.pending_webhooks()) == 1  # a new delivery once the last one ran


def test_webhook_signature_uses_the_unescaped_secret(fake: FakeWooCommerce) -> None:
    order_id = fake.create_order(email="ann@example.com")
    fake.add_webhook(
        topic="order.updated", delivery_url="https://rma.example.com/h", secret=RAW_SECRET
    )
    fake.update_order(order_id, status="completed")

    (webhook,) = fake.pending_webhooks()
    signature = webhook.headers["X-WC-Webhook-Signature"]

    assert signature == expected_signature(webhook.body, KEY_SECRET)
    assert signature != expected_signature(webhook.body, RAW_SECRET)
    assert signature == sign_woo_webhook(webhook.body, RAW_SECRET)
    assert signature == FakeWooCommerce.sign_webhook(webhook.body, KEY_SECRET)
    assert webhook.headers["X-WC-Webhook-Source"] == fake.base_url + "/"
    assert webhook.headers["X-WC-Webhook-Resource"] == "order"
    assert webhook.headers["X-WC-Webhook-Event"] == "updated"
    assert webhook.headers["Content-Type"] == "application/json"


def test_webhook_body_is_wp_json_encoded(fake: FakeWooCommerce) -> None:
    order_id = fake.create_order(email="zoë@example.com")
    fake.add_webhook(topic="order.updated", delivery_url="https://rma.example.com/h")
    fake.update_order(order_id, customer_note="a/b")

    (webhook,) = fake.pending_webhooks()

    assert b"http:\\/\\/127.0.0.1" in webhook.body and b"a\\/b" in webhook.body
    assert b"http://" not in webhook.body
    assert b"zo\\u00eb@example.com" in webhook.body and b", " not in webhook.body
    body = webhook.json()
    assert body["customer_note"] == "a/b" and body["billing"]["email"] == "zoë@example.com"
    assert body["_links"]["self"][0]["href"] == f"{fake.base_url}/wp-json/wc/v3/orders/{order_id}"


def test_webhook_delete_needs_force(fake: FakeWooCommerce, api: API) -> None:
    hook_id = fake.add_webhook(topic="order.updated", delivery_url="https://rma.example.com/h")

    refused = api.delete(f"webhooks/{hook_id}")

    assert refused.status_code == 501
    assert refused.json()["code"] == "woocommerce_rest_trash_not_supported"
    assert [h["id"] for h in fake.webhooks()] == [hook_id]

    deleted = api.delete(f"webhooks/{hook_id}", params={"force": "true"})

    assert deleted.status_code == 200, deleted.text
    assert fake.webhooks() == []
    assert api.get(f"webhooks/{hook_id}").status_code == 404


def test_disabled_webhook_gets_no_deliveries(
    fake: FakeWooCommerce, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    order_id = fake.create_order(email="ann@example.com")
    hook_id = fake.add_webhook(topic="order.updated", delivery_url=url, secret=RAW_SECRET)

    fake.disable_webhook(hook_id)
    fake.update_order(order_id, status="completed")

    assert fake.pending_webhooks() == []
    assert fake.deliver_pending() == []
    assert received == [] and fake.sent_webhooks() == []
    (hook,) = fake.webhooks()
    assert hook["status"] == "disabled"


# --------------------------------------------------------------------------------------------
# key grant
# --------------------------------------------------------------------------------------------

GRANT = {
    "app_name": "RMA Returns",
    "scope": "read_write",
    "user_id": "shop-42",
    "return_url": "https://rma.example.com/woo/return",
    "callback_url": "https://rma.example.com/woo/callback",
}


def test_authorize_page_checks_its_params(fake: FakeWooCommerce) -> None:
    url = fake.authorize_url(**GRANT)

    page = httpx.get(url, timeout=5)

    assert page.status_code == 200
    assert "RMA Returns" in page.text and "read_write" in page.text

    split = urlsplit(url)
    query = {k: v for k, v in parse_qsl(split.query) if k != "callback_url"}
    missing = httpx.get(f"{fake.base_url}{split.path}?{urlencode(query)}", timeout=5)

    assert missing.status_code == 401
    assert missing.headers["Content-Type"].startswith("text/html")
    assert "Error: Missing parameter callback_url" in missing.text

    http_callback = fake.authorize_url(**{**GRANT, "callback_url": "http://rma.example.com/cb"})
    assert httpx.get(http_callback, timeout=5).status_code == 401


def test_approve_connect_hands_out_working_keys(fake: FakeWooCommerce) -> None:
    callback, payload = fake.approve_connect(fake.authorize_url(**GRANT))

    assert callback == GRANT["callback_url"]
    assert payload["user_id"] == "shop-42" and payload["key_permissions"] == "read_write"
    assert payload["consumer_key"].startswith("ck_")
    assert payload["consumer_secret"].startswith("cs_")
    assert isinstance(payload["key_id"], int)
    api = client(fake, payload["consumer_key"], payload["consumer_secret"])
    assert api.get("orders").status_code == 200
    assert api.post("coupons", {"code": "granted"}).status_code == 201
    assert fake.connect_return_url(fake.authorize_url(**GRANT)) == (
        "https://rma.example.com/woo/return?success=1&user_id=shop-42"
    )

    read_only = fake.approve_connect(fake.authorize_url(**{**GRANT, "scope": "read"}))[1]
    assert (
        client(fake, read_only["consumer_key"], read_only["consumer_secret"])
        .post("coupons", {"code": "nope"})
        .status_code
        == 401
    )


# --------------------------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------------------------


def test_injected_500_happens_once_then_normal(fake: FakeWooCommerce, api: API) -> None:
    order_id = fake.create_order(email="ann@example.com")
    fault = fake.inject("500", endpoint="orders/*", method="GET")

    failed = api.get(f"orders/{order_id}")
    listed = api.get("orders")  # does not match the glob
    ok = api.get(f"orders/{order_id}")

    assert failed.status_code == 500
    assert failed.json()["code"] == "internal_server_error"
    assert "critical error" in failed.json()["message"]
    assert listed.status_code == 200 and ok.status_code == 200
    assert ok.json()["id"] == order_id
    assert fault.hits == 1 and fault.remaining == 0
    assert [(r.fault, r.executed, r.status) for r in fake.requests()] == [
        ("500", False, 500),
        (None, True, 200),
        (None, True, 200),
    ]
