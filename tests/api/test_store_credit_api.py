"""Store credit through the API: AGENT and ADMIN spend it, staff and the customer themselves
read the ledger; another merchant's customer is unknown."""

from __future__ import annotations

from typing import Any

from core.database import Database
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop
from tests.api.test_permissions import POLICY, STORE_CREDIT_ROOT_FIELDS, start_session
from tests.integration.test_store_credit_redemption import credited

REDEEM = (
    "mutation($input: RedeemStoreCreditInput!) { redeemStoreCredit(input: $input) {"
    " entry { id kind amount { amountMinor currency } note } balance { amountMinor }"
    " userErrors { code field message } } }"
)
LEDGER = (
    "query($id: ID!) { customer(id: $id) { storeCreditBalance { amountMinor currency }"
    " storeCreditEntries(first: 10) { nodes { kind amount { amountMinor } note }"
    " pageInfo { hasNextPage } } } }"
)
MY_LEDGER = (
    "{ me { customer { storeCreditBalance { amountMinor }"
    " storeCreditEntries { nodes { kind amount { amountMinor } } } } } }"
)


def test_every_store_credit_root_field_is_covered_here() -> None:
    assert {"redeemStoreCredit"} == STORE_CREDIT_ROOT_FIELDS["Mutation"]
    assert not STORE_CREDIT_ROOT_FIELDS["Query"]


def spending(customer: str, amount: int, key: str) -> dict[str, Any]:
    return {
        "input": {
            "customerId": customer,
            "amount": {"amountMinor": amount, "currency": "USD"},
            "reference": "checkout 77",
            "idempotencyKey": key,
        }
    }


async def test_agents_spend_credit_and_the_ledger_shows_it(api: Api, db: Database) -> None:
    shop = await make_shop(db, **POLICY)
    _, customer = await credited(db, 2500, shop.id)
    customer_id = gid("Customer", customer)
    answer = (await api.gql(REDEEM, spending(customer_id, 1000, "k1"), token=shop.agent))[
        "redeemStoreCredit"
    ]
    assert answer["userErrors"] == []
    assert answer["entry"]["kind"] == "REDEEMED"
    assert answer["entry"]["amount"] == {"amountMinor": -1000, "currency": "USD"}
    assert answer["balance"] == {"amountMinor": 1500}
    too_much = (await api.gql(REDEEM, spending(customer_id, 1501, "k2"), token=shop.admin))[
        "redeemStoreCredit"
    ]
    assert too_much["entry"] is None
    assert too_much["userErrors"][0]["code"] == "INSUFFICIENT_CREDIT"
    assert too_much["userErrors"][0]["field"] == ["amount", "amountMinor"]

    ledger = (await api.gql(LEDGER, {"id": customer_id}, token=shop.readonly))["customer"]
    assert ledger["storeCreditBalance"] == [{"amountMinor": 1500, "currency": "USD"}]
    assert [
        (n["kind"], n["amount"]["amountMinor"]) for n in ledger["storeCreditEntries"]["nodes"]
    ] == [
        ("REDEEMED", -1000),
        ("ISSUED", 2500),
    ]


async def test_only_agents_and_admins_spend_credit(api: Api, db: Database) -> None:
    shop = await make_shop(db, **POLICY)
    order = await f.order(db, shop.id, email="ada@example.com")
    _, customer = await credited(db, 800, shop.id, email="ada@example.com")
    token = await start_session(api, shop, order, "ada@example.com")
    variables = spending(gid("Customer", customer), 100, "k")
    for caller, code in (
        (shop.readonly, "FORBIDDEN"),
        (token, "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ):
        response = (await api.post(REDEEM, variables, token=caller)).json()
        assert response["errors"][0]["extensions"]["code"] == code
    # The customer reads their own ledger, and nothing was spent.
    mine = (await api.gql(MY_LEDGER, token=token))["me"]["customer"]
    assert mine["storeCreditBalance"] == [{"amountMinor": 800}]
    assert [n["kind"] for n in mine["storeCreditEntries"]["nodes"]] == ["ISSUED"]


async def test_another_merchants_customer_is_unknown(api: Api, db: Database) -> None:
    mine, theirs = await make_shop(db, **POLICY), await make_shop(db, **POLICY)
    _, their_customer = await credited(db, 900, theirs.id)
    answer = (
        await api.gql(REDEEM, spending(gid("Customer", their_customer), 100, "x"), token=mine.agent)
    )["redeemStoreCredit"]
    assert answer["userErrors"][0]["code"] == "NOT_FOUND"
    assert answer["userErrors"][0]["field"] == ["customerId"]
    assert (await api.gql(LEDGER, {"id": gid("Customer", their_customer)}, token=mine.agent))[
        "customer"
    ] is None
