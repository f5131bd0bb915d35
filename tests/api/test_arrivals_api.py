"""Unmatched arrivals through the API: staff record goods that match no order, then match them
to an order (an unauthorized RMA) or refuse them; one merchant's arrivals only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.database import Database
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop
from tests.api.test_permissions import ARRIVAL_ROOT_FIELDS, POLICY, start_session

ARRIVAL = "arrival { id status description carrier trackingNumber outcomeNote rmaId }"
RECORD = (
    "mutation($input: UnmatchedArrivalInput!) { recordUnmatchedArrival(input: $input) {"
    f" {ARRIVAL} userErrors {{ code field message }} }} }}"
)
MATCH = (
    "mutation($id: ID!, $o: ID!, $lines: [UnauthorizedLineInput!]!) {"
    " matchUnmatchedArrival(id: $id, orderId: $o, lines: $lines) {"
    f" {ARRIVAL} rma {{ status unauthorized }} userErrors {{ code field message }} }} }}"
)
REFUSE = (
    'mutation($id: ID!) { refuseUnmatchedArrival(id: $id, reason: "sent back to sender") {'
    f" {ARRIVAL} userErrors {{ code field message }} }} }}"
)
LIST = "query($s: ArrivalStatus) { unmatchedArrivals(status: $s) { id status description } }"
PARCEL = {
    "description": "one blue scarf, no packing slip",
    "sender": "J. Doe",
    "carrier": "UPS",
    "trackingNumber": "1z999aa10123456784",
}


def test_every_arrival_root_field_is_covered_here() -> None:
    covered = {
        "unmatchedArrivals",
        "recordUnmatchedArrival",
        "matchUnmatchedArrival",
        "refuseUnmatchedArrival",
    }
    assert covered == ARRIVAL_ROOT_FIELDS["Query"] | ARRIVAL_ROOT_FIELDS["Mutation"]


async def record(api: Api, token: str) -> dict[str, Any]:
    answer = (await api.gql(RECORD, {"input": PARCEL}, token=token))["recordUnmatchedArrival"]
    assert answer["userErrors"] == []
    arrival: dict[str, Any] = answer["arrival"]
    return arrival


async def test_staff_record_an_arrival_then_match_or_refuse_it(api: Api, db: Database) -> None:
    shop = await make_shop(db, **POLICY)
    order = await f.order(db, shop.id)
    first = await record(api, shop.agent)
    assert first["status"] == "OPEN" and first["trackingNumber"] == "1Z999AA10123456784"
    second = await record(api, shop.agent)

    lines = [{"orderLineId": gid("OrderLine", order.lines[0].id), "quantity": 1}]
    matched = (
        await api.gql(
            MATCH, {"id": first["id"], "o": gid("Order", order.id), "lines": lines}, shop.agent
        )
    )["matchUnmatchedArrival"]
    assert matched["userErrors"] == []
    assert matched["arrival"]["status"] == "MATCHED" and matched["arrival"]["rmaId"]
    assert matched["rma"] == {"status": "RECEIVED", "unauthorized": True}
    again = (
        await api.gql(
            MATCH, {"id": first["id"], "o": gid("Order", order.id), "lines": lines}, shop.agent
        )
    )["matchUnmatchedArrival"]
    assert again["userErrors"][0]["code"] == "CONFLICT"

    refused = (await api.gql(REFUSE, {"id": second["id"]}, shop.agent))["refuseUnmatchedArrival"]
    assert refused["arrival"]["status"] == "REFUSED"
    assert "sent back to sender" in refused["arrival"]["outcomeNote"]
    listed = await api.gql(LIST, {"s": "OPEN"}, shop.readonly)
    assert listed["unmatchedArrivals"] == []
    everything = await api.gql(LIST, {}, shop.readonly)
    assert {a["status"] for a in everything["unmatchedArrivals"]} == {"MATCHED", "REFUSED"}


async def test_bad_input_is_a_field_error_and_stores_nothing(api: Api, db: Database) -> None:
    shop = await make_shop(db, **POLICY)
    for parcel, field in (
        ({**PARCEL, "description": "  "}, "description"),
        ({**PARCEL, "trackingNumber": "not a tracking number!"}, "trackingNumber"),
    ):
        answer = (await api.gql(RECORD, {"input": parcel}, shop.agent))["recordUnmatchedArrival"]
        assert answer["arrival"] is None
        assert answer["userErrors"][0]["field"] == [field]
    arrival = await record(api, shop.agent)
    unknown_order = {"id": arrival["id"], "o": gid("Order", uuid.uuid4()), "lines": []}
    answer = (await api.gql(MATCH, unknown_order, shop.agent))["matchUnmatchedArrival"]
    assert answer["userErrors"][0]["code"] == "INVALID_INPUT"  # no lines
    assert (await api.gql(LIST, {"s": "OPEN"}, shop.readonly))["unmatchedArrivals"] == [
        {"id": arrival["id"], "status": "OPEN", "description": PARCEL["description"]}
    ]


async def test_another_merchants_arrivals_answer_like_unknown_ones(api: Api, db: Database) -> None:
    ours, theirs = await make_shop(db, **POLICY), await make_shop(db, **POLICY)
    foreign = await record(api, theirs.agent)
    order = await f.order(db, ours.id)
    lines = [{"orderLineId": gid("OrderLine", order.lines[0].id), "quantity": 1}]
    missing = gid("UnmatchedArrival", uuid.uuid4())
    for document, variables in (
        (MATCH, {"o": gid("Order", order.id), "lines": lines}),
        (REFUSE, {}),
    ):
        refused = await api.gql(document, {**variables, "id": foreign["id"]}, ours.agent)
        absent = await api.gql(document, {**variables, "id": missing}, ours.agent)
        name = next(iter(refused))
        assert refused[name]["userErrors"][0]["code"] == "NOT_FOUND"
        assert absent[name]["userErrors"][0]["code"] == "NOT_FOUND"
    assert (await api.gql(LIST, {}, ours.admin))["unmatchedArrivals"] == []
    [still] = (await api.gql(LIST, {}, theirs.admin))["unmatchedArrivals"]
    assert still["status"] == "OPEN"


@pytest.mark.parametrize("role", ["readonly", "customer", "anonymous"])
async def test_only_agents_and_admins_change_arrivals(api: Api, db: Database, role: str) -> None:
    shop = await make_shop(db, **POLICY)
    arrival = await record(api, shop.admin)
    order = await f.order(db, shop.id, email="cus@example.com")
    if role == "customer":
        token: str | None = await start_session(api, shop, order, "cus@example.com")
    else:
        token = None if role == "anonymous" else shop.readonly
    expected = "UNAUTHENTICATED" if role == "anonymous" else "FORBIDDEN"
    lines = [{"orderLineId": gid("OrderLine", order.lines[0].id), "quantity": 1}]
    calls: list[tuple[str, dict[str, Any]]] = [
        (RECORD, {"input": PARCEL}),
        (MATCH, {"id": arrival["id"], "o": gid("Order", order.id), "lines": lines}),
        (REFUSE, {"id": arrival["id"]}),
    ]
    if role != "readonly":
        calls.append((LIST, {}))
    for document, variables in calls:
        payload = (await api.post(document, variables, token)).json()
        assert payload["errors"][0]["extensions"]["code"] == expected, (document, payload)
    [kept] = (await api.gql(LIST, {}, shop.admin))["unmatchedArrivals"]
    assert kept["status"] == "OPEN"
