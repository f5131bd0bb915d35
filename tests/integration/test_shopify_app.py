"""The Shopify app against the fake Shopify: install, sync, webhooks, uninstall, bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from sqlmodel import func, select

from core.clock import SYSTEM_CLOCK
from core.entities import (
    Connection,
    Customer,
    Merchant,
    Order,
    PendingInstall,
    Rma,
    WebhookDelivery,
)
from core.enums import WebhookState
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY
from core.usecases.connections import read_secrets
from testkit.fakes import oauth_hmac, sign_webhook
from tests import factories as f
from tests.integration.shopify_world import (  # noqa: F401 (fixtures)
    API_SECRET,
    PUBLIC_URL,
    ShopifyWorld,
    fake_shopify,
    shopify_db,
    shopify_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDERS = "{ orders(first: 100) { edges { node { orderNumber externalId currency } } } }"


async def count(world: ShopifyWorld, entity: type, **where: object) -> int:
    async with world.db.read_session() as session:
        statement = select(func.count()).select_from(entity)
        for name, value in where.items():
            statement = statement.where(getattr(entity, name) == value)
        return int((await session.exec(statement)).one())


async def test_a_shop_installs_the_app_and_its_orders_arrive(world: ShopifyWorld) -> None:
    shop = world.new_shop()
    numbers = [
        world.fake.create_order(shop, email=f"buyer{i}@example.com", lines=[{"sku": f"S{i}"}])
        for i in range(6)
    ]

    installed = await world.install(shop)

    # A new merchant, shown its id and an ADMIN key once, with an expiring token kept sealed.
    assert installed.admin_key is not None and installed.admin_key.startswith("rma_sk_")
    connection = await world.connection(installed.connection_id)
    assert connection.installed_by_app and connection.account == shop.domain
    credentials = read_secrets(Vault(DEVELOPMENT_ENCRYPTION_KEY), connection).credentials
    assert credentials["refresh_token"] and credentials["expires_at"]
    assert API_SECRET not in json.dumps(credentials)
    assert connection.sync_status == "SUCCEEDED"

    # Webhooks subscribed at the app-wide address, the first sync done, orders readable.
    topics = {s["topic"] for s in world.fake.webhook_subscriptions(shop)}
    assert {"ORDERS_CREATE", "ORDERS_UPDATED", "REFUNDS_CREATE", "APP_UNINSTALLED"} <= topics
    assert {s["uri"] for s in world.fake.webhook_subscriptions(shop)} == {
        f"{PUBLIC_URL}/webhooks/shopify/app"
    }
    data = await world.gql(ORDERS, token=installed.admin_key)
    assert sorted(edge["node"]["externalId"] for edge in data["orders"]["edges"]) == sorted(numbers)

    listed = await world.gql(
        "{ connections { id platform account enabled installedByApp syncStatus syncProgress"
        " lastSyncError settings { name value } } }",
        token=installed.admin_key,
    )
    [seen] = listed["connections"]
    assert seen["account"] == shop.domain and seen["syncStatus"] == "SUCCEEDED"
    assert {"name": "restock_location_id", "value": ""} in seen["settings"]


async def test_an_existing_merchant_connects_a_shop_through_graphql(world: ShopifyWorld) -> None:
    first = await world.install()
    assert first.admin_key is not None
    second_shop = world.new_shop()
    world.fake.create_order(second_shop, email="x@example.com")

    again = await world.install(second_shop, admin_key=first.admin_key)

    assert again.merchant_id == first.merchant_id
    assert "rma_sk_" not in again.page  # no new key for a merchant that has one
    assert await count(world, Connection, merchant_id=first.merchant_id) == 2


async def test_installing_again_keeps_the_merchant(world: ShopifyWorld) -> None:
    first = await world.install()
    merchants = await count(world, Merchant)
    again = await world.install(first.shop)
    assert again.merchant_id == first.merchant_id
    assert again.connection_id == first.connection_id
    assert await count(world, Merchant) == merchants


async def test_forged_replayed_and_foreign_callbacks_are_refused(world: ShopifyWorld) -> None:
    shop = world.new_shop()
    started = await world.client.get("/shopify/install", params={"shop": shop.domain})
    callback = world.fake.approve_install(started.headers["location"], shop)
    params = dict(parse_qsl(urlsplit(callback).query))
    merchants = await count(world, Merchant)

    def signed(changes: dict[str, str], secret: str = API_SECRET) -> str:
        forged = {k: v for k, v in {**params, **changes}.items() if k != "hmac"}
        forged["hmac"] = oauth_hmac(forged, secret)
        return "/shopify/callback?" + urlencode(forged)

    tampered = "/shopify/callback?" + urlencode({**params, "shop": "other.myshopify.com"})
    refusals = {
        "tampered": (tampered, 401),
        "other secret": (signed({}, "not-the-app-secret"), 401),
        "stale": (signed({"timestamp": str(int(SYSTEM_CLOCK.now().timestamp()) - 90000)}), 401),
        "not a shop": (signed({"shop": "evil.com"}), 400),
        "unknown state": (signed({"state": "made-up"}), 403),
        "another shop's state": (signed({"shop": world.new_shop().domain}), 403),
        "no code": (signed({"code": ""}), 400),
    }
    for name, (url, status) in refusals.items():
        response = await world.client.get(url)
        assert response.status_code == status, (name, response.text)
        assert "Traceback" not in response.text
    assert await count(world, Merchant) == merchants

    done = await world.client.get(callback.removeprefix(PUBLIC_URL))
    assert done.status_code == 200
    replayed = await world.client.get(callback.removeprefix(PUBLIC_URL))
    assert replayed.status_code == 403  # the state was used up
    assert await count(world, Merchant) == merchants + 1


async def test_install_refuses_what_is_not_a_shop(world: ShopifyWorld) -> None:
    before = await count(world, PendingInstall)
    for shop in ("evil.com", "", "127.0.0.1:8080", "a.myshopify.com.evil.com"):
        response = await world.client.get("/shopify/install", params={"shop": shop})
        assert response.status_code == 400, shop
    assert await count(world, PendingInstall) == before


async def test_webhooks_duplicated_replayed_and_reordered_end_with_the_newest_order(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    shop = installed.shop
    gid = world.fake.create_order(shop, email="ann@example.com", lines=[{"sku": "TEE"}])
    created = world.fake.webhooks(shop, topic="orders/create")[-1]
    world.fake.update_order(shop, gid, email="ann.new@example.com")
    updated = world.fake.webhooks(shop, topic="orders/updated")[-1]

    # Newest first, then the older one, each twice, and a replay under a new event id.
    for webhook in (updated, updated, created, world.fake.redelivery(created)):
        response = await world.deliver(webhook)
        assert response.status_code == 200, response.text
    replay = dict(created.headers, **{"X-Shopify-Event-Id": "forged-new-event"})
    response = await world.client.post(
        "/webhooks/shopify/app", content=created.body, headers=replay
    )
    assert response.json()["duplicate"] is True
    await world.run_jobs()

    assert await count(world, WebhookDelivery, connection_id=installed.connection_id) >= 2
    stored = await world.gql(
        "query { orders(first: 100) { edges { node { externalId customer { email } } } } }",
        token=installed.admin_key,
    )
    emails = {
        e["node"]["externalId"]: e["node"]["customer"]["email"] for e in stored["orders"]["edges"]
    }
    assert emails[gid] == "ann.new@example.com"


async def test_bad_webhooks_are_refused_and_store_nothing(world: ShopifyWorld) -> None:
    installed = await world.install()
    world.fake.create_order(installed.shop, email="b@example.com")
    webhook = world.fake.webhooks(installed.shop, topic="orders/create")[-1]
    before = await count(world, WebhookDelivery)

    forged = dict(webhook.headers, **{"X-Shopify-Hmac-Sha256": "AAAA"})
    assert (
        await world.client.post("/webhooks/shopify/app", content=webhook.body, headers=forged)
    ).status_code == 401
    unknown = world.new_shop()
    world.fake.create_order(unknown, email="c@example.com")
    stranger = world.fake.webhooks(unknown, topic="orders/create")[-1]
    assert (await world.deliver(stranger)).status_code == 404
    assert await count(world, WebhookDelivery) == before


async def test_uninstalling_disables_the_connection_at_once(world: ShopifyWorld) -> None:
    installed = await world.install()
    uninstalled = world.fake.uninstall(installed.shop)
    assert (await world.deliver(uninstalled)).status_code == 200
    await world.run_jobs()

    connection = await world.connection(installed.connection_id)
    assert connection.disabled_at is not None
    world.fake.create_order(installed.shop, email="late@example.com")
    late = world.fake.webhooks(installed.shop, topic="orders/create")[-1]
    assert (await world.deliver(late)).status_code == 404
    assert (await world.sync_now(installed))["userErrors"] == [{"code": "CONFLICT"}]


async def test_a_sync_survives_throttling_and_resumes_from_its_cursor(
    world: ShopifyWorld,
) -> None:
    installed = await world.install()
    shop = installed.shop
    for i in range(9):
        world.fake.create_order(shop, email=f"t{i}@example.com")
    # A small bucket that refills fast: pages wait for it, or are throttled and sent again.
    world.fake.set_bucket(shop, maximum_available=1000, restore_rate=5000, currently_available=0)
    world.fake.inject("500", shop=shop, operation="orders", times=1)
    await world.sync_now(installed)

    assert await count(world, Order, merchant_id=installed.merchant_id) == 9
    connection = await world.connection(installed.connection_id)
    assert connection.sync_status == "SUCCEEDED", connection.last_sync_error
    assert json.loads(connection.sync_cursor or "{}").get("since")


async def test_orders_in_an_unknown_currency_are_skipped_and_named(world: ShopifyWorld) -> None:
    shop = world.new_shop(currency="QQQ")
    world.fake.create_order(shop, email="odd@example.com", name="#ODD-1")
    installed = await world.install(shop)
    connection = await world.connection(installed.connection_id)
    assert await count(world, Order, merchant_id=installed.merchant_id) == 0
    assert connection.sync_status == "FAILED"
    assert "#ODD-1" in (connection.last_sync_error or "")
    assert "QQQ" in (connection.last_sync_error or "")


async def test_expiring_tokens_are_renewed_before_they_lapse(world: ShopifyWorld) -> None:
    installed = await world.install()
    vault = Vault(DEVELOPMENT_ENCRYPTION_KEY)
    before = read_secrets(vault, await world.connection(installed.connection_id)).credentials
    world.fake.advance_time(timedelta(minutes=55).total_seconds())
    try:
        world.fake.create_order(installed.shop, email="later@example.com")
        # The service's clock says the token lapses within minutes: it renews first.
        async with world.db.session() as session, session.begin():
            connection = await session.get(Connection, installed.connection_id)
            assert connection is not None
            credentials = read_secrets(vault, connection).credentials
            credentials["expires_at"] = (SYSTEM_CLOCK.now() + timedelta(minutes=2)).isoformat()
            connection.credentials_encrypted = vault.seal(
                connection.merchant_id, connection.id, credentials
            )
        await world.run_jobs()
        await world.sync_now(installed)
    finally:
        world.fake.advance_time(-timedelta(minutes=55).total_seconds())
    after = read_secrets(vault, await world.connection(installed.connection_id)).credentials
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert await count(world, Order, merchant_id=installed.merchant_id) == 1


DATA_EXPORTS = "{ dataExports { requestReference customerEmail document } }"


async def test_privacy_requests_export_redact_and_erase(world: ShopifyWorld) -> None:
    installed = await world.install()
    admin = installed.admin_key
    order = await world.synced_order(installed, email="grace@example.com", name="#PRIV-1")
    other = await world.synced_order(installed, email="alan@example.com")
    rma = await f.inspected_rma(world.db, installed.merchant_id, order)
    async with world.db.session() as session, session.begin():
        row = await session.get(Rma, rma.id)
        assert row is not None
        row.customer_note = "please call me on 555-0100"

    asked = world.fake.compliance_webhook(
        installed.shop,
        "customers/data_request",
        {
            "customer": {"id": None, "email": "grace@example.com", "phone": None},
            "data_request": {"id": 9001},
        },
    )
    assert (await world.deliver(asked)).status_code == 200
    await world.run_jobs()
    [export] = (await world.gql(DATA_EXPORTS, token=admin))["dataExports"]
    assert export["requestReference"] == "9001"
    document = json.loads(export["document"])
    [held] = document["customers"]
    assert held["customer"]["email"] == "grace@example.com"
    assert [o["orderNumber"] for o in held["orders"]] == ["#PRIV-1"]
    assert held["returns"][0]["customerNote"] == "please call me on 555-0100"
    assert "alan@example.com" not in export["document"]

    forget = world.fake.compliance_webhook(
        installed.shop,
        "customers/redact",
        {"customer": {"id": None, "email": "grace@example.com", "phone": None}},
    )
    assert (await world.deliver(forget)).status_code == 200
    await world.run_jobs()
    async with world.db.read_session() as session:
        customer = await session.get(Customer, order.customer_id)
        kept_rma = await session.get(Rma, rma.id)
        untouched = await session.get(Customer, other.customer_id)
    assert customer is not None and "grace" not in customer.email and customer.name == ""
    assert kept_rma is not None and kept_rma.customer_note == ""
    assert untouched is not None and untouched.email == "alan@example.com"
    assert await world.order(installed.merchant_id, order.external_id) is not None  # books kept
    async with world.db.read_session() as session:
        bodies = (
            await session.exec(
                select(WebhookDelivery.body, WebhookDelivery.topic).where(
                    WebhookDelivery.connection_id == installed.connection_id
                )
            )
        ).all()
    carrying = {topic for body, topic in bodies if b"grace@example.com" in bytes(body)}
    assert carrying <= {"customers/redact"}, carrying  # the request itself, nothing else
    assert any(topic == "orders/create" for _body, topic in bodies)
    assert (await world.gql(DATA_EXPORTS, token=admin))["dataExports"] == []

    # The shop leaves; 48 hours later Shopify asks for its data to go. It reaches the
    # disabled connection, and the merchant that only had this shop is erased.
    assert (await world.deliver(world.fake.uninstall(installed.shop))).status_code == 200
    await world.run_jobs()
    erase = world.fake.compliance_webhook(installed.shop, "shop/redact")
    assert (await world.deliver(erase)).status_code == 200
    await world.run_jobs()
    assert await count(world, Merchant, id=installed.merchant_id) == 0
    assert await count(world, Order, merchant_id=installed.merchant_id) == 0
    # Asked again (Shopify retries): nothing held, still a 200.
    assert (await world.deliver(erase)).status_code == 200


async def test_privacy_requests_for_a_shop_never_seen_are_acknowledged(world: ShopifyWorld) -> None:
    stranger = world.new_shop()
    request = world.fake.compliance_webhook(stranger, "customers/redact")
    response = await world.deliver(request)
    assert response.status_code == 200
    assert response.json()["unknownAccount"] is True
    forged = dict(request.headers, **{"X-Shopify-Hmac-Sha256": "AAAA"})
    refused = await world.client.post("/webhooks/shopify/app", content=request.body, headers=forged)
    assert refused.status_code == 401


async def test_a_large_first_sync_reads_a_bulk_operation_then_only_changes(
    world: ShopifyWorld,
) -> None:
    shop = world.new_shop()
    world.fake.create_orders_bulk(shop, 300, email="bulk@example.com")
    installed = await world.install(shop)

    assert len(world.fake.bulk_operations(shop)) == 1
    assert await count(world, Order, merchant_id=installed.merchant_id) == 300
    connection = await world.connection(installed.connection_id)
    assert connection.sync_status == "SUCCEEDED", connection.last_sync_error

    world.fake.create_order(shop, email="late@example.com")
    await world.sync_now(installed)
    assert await count(world, Order, merchant_id=installed.merchant_id) == 301
    assert len(world.fake.bulk_operations(shop)) == 1  # the changes came by pages


async def test_an_order_the_core_refuses_does_not_hold_back_its_page(world: ShopifyWorld) -> None:
    shop = world.new_shop()
    world.fake.create_order(shop, email="first@example.com")
    # A discount larger than the line's price: the core refuses to hold that order.
    world.fake.create_order(
        shop, name="#BAD-DISCOUNT", lines=[{"price": "5.00", "discount": "9.00"}]
    )
    world.fake.create_order(shop, email="third@example.com")
    installed = await world.install(shop)
    assert await count(world, Order, merchant_id=installed.merchant_id) == 2
    connection = await world.connection(installed.connection_id)
    assert "#BAD-DISCOUNT" in (connection.last_sync_error or "")


async def test_a_revoked_token_fails_the_sync_readably(world: ShopifyWorld) -> None:
    installed = await world.install()
    world.fake.revoke_tokens(installed.shop)
    await world.sync_now(installed)
    connection = await world.connection(installed.connection_id)
    assert connection.sync_status == "FAILED"
    assert "refused the access token" in (connection.last_sync_error or "")
    assert "shpat" not in (connection.last_sync_error or "")


async def test_a_malformed_payload_fails_its_delivery_with_the_reason(world: ShopifyWorld) -> None:
    installed = await world.install()
    body = b'{"not": "an order"}'
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": installed.shop.domain,
        "X-Shopify-Hmac-Sha256": sign_webhook(body, API_SECRET),
        "Content-Type": "application/json",
    }
    response = await world.client.post("/webhooks/shopify/app", content=body, headers=headers)
    assert response.status_code == 200
    await world.run_jobs()
    async with world.db.read_session() as session:
        delivery = (
            await session.exec(
                select(WebhookDelivery).where(
                    WebhookDelivery.connection_id == installed.connection_id,
                    WebhookDelivery.topic == "orders/create",
                )
            )
        ).one()
    assert delivery.state is WebhookState.FAILED
    assert "unreadable payload" in (delivery.error or "")


async def test_a_body_signed_for_one_shop_cannot_act_on_another(world: ShopifyWorld) -> None:
    victim = await world.install()
    other = await world.install()
    for topic in ("shop/redact", "customers/redact"):
        signed_for_other = world.fake.compliance_webhook(other.shop, topic)
        forged = dict(signed_for_other.headers, **{"X-Shopify-Shop-Domain": victim.shop.domain})
        response = await world.client.post(
            "/webhooks/shopify/app", content=signed_for_other.body, headers=forged
        )
        assert response.status_code == 401, topic
    uninstall = world.fake.uninstall(other.shop)
    forged = dict(uninstall.headers, **{"X-Shopify-Shop-Domain": victim.shop.domain})
    response = await world.client.post(
        "/webhooks/shopify/app", content=uninstall.body, headers=forged
    )
    assert response.status_code == 401
    await world.run_jobs()
    assert (await world.connection(victim.connection_id)).disabled_at is None
    assert await count(world, Merchant, id=victim.merchant_id) == 1


async def test_a_late_uninstall_or_erasure_does_not_undo_a_reinstall(world: ShopifyWorld) -> None:
    installed = await world.install()
    uninstall = world.fake.uninstall(installed.shop)
    erase = world.fake.compliance_webhook(installed.shop, "shop/redact")
    again = await world.install(installed.shop)  # installed again before either arrived
    assert again.connection_id == installed.connection_id
    for webhook in (uninstall, erase):
        assert (await world.deliver(webhook)).status_code == 200
    await world.run_jobs()
    assert (await world.connection(installed.connection_id)).disabled_at is None
    assert await count(world, Merchant, id=installed.merchant_id) == 1


async def test_erasing_one_of_two_shops_keeps_the_merchant_and_the_other_shop(
    world: ShopifyWorld,
) -> None:
    first = await world.install()
    assert first.admin_key is not None
    second = await world.install(world.new_shop(), admin_key=first.admin_key)
    gone = await world.synced_order(second, email="leaving@example.com")
    kept = await world.synced_order(first, email="staying@example.com")
    assert (await world.deliver(world.fake.uninstall(second.shop))).status_code == 200
    await world.run_jobs()
    erase = world.fake.compliance_webhook(second.shop, "shop/redact")
    assert (await world.deliver(erase)).status_code == 200
    await world.run_jobs()

    assert await count(world, Merchant, id=first.merchant_id) == 1
    assert await count(world, Connection, id=second.connection_id) == 0
    async with world.db.read_session() as session:
        redacted = await session.get(Customer, gone.customer_id)
        untouched = await session.get(Customer, kept.customer_id)
    assert redacted is not None and "leaving" not in redacted.email
    assert untouched is not None and untouched.email == "staying@example.com"


async def test_a_launch_from_shopify_must_carry_a_valid_signature(world: ShopifyWorld) -> None:
    shop = world.new_shop()
    launch = {"shop": shop.domain, "timestamp": str(int(SYSTEM_CLOCK.now().timestamp()))}
    signed = {**launch, "hmac": oauth_hmac(launch, API_SECRET)}
    assert (await world.client.get("/shopify/install", params=signed)).status_code == 302
    forged = {**launch, "hmac": oauth_hmac(launch, "not-the-app-secret")}
    assert (await world.client.get("/shopify/install", params=forged)).status_code == 401


async def test_an_order_taken_without_an_email_still_arrives(world: ShopifyWorld) -> None:
    shop = world.new_shop()
    world.fake.create_order(shop, name="#TILL-1")
    installed = await world.install(shop)
    assert await count(world, Order, merchant_id=installed.merchant_id) == 1
