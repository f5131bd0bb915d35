"""Exchanges through the API: staff choose one, the storefront confirms its fulfilment, the
customer follows it on their RMA; other merchants and other roles cannot touch it."""

from __future__ import annotations

from core.database import Database
from core.enums import ItemCondition
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop
from tests.api.test_permissions import EXCHANGE_ROOT_FIELDS, POLICY, start_session
from tests.integration.test_money_jobs import run_jobs

EXCHANGES = {**POLICY, "allowed_resolutions": ["REFUND", "STORE_CREDIT", "EXCHANGE"]}
RESOLVE = (
    "mutation($id: ID!, $exchange: ExchangeInput) { resolveRma(id: $id, resolution: EXCHANGE,"
    " exchange: $exchange) { resolution { kind amount { amountMinor } total { amountMinor } }"
    " userErrors { code field } } }"
)
SEEN = (
    "query($id: ID) { rma(id: $id) { status exchanges { id status note platformOrderId"
    " fulfilmentReference returnedValue { amountMinor } replacementValue { amountMinor }"
    " refunded { amountMinor } amountDue { amountMinor }"
    " lines { title sku variantId quantity unitPrice { amountMinor currency } } } } }"
)
CONFIRM = (
    'mutation($id: ID!) { confirmExchangeFulfilled(id: $id, reference: "ship-9") {'
    " exchange { status fulfilmentReference } userErrors { code field } } }"
)
CANCEL = (
    'mutation($id: ID!) { cancelExchange(id: $id, reason: "out of stock") {'
    " exchange { status cancelReason } userErrors { code field } } }"
)
SWEATER = {
    "lines": [
        {
            "title": "Sweater, size M",
            "quantity": 1,
            "unitPriceMinor": 2500,
            "sku": "SW-M",
            "variantId": "v-42",
        }
    ],
    "note": "size up",
}


def test_every_exchange_root_field_is_covered_here() -> None:
    assert {"confirmExchangeFulfilled", "cancelExchange"} == EXCHANGE_ROOT_FIELDS["Mutation"]
    assert not EXCHANGE_ROOT_FIELDS["Query"]


async def exchanged(api: Api, db: Database) -> tuple[object, object, str]:
    shop = await make_shop(db, **EXCHANGES)
    order = await f.order(
        db,
        shop.id,
        lines=[f.line(quantity=1, unit_price_minor=4000)],
        email="ada@example.com",
        stripe_paid=False,
    )
    rma = await f.inspected_rma(db, shop.id, order, condition=ItemCondition.UNOPENED)
    chosen = (
        await api.gql(RESOLVE, {"id": gid("Rma", rma.id), "exchange": SWEATER}, token=shop.agent)
    )["resolveRma"]
    assert chosen == {
        "resolution": {
            "kind": "EXCHANGE",
            "amount": {"amountMinor": 2500},
            "total": {"amountMinor": 4000},
        },
        "userErrors": [],
    }
    await run_jobs(db, shop.id)
    return shop, order, gid("Rma", rma.id)


async def test_staff_exchange_and_the_storefront_confirms_it(api: Api, db: Database) -> None:
    shop, order, rma = await exchanged(api, db)
    [exchange] = (await api.gql(SEEN, {"id": rma}, token=shop.readonly))["rma"]["exchanges"]
    assert exchange["status"] == "WAITING_FOR_FULFILMENT"
    assert exchange["lines"] == [
        {
            "title": "Sweater, size M",
            "sku": "SW-M",
            "variantId": "v-42",
            "quantity": 1,
            "unitPrice": {"amountMinor": 2500, "currency": "USD"},
        }
    ]
    assert (exchange["refunded"], exchange["amountDue"]) == (
        {"amountMinor": 1500},
        {"amountMinor": 0},
    )

    done = (await api.gql(CONFIRM, {"id": exchange["id"]}, token=shop.agent))[
        "confirmExchangeFulfilled"
    ]
    assert done == {
        "exchange": {"status": "FULFILLED", "fulfilmentReference": "ship-9"},
        "userErrors": [],
    }
    late = (await api.gql(CANCEL, {"id": exchange["id"]}, token=shop.agent))["cancelExchange"]
    assert late["userErrors"] == [{"code": "CONFLICT", "field": ["id"]}]

    # The customer follows it, without the staff-only references.
    token = await start_session(api, shop, order, "ada@example.com")  # type: ignore[arg-type]
    [mine] = (await api.gql(SEEN, {"id": rma}, token=token))["rma"]["exchanges"]
    assert (mine["status"], mine["fulfilmentReference"], mine["platformOrderId"]) == (
        "FULFILLED",
        None,
        None,
    )


async def test_only_this_merchants_agents_and_admins_change_an_exchange(
    api: Api, db: Database
) -> None:
    shop, order, rma = await exchanged(api, db)
    [exchange] = (await api.gql(SEEN, {"id": rma}, token=shop.admin))["rma"]["exchanges"]
    token = await start_session(api, shop, order, "ada@example.com")  # type: ignore[arg-type]
    for caller, code in (
        (shop.readonly, "FORBIDDEN"),
        (token, "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ):
        for document in (CONFIRM, CANCEL):
            response = (await api.post(document, {"id": exchange["id"]}, token=caller)).json()
            assert response["errors"][0]["extensions"]["code"] == code
    other = await make_shop(db, **EXCHANGES)
    for document, name in ((CONFIRM, "confirmExchangeFulfilled"), (CANCEL, "cancelExchange")):
        answer = (await api.gql(document, {"id": exchange["id"]}, token=other.admin))[name]
        assert answer["userErrors"] == [{"code": "NOT_FOUND", "field": ["id"]}]
    assert (await api.gql(SEEN, {"id": rma}, token=other.admin))["rma"] is None
    [unchanged] = (await api.gql(SEEN, {"id": rma}, token=shop.admin))["rma"]["exchanges"]
    assert unchanged["status"] == "WAITING_FOR_FULFILMENT"


async def test_a_bad_replacement_is_a_user_error(api: Api, db: Database) -> None:
    shop = await make_shop(db, **EXCHANGES)
    order = await f.order(db, shop.id, stripe_paid=False)
    rma = await f.inspected_rma(db, shop.id, order, condition=ItemCondition.UNOPENED)
    bad = {"lines": [{"title": "Sweater", "quantity": 0, "unitPriceMinor": 100}]}
    answer = (
        await api.gql(RESOLVE, {"id": gid("Rma", rma.id), "exchange": bad}, token=shop.agent)
    )["resolveRma"]
    assert answer == {
        "resolution": None,
        "userErrors": [{"code": "INVALID_INPUT", "field": ["exchange", "lines", "0", "quantity"]}],
    }
