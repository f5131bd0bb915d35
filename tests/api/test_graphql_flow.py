"""Frontend flows through the real ASGI app: a portal customer and back-office staff."""

from __future__ import annotations

from core.database import Database
from core.enums import ReturnReason
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop

RMA_FIELDS = """
  id number status unauthorized
  decision { policyVersion lines }
  lines { id quantity receivedQuantity reason condition eligibilityCodes
          orderLine { title unitPrice { amountMinor currency formatted } }
          inspection { condition disposition } }
  shipments { carrier trackingNumber trackingUrl }
  resolution { kind status provider amount { amountMinor formatted } restockingFee { amountMinor } }
  events { sequence kind actor fromStatus toStatus }
  order { orderNumber }
  customer { email }
"""

START_SESSION = """
mutation($m: ID!, $n: String!, $e: String!) {
  startCustomerSession(merchantId: $m, orderNumber: $n, email: $e) {
    token customer { email } userErrors { code field message }
  }
}"""

REQUEST = (
    "mutation($input: RequestRmaInput!) { requestRma(input: $input) {"
    f" rma {{ {RMA_FIELDS} }} userErrors {{ code field message eligibilityCodes }} }} }}"
)


async def test_a_customer_returns_an_item_and_staff_refund_it(api: Api, db: Database) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, email="ada@example.com", placed_days_ago=3)

    session = await api.gql(
        START_SESSION,
        {"m": gid("Merchant", shop.id), "n": order.order_number, "e": "ADA@example.com"},
    )
    token = session["startCustomerSession"]["token"]
    assert token.startswith("rma_cs_")

    me = await api.gql("{ me { kind role customer { email } merchant { name } } }", token=token)
    assert me["me"] == {
        "kind": "CUSTOMER",
        "role": None,
        "customer": {"email": "ada@example.com"},
        "merchant": {"name": shop.merchant.name},
    }

    eligibility = await api.gql(
        """query($o: ID!) { returnEligibility(orderId: $o) { policyVersion lines {
             eligible codes maxQuantity refund { amountMinor } restockingFeeIfOpened { amountMinor }
             acceptedReasons orderLine { id } } } }""",
        {"o": gid("Order", order.id)},
        token=token,
    )
    line = eligibility["returnEligibility"]["lines"][0]
    assert line["eligible"] is True
    assert line["maxQuantity"] == 2
    assert line["refund"]["amountMinor"] == 5000
    assert "SIZE_TOO_SMALL" in line["acceptedReasons"] and len(line["acceptedReasons"]) == 9

    requested = await api.gql(
        REQUEST,
        {
            "input": {
                "orderId": gid("Order", order.id),
                "preferredResolution": "REFUND",
                "lines": [
                    {
                        "orderLineId": line["orderLine"]["id"],
                        "quantity": 1,
                        "reason": "SIZE_TOO_SMALL",
                    }
                ],
            }
        },
        token=token,
    )
    assert requested["requestRma"]["userErrors"] == []
    rma = requested["requestRma"]["rma"]
    assert rma["status"] == "AUTHORIZED"

    shipped = await api.gql(
        """mutation($id: ID!) { recordRmaShipment(id: $id, carrier: UPS,
             trackingNumber: "1Z999AA10123456784") { rma { status shipments { trackingUrl } }
             userErrors { code } } }""",
        {"id": rma["id"]},
        token=token,
    )
    assert shipped["recordRmaShipment"]["rma"]["status"] == "IN_TRANSIT"

    staff = shop.agent
    received = await api.gql(
        """mutation($id: ID!, $l: ID!) { receiveRma(id: $id, lines: [{rmaLineId: $l, quantity: 1}])
             { rma { status } userErrors { code } } }""",
        {"id": rma["id"], "l": rma["lines"][0]["id"]},
        token=staff,
    )
    assert received["receiveRma"]["rma"]["status"] == "RECEIVED"
    inspected = await api.gql(
        """mutation($id: ID!, $l: ID!) { inspectRma(id: $id, lines: [{rmaLineId: $l,
             condition: UNOPENED, disposition: RESTOCK}]) {
             rma { status } userErrors { code } } }""",
        {"id": rma["id"], "l": rma["lines"][0]["id"]},
        token=staff,
    )
    assert inspected["inspectRma"]["rma"]["status"] == "INSPECTED"
    resolved = await api.gql(
        """mutation($id: ID!) { resolveRma(id: $id, resolution: REFUND, idempotencyKey: "k1") {
             rma { status } resolution { kind status provider amount { amountMinor formatted } }
             userErrors { code } } }""",
        {"id": rma["id"]},
        token=staff,
    )
    assert resolved["resolveRma"]["resolution"]["amount"] == {
        "amountMinor": 2500,
        "formatted": "$25.00",
    }
    assert resolved["resolveRma"]["resolution"]["provider"] == "STRIPE"

    page = await api.gql(
        "query($n: String!) { rma(number: $n) { RMA_FIELDS } }".replace("RMA_FIELDS", RMA_FIELDS),
        {"n": rma["number"].lower()},
        token=shop.readonly,
    )
    timeline = [event["toStatus"] for event in page["rma"]["events"] if event["toStatus"]]
    assert timeline == [
        "REQUESTED",
        "AUTHORIZED",
        "IN_TRANSIT",
        "RECEIVED",
        "INSPECTED",
        "RESOLVING",
    ]


