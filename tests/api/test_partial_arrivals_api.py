"""A return in several parcels through the API: receipts on the RMA, a parcel resolved while
the next waits for inspection, the rest cancelled; another merchant's receipts are unknown."""

from __future__ import annotations

from typing import Any

from core.database import Database
from core.usecases.requests import ReturnLineInput, request_rma
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop
from tests.api.test_permissions import POLICY

ERRORS = "userErrors { code field message }"
RECEIVE = (
    "mutation($id: ID!, $line: ID!) { receiveRma(id: $id, lines: [{rmaLineId: $line,"
    f" quantity: 1}}]) {{ rma {{ status }} {ERRORS} }} }}"
)
INSPECT = (
    "mutation($id: ID!, $line: ID!) { inspectRma(id: $id, lines: [{rmaLineId: $line,"
    f" condition: UNOPENED, disposition: RESTOCK}}]) {{ rma {{ status }} {ERRORS} }} }}"
)
RESOLVE = (
    "mutation($id: ID!, $receipt: ID) { resolveRma(id: $id, resolution: REFUND,"
    f" receiptId: $receipt) {{ resolution {{ id receiptId status }} rma {{ status }} {ERRORS} }} }}"
)
CANCEL_REST = (
    'mutation($id: ID!) { cancelRemainingUnits(id: $id, reason: "kept by the customer") {'
    f" rma {{ status unitsExpected restExpiresAt }} {ERRORS} }} }}"
)
RECEIPTS = (
    "query($id: ID) { rma(id: $id) { status unitsExpected restExpiresAt receipts {"
    " id sequence status lines { rmaLineId quantity } resolution { id } } } }"
)


async def two_units_asked_for(db: Database, merchant_id: Any) -> tuple[str, str]:
    order = await f.order(db, merchant_id, stripe_paid=False)
    async with db.session() as session:
        rma = await request_rma(
            session,
            merchant_id,
            order_id=order.id,
            lines=[ReturnLineInput(order.lines[0].id, 2, "SIZE_TOO_SMALL", "UNOPENED")],
            actor="customer:test",
            now=f.NOW,
        )
    return gid("Rma", rma.id), gid("RmaLine", rma.lines[0].id)


async def call(api: Api, document: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    data = await api.gql(document, variables, token=token)
    [answer] = data.values()
    assert isinstance(answer, dict)
    return answer


async def test_one_parcel_is_resolved_while_the_next_waits_and_the_rest_is_cancelled(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db, **POLICY)
    rma_id, line_id = await two_units_asked_for(db, shop.id)
    ids = {"id": rma_id, "line": line_id}
    assert (await call(api, RECEIVE, ids, shop.agent))["userErrors"] == []
    assert (await call(api, INSPECT, ids, shop.agent))["userErrors"] == []
    # Nothing waits for inspection: a second receipt starts with the next parcel.
    nothing = await call(api, INSPECT, ids, shop.agent)
    assert nothing["userErrors"][0]["code"] == "INVALID_TRANSITION"

    page = (await api.gql(RECEIPTS, {"id": rma_id}, token=shop.agent))["rma"]
    assert page["unitsExpected"] == 1 and page["restExpiresAt"] is not None
    [first] = page["receipts"]
    assert (first["sequence"], first["status"], first["lines"]) == (
        1,
        "INSPECTED",
        [{"rmaLineId": line_id, "quantity": 1}],
    )

    # The second unit's parcel arrives before the first one is resolved.
    assert (await call(api, RECEIVE, ids, shop.agent))["rma"]["status"] == "RECEIVED"
    resolved = await call(api, RESOLVE, {"id": rma_id, "receipt": first["id"]}, shop.agent)
    assert resolved["userErrors"] == []
    assert resolved["resolution"]["receiptId"] == first["id"]
    assert resolved["rma"]["status"] == "RECEIVED"  # the second parcel waits for inspection
    again = await call(api, RESOLVE, {"id": rma_id, "receipt": first["id"]}, shop.agent)
    assert again["userErrors"][0]["code"] == "INVALID_TRANSITION"
    waiting = await call(api, RESOLVE, {"id": rma_id, "receipt": None}, shop.agent)
    assert waiting["userErrors"][0]["code"] == "INVALID_TRANSITION"

    page = (await api.gql(RECEIPTS, {"id": rma_id}, token=shop.agent))["rma"]
    assert [r["status"] for r in page["receipts"]] == ["RESOLVING", "RECEIVED"]
    assert page["receipts"][0]["resolution"]["id"] == resolved["resolution"]["id"]
    assert page["unitsExpected"] == 0 and page["restExpiresAt"] is None
    nothing_left = await call(api, CANCEL_REST, {"id": rma_id}, shop.agent)
    assert nothing_left["userErrors"][0]["code"] == "INVALID_TRANSITION"


async def test_staff_cancel_units_that_will_not_come(api: Api, db: Database) -> None:
    shop = await make_shop(db, **POLICY)
    rma_id, line_id = await two_units_asked_for(db, shop.id)
    await call(api, RECEIVE, {"id": rma_id, "line": line_id}, shop.agent)
    cancelled = await call(api, CANCEL_REST, {"id": rma_id}, shop.agent)
    assert cancelled["userErrors"] == []
    assert cancelled["rma"] == {"status": "RECEIVED", "unitsExpected": 0, "restExpiresAt": None}
    refused = await call(api, CANCEL_REST, {"id": rma_id}, shop.agent)
    assert refused["userErrors"][0]["code"] == "INVALID_TRANSITION"


async def test_another_merchants_receipt_is_unknown(api: Api, db: Database) -> None:
    mine, theirs = await make_shop(db, **POLICY), await make_shop(db, **POLICY)
    my_rma, my_line = await two_units_asked_for(db, mine.id)
    their_rma, their_line = await two_units_asked_for(db, theirs.id)
    for shop, rma_id, line_id in ((mine, my_rma, my_line), (theirs, their_rma, their_line)):
        await call(api, RECEIVE, {"id": rma_id, "line": line_id}, shop.agent)
        await call(api, INSPECT, {"id": rma_id, "line": line_id}, shop.agent)
    their_receipt = (await api.gql(RECEIPTS, {"id": their_rma}, token=theirs.agent))["rma"][
        "receipts"
    ][0]["id"]
    answer = await call(api, RESOLVE, {"id": my_rma, "receipt": their_receipt}, mine.agent)
    assert answer["userErrors"][0]["code"] == "NOT_FOUND"
    assert answer["userErrors"][0]["field"] == ["receiptId"]
    assert (await api.gql(RECEIPTS, {"id": their_rma}, token=mine.agent))["rma"] is None
