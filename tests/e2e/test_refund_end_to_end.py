"""The automatic refund path end to end: the real app over HTTP with its in-process worker,
the real stripe package, and the fake Stripe server sending signed webhooks back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from pydantic import SecretStr

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.enums import ApiKeyRole
from core.usecases.merchants import create_api_key
from graphql_api.app import create_app
from graphql_api.ids import to_global_id
from testkit.fakes import FakeStripe
from tests.integration.money_world import (
    WEBHOOK_SECRET,
    World,
    fake_stripe,
    make_world,
    money_db,
    money_url,
)

__all__ = ["fake_stripe", "money_db", "money_url"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest_asyncio.fixture(loop_scope="session")
async def live(money_db: Database, fake_stripe: FakeStripe) -> AsyncIterator[tuple[World, str]]:
    """A merchant whose policy settles passed returns by itself, and the app serving on HTTP."""
    world = await make_world(money_db, fake_stripe, auto_resolve=True)
    app = create_app(
        world.settings.model_copy(update={"secret_key": SecretStr("s" * 40)}),
        database=money_db,
        registry=world.registry,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.02)
    try:
        yield world, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def until(check: Callable[[], Awaitable[Any]], *, within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the service did not get there in time")
        await asyncio.sleep(0.05)


async def test_an_inspected_return_is_refunded_through_stripe_without_a_person(
    live: tuple[World, str], fake_stripe: FakeStripe
) -> None:
    world, base = live
    fake_stripe.refund_mode = "pending"
    async with world.db.session() as session:
        staff = (
            await create_api_key(
                session,
                merchant_id=world.merchant_id,
                role=ApiKeyRole.AGENT,
                now=SYSTEM_CLOCK.now(),
            )
        ).plaintext
    order = await world.paid_order(amount_minor=4200)

    async with httpx.AsyncClient(base_url=base, timeout=10) as http:

        async def gql(query: str, variables: dict[str, Any], token: str | None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            assert response.status_code == 200, response.text
            payload = response.json()
            assert "errors" not in payload, payload
            return payload["data"]

        customer_email = await world.email_of(order)
        session = await gql(
            """mutation($m: ID!, $n: String!, $e: String!) { startCustomerSession(merchantId: $m,
                 orderNumber: $n, email: $e) { token } }""",
            {
                "m": to_global_id("Merchant", world.merchant_id),
                "n": order.order_number,
                "e": customer_email,
            },
            None,
        )
        customer = session["startCustomerSession"]["token"]
        requested = await gql(
            """mutation($input: RequestRmaInput!) { requestRma(input: $input) {
                 rma { id status lines { id } } userErrors { code message } } }""",
            {
                "input": {
                    "orderId": to_global_id("Order", order.id),
                    "preferredResolution": "REFUND",
                    "lines": [
                        {
                            "orderLineId": to_global_id("OrderLine", order.lines[0].id),
                            "quantity": 1,
                            "reason": "SIZE_TOO_SMALL",
                        }
                    ],
                }
            },
            customer,
        )
        rma = requested["requestRma"]["rma"]
        assert rma["status"] == "AUTHORIZED", requested
        await gql(
            """mutation($id: ID!) { recordRmaShipment(id: $id, carrier: DHL,
                 trackingNumber: "JD014600006101234567") { rma { status } } }""",
            {"id": rma["id"]},
            customer,
        )
        line = rma["lines"][0]["id"]
        await gql(
            """mutation($id: ID!, $l: ID!) { receiveRma(id: $id, lines: [{rmaLineId: $l,
                 quantity: 1}]) { rma { status } } }""",
            {"id": rma["id"], "l": line},
            staff,
        )
        await gql(
            """mutation($id: ID!, $l: ID!) { inspectRma(id: $id, lines: [{rmaLineId: $l,
                 condition: UNOPENED, disposition: RESTOCK}]) { rma { status } } }""",
            {"id": rma["id"], "l": line},
            staff,
        )

        page = """query($id: ID!) { rma(id: $id) { status
            resolution { status provider providerReference amount { amountMinor } }
            events { kind toStatus actor data } } }"""

        async def refund_pending() -> Any:
            data = await gql(page, {"id": rma["id"]}, staff)
            resolution = data["rma"]["resolution"]
            return data if resolution and resolution["status"] == "PROCESSING" else None

        pending = await until(refund_pending)
        assert pending["rma"]["status"] == "RESOLVING"
        [refund] = fake_stripe.refunds(world.account)
        assert refund["status"] == "pending"
        assert refund["amount"] == 4200

        # Stripe settles the refund and tells the service, twice and out of order.
        settled = fake_stripe.settle_refund(refund["id"], "succeeded")
        url = f"{base}/webhooks/stripe/{world.connection_id}"
        created_event = {**settled, "status": "pending"}
        for event_type, body, event_id in (
            ("refund.updated", settled, "evt_updated"),
            ("refund.created", created_event, "evt_created"),
            ("refund.updated", settled, "evt_updated"),
        ):
            response = await fake_stripe.send_event_async(
                url, WEBHOOK_SECRET, event_type, body, event_id=event_id
            )
            assert response.status_code == 200, response.text

        async def resolved() -> Any:
            data = await gql(page, {"id": rma["id"]}, staff)
            return data if data["rma"]["status"] == "RESOLVED" else None

        done = await until(resolved)
    assert done["rma"]["resolution"]["status"] == "SUCCEEDED"
    assert done["rma"]["resolution"]["providerReference"] == refund["id"]
    kinds = [event["kind"] for event in done["rma"]["events"]]
    assert "RESOLUTION_CHOSEN" in kinds
    assert "REFUND_PENDING" in kinds
    money = next(e for e in done["rma"]["events"] if e["toStatus"] == "RESOLVED")
    assert money["data"]["providerReference"] == refund["id"]
    assert money["data"]["amountMinor"] == 4200
    assert len(fake_stripe.refunds(world.account)) == 1
