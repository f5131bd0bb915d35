"""Price changes through the API: an AGENT within the policy's limit, an ADMIN beyond it; the
reason is for staff, the customer sees the amounts."""

from __future__ import annotations

from core.database import Database
from core.enums import ItemCondition
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop
from tests.api.test_permissions import POLICY, start_session

RESOLVE = (
    "mutation($id: ID!, $adj: ResolutionAdjustmentsInput) { resolveRma(id: $id,"
    " resolution: REFUND, adjustments: $adj) { resolution { amount { amountMinor }"
    " policyPrice { amountMinor } goodwill { amountMinor } overrideReason }"
    " userErrors { code field message } } }"
)
SEEN = (
    "query($id: ID) { rma(id: $id) { resolution { amount { amountMinor }"
    " policyPrice { amountMinor } overrideReason } } }"
)


async def test_agents_change_prices_within_the_limit_and_admins_beyond(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db, **POLICY, agent_override_limit_minor=500)
    order = await f.order(
        db,
        shop.id,
        lines=[f.line(quantity=2, unit_price_minor=3000)],
        email="ada@example.com",
        stripe_paid=False,
    )
    rma = await f.inspected_rma(db, shop.id, order, condition=ItemCondition.UNOPENED)
    generous = {"reason": "birthday", "goodwillMinor": 501}
    refused = (
        await api.gql(RESOLVE, {"id": gid("Rma", rma.id), "adj": generous}, token=shop.agent)
    )["resolveRma"]
    assert refused["resolution"] is None
    assert refused["userErrors"][0]["code"] == "OVERRIDE_NEEDS_ADMIN"
    assert refused["userErrors"][0]["field"] == ["adjustments"]
    no_reason = (
        await api.gql(
            RESOLVE,
            {"id": gid("Rma", rma.id), "adj": {"reason": "", "goodwillMinor": 1}},
            token=shop.agent,
        )
    )["resolveRma"]
    assert no_reason["userErrors"][0]["field"] == ["adjustments", "reason"]

    done = (await api.gql(RESOLVE, {"id": gid("Rma", rma.id), "adj": generous}, token=shop.admin))[
        "resolveRma"
    ]
    assert done["userErrors"] == []
    assert done["resolution"] == {
        "amount": {"amountMinor": 3501},
        "policyPrice": {"amountMinor": 3000},
        "goodwill": {"amountMinor": 501},
        "overrideReason": "birthday",
    }
    token = await start_session(api, shop, order, "ada@example.com")
    seen = (await api.gql(SEEN, {"id": gid("Rma", rma.id)}, token=token))["rma"]["resolution"]
    assert seen == {
        "amount": {"amountMinor": 3501},
        "policyPrice": {"amountMinor": 3000},
        "overrideReason": None,
    }
