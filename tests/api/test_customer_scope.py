"""A customer session sees only its own customer's data, through every nested path.

Two customers of one shop share an order: Ada asked to return part of it, then the storefront
corrected the order's e-mail to Bea's, and Bea returned another unit. Every path of the schema
from the root fields a customer may read, generated from the schema itself, is asked by both;
neither may ever see the other's e-mail, name, notes or RMA numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
    is_leaf_type,
)

from core.database import Database
from core.entities import Order, Rma
from graphql_api.schema import build_schema
from tests import factories as f
from tests.api.conftest import Api, Shop, gid, make_shop
from tests.api.test_permissions import (
    ARRIVAL_ROOT_FIELDS,
    CONNECTION_ROOT_FIELDS,
    POLICY,
    STAFF_ONLY_FIELDS,
    start_session,
)

MAX_EDGES = 5  # object fields followed from the root; deeper paths repeat these types
SKIPPED_EDGES = {"edges", "pageInfo", "node"}  # connections are read through their nodes
ROOT_ARGUMENTS = {
    "rma": "(id: $rma)",
    "order": "(id: $order)",
    "customer": "(id: $customer)",
    "returnEligibility": "(orderId: $order)",
    "rmas": "(first: 100)",
    "orders": "(first: 100)",
}
VARIABLE_TYPES = {"$rma": "ID", "$order": "ID!", "$customer": "ID!"}


def leaves(graphql_type: GraphQLObjectType) -> str:
    staff_only = STAFF_ONLY_FIELDS.get(graphql_type.name, ())
    names = [
        name
        for name, field in graphql_type.fields.items()
        if is_leaf_type(get_named_type(field.type))
        and name not in staff_only
        and not any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values())
    ]
    return " ".join(names) or "__typename"


def customer_paths() -> list[str]:
    """One selection per path of object fields, its last object with every readable leaf."""
    schema = build_schema(production=False)._schema
    assert schema.query_type is not None
    found: list[str] = []

    def walk(graphql_type: GraphQLObjectType, opened: list[str], root: bool) -> None:
        for name, field in graphql_type.fields.items():
            target = get_named_type(field.type)
            if is_leaf_type(target) or name in SKIPPED_EDGES:
                continue
            if name in STAFF_ONLY_FIELDS.get(graphql_type.name, ()):
                continue
            if root and name in CONNECTION_ROOT_FIELDS["Query"] | ARRIVAL_ROOT_FIELDS["Query"]:
                continue  # staff only: refused to customers (test_connections_api, arrivals)
            if isinstance(target, GraphQLInterfaceType):
                continue  # node(id:) is swept by the permission tests
            arguments = ROOT_ARGUMENTS.get(name, "") if root else ""
            if any(isinstance(a.type, GraphQLNonNull) for a in field.args.values()) and not (
                arguments
            ):
                continue
            assert isinstance(target, GraphQLObjectType)
            path = [*opened, f"{name}{arguments} {{"]
            found.append(" ".join(path) + f" {leaves(target)} " + "}" * len(path))
            if len(path) < MAX_EDGES:
                walk(target, path, root=False)

    walk(schema.query_type, [], root=True)
    return found


def operation(selection: str) -> str:
    used = [name for name in VARIABLE_TYPES if name in selection]
    declared = ", ".join(f"{name}: {VARIABLE_TYPES[name]}" for name in used)
    return f"query({declared}) {{ {selection} }}" if used else f"{{ {selection} }}"


@dataclass
class Household:
    shop: Shop
    shared_order: Order
    ada_rma: Rma  # on the shared order, made while it was still Ada's
    ada_other_rma: Rma
    bea_rma: Rma
    ada_token: str
    bea_token: str


async def household(api: Api, db: Database) -> Household:
    shop = await make_shop(db, **POLICY)
    shared = await f.order(db, shop.id, email="ada-sentinel@example.com")
    ada_rma = await f.requested_rma(db, shop.id, shared, note="ADA-NOTE")
    own = await f.order(db, shop.id, email="ada-sentinel@example.com")
    ada_other = await f.requested_rma(db, shop.id, own, note="ADA-NOTE")
    # The storefront corrects the e-mail: the order is Bea's from now on.
    corrected = await api.gql(
        """mutation($input: UpsertOrderInput!) { upsertOrder(input: $input) {
             order { customer { email } } userErrors { code message } } }""",
        {
            "input": {
                "externalId": shared.external_id,
                "orderNumber": shared.order_number,
                "currency": "USD",
                "placedAt": shared.placed_at.isoformat(),
                "deliveredAt": shared.delivered_at.isoformat() if shared.delivered_at else None,
                "customer": {"email": "bea-sentinel@example.com", "name": "Bea Sentinel"},
                "lines": [
                    {
                        "externalId": line.external_id,
                        "title": line.title,
                        "quantity": line.quantity,
                        "unitPriceMinor": line.unit_price_minor,
                    }
                    for line in shared.lines
                ],
            }
        },
        token=shop.admin,
    )
    assert corrected["upsertOrder"]["userErrors"] == []
    assert corrected["upsertOrder"]["order"]["customer"]["email"] == "bea-sentinel@example.com"
    bea_rma = await f.requested_rma(db, shop.id, shared, note="BEA-NOTE")
    return Household(
        shop,
        shared,
        ada_rma,
        ada_other,
        bea_rma,
        await start_session(api, shop, own, "ada-sentinel@example.com"),
        await start_session(api, shop, shared, "bea-sentinel@example.com"),
    )


async def test_a_corrected_order_shows_neither_customer_the_other(api: Api, db: Database) -> None:
    home = await household(api, db)

    ada = await api.gql(
        "query($id: ID) { rma(id: $id) { number order { customer { email name } } } }",
        {"id": gid("Rma", home.ada_rma.id)},
        token=home.ada_token,
    )
    bea = await api.gql(
        "query($id: ID!) { order(id: $id) { rmas { number customer { email } } } }",
        {"id": gid("Order", home.shared_order.id)},
        token=home.bea_token,
    )

    assert ada["rma"] == {"number": home.ada_rma.number, "order": None}
    assert bea["order"]["rmas"] == [
        {"number": home.bea_rma.number, "customer": {"email": "bea-sentinel@example.com"}}
    ]


async def test_every_nested_path_keeps_a_customer_to_their_own_data(api: Api, db: Database) -> None:
    home = await household(api, db)
    ada_marks = ["ada-sentinel", "ADA-NOTE", home.ada_rma.number, home.ada_other_rma.number]
    bea_marks = ["bea-sentinel", "Bea Sentinel", "BEA-NOTE", home.bea_rma.number]
    sessions = [
        (home.ada_token, home.ada_rma, home.ada_rma.customer_id, bea_marks, ada_marks),
        (home.bea_token, home.bea_rma, home.bea_rma.customer_id, ada_marks, bea_marks),
    ]
    paths = customer_paths()
    assert len(paths) > 100  # the walk really covers the schema

    for token, rma, customer_id, forbidden, own in sessions:
        variables = {
            "$rma": gid("Rma", rma.id),
            "$order": gid("Order", home.shared_order.id),
            "$customer": gid("Customer", customer_id),
        }
        seen: list[str] = []
        for selection in paths:
            document = operation(selection)
            asked = {name[1:]: value for name, value in variables.items() if name in document}
            response = await api.post(document, asked, token)
            assert response.status_code == 200, (selection, response.text)
            payload: dict[str, Any] = response.json()
            assert "errors" not in payload, (selection, payload)
            text = json.dumps(payload)
            leaked = [mark for mark in forbidden if mark in text]
            assert not leaked, (selection, leaked)
            seen.append(text)
        everything = "".join(seen)
        assert all(mark in everything for mark in own), own  # not vacuous
