"""The fake Shopify Admin API, driven by the real ``shopify`` package (12.7.0) and httpx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import shopify

from testkit.fakes import FakeShop, FakeShopify, FakeWebhook, sign_webhook

KEY = "rma-test-client-id"
SECRET = "shpss_rma_test_secret"
VERSION = "2026-07"
REDIRECT = "https://rma.example.com/auth/shopify/callback"

# The library's HMAC helpers read the secret from the class; a subclass keeps it out of the
# process-global Session.
AppSession: Any = type("AppSession", (shopify.Session,), {"secret": SECRET, "api_key": KEY})

JSON = dict[str, Any]


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeShopify]:
    with FakeShopify(api_key=KEY, api_secret=SECRET) as server:
        yield server
        assert server.server_errors() == []


@pytest.fixture
def shop(fake: FakeShopify) -> FakeShop:
    return fake.add_shop("acme.myshopify.com")


@pytest.fixture
def token(fake: FakeShopify, shop: FakeShop) -> str:
    return fake.issue_token(shop)


def post(
    fake: FakeShopify,
    token: str | None,
    query: str,
    variables: JSON | None = None,
    *,
    version: str = VERSION,
    timeout: float = 5.0,
) -> httpx.Response:
    headers = {"X-Shopify-Access-Token": token} if token else {}
    payload = {"query": query, "variables": variables or {}}
    return httpx.post(fake.graphql_url(version), headers=headers, json=payload, timeout=timeout)


def run(
    fake: FakeShopify, token: str, query: str, variables: JSON | None = None, **kw: Any
) -> JSON:
    """The ``data`` of a GraphQL call that must not fail."""
    response = post(fake, token, query, variables, **kw)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def errors(fake: FakeShopify, token: str, query: str, variables: JSON | None = None) -> list[JSON]:
    body = post(fake, token, query, variables).json()
    assert "data" not in body, body
    return list(body["errors"])


def library_client(fake: FakeShopify, token: str) -> shopify.GraphQL:
    """``shopify.GraphQL`` pointed at the fake without touching the library's global session."""
    client = shopify.GraphQL.__new__(shopify.GraphQL)
    client.endpoint = fake.graphql_url(VERSION)
    client.headers = {"X-Shopify-Access-Token": token}
    return client


def webhook_ok(raw_body: bytes, header_b64: str | None, secrets: list[str]) -> bool:
    """The verification from platforms.md §1.1."""
    if not header_b64:
        return False
    for secret in secrets:
        digest = base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest())
        if hmac.compare_digest(digest, header_b64.strip().encode()):
            return True
    return False


def exchange(fake: FakeShopify, **params: str) -> httpx.Response:
    return httpx.post(f"{fake.base_url}/admin/oauth/access_token", data=params, timeout=5)


def install(fake: FakeShopify, shop: FakeShop, *, scopes: list[str] | None = None) -> str:
    """Walk the authorization-code grant as the service would; returns the callback URL."""
    session = AppSession(shop.domain, VERSION)
    url = session.create_permission_url(scopes or ["read_orders", "write_orders"], REDIRECT, "n1")
    url = url.replace(f"https://{shop.domain}", fake.base_url)
    assert httpx.get(url, timeout=5).status_code == 200
    return fake.approve_install(url, shop)


def callback_params(callback: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(callback).query))


ORDER_LINES = [{"sku": "MUG", "title": "Mug", "price": "20.00", "quantity": 2, "tax": "3.20"}]


def paid_order(fake: FakeShopify, shop: FakeShop, **kw: Any) -> tuple[str, str, str]:
    """An order of two mugs (48.20 paid through Shopify Payments): (order, line, sale) GIDs."""
    order = fake.create_order(shop, email="ann@example.com", lines=ORDER_LINES, **kw)
    line = fake.line_items(shop, order)[0]["id"]
    sale = fake.transactions(shop, order)[0]["admin_graphql_api_id"]
    return order, line, sale


# --------------------------------------------------------------------------------------------
# OAuth and tokens
# --------------------------------------------------------------------------------------------


def test_install_callback_verifies_with_the_shopify_library_and_its_code_works_once(
    fake: FakeShopify, shop: FakeShop
) -> None:
    callback = install(fake, shop)
    params = callback_params(callback)

    assert callback.startswith(REDIRECT + "?")
    assert params["shop"] == shop.domain and params["state"] == "n1"
    assert base64.b64decode(params["host"] + "==").decode() == "admin.shopify.com/store/acme"
    assert AppSession.calculate_hmac(params) == params["hmac"]
    assert AppSession.validate_params(params)
    assert not AppSession.validate_hmac({**params, "shop": "evil.myshopify.com"})

    granted = exchange(fake, client_id=KEY, client_secret=SECRET, code=params["code"])
    assert granted.status_code == 200
    assert set(granted.json()) == {"access_token", "scope"}
    assert granted.json()["scope"] == "read_orders,write_orders"
    client = library_client(fake, granted.json()["access_token"])
    assert json.loads(client.execute("{ shop { myshopifyDomain } }"))["data"] == {
        "shop": {"myshopifyDomain": shop.domain}
    }

    again = exchange(fake, client_id=KEY, client_secret=SECRET, code=params["code"])
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_request",
        "error_description": "The authorization code was not found or was already used",
    }


def test_code_exchange_rejects_a_wrong_secret_and_an_expired_code(
    fake: FakeShopify, shop: FakeShop
) -> None:
    code = callback_params(install(fake, shop))["code"]
    wrong = exchange(fake, client_id=KEY, client_secret="nope", code=code)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"

    fake.advance_time(601)
    late = exchange(fake, client_id=KEY, client_secret=SECRET, code=code)
    assert late.status_code == 400 and late.json()["error"] == "invalid_request"


