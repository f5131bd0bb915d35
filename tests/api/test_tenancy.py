"""Merchants never see or touch each other's data.

Merchant A's staff holding merchant B's IDs get exactly what a made-up ID gets, for every query
and mutation that takes one; broad queries as A never carry B's sentinel data; and B's returns are
unchanged after A's attempts.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order
from core.enums import ApiKeyRole, PaymentProviderName, RmaStatus
from core.rules.numbers import RANDOM_BITS
from core.usecases.merchants import create_api_key, create_merchant
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.requests import ReturnLineInput, request_rma
from tests import factories as f
from tests.api.conftest import Api, Shop, gid, make_shop
from tests.api.test_permissions import (
    MUTATIONS,
    POLICY,
    REFUSAL,
    START_SESSION,
    Stages,
    normalised,
    post,
    random_rma_number,
    request_input,
    snapshot,
    stage_rmas,
    start_session,
    unauthorized_input,
)

SENTINEL = "SENTINEL-B"


@dataclass
class Tenant:
    shop: Shop
    stages: Stages
    order: Order  # an order with no returns: "#SENTINEL-B" for B
    email: str  # the customer of every order

    def rma(self, stage: str) -> str:
        return self.stages.rma_id(stage)

    def line(self, stage: str) -> str:
        return self.stages.line_id(stage)

    def ids(self) -> set[str]:
        """Every id of this tenant's rows, as uuids and as global IDs."""
        raw: set[tuple[str, uuid.UUID]] = {
            ("Merchant", self.shop.id),
            ("Order", self.order.id),
            ("Customer", self.order.customer_id),
        }
        for order in (self.order, self.stages.spare):
            raw |= {("Order", order.id), ("Customer", order.customer_id)}
            raw |= {("OrderLine", line.id) for line in order.lines}
        for rma in self.stages.rmas.values():
            raw |= {("Rma", rma.id), ("Order", rma.order_id)}
            raw |= {("RmaLine", line.id) for line in rma.lines}
            raw |= {("OrderLine", line.order_line_id) for line in rma.lines}
        raw.add(("Resolution", self.stages.manual_resolution))
        raw.add(("Resolution", self.stages.review_resolution))
        return {str(row_id) for _, row_id in raw} | {gid(kind, row_id) for kind, row_id in raw}


async def tenant_a(db: Database) -> Tenant:
    shop = await make_shop(db, **POLICY)
    email = f"alice-{uuid.uuid4().hex[:8]}@example.com"
    stages = await stage_rmas(db, shop.id, lambda: f.order(db, shop.id, email=email))
    return Tenant(shop, stages, await f.order(db, shop.id, email=email), email)