async def test_a_refused_request_returns_typed_user_errors_and_changes_nothing(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db, final_sale_tags=["final-sale"])
    order = await f.order(db, shop.id, lines=[f.line(tags=["Final-Sale"])])
    variables = {
        "input": {
            "orderId": gid("Order", order.id),
            "lines": [
                {
                    "orderLineId": gid("OrderLine", order.lines[0].id),
                    "quantity": 1,
                    "reason": "STYLE",
                }
            ],
        }
    }
    result = await api.gql(REQUEST, variables, token=shop.agent)
    errors = result["requestRma"]["userErrors"]
    assert result["requestRma"]["rma"] is None
    assert errors[0]["code"] == "NOT_ELIGIBLE"
    assert errors[0]["field"] == ["lines", "0"]
    assert "FINAL_SALE" in errors[0]["eligibilityCodes"]
    listing = await api.gql("{ rmas { edges { node { id } } } }", token=shop.agent)
    assert listing["rmas"]["edges"] == []


async def test_wrong_order_and_email_pairs_look_like_unknown_ones_and_are_rate_limited(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, email="bea@example.com")
    merchant = gid("Merchant", shop.id)
    wrong_email = await api.gql(
        START_SESSION, {"m": merchant, "n": order.order_number, "e": "eve@example.com"}
    )
    unknown = await api.gql(START_SESSION, {"m": merchant, "n": "#nope", "e": "bea@example.com"})
    assert (
        wrong_email["startCustomerSession"]["userErrors"]
        == unknown["startCustomerSession"]["userErrors"]
    )
    for _ in range(5):
        await api.gql(START_SESSION, {"m": merchant, "n": order.order_number, "e": "x@example.com"})
    blocked = await api.gql(
        START_SESSION, {"m": merchant, "n": order.order_number, "e": "bea@example.com"}
    )
    assert blocked["startCustomerSession"]["userErrors"][0]["code"] == "RATE_LIMITED"
    assert blocked["startCustomerSession"]["token"] is None


async def test_staff_overturn_a_claim_at_inspection_and_the_api_refuses_to_refund_it(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db, final_sale_tags=["final-sale"], auto_resolve=True)
    order = await f.order(
        db, shop.id, lines=[f.line(quantity=1, tags=["final-sale"])], placed_days_ago=3
    )
    rma = await f.requested_rma(
        db, shop.id, order, reason=ReturnReason.NOT_AS_DESCRIBED, preferred="REFUND"
    )
    line = gid("RmaLine", rma.lines[0].id)
    await api.gql(
        """mutation($id: ID!, $l: ID!) { receiveRma(id: $id, lines: [{rmaLineId: $l,
             quantity: 1}]) { userErrors { code } } }""",
        {"id": gid("Rma", rma.id), "l": line},
        token=shop.agent,
    )
    inspected = await api.gql(
        """mutation($id: ID!, $l: ID!) { inspectRma(id: $id, lines: [{rmaLineId: $l,
             condition: USED, disposition: RESTOCK, reasonConfirmed: false,
             note: "as pictured"}]) {
             rma { status lines { inspection { reasonConfirmed note } } events { kind } }
             userErrors { code } } }""",
        {"id": gid("Rma", rma.id), "l": line},
        token=shop.agent,
    )
    payload = inspected["inspectRma"]
    assert payload["userErrors"] == []
    assert payload["rma"]["lines"][0]["inspection"] == {
        "reasonConfirmed": False,
        "note": "as pictured",
    }
    assert "CLAIM_OVERTURNED" in [event["kind"] for event in payload["rma"]["events"]]
    refused = await api.gql(
        """mutation($id: ID!) { resolveRma(id: $id, resolution: REFUND, idempotencyKey: "k") {
             resolution { kind } userErrors { code field eligibilityCodes } } }""",
        {"id": gid("Rma", rma.id)},
        token=shop.agent,
    )
    assert refused["resolveRma"]["resolution"] is None
    [error] = refused["resolveRma"]["userErrors"]
    assert error["code"] == "NOT_ELIGIBLE" and error["eligibilityCodes"] == ["FINAL_SALE"]
