"""The connection queries and mutations: ADMIN only, one merchant's connections only."""

from __future__ import annotations

import uuid

import pytest

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY
from core.usecases.connections import connect_platform
from graphql_api.ids import to_global_id
from plugins.shopify.webhooks import ShopifyWebhookSource
from tests import factories as f
from tests.api.conftest import Api, make_shop
from tests.api.test_permissions import CONNECTION_ROOT_FIELDS, POLICY, start_session

CONNECTIONS = "{ connections { id account enabled syncStatus settings { name value } } }"
EXPORTS = "{ dataExports { id } }"
SYNC = (
    "mutation($id: ID!) { syncConnection(id: $id) {"
    " connection { id syncStatus } userErrors { code } } }"
)
SETTINGS = """mutation($id: ID!, $s: [ConnectionSettingInput!]!) {
  updateConnectionSettings(id: $id, settings: $s) {
    connection { settings { name value } } userErrors { code field message } } }"""
CONNECT = "mutation($s: String!) { connectShopify(shop: $s) { installUrl userErrors { code } } }"
CONNECT_WOO = """mutation($s: String!) {
  connectWooCommerce(storeUrl: $s) { authorizeUrl userErrors { code field } } }"""


async def shopify_connection(db: Database, merchant_id: object, shop: str) -> str:
    async with db.session() as session:
        connection = await connect_platform(
            session,
            Vault(DEVELOPMENT_ENCRYPTION_KEY),
            ShopifyWebhookSource(),
            merchant_id=merchant_id,  # type: ignore[arg-type]
            account=shop,
            credentials={"access_token": "shpat_test_token_value"},
            webhook_secret="custom-app-secret",
            now=SYSTEM_CLOCK.now(),
        )
    return to_global_id("Connection", connection.id)


def test_every_connection_root_field_is_covered_here() -> None:
    covered = {
        "connections",
        "dataExports",
        "syncConnection",
        "updateConnectionSettings",
        "connectShopify",
        "connectWooCommerce",
    }
    assert covered == CONNECTION_ROOT_FIELDS["Query"] | CONNECTION_ROOT_FIELDS["Mutation"]


async def test_admins_see_and_change_only_their_own_connections(api: Api, db: Database) -> None:
    ours, theirs = await make_shop(db, **POLICY), await make_shop(db, **POLICY)
    own = await shopify_connection(db, ours.id, "our-shop.myshopify.com")
    foreign = await shopify_connection(db, theirs.id, "their-shop.myshopify.com")

    listed = await api.gql(CONNECTIONS, token=ours.admin)
    assert [c["account"] for c in listed["connections"]] == ["our-shop.myshopify.com"]
    assert "shpat_" not in str(listed)  # credentials never leave

    changed = await api.gql(
        SETTINGS,
        {"id": own, "s": [{"name": "restock_location_id", "value": "gid://shopify/Location/7"}]},
        ours.admin,
    )
    assert changed["updateConnectionSettings"]["userErrors"] == []
    assert {"name": "restock_location_id", "value": "gid://shopify/Location/7"} in changed[
        "updateConnectionSettings"
    ]["connection"]["settings"]
    unknown = await api.gql(
        SETTINGS, {"id": own, "s": [{"name": "colour", "value": "x"}]}, ours.admin
    )
    assert unknown["updateConnectionSettings"]["userErrors"][0]["code"] == "INVALID_INPUT"
    wrong = await api.gql(
        SETTINGS,
        {"id": own, "s": [{"name": "store_credit_destination", "value": "moon"}]},
        ours.admin,
    )
    assert wrong["updateConnectionSettings"]["userErrors"][0]["code"] == "INVALID_INPUT"

    synced = await api.gql(SYNC, {"id": own}, ours.admin)
    assert synced["syncConnection"]["connection"]["syncStatus"] == "QUEUED"

    # Another merchant's connection answers exactly like one that does not exist.
    missing = to_global_id("Connection", uuid.uuid4())
    for document, variables in (
        (SYNC, {"id": foreign}),
        (SETTINGS, {"id": foreign, "s": [{"name": "restock_location_id", "value": "x"}]}),
    ):
        refused = await api.gql(document, variables, ours.admin)
        absent = await api.gql(document, {**variables, "id": missing}, ours.admin)
        name = next(iter(refused))
        assert refused[name]["userErrors"][0]["code"] == "NOT_FOUND"
        assert absent[name]["userErrors"][0]["code"] == "NOT_FOUND"
    after = await api.gql(CONNECTIONS, token=theirs.admin)
    assert after["connections"][0]["settings"] == [
        {"name": "restock_location_id", "value": ""},
        {"name": "store_credit_destination", "value": "service"},
    ]
    assert after["connections"][0]["syncStatus"] == "NEVER"


@pytest.mark.parametrize("role", ["agent", "readonly", "customer", "anonymous"])
async def test_only_admins_reach_connections(api: Api, db: Database, role: str) -> None:
    shop = await make_shop(db, **POLICY)
    own = await shopify_connection(db, shop.id, "role-shop.myshopify.com")
    if role == "customer":
        order = await f.order(db, shop.id, email="cus@example.com")
        token: str | None = await start_session(api, shop, order, "cus@example.com")
    elif role == "anonymous":
        token = None
    else:
        token = getattr(shop, role)
    expected = "UNAUTHENTICATED" if role == "anonymous" else "FORBIDDEN"
    for document, variables in (
        (CONNECTIONS, {}),
        (EXPORTS, {}),
        (SYNC, {"id": own}),
        (SETTINGS, {"id": own, "s": []}),
        (CONNECT, {"s": "role-shop.myshopify.com"}),
        (CONNECT_WOO, {"s": "https://role-shop.example.com"}),
    ):
        response = await api.post(document, variables, token)
        payload = response.json()
        assert response.status_code == 200
        assert payload["errors"][0]["extensions"]["code"] == expected, (document, payload)
        assert "role-shop" not in str(payload.get("data"))


async def test_connect_shopify_says_when_the_app_is_not_configured(api: Api, db: Database) -> None:
    shop = await make_shop(db, **POLICY)
    answer = await api.gql(CONNECT, {"s": "new-shop.myshopify.com"}, shop.admin)
    # The test app has no RMA_SHOPIFY_API_KEY/SECRET.
    assert answer["connectShopify"] == {
        "installUrl": None,
        "userErrors": [{"code": "NOT_CONFIGURED"}],
    }


async def test_connect_woocommerce_gives_a_grant_link_for_the_admins_merchant(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db, **POLICY)
    answer = await api.gql(CONNECT_WOO, {"s": "https://Store.Example.com/shop"}, shop.admin)
    url = answer["connectWooCommerce"]["authorizeUrl"]
    assert url.startswith("https://store.example.com/shop/wc-auth/v1/authorize?app_name=")
    assert "scope=read_write" in url and "callback_url=" in url
    for bad in ("ftp://store.example.com", "not a url", "x" * 300):
        refused = await api.gql(CONNECT_WOO, {"s": bad}, shop.admin)
        assert refused["connectWooCommerce"] == {
            "authorizeUrl": None,
            "userErrors": [{"code": "INVALID_INPUT", "field": ["storeUrl"]}],
        }
