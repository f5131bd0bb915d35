"""The whole journey a WooCommerce merchant takes, through HTTP only: connect the store through
its grant page, see the orders, a customer returns an item through the portal API, the Stripe
refund happens once and the store shows exactly one refund with the item back in stock."""

from __future__ import annotations

import pytest

from graphql_api.ids import to_global_id
from tests.integration.woocommerce_world import (  # noqa: F401 (fixtures)
    WooWorld,
    fake_stripe,
    store_fixture,
    woo_db,
    woo_url,
    world_fixture,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

START_SESSION = """
mutation($m: ID!, $n: String!, $e: String!) {
  startCustomerSession(merchantId: $m, orderNumber: $n, email: $e) {
    token userErrors { code message }
  }
}"""


async def test_connect_sync_return_refund_and_restock_reach_the_store_once(
    world: WooWorld,
) -> None:
    reference, intent = world.stripe_paid_order(
        [{"sku": "SCARF", "price": "45.00", "quantity": 2, "stock": 8}],
        email="ada@example.com",
    )
    product = int(world.store.order(reference)["line_items"][0]["product_id"])
    stock = world.store.stock_quantity(product)
    await world.connect()

    orders = await world.gql(
        "{ orders(first: 10) { edges { node { id orderNumber lines { id quantity } } } } }"
    )
    [edge] = orders["orders"]["edges"]
    assert edge["node"]["orderNumber"] == str(reference)
    line_id = edge["node"]["lines"][0]["id"]

    session = await world.gql(
        START_SESSION,
        {
            "m": to_global_id("Merchant", world.merchant_id),
            "n": str(reference),
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
    assert rma["status"] == "AUTHORIZED"
    await world.gql(
        """mutation($id: ID!) { recordRmaShipment(id: $id, carrier: UPS,
             trackingNumber: "1Z999AA10123456784") { rma { status } } }""",
        {"id": rma["id"]},
        customer,
    )
    line = rma["lines"][0]["id"]
    await world.gql(
        """mutation($id: ID!, $l: ID!) { receiveRma(id: $id, lines: [{rmaLineId: $l,
             quantity: 1}]) { rma { status } } }""",
        {"id": rma["id"], "l": line},
    )
    await world.gql(
        """mutation($id: ID!, $l: ID!) { inspectRma(id: $id, lines: [{rmaLineId: $l,
             condition: UNOPENED, disposition: RESTOCK}]) { rma { status } } }""",
        {"id": rma["id"], "l": line},
    )
    resolved = await world.gql(
        """mutation($id: ID!) { resolveRma(id: $id, resolution: REFUND, idempotencyKey: "r1") {
             resolution { provider amount { amountMinor } } userErrors { code } } }""",
        {"id": rma["id"]},
    )
    assert resolved["resolveRma"]["resolution"]["provider"] == "STRIPE"
    amount = resolved["resolveRma"]["resolution"]["amount"]["amountMinor"]
    await world.run_jobs()

    final = await world.gql(
        """query($id: ID!) { node(id: $id) { ... on Rma { status resolutions { status }
             events { kind message } } } }""",
        {"id": rma["id"]},
    )
    assert final["node"]["status"] == "RESOLVED"
    assert [r["status"] for r in final["node"]["resolutions"]] == ["SUCCEEDED"]
    [paid_back] = world.stripe.refunds(world.stripe_account, payment_intent=intent)
    assert paid_back["amount"] == amount == 4500
    [recorded] = world.store.refunds(reference)
    assert recorded["amount"] == "45.00" and recorded["refunded_payment"] is False
    assert world.store.gateway_refunds() == []
    assert world.store.stock_quantity(product) == stock + 1
    assert "REFUND_RECORDED" in [event["kind"] for event in final["node"]["events"]]