async def tenant_b(db: Database) -> Tenant:
    """A merchant whose every text carries the sentinel, so a leak shows in any response."""
    async with db.session() as session:
        merchant = await create_merchant(
            session, name=f"{SENTINEL} Outfitters", now=SYSTEM_CLOCK.now()
        )
    async with db.session() as session:
        await update_return_policy(
            session,
            merchant.id,
            PolicyChanges(
                **POLICY,  # type: ignore[arg-type]
                special_instructions=f"{SENTINEL}: use the back door",
                troubleshooting_steps=[f"{SENTINEL} restart it"],
                final_sale_tags=[f"{SENTINEL.lower()}-final"],
                unopened_only_categories=[f"{SENTINEL.lower()}-sealed"],
            ),
            now=SYSTEM_CLOCK.now(),
        )
    keys = {}
    for role in ApiKeyRole:
        async with db.session() as session:
            issued = await create_api_key(
                session,
                merchant_id=merchant.id,
                role=role,
                label=f"{SENTINEL} {role}",
                now=SYSTEM_CLOCK.now(),
            )
        keys[role] = issued.plaintext
    shop = Shop(merchant, keys[ApiKeyRole.ADMIN], keys[ApiKeyRole.AGENT], keys[ApiKeyRole.READONLY])
    email = f"sentinel-b-{uuid.uuid4().hex}@example.com"
    counter = itertools.count(1)

    async def new_order(number: str | None = None) -> Order:
        n = next(counter)
        async with db.session() as session:
            return await upsert_order(
                session,
                merchant.id,
                OrderInput(
                    platform="storefront",
                    external_id=f"{SENTINEL}-{n}",
                    order_number=number or f"#{SENTINEL}-{n}",
                    currency="USD",
                    placed_at=f.NOW - timedelta(days=10),
                    delivered_at=f.NOW - timedelta(days=8),
                    customer=CustomerInput(
                        email=email,
                        name=f"{SENTINEL} Person",
                        external_id=f"{SENTINEL}-customer",
                        stripe_customer_id=f"cus_{SENTINEL}",
                    ),
                    lines=[
                        OrderLineInput(
                            external_id=f"{SENTINEL}-L1",
                            title=f"{SENTINEL} jacket",
                            quantity=2,
                            unit_price_minor=2500,
                            sku=f"{SENTINEL}-SKU",
                            category=f"{SENTINEL.lower()}-outerwear",
                            tags=(f"{SENTINEL.lower()}-tag",),
                        )
                    ],
                    payments=[
                        PaymentInput(PaymentProviderName.STRIPE, f"pi_{SENTINEL}-{n}", 5000, "USD")
                    ],
                ),
                now=SYSTEM_CLOCK.now(),
            )

    main = await new_order(f"#{SENTINEL}")
    stages = await stage_rmas(db, merchant.id, new_order, note=f"{SENTINEL} note")
    return Tenant(shop, stages, main, email)


async def b_state(api: Api, b: Tenant) -> dict[str, str]:
    """B's RMAs' statuses, as B sees them."""
    statuses = {}
    for stage in b.stages.rmas:
        data = await api.gql(
            "query($id: ID) { rma(id: $id) { status } }", {"id": b.rma(stage)}, token=b.shop.admin
        )
        statuses[stage] = data["rma"]["status"]
    return statuses


