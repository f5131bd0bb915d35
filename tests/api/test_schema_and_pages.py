"""The committed SDL, keyset pagination and the list filters frontends use."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.usecases.review import cancel_rma
from graphql_api.schema import schema_sdl
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema_sdl(), "run `rma schema > schema.graphql` and commit it"


async def test_rmas_page_through_every_row_once_newest_first(api: Api, db: Database) -> None:
    shop = await make_shop(db)
    made = []
    for _ in range(7):
        order = await f.order(db, shop.id)
        made.append(await f.requested_rma(db, shop.id, order))
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await api.gql(
            """query($after: String) { rmas(first: 3, after: $after) {
                 edges { cursor node { number createdAt } }
                 pageInfo { hasNextPage endCursor } } }""",
            {"after": after},
            token=shop.readonly,
        )
        connection = page["rmas"]
        seen += [edge["node"]["number"] for edge in connection["edges"]]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert pages == 3
    assert sorted(seen) == sorted(rma.number for rma in made)
    assert len(set(seen)) == 7


async def test_rmas_filter_by_status_reason_email_and_order(api: Api, db: Database) -> None:
    shop = await make_shop(db)
    first = await f.order(db, shop.id, email="ines@example.com")
    second = await f.order(db, shop.id, email="jon@example.com")
    kept = await f.requested_rma(db, shop.id, first, reason=f.ReturnReason.COLOR)
    cancelled = await f.requested_rma(db, shop.id, second)
    async with db.session() as session:
        await cancel_rma(session, shop.id, cancelled.id, actor="c", now=SYSTEM_CLOCK.now())

    async def numbers(filter_: dict[str, object]) -> list[str]:
        data = await api.gql(
            "query($f: RmaFilter) { rmas(filter: $f) { nodes { number } } }",
            {"f": filter_},
            token=shop.agent,
        )
        return [node["number"] for node in data["rmas"]["nodes"]]

    assert await numbers({"status": ["CANCELLED"]}) == [cancelled.number]
    assert await numbers({"reason": "COLOR"}) == [kept.number]
    assert await numbers({"customerEmail": "INES@example.com"}) == [kept.number]
    assert await numbers({"orderId": gid("Order", second.id)}) == [cancelled.number]
    later = (f.NOW + timedelta(days=1)).isoformat()
    assert await numbers({"createdFrom": later}) == []
    assert sorted(await numbers({"createdTo": later})) == sorted([kept.number, cancelled.number])


async def test_orders_filter_by_number_and_email(api: Api, db: Database) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, email="kai@example.com")
    await f.order(db, shop.id, email="lea@example.com")
    data = await api.gql(
        """query($n: String, $e: String) {
             byNumber: orders(filter: {orderNumber: $n}) { nodes { orderNumber } }
             byEmail: orders(filter: {customerEmail: $e}) {
               nodes { orderNumber customer { email } } }
           }""",
        {"n": order.order_number, "e": "kai@example.com"},
        token=shop.agent,
    )
    assert data["byNumber"]["nodes"] == [{"orderNumber": order.order_number}]
    assert data["byEmail"]["nodes"] == [
        {"orderNumber": order.order_number, "customer": {"email": "kai@example.com"}}
    ]


async def test_node_fetches_each_type_by_global_id(api: Api, db: Database) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id)
    rma = await f.requested_rma(db, shop.id, order)
    data = await api.gql(
        """query($r: ID!, $o: ID!, $c: ID!) {
             r: node(id: $r) { id ... on Rma { number } }
             o: node(id: $o) { id ... on Order { orderNumber } }
             c: node(id: $c) { id ... on Customer { email } }
             bad: node(id: "not-an-id") { id } }""",
        {
            "r": gid("Rma", rma.id),
            "o": gid("Order", order.id),
            "c": gid("Customer", order.customer_id),
        },
        token=shop.readonly,
    )
    assert data["r"]["number"] == rma.number
    assert data["o"]["orderNumber"] == order.order_number
    assert data["c"]["email"].endswith("@example.com")
    assert data["bad"] is None


async def test_policy_updates_make_a_new_version_for_admins(api: Api, db: Database) -> None:
    shop = await make_shop(db)
    data = await api.gql(
        """mutation { updateReturnPolicy(input: {returnWindowDays: 45,
             finalSaleTags: ["final-sale"], allowedResolutions: [REFUND]}) {
             returnPolicy { version returnWindowDays finalSaleTags allowedResolutions }
             userErrors { code field } } }""",
        token=shop.admin,
    )
    assert data["updateReturnPolicy"]["returnPolicy"] == {
        "version": 2,
        "returnWindowDays": 45,
        "finalSaleTags": ["final-sale"],
        "allowedResolutions": ["REFUND"],
    }
    bad = await api.gql(
        "mutation { updateReturnPolicy(input: {restockingFeePercent: 150}) "
        "{ returnPolicy { version } userErrors { code field } } }",
        token=shop.admin,
    )
    assert bad["updateReturnPolicy"]["userErrors"] == [
        {"code": "INVALID_INPUT", "field": ["restockingFeePercent"]}
    ]
    current = await api.gql("{ returnPolicy { version } }", token=shop.readonly)
    assert current["returnPolicy"]["version"] == 2


async def test_storefronts_push_orders_idempotently(api: Api, db: Database) -> None:
    shop = await make_shop(db)
    mutation = """mutation($input: UpsertOrderInput!) { upsertOrder(input: $input) {
        order { id orderNumber total { amountMinor currency } lines { title }
                payments { provider captured { amountMinor } } }
        userErrors { code field message } } }"""
    order_input = {
        "externalId": "sf-1001",
        "orderNumber": "SF-1001",
        "currency": "JPY",
        "placedAt": f.NOW.isoformat(),
        "customer": {"email": "mia@example.com"},
        "lines": [{"externalId": "a", "title": "Tea set", "quantity": 1, "unitPriceMinor": 4800}],
        "payments": [
            {"provider": "STRIPE", "reference": "pi_123", "capturedMinor": 4800, "currency": "JPY"}
        ],
    }
    first = await api.gql(mutation, {"input": order_input}, token=shop.agent)
    second = await api.gql(mutation, {"input": order_input}, token=shop.agent)
    assert first["upsertOrder"]["order"]["id"] == second["upsertOrder"]["order"]["id"]
    assert first["upsertOrder"]["order"]["total"] == {"amountMinor": 4800, "currency": "JPY"}
    mismatched = {
        **order_input,
        "externalId": "sf-1002",
        "payments": [{**order_input["payments"][0], "currency": "USD"}],
    }  # type: ignore[dict-item]
    refused = await api.gql(mutation, {"input": mismatched}, token=shop.agent)
    assert refused["upsertOrder"]["order"] is None
    assert refused["upsertOrder"]["userErrors"][0]["code"] == "CURRENCY_MISMATCH"
