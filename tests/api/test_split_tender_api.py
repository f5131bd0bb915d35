"""A refund split over an order's payments, as staff and the customer see it through the API."""

from __future__ import annotations

from core.database import Database
from core.enums import ItemCondition, PaymentProviderName
from core.usecases.orders import PaymentInput
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop
from tests.api.test_permissions import POLICY, start_session

RESOLVE = (
    "mutation($id: ID!) { resolveRma(id: $id, resolution: REFUND) { resolution { part"
    " amount { amountMinor } total { amountMinor } } userErrors { code } } }"
)
PARTS = (
    "query($id: ID) { rma(id: $id) { status resolution { id part } resolutions { id part partOf"
    " kind decision provider status amount { amountMinor } total { amountMinor }"
    " paymentReference } } }"
)
POLICY_FLAG = (
    "mutation { updateReturnPolicy(input: {nonCardRefundsAsStoreCredit: true}) {"
    " returnPolicy { nonCardRefundsAsStoreCredit } userErrors { code } } }"
)


async def test_staff_and_the_customer_see_each_part_of_a_split_refund(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db, **POLICY)
    order = await f.order(
        db,
        shop.id,
        lines=[f.line(quantity=1, unit_price_minor=6000)],
        email="ada@example.com",
        payments=[
            PaymentInput(PaymentProviderName.OTHER, "giftcard-1", 4000, "USD"),
            PaymentInput(PaymentProviderName.LEDGER, "credit-1", 2000, "USD"),
        ],
    )
    rma = await f.inspected_rma(db, shop.id, order, condition=ItemCondition.UNOPENED)
    chosen = (await api.gql(RESOLVE, {"id": gid("Rma", rma.id)}, token=shop.agent))["resolveRma"]
    assert chosen == {
        "resolution": {"part": 0, "amount": {"amountMinor": 2000}, "total": {"amountMinor": 6000}},
        "userErrors": [],
    }

    seen = (await api.gql(PARTS, {"id": gid("Rma", rma.id)}, token=shop.readonly))["rma"]
    zero, one = seen["resolutions"]
    assert seen["resolution"] == {"id": zero["id"], "part": 0}
    assert {key: zero[key] for key in ("part", "partOf", "kind", "decision", "provider")} == {
        "part": 0,
        "partOf": None,
        "kind": "STORE_CREDIT",
        "decision": "REFUND",
        "provider": "LEDGER",
    }
    assert zero["paymentReference"] == "credit-1"
    assert {
        key: one[key] for key in ("part", "partOf", "kind", "decision", "provider", "status")
    } == {
        "part": 1,
        "partOf": zero["id"],
        "kind": "REFUND",
        "decision": "REFUND",
        "provider": "MANUAL",
        "status": "PENDING",
    }
    assert (one["amount"], one["total"], one["paymentReference"]) == (
        {"amountMinor": 4000},
        {"amountMinor": 4000},
        "giftcard-1",
    )

    token = await start_session(api, shop, order, "ada@example.com")
    mine = (await api.gql(PARTS, {"id": gid("Rma", rma.id)}, token=token))["rma"]
    assert [part["paymentReference"] for part in mine["resolutions"]] == [None, None]
    assert [part["amount"] for part in mine["resolutions"]] == [
        {"amountMinor": 2000},
        {"amountMinor": 4000},
    ]

    other = await make_shop(db, **POLICY)
    assert (await api.gql(PARTS, {"id": gid("Rma", rma.id)}, token=other.admin))["rma"] is None


async def test_admins_send_non_card_shares_back_as_store_credit(api: Api, db: Database) -> None:
    shop = await make_shop(db, **POLICY)
    refused = (await api.post(POLICY_FLAG, None, shop.agent)).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    done = (await api.gql(POLICY_FLAG, token=shop.admin))["updateReturnPolicy"]
    assert done == {"returnPolicy": {"nonCardRefundsAsStoreCredit": True}, "userErrors": []}
    order = await f.order(
        db,
        shop.id,
        lines=[f.line(quantity=1, unit_price_minor=6000)],
        payments=[PaymentInput(PaymentProviderName.OTHER, "giftcard-1", 6000, "USD")],
    )
    rma = await f.inspected_rma(db, shop.id, order, condition=ItemCondition.UNOPENED)
    await api.gql(RESOLVE, {"id": gid("Rma", rma.id)}, token=shop.agent)
    seen = (await api.gql(PARTS, {"id": gid("Rma", rma.id)}, token=shop.admin))["rma"]
    [credit] = seen["resolutions"]
    assert (credit["kind"], credit["provider"], credit["amount"]) == (
        "STORE_CREDIT",
        "LEDGER",
        {"amountMinor": 6000},
    )
