"""A WooCommerce store connected by the key grant, against the fake store: sync, webhooks,
the periodic poll, disconnects, and bad callbacks."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from core.clock import SYSTEM_CLOCK
from core.entities import Connection, Customer, WebhookDelivery
from core.enums import Platform
from core.errors import Conflict
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY
from core.usecases.connections import connect_platform, read_secrets
from plugins.woocommerce.webhooks import WooCommerceWebhookSource
from testkit.fakes import FakeWooCommerce
from tests.integration.woocommerce_world import (  # noqa: F401 (fixtures)
    PUBLIC_URL,
    WooWorld,
    fake_stripe,
    store_fixture,
    woo_db,
    woo_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDERS = "{ orders(first: 100) { edges { node { orderNumber externalId currency } } } }"
TOPICS = {"order.created", "order.updated", "order.deleted", "order.restored"}


def mug(**details: object) -> list[dict[str, object]]:
    return [{"sku": "MUG", "price": "12.50", "categories": ["Kitchen"], **details}]


async def test_a_store_connects_and_its_orders_and_webhooks_arrive(world: WooWorld) -> None:
    ids = [world.store.create_order(email=f"b{i}@example.com", lines=mug()) for i in range(3)]

    connection_id = await world.connect()

    # Backfilled, with the product's category, the money in minor units.
    orders = (await world.gql(ORDERS))["orders"]["edges"]
    assert sorted(int(edge["node"]["externalId"]) for edge in orders) == sorted(ids)
    order = await world.order(ids[0])
    assert order is not None and order.lines[0].category == "Kitchen"
    assert order.lines[0].unit_price_minor == 1250 and order.shipping_minor == 500

    # Keys and the generated webhook secret are sealed; webhooks point at this connection.
    connection = await world.connection()
    secrets = read_secrets(Vault(DEVELOPMENT_ENCRYPTION_KEY), connection)
    assert secrets.credentials["consumer_key"].startswith("ck_")
    [secret] = secrets.webhook_secrets
    hooks = world.store.webhooks()
    assert {hook["topic"] for hook in hooks} == TOPICS
    assert {hook["delivery_url"] for hook in hooks} == {
        f"{PUBLIC_URL}/webhooks/woocommerce/{connection_id}"
    }
    assert all(hook["status"] == "active" for hook in hooks)
    assert secrets.credentials["consumer_key"] not in connection.credentials_encrypted

    # A new order arrives by webhook, signed with that secret, and is read from the store.
    new_id = world.store.create_order(email="late@example.com", lines=mug())
    assert await world.deliver_webhooks() == [200]
    await world.run_jobs()
    assert await world.order(new_id) is not None
    assert world.store.sent_webhooks()[-1].headers["X-WC-Webhook-Signature"] == (
        world.store.sign_webhook(world.store.sent_webhooks()[-1].body, secret)
    )
    listed = await store_connection(world, "account syncStatus lastSyncError lastSyncedAt")
    assert listed["syncStatus"] == "SUCCEEDED" and listed["lastSyncError"] is None
    assert listed["account"] == world.store.base_url + "/"


async def store_connection(world: WooWorld, fields: str) -> dict[str, object]:
    """The store's connection as staff see it in ``connections``."""
    listed = (await world.gql(f"{{ connections {{ platform {fields} }} }}"))["connections"]
    [store] = [entry for entry in listed if entry.pop("platform") == "WOOCOMMERCE"]
    return store


async def customer_email(world: WooWorld, reference: int) -> str:
    order = await world.order(reference)
    assert order is not None
    async with world.db.read_session() as session:
        customer = await session.get(Customer, order.customer_id)
    assert customer is not None
    return customer.email


async def test_a_missed_webhook_is_caught_by_the_poll(world: WooWorld) -> None:
    await world.connect()
    missed = world.store.create_order(email="missed@example.com", lines=mug())
    world.store.update_order(missed, status="completed")
    # WooCommerce tried once and never again: the delivery is lost.
    lost = world.store.deliver_pending(lambda hook: None)
    assert {hook.topic for hook, _ in lost} == {"order.created", "order.updated"}
    assert await world.order(missed) is None

    await world.poll()

    assert await customer_email(world, missed) == "missed@example.com"
    # A change made later, also missed, is read by the next poll (the cursor moved on).
    world.store.update_order(missed, email="changed@example.com")
    world.store.deliver_pending(lambda hook: None)
    await world.poll()
    assert await customer_email(world, missed) == "changed@example.com"
    assert (await world.connection()).last_sync_error is None


async def test_duplicate_and_late_deliveries_leave_the_store_s_latest_order(
    world: WooWorld,
) -> None:
    await world.connect()
    reference = world.store.create_order(email="first@example.com", lines=mug())
    [created] = [hook for hook, _ in world.store.deliver_pending(lambda hook: None)]
    world.store.update_order(reference, email="second@example.com")
    [updated] = [hook for hook, _ in world.store.deliver_pending(lambda hook: None)]

    # The newer delivery first, twice; the older one last.
    assert [await world.post_webhook(hook) for hook in (updated, updated, created)] == [200] * 3
    await world.run_jobs()

    assert await customer_email(world, reference) == "second@example.com"
    async with world.db.read_session() as session:
        deliveries = (
            await session.exec(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.connection_id == world.connection_id)
            )
        ).one()
    assert deliveries == 2  # the duplicate was recognised, not stored again


