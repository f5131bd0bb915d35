"""A WooCommerce store connected by the key grant, against the fake store: sync, webhooks,
the periodic poll, disconnects, and bad callbacks."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import func, select

from core.clock import SYSTEM_CLOCK
from core.entities import Connection, Order
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY
from core.usecases.connections import read_secrets
from tests.integration.woocommerce_world import (  # noqa: F401 (fixtures)
    PUBLIC_URL,
    WooWorld,
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
    status = await world.gql(
        "{ connections { platform account syncStatus lastSyncError lastSyncedAt } }"
    )
    [listed] = status["connections"]
    assert listed["syncStatus"] == "SUCCEEDED" and listed["lastSyncError"] is None
    assert listed["account"] == world.store.base_url + "/"