STAGE_STATUSES = {
    "authorized": "AUTHORIZED",
    "received": "RECEIVED",
    "inspected": "INSPECTED",
    "resolved": "RESOLVED",
    "to_authorize": "REQUESTED",
    "to_reject": "REQUESTED",
    "to_cancel": "REQUESTED",
    "to_refuse": "RECEIVED",
    "partly_received": "RECEIVED",
}
EMPTY_PAGE = {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


def random_id() -> uuid.UUID:
    return uuid.uuid4()


async def test_queries_with_another_merchants_ids_answer_like_unknown_ids(
    api: Api, db: Database
) -> None:
    a, b = await tenant_a(db), await tenant_b(db)
    rma = b.stages.rmas["inspected"]
    page = "edges { node { id } } pageInfo { hasNextPage endCursor }"
    cases: list[tuple[str, str, str, Any]] = [
        (
            "query($v: ID!) { node(id: $v) { id ... on Rma { number } } }",
            gid("Rma", rma.id),
            gid("Rma", random_id()),
            {"node": None},
        ),
        (
            "query($v: ID!) { node(id: $v) { id ... on Order { orderNumber } } }",
            gid("Order", b.order.id),
            gid("Order", random_id()),
            {"node": None},
        ),
        (
            "query($v: ID!) { node(id: $v) { id ... on Customer { email } } }",
            gid("Customer", b.order.customer_id),
            gid("Customer", random_id()),
            {"node": None},
        ),
        (
            "query($v: ID) { rma(id: $v) { id number status } }",
            gid("Rma", rma.id),
            gid("Rma", random_id()),
            {"rma": None},
        ),
        (
            "query($v: String) { rma(number: $v) { id number status } }",
            rma.number,
            random_rma_number(),
            {"rma": None},
        ),
        (
            "query($v: ID!) { order(id: $v) { id orderNumber } }",
            gid("Order", b.order.id),
            gid("Order", random_id()),
            {"order": None},
        ),
        (
            "query($v: ID!) { returnEligibility(orderId: $v) { policyVersion } }",
            gid("Order", b.order.id),
            gid("Order", random_id()),
            {"returnEligibility": None},
        ),
        (
            "query($v: ID!) { customer(id: $v) { id email } }",
            gid("Customer", b.order.customer_id),
            gid("Customer", random_id()),
            {"customer": None},
        ),
        (
            f"query($v: ID) {{ rmas(filter: {{orderId: $v}}) {{ {page} }} }}",
            gid("Order", rma.order_id),
            gid("Order", random_id()),
            {"rmas": EMPTY_PAGE},
        ),
        (
            f"query($v: String) {{ rmas(filter: {{customerEmail: $v}}) {{ {page} }} }}",
            b.email,
            f"nobody-{uuid.uuid4().hex}@example.com",
            {"rmas": EMPTY_PAGE},
        ),
        (
            f"query($v: String) {{ orders(filter: {{orderNumber: $v}}) {{ {page} }} }}",
            b.order.order_number,
            "#NO-SUCH-ORDER",
            {"orders": EMPTY_PAGE},
        ),
        (
            f"query($v: String) {{ orders(filter: {{customerEmail: $v}}) {{ {page} }} }}",
            b.email,
            f"nobody-{uuid.uuid4().hex}@example.com",
            {"orders": EMPTY_PAGE},
        ),
    ]
    customer_token = await start_session(api, a.shop, a.order, a.email)
    for document, theirs, unknown, expected in cases:
        for token in (a.shop.admin, a.shop.readonly, customer_token):
            seen = await post(api, document, {"v": theirs}, token=token)
            assert seen == {"data": expected}, (document, seen)
            made_up = await post(api, document, {"v": unknown}, token=token)
            assert normalised(seen, theirs) == normalised(made_up, unknown), document
        # The same ID in B's hands finds B's object: A was refused it, it is not missing.
        own = await post(api, document, {"v": theirs}, token=b.shop.readonly)
        assert "errors" not in own
        assert own["data"] != expected, document


def _inspect(rma_id: str, line_id: str) -> dict[str, Any]:
    return {
        "id": rma_id,
        "lines": [{"rmaLineId": line_id, "condition": "UNOPENED", "disposition": "RESTOCK"}],
    }


def _receive(rma_id: str, line_id: str) -> dict[str, Any]:
    return {"id": rma_id, "lines": [{"rmaLineId": line_id, "quantity": 1}]}


async def test_mutations_with_another_merchants_ids_answer_like_unknown_ids(
    api: Api, db: Database
) -> None:
    a, b = await tenant_a(db), await tenant_b(db)
    u = [random_id() for _ in range(18)]
    spare_line = gid("OrderLine", b.stages.spare.lines[0].id)
    # (mutation, B's ids (True) or A's own target with B's ids (False), B's vars, made-up vars)
    cases: list[tuple[str, bool, dict[str, Any], dict[str, Any]]] = [
        (
            "requestRma",
            True,
            request_input(gid("Order", b.stages.spare.id), spare_line),
            request_input(gid("Order", u[0]), gid("OrderLine", u[1])),
        ),
        (
            "requestRma",
            False,
            request_input(gid("Order", a.order.id), spare_line),
            request_input(gid("Order", a.order.id), gid("OrderLine", u[2])),
        ),
        (
            "receiveUnauthorized",
            True,
            unauthorized_input(gid("Order", b.stages.spare.id), spare_line),
            unauthorized_input(gid("Order", u[15]), gid("OrderLine", u[16])),
        ),
        (
            "receiveUnauthorized",
            False,
            unauthorized_input(gid("Order", a.order.id), spare_line),
            unauthorized_input(gid("Order", a.order.id), gid("OrderLine", u[16])),
        ),
        ("authorizeRma", True, {"id": b.rma("to_authorize")}, {"id": gid("Rma", u[3])}),
        ("rejectRma", True, {"id": b.rma("to_reject")}, {"id": gid("Rma", u[4])}),
        ("cancelRma", True, {"id": b.rma("to_cancel")}, {"id": gid("Rma", u[5])}),
        (
            "refuseGoods",
            True,
            {"id": b.rma("to_refuse"), "input": REFUSAL},
            {"id": gid("Rma", u[14]), "input": REFUSAL},
        ),
        (
            "cancelRemainingUnits",
            True,
            {"id": b.rma("partly_received")},
            {"id": gid("Rma", u[17])},
        ),
        ("recordRmaShipment", True, {"id": b.rma("authorized")}, {"id": gid("Rma", u[6])}),
        (
            "receiveRma",
            True,
            _receive(b.rma("authorized"), b.line("authorized")),
            _receive(gid("Rma", u[7]), gid("RmaLine", u[8])),
        ),
        (
            "receiveRma",
            False,
            _receive(a.rma("authorized"), b.line("authorized")),
            _receive(a.rma("authorized"), gid("RmaLine", u[8])),
        ),
        (
            "inspectRma",
            True,
            _inspect(b.rma("received"), b.line("received")),
            _inspect(gid("Rma", u[9]), gid("RmaLine", u[10])),
        ),
        (
            "inspectRma",
            False,
            _inspect(a.rma("received"), b.line("received")),
            _inspect(a.rma("received"), gid("RmaLine", u[10])),
        ),
        ("resolveRma", True, {"id": b.rma("inspected")}, {"id": gid("Rma", u[11])}),
        ("closeRma", True, {"id": b.rma("resolved")}, {"id": gid("Rma", u[11])}),
        (
            "recordManualRefund",
            True,
            {"id": gid("Resolution", b.stages.manual_resolution)},
            {"id": gid("Resolution", u[12])},
        ),
        (
            "retryResolution",
            True,
            {"id": gid("Resolution", b.stages.review_resolution)},
            {"id": gid("Resolution", u[13])},
        ),
    ]
    b_ids = b.ids()
    unknown_ids = {str(value) for value in u}
    a_before, b_before = await snapshot(api, a.shop), await snapshot(api, b.shop)
    assert await b_state(api, b) == STAGE_STATUSES

    for name, _, theirs, made_up in cases:
        seen = await post(api, MUTATIONS[name], theirs, token=a.shop.admin)
        missing = await post(api, MUTATIONS[name], made_up, token=a.shop.admin)
        assert "errors" not in seen, seen
        result = seen["data"][name]
        assert result["rma"] is None, (name, result)
        assert [error["code"] for error in result["userErrors"]] == ["NOT_FOUND"], (name, result)
        assert [e["field"] for e in result["userErrors"]] == [
            e["field"] for e in missing["data"][name]["userErrors"]
        ]
        assert normalised(seen, *b_ids) == normalised(missing, *unknown_ids), name

    assert await snapshot(api, b.shop) == b_before
    assert await snapshot(api, a.shop) == a_before
    assert await b_state(api, b) == STAGE_STATUSES

    # Each of those IDs was live: B's own staff succeed with exactly the same arguments.
    for name, only_b, theirs, _ in cases:
        if only_b:
            result = (await api.gql(MUTATIONS[name], theirs, token=b.shop.admin))[name]
            assert result["userErrors"] == [], (name, result)


async def test_a_session_for_another_merchants_order_fails_like_an_unknown_pair(
    api: Api, db: Database
) -> None:
    a, b = await tenant_a(db), await tenant_b(db)

    async def attempt(merchant: uuid.UUID, number: str, email: str) -> dict[str, Any]:
        variables = {"m": gid("Merchant", merchant), "n": number, "e": email}
        return await post(api, START_SESSION, variables)

    crossed = await attempt(a.shop.id, b.order.order_number, b.email)
    unknown = await attempt(a.shop.id, "#NO-SUCH-ORDER", f"nobody-{uuid.uuid4().hex}@example.com")
    assert crossed == unknown
    assert crossed["data"]["startCustomerSession"]["token"] is None
    assert crossed["data"]["startCustomerSession"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    # A made-up merchant with B's real pair fails the same way.
    assert await attempt(random_id(), b.order.order_number, b.email) == unknown
    # B's pair works with B's own merchant id.
    token = await start_session(api, b.shop, b.order, b.email)
    me = await api.gql("{ me { merchant { id } } }", token=token)
    assert me["me"]["merchant"]["id"] == gid("Merchant", b.shop.id)


STATUSES = " ".join(status.value for status in RmaStatus)
MONEY = "amountMinor currency formatted"
ORDER_LINE = f"id externalId sku title quantity category tags unitPrice {{ {MONEY} }}"
CUSTOMER = f"id email name storeCreditBalance {{ {MONEY} }}"
RESOLUTION = (
    f"id kind provider status amount {{ {MONEY} }} restockingFee {{ amountMinor }}"
    " providerReference failureReason createdAt"
)


def broad_query(*, staff: bool) -> str:
    """Every list, filter and nested field A may read; customers skip the staff-only fields."""
    risk = "riskScore riskSignals" if staff else ""
    reference = "reference" if staff else ""
    rma = f"""id number status currency unauthorized preferredResolution customerNote createdAt
      updatedAt authorizedAt authorizationExpiresAt receivedAt inspectedAt resolvedAt closedAt
      {risk} specialInstructions decision {{ policyVersion lines }}
      lines {{ id quantity receivedQuantity reason condition comment eligibilityCodes
        orderLine {{ {ORDER_LINE} }} inspection {{ condition disposition note inspectedAt }} }}
      shipments {{ carrier trackingNumber trackingUrl createdAt }}
      resolutions {{ {RESOLUTION} }} resolution {{ id }}
      events {{ sequence kind actor fromStatus toStatus message data createdAt }}
      customer {{ {CUSTOMER} }}
      order {{ id orderNumber externalId payments {{ provider {reference} captured {{ {MONEY} }} }}
        rmas {{ id number customerNote }} }}"""
    order = f"""id platform externalId orderNumber currency placedAt deliveredAt
      shipping {{ {MONEY} }} total {{ {MONEY} }} lines {{ {ORDER_LINE} }}
      payments {{ provider {reference} captured {{ {MONEY} }} }} customer {{ {CUSTOMER} }}
      rmas {{ id number status customerNote lines {{ comment orderLine {{ title sku }} }}
        events {{ message }} }}"""
    return f"""query($email: String, $number: String) {{
      me {{ kind role merchant {{ id name defaultCurrency }} customer {{ {CUSTOMER} }} }}
      returnPolicy {{ version returnWindowDays warrantyDays unopenedOnlyCategories finalSaleTags
        restockingFeePercent shippingRefundReasons allowedResolutions storeCreditBonusPercent
        autoAuthorize autoAuthorizeMaxRisk autoResolve authorizationValidDays
        troubleshootingRequiredReasons troubleshootingSteps specialInstructions createdAt }}
      rmas(first: 100) {{ edges {{ cursor node {{ {rma} }} }}
        pageInfo {{ hasNextPage endCursor }} }}
      byEmail: rmas(first: 100, filter: {{customerEmail: $email}}) {{ nodes {{ id number }} }}
      byStatus: rmas(first: 100, filter: {{status: [{STATUSES}]}}) {{ nodes {{ id number }} }}
      orders(first: 100) {{ edges {{ cursor node {{ {order} }} }} pageInfo {{ hasNextPage }} }}
      byNumber: orders(first: 100, filter: {{orderNumber: $number}}) {{ nodes {{ id }} }}
      ordersByEmail: orders(first: 100, filter: {{customerEmail: $email}}) {{ nodes {{ id }} }}
    }}"""


async def test_broad_queries_never_carry_another_merchants_data(api: Api, db: Database) -> None:
    a, b = await tenant_a(db), await tenant_b(db)
    forbidden = b.ids() | {rma.number for rma in b.stages.rmas.values()} | {b.email}
    customer_token = await start_session(api, a.shop, a.order, a.email)
    callers = [
        (a.shop.admin, True),
        (a.shop.agent, True),
        (a.shop.readonly, True),
        (customer_token, False),
    ]
    for filters in (
        {"email": b.email, "number": b.order.order_number},
        {"email": None, "number": None},
    ):
        for token, staff in callers:
            body = {"query": broad_query(staff=staff), "variables": filters}
            response = await api.client.post(
                "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200
            assert "errors" not in response.json(), response.json()["errors"]
            text = response.text
            assert "sentinel" not in text.lower()
            assert not [value for value in forbidden if value in text]
            # Not vacuous: A's own returns are all there.
            for rma in a.stages.rmas.values():
                assert rma.number in text


async def test_natural_keys_are_per_merchant(api: Api, db: Database) -> None:
    """Order external ids, customer e-mails, RMA numbers and idempotency keys may repeat across
    merchants; each merchant only ever reaches its own."""
    a, b = await tenant_a(db), await tenant_b(db)
    b_before = await snapshot(api, b.shop)

    upsert = MUTATIONS["upsertOrder"].replace(
        "order { id orderNumber }", "order { id customer { id } }"
    )
    line = {"externalId": f"{SENTINEL}-L1", "title": "A's", "quantity": 1, "unitPriceMinor": 100}
    upserted = await api.gql(
        upsert,
        {
            "input": {
                "externalId": b.order.external_id,
                "orderNumber": b.order.order_number,
                "currency": "USD",
                "placedAt": f.NOW.isoformat(),
                "customer": {"email": b.email, "name": "Someone at A"},
                "lines": [line],
            }
        },
        token=a.shop.admin,
    )
    pushed = upserted["upsertOrder"]
    assert pushed["userErrors"] == []
    assert pushed["order"]["id"] != gid("Order", b.order.id)
    assert pushed["order"]["customer"]["id"] != gid("Customer", b.order.customer_id)

    # The same RMA number at both merchants: each finds its own.
    bits = secrets.randbits(RANDOM_BITS)
    made = {}
    for tenant in (a, b):
        order = tenant.stages.spare
        async with db.session() as session:
            made[tenant.shop.id] = await request_rma(
                session,
                tenant.shop.id,
                order_id=order.id,
                lines=[ReturnLineInput(order.lines[0].id, 1, "SIZE_TOO_SMALL")],
                actor="customer:test",
                now=f.NOW,
                number_source=lambda: bits,
            )
    number = made[a.shop.id].number
    assert made[b.shop.id].number == number
    for tenant in (a, b):
        found = await api.gql(
            "query($n: String) { rma(number: $n) { id } }", {"n": number}, token=tenant.shop.admin
        )
        assert found["rma"]["id"] == gid("Rma", made[tenant.shop.id].id)

    # The same idempotency key at both merchants: two resolutions, no conflict.
    resolve = MUTATIONS["resolveRma"]
    key = f"{SENTINEL}-key-{uuid.uuid4().hex}"
    theirs = await api.gql(resolve, {"id": b.rma("inspected"), "key": key}, token=b.shop.admin)
    ours = await api.gql(resolve, {"id": a.rma("inspected"), "key": key}, token=a.shop.admin)
    assert ours["resolveRma"]["userErrors"] == []
    assert ours["resolveRma"]["rma"]["id"] == a.rma("inspected")
    assert ours["resolveRma"]["resolution"]["id"] != theirs["resolveRma"]["resolution"]["id"]

    after = await snapshot(api, b.shop)
    # B changed only by its own new RMA and resolution; its orders and customer are untouched.
    assert after["orders"] == b_before["orders"]