async def test_the_poll_makes_deleted_and_disabled_webhooks_again(world: WooWorld) -> None:
    await world.connect()
    first, second, *_ = world.store.webhooks()
    world.store.disable_webhook(first["id"])
    deleted = world.store_client().delete(f"webhooks/{second['id']}", params={"force": True})
    assert deleted.status_code == 200

    await world.poll()

    hooks = world.store.webhooks()
    assert {hook["topic"] for hook in hooks} == TOPICS
    assert all(hook["status"] == "active" for hook in hooks)
    assert len(hooks) == len(TOPICS)  # the disabled one is active again, not doubled
    # The re-made one signs with the connection's secret: its deliveries are accepted.
    reference = world.store.create_order(email="after@example.com", lines=mug())
    assert await world.deliver_webhooks() == [200]
    await world.run_jobs()
    assert await world.order(reference) is not None


async def test_revoked_keys_are_shown_and_a_new_grant_catches_up(world: WooWorld) -> None:
    connection_id = await world.connect()
    keys = read_secrets(Vault(DEVELOPMENT_ENCRYPTION_KEY), await world.connection())
    world.store.revoke_keys(keys.credentials["consumer_key"])
    reference = world.store.create_order(email="while-revoked@example.com", lines=mug())
    world.store.deliver_pending(lambda hook: None)

    await world.poll()

    listed = await store_connection(world, "syncStatus lastSyncError")
    assert listed["syncStatus"] == "FAILED"
    assert "refused the API keys" in listed["lastSyncError"]
    assert keys.credentials["consumer_secret"] not in str(listed)
    assert await world.order(reference) is None

    # The merchant grants keys again: the same connection, new keys, the missed order read.
    assert await world.connect() == connection_id
    assert await world.order(reference) is not None
    listed = await store_connection(world, "syncStatus lastSyncError")
    assert listed == {"syncStatus": "SUCCEEDED", "lastSyncError": None}


async def test_bad_grants_are_refused_and_store_nothing(world: WooWorld) -> None:
    authorize_url = await world.authorize_url()
    callback, keys = world.store.approve_connect(authorize_url)
    path = callback.removeprefix(PUBLIC_URL)

    for body, status in (
        (b"not json", 400),
        (b"[]", 400),
        (b'{"user_id": "x"}', 400),
        (b"x" * 20_000, 413),
    ):
        assert (await world.client.post(path, content=body)).status_code == status
    unknown = {**keys, "user_id": "forged-state"}
    assert (await world.client.post(path, json=unknown)).status_code == 403
    read_only = {**keys, "key_permissions": "read"}
    assert (await world.client.post(path, json=read_only)).status_code == 400
    assert await count_connections(world) == 0

    # The real grant works once; the same post again is refused.
    assert (await world.client.post(path, json=keys)).status_code == 200
    replayed = await world.client.post(path, json=keys)
    assert replayed.status_code == 403 and keys["consumer_secret"] not in replayed.text
    assert await count_connections(world) == 1
    denied = await world.client.get(
        world.store.deny_connect(authorize_url).removeprefix(PUBLIC_URL)
    )
    assert denied.status_code == 400 and "did not grant" in denied.text


async def count_connections(world: WooWorld) -> int:
    async with world.db.read_session() as session:
        return int(
            (
                await session.exec(
                    select(func.count())
                    .select_from(Connection)
                    .where(
                        Connection.merchant_id == world.merchant_id,
                        Connection.platform == Platform.WOOCOMMERCE,
                    )
                )
            ).one()
        )


async def test_a_merchant_connects_one_store_since_order_numbers_restart_in_each(
    world: WooWorld,
) -> None:
    await world.connect()
    with FakeWooCommerce() as other:
        answer = await world.gql(
            "mutation($url: String!) { connectWooCommerce(storeUrl: $url) {"
            " authorizeUrl userErrors { code field message } } }",
            {"url": other.base_url},
        )
        [error] = answer["connectWooCommerce"]["userErrors"]
        assert error["code"] == "CONFLICT" and "one woocommerce store" in error["message"]
        with pytest.raises(Conflict):
            async with world.db.session() as session:
                await connect_platform(
                    session,
                    Vault(DEVELOPMENT_ENCRYPTION_KEY),
                    WooCommerceWebhookSource(),
                    merchant_id=world.merchant_id,
                    account=other.base_url,
                    credentials={"consumer_key": "ck_x", "consumer_secret": "cs_x"},
                    webhook_secret="typed-in-secret",
                    now=SYSTEM_CLOCK.now(),
                )
    assert await count_connections(world) == 1
