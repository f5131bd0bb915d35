"""The whole journey a Shopify merchant takes, through HTTP only (no CLI, no use case called
directly): install the app, see the orders, a customer returns an item through the portal API,
and the refund and the restock reach Shopify exactly once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.clock import SYSTEM_CLOCK
from graphql_api.ids import to_global_id
from tests.integration.shopify_world import (  # noqa: F401 (fixtures)
    ShopifyWorld,
    fake_shopify,
    shopify_db,
    shopify_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

START_SESSION = """
mutation($m: ID!, $n: String!, $e: String!) {
  startCustomerSession(merchantId: $m, orderNumber: $n, email: $e) {
    token userErrors { code message }
  }
}"""


async def test_install_sync_return_refund_and_restock_reach_shopify_once(
    world: ShopifyWorld,
) -> None:
    shop = world.new_shop()
    gid = world.fake.create_order(
        shop,
        name="#1042",
        email="ada@example.com",
        customer=("Ada", "Lovelace"),
        lines=[{"sku": "SCARF", "title": "Wool scarf", "price": "45.00", "quantity": 2}],
        shipping="5.00",
        created_at=SYSTEM_CLOCK.now() - timedelta(days=6),
        delivered_at=SYSTEM_CLOCK.now() - timedelta(days=2),
    )
    installed = await world.install(shop)
    admin = installed.admin_key
    assert admin is not None

    orders = await world.gql(
        "{ orders(first: 10) { edges { node { id orderNumber lines { id quantity } } } } }",
        token=admin,
    )
    [edge] = orders["orders"]["edges"]
    assert edge["node"]["orderNumber"] == "#1042"
    line_id = edge["node"]["lines"][0]["id"]

    session = await world.gql(
        START_SESSION,
        {
            "m": to_global_id("Merchant", installed.merchant_id),
            "n": "1042",
            "e": "ada@example.com",
        },
    )
    customer = session["startCustomerSession"]["token"]
    assert customer, session
    requested = await world.gql(
        """mutation($input: RequestRmaInput!) { requestRma(input: $input) {
             rma { id status lines { id } } userErrors { code message } } }""",
        {
            "input": {
                "orderId": edge["node"]["id"],
                "preferredResolution": "REFUND",
                "lines": [{"orderLineId": line_id, "quantity": 1, "reason": "SIZE_TOO_SMALL"}],
            }
        },
        customer,
    )
    assert requested["requestRma"]["userErrors"] == []
    rma = requested["requestRma"]["rma"]
    if rma["status"] == "REQUESTED":
        authorized = await world.gql(
            'mutation($id: ID!) { authorizeRma(id: $id, note: "ok") { rma { status } } }',
            {"id": rma["id"]},
            admin,
        )
        assert authorized["authorizeRma"]["rma"]["status"] == "AUTHORIZED"
    shipped = await world.gql(
        """mutation($id: ID!) { recordRmaShipment(id: $id, carrier: UPS,
             trackingNumber: "1Z999AA10123456784") { rma { status } } }""",
        {"id": rma["id"]},
        customer,
    )
    assert shipped["recordRmaShipment"]["rma"]["status"] == "IN_TRANSIT"
    line = rma["lines"][0]["id"]
    await world.gql(
        """mutation($id: ID!, $l: ID!) { receiveRma(id: $id, lines: [{rmaLineId: $l,
             quantity: 1}]) { rma { status } } }""",
        {"id": rma["id"], "l": line},
        admin,
    )
    inspected = await world.gql(
        """mutation($id: ID!, $l: ID!) { inspectRma(id: $id, lines: [{rmaLineId: $l,
             condition: UNOPENED, disposition: RESTOCK}]) { rma { status } } }""",
        {"id": rma["id"], "l": line},
        admin,
    )
    assert inspected["inspectRma"]["rma"]["status"] == "INSPECTED"
    resolved = await world.gql(
        """mutation($id: ID!) { resolveRma(id: $id, resolution: REFUND, idempotencyKey: "r1") {
             resolution { provider amount { amountMinor } } userErrors { code } } }""",
        {"id": rma["id"]},
        admin,
    )
    assert resolved["resolveRma"]["resolution"]["provider"] == "SHOPIFY_PAYMENTS"
    amount = resolved["resolveRma"]["resolution"]["amount"]["amountMinor"]
    await world.run_jobs()
    for webhook in world.fake.webhooks(shop, topic="refunds/create"):
        await world.deliver(webhook)  # our own refund, coming back
    await world.run_jobs()

    final = await world.gql(
        "query($id: ID!) { node(id: $id) { ... on Rma { status resolutions { status } } } }",
        {"id": rma["id"]},
        admin,
    )
    assert final["node"]["status"] == "RESOLVED"
    assert [r["status"] for r in final["node"]["resolutions"]] == ["SUCCEEDED"]
    [refund] = world.fake.refunds(shop, gid)
    assert sum(Decimal(t["amount"]) for t in refund["transactions"]) == Decimal(amount) / 100
    item = world.fake.line_items(shop, gid)[0]["inventory_item_id"]
    assert world.fake.inventory_level(shop, item, shop.primary_location_gid) == 11
    assert len(world.fake.inventory_adjustments(shop)) == 1