def test_expiring_tokens_refresh_and_the_old_refresh_token_lives_until_the_new_one_is_used(
    fake: FakeShopify, shop: FakeShop
) -> None:
    code = callback_params(install(fake, shop))["code"]
    first = exchange(fake, client_id=KEY, client_secret=SECRET, code=code, expiring="1").json()
    assert first["expires_in"] == 3600
    assert first["refresh_token_expires_in"] == 7_776_000

    def refresh(token: str) -> httpx.Response:
        return exchange(
            fake,
            client_id=KEY,
            client_secret=SECRET,
            grant_type="refresh_token",
            refresh_token=token,
        )

    second = refresh(first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert refresh(first["refresh_token"]).status_code == 200  # the new one is not used yet
    third = refresh(second["refresh_token"]).json()
    used_up = refresh(first["refresh_token"])
    assert used_up.status_code == 400 and used_up.json()["error"] == "invalid_grant"

    assert run(fake, third["access_token"], "{ shop { name } }") == {"shop": {"name": "acme"}}
    fake.advance_time(3601)
    expired = post(fake, third["access_token"], "{ shop { name } }")
    assert expired.status_code == 401
    assert expired.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    fresh = refresh(third["refresh_token"]).json()
    assert run(fake, fresh["access_token"], "{ shop { name } }")["shop"]["name"] == "acme"


def test_a_per_user_grant_gives_an_online_token(fake: FakeShopify, shop: FakeShop) -> None:
    url = AppSession(shop.domain, VERSION).create_permission_url(["read_orders"], REDIRECT)
    url = url.replace(f"https://{shop.domain}", fake.base_url) + "&grant_options[]=per-user"
    assert httpx.get(url, timeout=5).json()["pending_approval"]["grant_options"] == ["per-user"]
    params = callback_params(fake.approve_install(url, shop))
    assert "state" not in params and AppSession.validate_params(params)

    granted = exchange(fake, client_id=KEY, client_secret=SECRET, code=params["code"]).json()

    assert granted["expires_in"] == 86_399
    assert granted["associated_user_scope"] == "read_orders"
    assert granted["associated_user"]["email"] == f"staff@{shop.domain}"


def test_missing_expired_and_revoked_tokens_get_401(fake: FakeShopify, shop: FakeShop) -> None:
    assert post(fake, None, "{ shop { name } }").status_code == 401
    assert post(fake, "shpat_unknown", "{ shop { name } }").status_code == 401

    expiring = fake.issue_token(shop, expiring=True)
    assert fake.expire_access_tokens(shop) == 1
    assert post(fake, expiring, "{ shop { name } }").status_code == 401

    token = fake.issue_token(shop)
    client = library_client(fake, token)
    assert json.loads(client.execute("{ shop { name } }"))["data"]["shop"]["name"] == "acme"
    uninstalled = fake.uninstall(shop)
    with pytest.raises(urllib.error.HTTPError) as caught:
        client.execute("{ shop { name } }")
    caught.value.close()
    assert caught.value.code == 401
    assert uninstalled.topic == "app/uninstalled"
    assert uninstalled.json()["myshopify_domain"] == shop.domain
    assert all(not t["valid"] for t in fake.tokens(shop))


# --------------------------------------------------------------------------------------------
# GraphQL: projection and errors
# --------------------------------------------------------------------------------------------


def test_queries_return_only_the_selected_fields_with_aliases_and_fragments(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order = fake.create_order(
        shop, email="ann@example.com", customer=("Ann", "Lee"), lines=ORDER_LINES, tags=["vip"]
    )
    query = """
    query Order($id: ID!) {
      node(id: $id) { __typename ... on Order { ...Basics } }
      again: order(id: $id) { number: name customer { displayName } }
    }
    fragment Basics on Order {
      id email tags displayFinancialStatus
      totalPriceSet { presentmentMoney { amount currencyCode } }
      lineItems(first: 5) { edges { cursor node { sku quantity refundableQuantity } } }
      transactions(first: 5) { kind gateway amountSet { shopMoney { amount } } }
    }"""
    data = json.loads(library_client(fake, token).execute(query, {"id": order}))["data"]

    node = data["node"]
    assert node["__typename"] == "Order" and node["id"] == order
    assert node["tags"] == ["vip"] and node["displayFinancialStatus"] == "PAID"
    assert node["totalPriceSet"] == {"presentmentMoney": {"amount": "48.2", "currencyCode": "USD"}}
    assert [e["node"] for e in node["lineItems"]["edges"]] == [
        {"sku": "MUG", "quantity": 2, "refundableQuantity": 2}
    ]
    assert node["transactions"] == [
        {
            "kind": "SALE",
            "gateway": "shopify_payments",
            "amountSet": {"shopMoney": {"amount": "48.2"}},
        }
    ]
    assert data["again"] == {"number": "#1001", "customer": {"displayName": "Ann Lee"}}


def test_an_unknown_field_is_a_shopify_style_error_without_data(
    fake: FakeShopify, token: str
) -> None:
    found = errors(fake, token, "query Orders { orders(first: 1) { nodes { id foo } } }")
    assert found == [
        {
            "message": "Field 'foo' doesn't exist on type 'Order'",
            "locations": [{"line": 1, "column": 46}],
            "path": ["query Orders", "orders", "nodes", "foo"],
            "extensions": {"code": "undefinedField", "typeName": "Order", "fieldName": "foo"},
        }
    ]


def test_syntax_errors_and_bad_paging_arguments_are_rejected(fake: FakeShopify, token: str) -> None:
    assert "Syntax Error" in errors(fake, token, "{ orders(first: 1) { nodes { id }")[0]["message"]
    missing = errors(fake, token, "{ orders { nodes { id } } }")
    assert missing[0]["message"] == "you must provide one of first or last"
    too_many = errors(fake, token, "{ orders(first: 251) { nodes { id } } }")
    assert "250" in too_many[0]["message"]
    unknown_arg = errors(fake, token, "{ orders(first: 1, foo: 2) { nodes { id } } }")
    assert unknown_arg[0]["extensions"]["code"] == "argumentNotAccepted"


def test_without_read_all_orders_only_the_last_60_days_are_visible(
    fake: FakeShopify, shop: FakeShop
) -> None:
    old = fake.create_order(shop, created_at=fake.now() - timedelta(days=90))
    new = fake.create_order(shop)
    token = fake.issue_token(shop, scopes=["read_orders"])

    data = run(
        fake,
        token,
        "query($id: ID!) { orders(first: 5) { nodes { id } } order(id: $id) { id } }",
        {"id": old},
    )
    assert data == {"orders": {"nodes": [{"id": new}]}, "order": None}
    denied = post(fake, token, '{ customer(id: "gid://shopify/Customer/1") { id } }').json()
    assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


# --------------------------------------------------------------------------------------------
# Paging
# --------------------------------------------------------------------------------------------

PAGE = """
query Page($after: String, $q: String) {
  orders(first: 2, after: $after, query: $q, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id name updatedAt }
  }
}"""


def pages(fake: FakeShopify, token: str, query: str | None = None) -> Iterator[list[JSON]]:
    after = None
    while True:
        orders = run(fake, token, PAGE, {"after": after, "q": query})["orders"]
        yield orders["nodes"]
        if not orders["pageInfo"]["hasNextPage"]:
            return
        after = orders["pageInfo"]["endCursor"]


def test_paging_with_cursors_and_an_updated_at_filter(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    start = fake.now() - timedelta(days=10)
    gids = [fake.create_order(shop, created_at=start + timedelta(days=d)) for d in range(6)]
    since = (start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    seen = [[o["id"] for o in page] for page in pages(fake, token, f"updated_at:>='{since}'")]
    assert seen == [gids[2:4], gids[4:6]]
    counted = run(
        fake,
        token,
        "query($q: String) { ordersCount(query: $q) { count precision } }",
        {"q": f"updated_at:>{since}"},
    )
    assert counted["ordersCount"] == {"count": 3, "precision": "EXACT"}
    newest = run(
        fake, token, "{ orders(first: 2, sortKey: CREATED_AT, reverse: true) { nodes { id } } }"
    )
    assert [o["id"] for o in newest["orders"]["nodes"]] == [gids[5], gids[4]]


def test_paging_stays_stable_when_orders_change_midway(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    start = fake.now() - timedelta(days=10)
    gids = [fake.create_order(shop, created_at=start + timedelta(days=d)) for d in range(5)]
    walk = pages(fake, token)
    seen = [o["id"] for o in next(walk)]
    assert seen == gids[:2]

    fake.update_order(shop, gids[3], note="edited")  # not seen yet: moves to the end
    fake.update_order(shop, gids[0], note="edited")  # already seen: comes again at the end
    for page in walk:
        seen += [o["id"] for o in page]

    assert seen == [gids[0], gids[1], gids[2], gids[4], gids[0], gids[3]]
    assert set(seen) == set(gids)


def test_many_orders_are_quick_to_make_and_page(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    made = fake.create_orders_bulk(shop, 300, lines=[{"sku": "TEE", "price": "15.00"}])
    query = """query($a: String) {
      orders(first: 250, after: $a) { pageInfo { hasNextPage endCursor } nodes { id } }
    }"""
    first = run(fake, token, query)["orders"]
    rest = run(fake, token, query, {"a": first["pageInfo"]["endCursor"]})["orders"]
    assert [o["id"] for o in first["nodes"] + rest["nodes"]] == made
    assert run(fake, token, "{ ordersCount { count } }")["ordersCount"]["count"] == 300


# --------------------------------------------------------------------------------------------
# Cost and throttling
# --------------------------------------------------------------------------------------------

TEN_ORDERS = "{ orders(first: 10) { nodes { id } } }"


def test_the_bucket_is_charged_the_requested_cost_and_refunded_the_unused_part(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    for _ in range(3):
        fake.create_order(shop)
    fake.set_bucket(shop, restore_rate=0)

    cost = post(fake, token, TEN_ORDERS).json()["extensions"]["cost"]

    assert cost == {
        "requestedQueryCost": 12,
        "actualQueryCost": 5,
        "throttleStatus": {
            "maximumAvailable": 2000.0,
            "currentlyAvailable": 1995,
            "restoreRate": 0.0,
        },
    }


def test_throttled_when_the_bucket_is_short_then_served_after_it_refills(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    fake.set_bucket(shop, maximum_available=100, restore_rate=100, currently_available=0)
    body = post(fake, token, TEN_ORDERS).json()
    assert "data" not in body
    assert body["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ]
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert fake.throttled_count(shop) == 1

    status = body["extensions"]["cost"]["throttleStatus"]
    need = body["extensions"]["cost"]["requestedQueryCost"] - status["currentlyAvailable"]
    time.sleep(max(need, 0) / status["restoreRate"] + 0.05)  # platforms.md §1.6 wait_seconds
    assert "errors" not in post(fake, token, TEN_ORDERS).json()


def test_a_query_above_1000_points_is_max_cost_exceeded_and_not_charged(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    body = post(
        fake, token, "{ orders(first: 250) { nodes { lineItems(first: 10) { nodes { id } } } } }"
    ).json()
    assert body["errors"][0]["extensions"] == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 3252,
        "maxCost": 1000,
    }
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000


# --------------------------------------------------------------------------------------------
# refundCreate
# --------------------------------------------------------------------------------------------

REFUND = """
mutation Refund($input: RefundInput!, $key: String!) {
  refundCreate(input: $input) @idempotent(key: $key) {
    refund {
      id
      totalRefundedSet { presentmentMoney { amount } }
      transactions(first: 5) { nodes { kind status gateway parentTransaction { id } } }
      refundLineItems(first: 5) { nodes { quantity restockType location { id } } }
    }
    order { id }
    userErrors { field message }
  }
}"""


def refund_input(order: str, line: str, sale: str, amount: str = "21.60", **extra: Any) -> JSON:
    return {
        "orderId": order,
        "note": "RMA-1001",
        "refundLineItems": [{"lineItemId": line, "quantity": 1, "restockType": "NO_RESTOCK"}],
        "transactions": [
            {
                "orderId": order,
                "parentId": sale,
                "amount": amount,
                "gateway": "shopify_payments",
                "kind": "REFUND",
            }
        ],
        **extra,
    }


def test_refund_create_needs_the_idempotent_directive_from_2026_04(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order, line, sale = paid_order(fake, shop)
    bare = REFUND.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    variables = {"input": refund_input(order, line, sale)}

    found = errors(fake, token, bare, variables)
    assert found[0]["message"] == "The @idempotent directive is required for this mutation."
    assert found[0]["extensions"]["code"] == "BAD_REQUEST"
    assert fake.refunds(shop, order) == []
    older = run(fake, token, bare, variables, version="2026-01")
    assert older["refundCreate"]["userErrors"] == []


def test_refund_create_replays_the_same_key_and_rejects_it_with_other_input(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order, line, sale = paid_order(fake, shop)
    variables = {"input": refund_input(order, line, sale), "key": "rma-1001-refund-1"}

    first = run(fake, token, REFUND, variables)["refundCreate"]
    again = run(fake, token, REFUND, variables)["refundCreate"]

    assert first["userErrors"] == [] and again == first
    assert first["refund"]["totalRefundedSet"] == {"presentmentMoney": {"amount": "21.6"}}
    assert first["refund"]["transactions"]["nodes"] == [
        {
            "kind": "REFUND",
            "status": "SUCCESS",
            "gateway": "shopify_payments",
            "parentTransaction": {"id": sale},
        }
    ]
    assert len(fake.refunds(shop, order)) == 1
    assert len(fake.webhooks(shop, "refunds/create")) == 1

    other = {"input": refund_input(order, line, sale, amount="5.00"), "key": "rma-1001-refund-1"}
    body = post(fake, token, REFUND, other).json()
    assert body["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    assert body["data"] == {"refundCreate": None}
    assert len(fake.refunds(shop, order)) == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"amount": "48.21"}, "amount", "Amount cannot be greater than the refundable amount"),
        ({"amount": "0"}, "amount", "Amount must be greater than 0"),
        ({"gateway": "paypal"}, "gateway", "Gateway must match"),
        (
            {"parentId": "gid://shopify/OrderTransaction/1"},
            "parentId",
            "successful sale or capture",
        ),
    ],
)
def test_refund_create_validates_money_as_user_errors(
    fake: FakeShopify, shop: FakeShop, token: str, change: JSON, field: str, message: str
) -> None:
    order, line, sale = paid_order(fake, shop)
    spec = refund_input(order, line, sale)
    spec["transactions"][0].update(change)

    result = run(fake, token, REFUND, {"input": spec, "key": "k"})["refundCreate"]

    assert result["refund"] is None
    assert result["userErrors"][0]["field"] == ["transactions", "0", field]
    assert message in result["userErrors"][0]["message"]
    assert fake.refunds(shop, order) == []


def test_refund_create_refuses_more_items_than_refundable_even_across_refunds(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order, line, sale = paid_order(fake, shop)
    fake.refund_in_admin(shop, order, lines=[(line, 1)])
    spec = refund_input(order, line, sale, amount="1.00")
    spec["refundLineItems"][0]["quantity"] = 2

    result = run(fake, token, REFUND, {"input": spec, "key": "k2"})["refundCreate"]

    assert result["userErrors"][0]["field"] == ["refundLineItems", "0", "quantity"]
    assert len(fake.refunds(shop, order)) == 1


def test_a_returned_restock_adds_stock_and_the_refund_sends_a_signed_rest_webhook(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order, line, sale = paid_order(fake, shop, created_at=fake.now() - timedelta(days=1))
    item = fake.line_items(shop, order)[0]["inventory_item_id"]
    spec = refund_input(order, line, sale)
    spec["refundLineItems"][0] |= {"restockType": "RETURN", "locationId": shop.primary_location_gid}
    before = fake.order(shop, order)["updated_at"]

    result = run(fake, token, REFUND, {"input": spec, "key": "k3"})["refundCreate"]

    assert result["refund"]["refundLineItems"]["nodes"] == [
        {"quantity": 1, "restockType": "RETURN", "location": {"id": shop.primary_location_gid}}
    ]
    assert fake.inventory_level(shop, item, shop.primary_location_gid) == 11
    assert fake.line_items(shop, order)[0]["refundable_quantity"] == 1
    assert fake.order(shop, order)["updated_at"] > before
    assert fake.order(shop, order)["financial_status"] == "partially_refunded"
    (webhook,) = fake.webhooks(shop, "refunds/create")
    assert webhook_ok(webhook.body, webhook.headers["X-Shopify-Hmac-Sha256"], [SECRET])
    body = webhook.json()
    assert body["admin_graphql_api_id"] == result["refund"]["id"]
    assert body["restock"] is True and body["note"] == "RMA-1001"
    assert body["refund_line_items"][0]["restock_type"] == "return"
    assert body["transactions"][0] | {"id": 0} == body["transactions"][0] | {
        "id": 0,
        "kind": "refund",
        "status": "success",
        "amount": "21.60",
        "gateway": "shopify_payments",
        "parent_id": int(sale.rsplit("/", 1)[1]),
    }


def test_concurrent_refunds_with_one_key_execute_once(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order, line, sale = paid_order(fake, shop)
    variables = {"input": refund_input(order, line, sale), "key": "same-key"}
    barrier = threading.Barrier(8)
    results: list[str] = []

    def send() -> None:
        barrier.wait()
        results.append(run(fake, token, REFUND, variables)["refundCreate"]["refund"]["id"])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(results) == 8 and len(set(results)) == 1
    assert len(fake.refunds(shop, order)) == 1


# --------------------------------------------------------------------------------------------
# inventoryAdjustQuantities
# --------------------------------------------------------------------------------------------

ADJUST = """
mutation Adjust($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}"""


def test_inventory_adjustments_need_change_from_quantity_and_catch_stale_values(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order, _, _ = paid_order(fake, shop)
    item = fake.line_items(shop, order)[0]["inventory_item_id"]
    where = shop.primary_location_gid

    def adjust(key: str, **change: Any) -> JSON:
        change = {"delta": 2, "inventoryItemId": item, "locationId": where, **change}
        spec = {
            "reason": "restock",
            "name": "available",
            "changes": [change],
            "referenceDocumentUri": "gid://rma-service/Rma/1",
        }
        return dict(
            run(fake, token, ADJUST, {"input": spec, "key": key})["inventoryAdjustQuantities"]
        )

    assert adjust("a")["userErrors"][0]["code"] == "INVALID_INPUT"  # no changeFromQuantity key
    assert (
        adjust("b", changeFromQuantity=7)["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    )
    done = adjust("c", changeFromQuantity=None)
    assert done["userErrors"] == []
    assert done["inventoryAdjustmentGroup"]["changes"] == [
        {"name": "available", "delta": 2, "quantityAfterChange": 12}
    ]
    assert adjust("c", changeFromQuantity=None) == done  # replayed, not applied twice
    assert adjust("d", changeFromQuantity=12)["userErrors"] == []
    level = run(
        fake,
        token,
        "query($i: ID!, $l: ID!) { inventoryItem(id: $i) { inventoryLevel(locationId: $l) {"
        ' quantities(names: ["available"]) { name quantity } } } }',
        {"i": item, "l": where},
    )
    assert level["inventoryItem"]["inventoryLevel"]["quantities"] == [
        {"name": "available", "quantity": 14}
    ]
    assert len(fake.inventory_adjustments(shop)) == 2


# --------------------------------------------------------------------------------------------
# Webhook subscriptions and webhooks
# --------------------------------------------------------------------------------------------

SUBSCRIBE = """
mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}"""


def test_webhook_subscriptions_decide_where_webhooks_go(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    uri = "https://rma.example.com/webhooks/shopify"
    made = run(fake, token, SUBSCRIBE, {"topic": "ORDERS_CREATE", "uri": uri})
    assert made["webhookSubscriptionCreate"]["webhookSubscription"]["topic"] == "ORDERS_CREATE"
    duplicate = run(fake, token, SUBSCRIBE, {"topic": "ORDERS_CREATE", "uri": uri})
    assert duplicate["webhookSubscriptionCreate"]["userErrors"][0]["message"] == (
        "Address for this topic has already been taken"
    )
    plain = run(
        fake, token, SUBSCRIBE, {"topic": "REFUNDS_CREATE", "uri": "http://rma.example.com/"}
    )
    assert (
        "http:// is not supported" in plain["webhookSubscriptionCreate"]["userErrors"][0]["message"]
    )
    compliance = post(fake, token, SUBSCRIBE, {"topic": "CUSTOMERS_REDACT", "uri": uri}).json()
    assert compliance["data"] == {"webhookSubscriptionCreate": None}
    listed = run(fake, token, "{ webhookSubscriptions(first: 10) { nodes { topic uri } } }")
    assert listed["webhookSubscriptions"]["nodes"] == [{"topic": "ORDERS_CREATE", "uri": uri}]

    fake.create_order(shop)
    fake.refund_in_admin(shop, fake.order_gids(shop)[0])
    assert fake.webhooks(shop, "orders/create")[0].uris == (uri,)
    assert fake.webhooks(shop, "refunds/create")[0].uris == ()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """An endpoint that checks the Shopify HMAC like the service should (401 when wrong)."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            ok = webhook_ok(body, self.headers.get("X-Shopify-Hmac-Sha256"), [SECRET])
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhooks_are_signed_rest_bodies_and_redeliveries_share_the_event_id(
    fake: FakeShopify, shop: FakeShop, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    order = fake.create_order(shop, email="ann@example.com", lines=ORDER_LINES)
    (webhook,) = fake.webhooks(shop, "orders/create")
    body = webhook.json()

    assert body["admin_graphql_api_id"] == order and body["id"] == int(order.rsplit("/", 1)[1])
    assert body["total_price"] == "48.20" and body["currency"] == "USD"
    assert {"id", "admin_graphql_api_id", "sku", "quantity", "current_quantity", "price"} <= set(
        body["line_items"][0]
    )
    assert "transactions" not in body
    assert webhook.headers["X-Shopify-Topic"] == "orders/create"
    assert webhook.headers["X-Shopify-Shop-Domain"] == shop.domain
    assert webhook.headers["X-Shopify-API-Version"] == VERSION
    assert webhook.headers["X-Shopify-Hmac-Sha256"] == sign_webhook(webhook.body, SECRET)

    assert fake.deliver(webhook, url) == 200
    assert fake.redeliver(webhook, url) == 200
    assert fake.deliver(webhook, url, secret="someone-else") == 401
    first, second, _ = (headers for headers, _ in received)
    assert first["X-Shopify-Event-Id"] == second["X-Shopify-Event-Id"] == webhook.event_id
    assert first["X-Shopify-Webhook-Id"] != second["X-Shopify-Webhook-Id"]
    assert all(raw == webhook.body for _, raw in received)


def test_compliance_webhooks_carry_the_documented_payloads(
    fake: FakeShopify, shop: FakeShop
) -> None:
    redact: FakeWebhook = fake.compliance_webhook(
        shop,
        "customers/redact",
        {"customer": {"id": 7, "email": "a@b.c", "phone": None}, "orders_to_redact": [1, 2]},
    )
    assert redact.json() == {
        "shop_id": shop.id,
        "shop_domain": shop.domain,
        "customer": {"id": 7, "email": "a@b.c", "phone": None},
        "orders_to_redact": [1, 2],
    }
    assert set(fake.compliance_webhook(shop, "customers/data_request").json()) == {
        "shop_id",
        "shop_domain",
        "orders_requested",
        "customer",
        "data_request",
    }
    assert fake.compliance_webhook(shop, "shop/redact").json() == {
        "shop_id": shop.id,
        "shop_domain": shop.domain,
    }
    assert webhook_ok(redact.body, redact.headers["X-Shopify-Hmac-Sha256"], [SECRET])


# --------------------------------------------------------------------------------------------
# Bulk operations
# --------------------------------------------------------------------------------------------

BULK_RUN = """
mutation($q: String!) {
  bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { field message code } }
}"""
BULK_QUERY = """
{ orders(query: "created_at:>='2000-01-01'") { edges { node {
    id name
    transactions { kind }
    lineItems { edges { node { id sku quantity } } }
} } } }"""
CURRENT = (
    "{ currentBulkOperation(type: QUERY) { id status objectCount rootObjectCount fileSize url } }"
)


def test_a_bulk_query_writes_jsonl_with_parent_ids_and_streams_it(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    fake.hold_bulk_operations = True
    lines: list[JSON] = [
        {"sku": "A", "price": "5.00"},
        {"sku": "B", "price": "7.00", "quantity": 3},
    ]
    orders = [fake.create_order(shop, lines=lines) for _ in range(3)]

    started = run(fake, token, BULK_RUN, {"q": BULK_QUERY})["bulkOperationRunQuery"]
    assert started["bulkOperation"]["status"] == "CREATED" and started["userErrors"] == []
    second = run(fake, token, BULK_RUN, {"q": BULK_QUERY})["bulkOperationRunQuery"]
    assert second["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    assert run(fake, token, CURRENT)["currentBulkOperation"]["status"] == "RUNNING"

    assert fake.finish_bulk(shop)["status"] == "COMPLETED"
    current = run(fake, token, CURRENT)["currentBulkOperation"]
    assert current["id"] == started["bulkOperation"]["id"]
    assert (current["status"], current["objectCount"], current["rootObjectCount"]) == (
        "COMPLETED",
        "9",
        "3",
    )
    with httpx.stream("GET", current["url"], timeout=5) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        rows = [json.loads(line) for line in response.iter_lines() if line]
    assert int(current["fileSize"]) > 0

    assert rows[0] == {"id": orders[0], "name": "#1001", "transactions": [{"kind": "SALE"}]}
    assert [r["sku"] for r in rows[1:3]] == ["A", "B"]
    assert {r["__parentId"] for r in rows[1:3]} == {orders[0]}
    assert [r["id"] for r in rows if "__parentId" not in r] == orders
    node = run(
        fake,
        token,
        "query($id: ID!) { node(id: $id) { ... on BulkOperation { status } } }",
        {"id": current["id"]},
    )
    assert node == {"node": {"status": "COMPLETED"}}
    assert fake.webhooks(shop, "bulk_operations/finish")[0].json()["status"] == "completed"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ orders { edges { node { returns { edges { node { returnLineItems { edges {"
            " node { id } } } } } } } } } }",
            "nesting depth greater than 2",
        ),
        (
            "{ orders { edges { node { a: lineItems { edges { node { id } } }"
            " b: lineItems { edges { node { id } } } c: lineItems { edges { node { id } } }"
            " d: lineItems { edges { node { id } } } e: lineItems { edges { node { id } } }"
            " } } } }",
            "more than 5 connections",
        ),
        ("{ shop { name } }", "at least one connection"),
        ("{ orders { edges { node { nope } } } }", "doesn't exist on type 'Order'"),
    ],
)
def test_bulk_queries_follow_shopify_limits(
    fake: FakeShopify, token: str, query: str, message: str
) -> None:
    result = run(fake, token, BULK_RUN, {"q": query})["bulkOperationRunQuery"]
    assert result["bulkOperation"] is None
    assert message in result["userErrors"][0]["message"]


# --------------------------------------------------------------------------------------------
# Store credit and returns
# --------------------------------------------------------------------------------------------

CREDIT = """
mutation Credit($id: ID!, $in: StoreCreditAccountCreditInput!) {
  storeCreditAccountCredit(id: $id, creditInput: $in) {
    storeCreditAccountTransaction {
      id amount { amount currencyCode } balanceAfterTransaction { amount currencyCode }
    }
    userErrors { field message code }
  }
}"""


def test_store_credit_has_no_idempotency_two_calls_credit_twice(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    customer = fake.add_customer(shop, email="ann@example.com", first_name="Ann")
    variables = {
        "id": customer,
        "in": {
            "creditAmount": {"amount": "25.00", "currencyCode": "USD"},
            "expiresAt": None,
            "notify": True,
        },
    }

    first = run(fake, token, CREDIT, variables)["storeCreditAccountCredit"]
    second = run(fake, token, CREDIT, variables)["storeCreditAccountCredit"]
    fake.spend_store_credit(shop, customer, "10.00", "USD")

    assert first["storeCreditAccountTransaction"]["balanceAfterTransaction"]["amount"] == "25.0"
    assert second["storeCreditAccountTransaction"]["balanceAfterTransaction"] == {
        "amount": "50.0",
        "currencyCode": "USD",
    }
    assert [t["amount"] for t in fake.store_credit_transactions(shop, customer)] == [
        "25.0",
        "25.0",
        "-10.0",
    ]
    account = run(
        fake,
        token,
        """query($id: ID!) { customer(id: $id) { storeCreditAccounts(first: 5) {
        nodes { balance { amount } transactions(first: 10) { nodes { __typename amount { amount }
        ... on StoreCreditAccountCreditTransaction { id } } } } } } }""",
        {"id": customer},
    )
    (found,) = account["customer"]["storeCreditAccounts"]["nodes"]
    assert found["balance"] == {"amount": "40.0"}
    assert [t["__typename"] for t in found["transactions"]["nodes"]] == [
        "StoreCreditAccountCreditTransaction",
        "StoreCreditAccountCreditTransaction",
        "StoreCreditAccountDebitTransaction",
    ]
    zero = {**variables, "in": {"creditAmount": {"amount": "0", "currencyCode": "USD"}}}
    refused = run(fake, token, CREDIT, zero)["storeCreditAccountCredit"]
    assert refused["userErrors"][0]["code"] == "NEGATIVE_OR_ZERO_AMOUNT"


RETURNABLE = """
query($id: ID!) { returnableFulfillments(orderId: $id, first: 5) { nodes {
  returnableFulfillmentLineItems(first: 10) { nodes { quantity fulfillmentLineItem { id } } }
} } }"""
RETURN_CREATE = """
mutation($input: ReturnInput!) {
  returnCreate(returnInput: $input) { return { id status name } userErrors { field message code } }
}"""
RETURN_CLOSE = """
mutation($id: ID!) { returnClose(id: $id) { return { id status } userErrors { message code } } }"""
RETURN_DECLINE = """
mutation($id: ID!) {
  returnDeclineRequest(input: {id: $id, declineReason: FINAL_SALE}) {
    return { status } userErrors { message code }
  }
}"""


def test_returns_open_close_and_decline_with_their_webhooks(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order = fake.create_order(shop, lines=ORDER_LINES, delivered_at=fake.now())
    returnable = run(fake, token, RETURNABLE, {"id": order})["returnableFulfillments"]["nodes"]
    (item,) = returnable[0]["returnableFulfillmentLineItems"]["nodes"]
    assert item["quantity"] == 2

    def create(quantity: int) -> JSON:
        line = {
            "fulfillmentLineItemId": item["fulfillmentLineItem"]["id"],
            "quantity": quantity,
            "returnReason": "DEFECTIVE",
        }
        spec = {"orderId": order, "returnLineItems": [line]}
        return dict(run(fake, token, RETURN_CREATE, {"input": spec})["returnCreate"])

    assert create(3)["userErrors"][0]["field"][-1] == "quantity"
    opened = create(1)["return"]
    assert (opened["status"], opened["name"]) == ("OPEN", "#1001-R1")
    closed = run(fake, token, RETURN_CLOSE, {"id": opened["id"]})["returnClose"]
    assert closed["return"] == {"id": opened["id"], "status": "CLOSED"}
    twice = run(fake, token, RETURN_CLOSE, {"id": opened["id"]})["returnClose"]
    assert twice["userErrors"][0]["code"] == "INVALID_STATE"

    requested = fake.request_return(shop, order)
    declined = run(fake, token, RETURN_DECLINE, {"id": requested})["returnDeclineRequest"]
    assert declined["return"] == {"status": "DECLINED"}
    another = create(1)["return"]
    fake.cancel_return_in_admin(shop, another["id"])
    shown = run(
        fake,
        token,
        "query($id: ID!) { return(id: $id) { status order { id } } }",
        {"id": another["id"]},
    )
    assert shown["return"] == {"status": "CANCELED", "order": {"id": order}}
    assert [w.topic for w in fake.webhooks(shop) if w.topic.startswith("returns/")] == [
        "returns/approve",
        "returns/close",
        "returns/request",
        "returns/decline",
        "returns/approve",
        "returns/cancel",
    ]
    assert [r["status"] for r in fake.returns(shop, order)] == ["CLOSED", "DECLINED", "CANCELED"]


# --------------------------------------------------------------------------------------------
# Draft orders
# --------------------------------------------------------------------------------------------

DRAFT_CREATE = """
mutation($input: DraftOrderInput!) {
  draftOrderCreate(input: $input) { draftOrder { ...Draft } userErrors { field message } }
}
fragment Draft on DraftOrder {
  id name status email note2 tags createdAt invoiceUrl currencyCode presentmentCurrencyCode
  subtotalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount } }
  totalDiscountsSet { shopMoney { amount } }
  totalPriceSet { shopMoney { amount } }
  appliedDiscount { value valueType title amountSet { shopMoney { amount } } }
  customAttributes { key value }
  lineItems(first: 5) {
    nodes { title quantity sku variant { id } originalUnitPriceSet { shopMoney { amount } } }
    edges { node { title } }
  }
  order { id name }
}"""
DRAFT_COMPLETE = """mutation($id: ID!, $pending: Boolean) {
  draftOrderComplete(id: $id, paymentPending: $pending) {
    draftOrder { id status order { id name } }
    userErrors { field message }
  }
}"""


def exchange_draft(variant: str, **extra: Any) -> JSON:
    """Two mugs from the catalogue (whatever price is sent) and a custom gift wrap line."""
    return {
        "email": "ann@example.com",
        "note": "Exchange for RMA-7",
        "tags": ["exchange", "rma"],
        "customAttributes": [{"key": "rma", "value": "RMA-7"}],
        "lineItems": [
            {"variantId": variant, "quantity": 2, "title": "ignored", "originalUnitPrice": "99"},
            {"title": "Gift wrap", "originalUnitPrice": "5.50", "quantity": 1, "sku": "WRAP"},
        ],
        **extra,
    }


def create_draft(fake: FakeShopify, token: str, spec: JSON) -> JSON:
    return dict(run(fake, token, DRAFT_CREATE, {"input": spec})["draftOrderCreate"])


def test_draft_order_create_prices_variant_and_custom_lines_and_applies_the_discount(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    variant = fake.add_variant(shop, "MUG", price="20.00", title="Mug")
    assert fake.variant_gid(shop, "MUG") == variant
    discount = {"value": 10, "valueType": "PERCENTAGE", "title": "Exchange"}
    created = create_draft(fake, token, exchange_draft(variant, appliedDiscount=discount))

    assert created["userErrors"] == []
    draft = created["draftOrder"]
    assert draft["id"].startswith("gid://shopify/DraftOrder/")
    assert (draft["name"], draft["status"], draft["order"]) == ("#D1", "OPEN", None)
    assert (draft["email"], draft["note2"], draft["tags"]) == (
        "ann@example.com",
        "Exchange for RMA-7",
        ["exchange", "rma"],
    )
    assert draft["invoiceUrl"].startswith("https://acme.myshopify.com/")
    assert draft["currencyCode"] == draft["presentmentCurrencyCode"] == "USD"
    assert draft["subtotalPriceSet"] == {
        "shopMoney": {"amount": "45.5", "currencyCode": "USD"},
        "presentmentMoney": {"amount": "45.5"},
    }
    assert draft["totalDiscountsSet"] == {"shopMoney": {"amount": "4.55"}}
    assert draft["totalPriceSet"] == {"shopMoney": {"amount": "40.95"}}
    assert draft["appliedDiscount"] == {
        "value": 10.0,
        "valueType": "PERCENTAGE",
        "title": "Exchange",
        "amountSet": {"shopMoney": {"amount": "4.55"}},
    }
    assert draft["customAttributes"] == [{"key": "rma", "value": "RMA-7"}]
    assert draft["lineItems"]["nodes"] == [
        {
            "title": "Mug",
            "quantity": 2,
            "sku": "MUG",
            "variant": {"id": variant},
            "originalUnitPriceSet": {"shopMoney": {"amount": "20.0"}},
        },
        {
            "title": "Gift wrap",
            "quantity": 1,
            "sku": "WRAP",
            "variant": None,
            "originalUnitPriceSet": {"shopMoney": {"amount": "5.5"}},
        },
    ]
    assert [e["node"]["title"] for e in draft["lineItems"]["edges"]] == ["Mug", "Gift wrap"]

    fixed = {"value": 5.5, "valueType": "FIXED_AMOUNT"}
    second = create_draft(fake, token, exchange_draft(variant, appliedDiscount=fixed))
    assert second["draftOrder"]["name"] == "#D2"
    assert second["draftOrder"]["totalPriceSet"] == {"shopMoney": {"amount": "40.0"}}
    shown = run(
        fake, token, "query($id: ID!) { draftOrder(id: $id) { id name } }", {"id": draft["id"]}
    )
    assert shown["draftOrder"] == {"id": draft["id"], "name": "#D1"}
    listed = fake.draft_orders(shop)
    assert [(d["name"], d["total"], d["status"]) for d in listed] == [
        ("#D1", "40.95", "OPEN"),
        ("#D2", "40.0", "OPEN"),
    ]
    assert listed[0]["line_items"][1] == {
        "id": listed[0]["line_items"][1]["id"],
        "title": "Gift wrap",
        "quantity": 1,
        "sku": "WRAP",
        "price": "5.5",
        "variant_id": None,
        "custom": True,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lineItems": []}, ["lineItems"]),
        (
            {"lineItems": [{"title": "Wrap", "originalUnitPrice": "5", "quantity": 0}]},
            ["lineItems", "0", "quantity"],
        ),
        (
            {"lineItems": [{"variantId": "gid://shopify/ProductVariant/1", "quantity": 1}]},
            ["lineItems", "0", "variantId"],
        ),
        (
            {"lineItems": [{"title": "Wrap", "quantity": 1}]},
            ["lineItems", "0", "originalUnitPrice"],
        ),
        (
            {"appliedDiscount": {"value": 45.51, "valueType": "FIXED_AMOUNT"}},
            ["appliedDiscount", "value"],
        ),
    ],
)
def test_draft_order_create_user_errors_create_nothing(
    fake: FakeShopify, shop: FakeShop, token: str, change: JSON, field: list[str]
) -> None:
    variant = fake.add_variant(shop, "MUG", price="20.00")
    created = create_draft(fake, token, exchange_draft(variant, **change))
    assert created["draftOrder"] is None
    assert [e["field"] for e in created["userErrors"]] == [field]
    assert fake.draft_orders(shop) == []
    later = create_draft(fake, token, exchange_draft(variant))
    assert later["draftOrder"]["name"] == "#D1"


def test_completing_a_draft_makes_a_paid_order_with_its_webhook_and_only_once(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    variant = fake.add_variant(shop, "MUG", price="20.00", title="Mug")
    discount = {"value": 5, "valueType": "FIXED_AMOUNT"}
    draft = create_draft(fake, token, exchange_draft(variant, appliedDiscount=discount))
    draft_id = draft["draftOrder"]["id"]

    done = run(fake, token, DRAFT_COMPLETE, {"id": draft_id})["draftOrderComplete"]
    assert done["userErrors"] == []
    order = done["draftOrder"]["order"]
    assert done["draftOrder"]["status"] == "COMPLETED" and order["name"] == "#1001"

    query = """query($id: ID!, $d: ID!) {
      order(id: $id) {
        name email tags note displayFinancialStatus customAttributes { key value }
        totalPriceSet { shopMoney { amount } }
        lineItems(first: 5) { nodes { sku quantity variant { id } } }
      }
      orders(first: 5) { nodes { id } }
      draftOrder(id: $d) { status order { id } }
    }"""
    shown = run(fake, token, query, {"id": order["id"], "d": draft_id})
    assert shown["order"] == {
        "name": "#1001",
        "email": "ann@example.com",
        "tags": ["exchange", "rma"],
        "note": "Exchange for RMA-7",
        "displayFinancialStatus": "PAID",
        "customAttributes": [{"key": "rma", "value": "RMA-7"}],
        "totalPriceSet": {"shopMoney": {"amount": "40.5"}},
        "lineItems": {
            "nodes": [
                {"sku": "MUG", "quantity": 2, "variant": {"id": variant}},
                {"sku": "WRAP", "quantity": 1, "variant": None},
            ]
        },
    }
    assert shown["orders"]["nodes"] == [{"id": order["id"]}]
    assert shown["draftOrder"] == {"status": "COMPLETED", "order": {"id": order["id"]}}

    (created,) = fake.webhooks(shop, "orders/create")
    body = created.json()
    assert webhook_ok(created.body, created.headers["X-Shopify-Hmac-Sha256"], [SECRET])
    assert body["admin_graphql_api_id"] == order["id"]
    assert (body["financial_status"], body["total_price"]) == ("paid", "40.50")
    assert body["note_attributes"] == [{"name": "rma", "value": "RMA-7"}]
    assert [t["gateway"] for t in fake.transactions(shop, order["id"])] == ["manual"]

    again = run(fake, token, DRAFT_COMPLETE, {"id": draft_id})["draftOrderComplete"]
    assert again["draftOrder"] is None and again["userErrors"][0]["field"] == ["id"]
    assert len(fake.order_gids(shop)) == 1
    assert fake.draft_orders(shop)[0]["order_id"] == order["id"]

    pending_draft = create_draft(fake, token, exchange_draft(variant))["draftOrder"]["id"]
    pending = run(fake, token, DRAFT_COMPLETE, {"id": pending_draft, "pending": True})
    pending_order = pending["draftOrderComplete"]["draftOrder"]["order"]
    assert fake.order(shop, pending_order["id"])["financial_status"] == "pending"
    assert fake.webhooks(shop, "orders/create")[-1].json()["financial_status"] == "pending"
    assert fake.transactions(shop, pending_order["id"]) == []


DRAFT_PAGE = """query($after: String, $q: String) {
  draftOrders(first: 1, after: $after, query: $q) {
    pageInfo { hasNextPage endCursor }
    nodes { name lineItems(first: 3) { nodes { title } } }
  }
}"""


def test_draft_orders_search_by_tag_and_status_and_page_with_cursors(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    variant = fake.add_variant(shop, "MUG", price="20.00")
    for tags in (["exchange"], ["other"], ["exchange", "vip"]):
        create_draft(fake, token, exchange_draft(variant, tags=tags))
    completed = fake.draft_orders(shop)[2]["id"]
    run(fake, token, DRAFT_COMPLETE, {"id": completed})

    def names(query: str) -> list[str]:
        found, after = [], None
        while True:
            page = run(fake, token, DRAFT_PAGE, {"after": after, "q": query})["draftOrders"]
            found += [d["name"] for d in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]

    assert names("tag:exchange") == ["#D1", "#D3"]
    assert names("status:open") == ["#D1", "#D2"]
    assert names("tag:exchange AND status:completed") == ["#D3"]
    assert names("-tag:exchange") == ["#D2"]

    cost = post(fake, token, DRAFT_PAGE, {"q": "tag:other"}).json()["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (2 + 1 * (1 + 2 + 3), 7)
    newest = run(fake, token, "{ draftOrders(first: 1, reverse: true) { nodes { name } } }")
    assert newest["draftOrders"]["nodes"] == [{"name": "#D3"}]


def test_draft_orders_need_the_draft_order_scopes(fake: FakeShopify, shop: FakeShop) -> None:
    variant = fake.add_variant(shop, "MUG", price="20.00")
    default = fake.issue_token(shop)
    assert {"read_draft_orders", "write_draft_orders"} <= set(fake.tokens(shop)[0]["scopes"])
    assert create_draft(fake, default, exchange_draft(variant))["userErrors"] == []

    orders_only = fake.issue_token(shop, scopes=["read_orders", "write_orders"])
    denied = post(fake, orders_only, DRAFT_CREATE, {"input": exchange_draft(variant)}).json()
    assert denied["data"] == {"draftOrderCreate": None}
    assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert "write_draft_orders" in denied["errors"][0]["message"]
    listing = post(fake, orders_only, "{ draftOrders(first: 1) { nodes { id } } }").json()
    assert listing["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"

    reader = fake.issue_token(shop, scopes=["read_draft_orders"])
    assert run(fake, reader, "{ draftOrders(first: 5) { nodes { name } } }") == {
        "draftOrders": {"nodes": [{"name": "#D1"}]}
    }
    draft = fake.draft_orders(shop)[0]["id"]
    refused = post(fake, reader, DRAFT_COMPLETE, {"id": draft}).json()
    assert refused["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert fake.draft_orders(shop)[0]["status"] == "OPEN"


# --------------------------------------------------------------------------------------------
# Faults and the request log
# --------------------------------------------------------------------------------------------


def test_status_faults_answer_like_shopify_and_match_by_operation(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    fake.inject("503")
    unavailable = post(fake, token, TEN_ORDERS)
    assert unavailable.status_code == 503
    assert unavailable.headers["content-type"].startswith("text/html")

    fake.inject("429")
    limited = post(fake, token, TEN_ORDERS)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1.0")

    fake.inject("throttle")
    assert post(fake, token, TEN_ORDERS).json()["errors"][0]["extensions"]["code"] == "THROTTLED"

    order, line, sale = paid_order(fake, shop)
    fake.inject("500", operation="refundCreate")
    assert post(fake, token, TEN_ORDERS).status_code == 200
    failed = post(fake, token, REFUND, {"input": refund_input(order, line, sale), "key": "f"})
    assert failed.status_code == 500
    assert fake.refunds(shop, order) == [] and fake.pending_faults() == []

    fake.inject("502", endpoint="oauth")
    assert exchange(fake, client_id=KEY, client_secret=SECRET, code="x").status_code == 502


def test_timeouts_and_drops_never_execute_but_drop_after_execute_does(
    fake: FakeShopify, shop: FakeShop, token: str
) -> None:
    order, line, sale = paid_order(fake, shop)
    variables = {"input": refund_input(order, line, sale), "key": "rma-7-refund-1"}

    fake.inject("timeout", operation="refundCreate")
    with pytest.raises(httpx.ReadTimeout):
        post(fake, token, REFUND, variables, timeout=0.3)
    fake.inject("drop", operation="refundCreate")
    with pytest.raises(httpx.RemoteProtocolError):
        post(fake, token, REFUND, variables)
    assert fake.refunds(shop, order) == []

    fake.inject("drop_after_execute", operation="refundCreate")
    with pytest.raises(httpx.RemoteProtocolError):
        post(fake, token, REFUND, variables)
    (refund,) = fake.refunds(shop, order)
    retried = run(fake, token, REFUND, variables)["refundCreate"]
    assert retried["refund"]["id"] == refund["admin_graphql_api_id"]
    assert len(fake.refunds(shop, order)) == 1

    log = [r for r in fake.requests() if r.operations == ("refundCreate",)]
    assert [(r.fault, r.executed, r.delivered) for r in log] == [
        ("timeout", False, False),
        ("drop", False, False),
        ("drop_after_execute", True, False),
        (None, True, True),
    ]
    assert log[-1].idempotency_keys == ("rma-7-refund-1",)
    assert (log[-1].shop, log[-1].api_version, log[-1].status) == (shop.domain, VERSION, 200)
