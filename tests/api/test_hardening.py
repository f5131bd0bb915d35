"""The API's protections, through the real ASGI app: limits, masking, production hardening.

Nothing a client sends may produce a 5xx, a traceback or SQL in the response: a bad request gets
a 4xx, a validation error or a coded GraphQL error, and a failed mutation gets ``userErrors``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import select
from structlog.testing import capture_logs

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order, Rma
from core.migrate import upgrade_async
from core.settings import Settings
from core.usecases.orders import CustomerInput, OrderInput, upsert_order
from graphql_api.app import create_app
from graphql_api.view import GRAPHQL_BODY_LIMIT
from testkit.addresses import fresh_client
from tests import factories as f
from tests.api.conftest import Shop, gid, make_shop

Json = dict[str, Any]


def _production_settings(database_url: str) -> Settings:
    return Settings(
        env="production",
        database_url=database_url,
        secret_key="s" * 40,
        encryption_keys=base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )


def _client(app: Any) -> httpx.AsyncClient:
    # raise_app_exceptions=False: an unhandled error shows up as the 500 a client would get.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=fresh_client())
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[Json]]:
    """Structlog's entries, captured: inspectable, and no slow rich tracebacks on the console."""
    with capture_logs() as captured:
        yield captured


@pytest_asyncio.fixture(loop_scope="session")
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=db.url, secret_key="x" * 40), database=db)
    async with _client(app) as http:
        yield http


@pytest_asyncio.fixture(loop_scope="session")
async def prod(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_production_settings(db.url), database=db)
    async with _client(app) as http:
        yield http


@pytest_asyncio.fixture(loop_scope="session")
async def shop(db: Database) -> Shop:
    return await make_shop(db)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: Json | None = None,
    token: str | None = None,
    **extra: Any,
) -> httpx.Response:
    body: Json = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    return await http.post("/graphql", json=body, headers=bearer(token))


def clean(response: httpx.Response) -> Json:
    """A 200 JSON answer with no sign of an internal failure; returns the payload."""
    assert response.status_code == 200, (response.status_code, response.text)
    payload: Json = response.json()
    for error in payload.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert error["message"] != "Unexpected error.", payload
        assert code != "INTERNAL", payload
    assert "Traceback" not in response.text
    return payload


def messages(payload: Json) -> list[str]:
    return [error["message"] for error in payload.get("errors") or []]


def refused(response: httpx.Response, pattern: str) -> None:
    """Validation refused the document: nothing ran, and an error says why."""
    payload = clean(response)
    assert payload.get("data") is None, payload
    assert any(re.search(pattern, message) for message in messages(payload)), payload


async def fresh_order(db: Database, shop: Shop, *, quantity: int = 2) -> Order:
    """An order delivered yesterday (by the real clock), so returns are inside the window."""
    now = SYSTEM_CLOCK.now()
    tag = uuid.uuid4().hex[:10]
    async with db.session() as session:
        return await upsert_order(
            session,
            shop.id,
            OrderInput(
                platform="storefront",
                external_id=f"ext-{tag}",
                order_number=f"#{tag}",
                currency="USD",
                placed_at=now - timedelta(days=3),
                delivered_at=now - timedelta(days=1),
                customer=CustomerInput(email=f"{tag}@example.com"),
                lines=[f.line(quantity=quantity)],
            ),
            now=SYSTEM_CLOCK.now(),
        )


async def seeded_rma(db: Database, shop: Shop) -> tuple[Order, Rma]:
    order = await f.order(db, shop.id, lines=[f.line(quantity=3)])
    return order, await f.requested_rma(db, shop.id, order)


# --- Query limits ------------------------------------------------------------------------------


def nested(depth: int) -> str:
    """A query of depth ``depth``: its leaf is that many levels below the root field (depth 0)."""
    names = ["rmas", "edges", "node", *(["order", "rmas"] * 10)][:depth]
    body = "__typename"
    for name in reversed(names):
        body = f"{name} {{ {body} }}"
    return "{ " + body + " }"


async def test_depth_10_runs_and_depth_11_is_refused(client: httpx.AsyncClient, shop: Shop) -> None:
    for depth in (2, 10):
        payload = clean(await post(client, nested(depth), token=shop.admin))
        assert payload["data"]["rmas"] is not None, payload
    refused(await post(client, nested(11), token=shop.admin), "maximum operation depth of 10")
    refused(await post(client, nested(20), token=shop.admin), "maximum operation depth of 10")


async def test_depth_counts_through_fragments(client: httpx.AsyncClient, shop: Shop) -> None:
    query = """
      query { rmas { ...Deep } }
      fragment Deep on RmaConnection { edges { node { order { rmas { order { rmas {
        order { rmas { order { rmas { __typename } } } } } } } } } } }
    """
    refused(await post(client, query, token=shop.admin), "maximum operation depth of 10")


def aliases(count: int, prefix: str = "a") -> str:
    return " ".join(f"{prefix}{index}: __typename" for index in range(count))


async def test_15_aliases_run_and_16_are_refused(client: httpx.AsyncClient) -> None:
    payload = clean(await post(client, "{ " + aliases(15) + " }"))
    assert len(payload["data"]) == 15
    refused(await post(client, "{ " + aliases(16) + " }"), "16 aliases found. Allowed: 15")


async def test_aliases_inside_fragments_count_too(client: httpx.AsyncClient) -> None:
    inside = "query { ...F } fragment F on Query { " + aliases(16) + " }"
    refused(await post(client, inside), "aliases found. Allowed: 15")
    split = (
        "query { x: __typename ...F ...G } "
        f"fragment F on Query {{ {aliases(8)} }} fragment G on Query {{ {aliases(7, 'b')} }}"
    )
    refused(await post(client, split), "16 aliases found")
    fits = (
        "query { ...F ...G } "
        f"fragment F on Query {{ {aliases(8)} }} fragment G on Query {{ {aliases(7, 'b')} }}"
    )
    assert len(clean(await post(client, fits))["data"]) == 15


async def test_documents_over_2000_tokens_are_refused(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    big = "{ rmas(filter: {status: [" + "REQUESTED " * 2000 + "]}) { nodes { id } } }"
    assert len(big.encode()) < GRAPHQL_BODY_LIMIT  # refused for its tokens, not its size
    refused(await post(client, big, token=shop.admin), "more than 2000 tokens")
    fits = "{ rmas(filter: {status: [" + "REQUESTED " * 1950 + "]}) { nodes { id } } }"
    payload = clean(await post(client, fits, token=shop.admin))
    assert payload["data"]["rmas"]["nodes"] == []


async def test_circular_fragments_fail_validation_quickly(client: httpx.AsyncClient) -> None:
    documents = [
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "query { ...A } fragment A on Query { __typename ...A }",
        """query { rmas { ...A } }
           fragment A on RmaConnection { nodes { ...B } }
           fragment B on Rma { order { rmas { ...B } } }""",
    ]
    for document in documents:
        started = time.perf_counter()
        response = await post(client, document)
        assert time.perf_counter() - started < 2.0
        refused(response, "within itself")


async def test_batches_are_refused(client: httpx.AsyncClient, shop: Shop) -> None:
    batch = [{"query": "{ me { kind } }"}, {"query": "{ returnPolicy { version } }"}]
    response = await client.post("/graphql", json=batch, headers=bearer(shop.admin))
    assert 400 <= response.status_code < 500, response.text
    assert "STAFF" not in response.text


async def test_page_sizes_outside_1_to_100_are_invalid_input(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    """As the schema says: 1 to 100. Anything else is a coded error, never a 500."""
    for _ in range(3):
        await seeded_rma(db, shop)
    query = "query($n: Int!) { rmas(first: $n) { edges { node { id } } pageInfo { hasNextPage } } }"
    for first in (1, 100):
        payload = clean(await post(client, query, {"n": first}, token=shop.admin))
        assert len(payload["data"]["rmas"]["edges"]) == min(first, 3)
    for first in (0, -1, -2147483648, 101, 1000, 2147483647):
        payload = clean(await post(client, query, {"n": first}, token=shop.admin))
        assert payload["data"] is None, (first, payload)
        assert payload["errors"][0]["extensions"]["code"] == "INVALID_INPUT", (first, payload)
    for document in (
        "{ orders(first: 100000) { nodes { id } } }",
        "{ dataExports(first: 0) { id } }",
        "{ unmatchedArrivals(first: 101) { id } }",
        '{ customer(id: "x") { storeCreditEntries(first: 0) { nodes { note } } } }',
    ):
        payload = clean(await post(client, document, token=shop.admin))
        codes = [error["extensions"]["code"] for error in payload.get("errors", [])]
        # A customer that is not found never reaches its ledger's page size.
        assert codes == ["INVALID_INPUT"] or payload["data"] == {"customer": None}, payload
    too_big = await post(client, "{ rmas(first: 99999999999) { nodes { id } } }", token=shop.admin)
    refused(too_big, "32-bit")


# --- Body size ---------------------------------------------------------------------------------


def exact_body(size: int) -> bytes:
    """A valid GraphQL request of exactly ``size`` bytes (padded with insignificant spaces)."""
    empty = json.dumps({"query": "{ __typename }"}).encode()
    body = json.dumps({"query": "{ __typename }" + " " * (size - len(empty))}).encode()
    assert len(body) == size
    return body


async def chunked(body: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


JSON_HEADERS = {"Content-Type": "application/json"}


async def test_a_body_one_byte_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    body = exact_body(GRAPHQL_BODY_LIMIT + 1)
    response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert response.request.headers["content-length"] == str(GRAPHQL_BODY_LIMIT + 1)
    assert response.status_code == 413, response.text


async def test_a_streamed_body_one_byte_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    body = exact_body(GRAPHQL_BODY_LIMIT + 1)
    response = await client.post("/graphql", content=chunked(body), headers=JSON_HEADERS)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text


async def test_a_body_of_exactly_64_kib_is_served(client: httpx.AsyncClient) -> None:
    body = exact_body(GRAPHQL_BODY_LIMIT)
    declared = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert clean(declared)["data"] == {"__typename": "Query"}
    streamed = await client.post("/graphql", content=chunked(body), headers=JSON_HEADERS)
    assert clean(streamed)["data"] == {"__typename": "Query"}


async def test_a_huge_body_is_refused_without_being_read(client: httpx.AsyncClient) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1024):  # 8 MiB if it were all read
            sent += 8192
            yield b" " * 8192

    response = await client.post("/graphql", content=endless(), headers=JSON_HEADERS)
    assert response.status_code == 413
    assert sent <= GRAPHQL_BODY_LIMIT + 8192


# --- Production --------------------------------------------------------------------------------


async def test_production_refuses_introspection(prod: httpx.AsyncClient, shop: Shop) -> None:
    for query in (
        "{ __schema { types { name } } }",
        '{ __type(name: "Rma") { fields { name } } }',
        "query { rmas { nodes { id } } __schema { queryType { name } } }",
    ):
        response = await post(prod, query, token=shop.admin)
        refused(response, "introspection has been disabled")
        assert "RmaStatus" not in response.text


async def test_development_allows_introspection(client: httpx.AsyncClient) -> None:
    payload = clean(await post(client, '{ __type(name: "Rma") { name } }'))
    assert payload["data"] == {"__type": {"name": "Rma"}}


async def test_production_serves_no_graphiql(prod: httpx.AsyncClient) -> None:
    response = await prod.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code != 200
    assert "text/html" not in response.headers.get("content-type", "")
    assert "graphiql" not in response.text.lower()


async def test_development_serves_graphiql(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize("env", ["production", "development"])
async def test_queries_over_get_are_refused(
    prod: httpx.AsyncClient, client: httpx.AsyncClient, shop: Shop, env: str
) -> None:
    http = prod if env == "production" else client
    for query in ("{ me { kind } }", 'mutation { closeRma(id: "x") { userErrors { code } } }'):
        response = await http.get(
            "/graphql",
            params={"query": query},
            headers={**bearer(shop.admin), "Accept": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert "STAFF" not in response.text
        assert "userErrors" not in response.text


async def test_production_gives_no_field_suggestions(prod: httpx.AsyncClient, shop: Shop) -> None:
    response = await post(prod, "{ rmas { nodes { numbr } } }", token=shop.admin)
    refused(response, "Cannot query field 'numbr'")
    assert "Did you mean" not in response.text


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("{ rmas(frist: 1) { nodes { id } } }", None, id="argument"),
        pytest.param("{ rmas(filter: {status: [REQESTED]}) { nodes { id } } }", None, id="enum"),
        pytest.param(
            "{ rmas(filter: {statuss: [REQUESTED]}) { nodes { id } } }", None, id="input-field"
        ),
        pytest.param("{ rmas { nodes { ... on Rmaa { id } } } }", None, id="fragment-type"),
        pytest.param(
            "query($f: RmaFiltr) { rmas(filter: $f) { nodes { id } } }", None, id="variable-type"
        ),
        pytest.param(
            "query($s: [RmaStatus!]) { rmas(filter: {status: $s}) { nodes { id } } }",
            {"s": ["REQESTED"]},
            id="enum-variable",
        ),
    ],
)
async def test_production_suggests_nothing_at_all(
    prod: httpx.AsyncClient, shop: Shop, query: str, variables: Json | None
) -> None:
    """No near miss is answered with a schema name: strawberry's ``disable_field_suggestions``
    only covers "Cannot query field", so arguments, enum values, input fields and type names
    would otherwise let a client map the schema that introspection hides."""
    response = await post(prod, query, variables, token=shop.admin)
    payload = clean(response)
    assert payload.get("errors"), payload
    assert "Did you mean" not in response.text, payload["errors"]


# --- Masking -----------------------------------------------------------------------------------


async def test_unexpected_errors_are_masked_with_a_request_id(
    tmp_path: Path, logs: list[Json]
) -> None:
    """A resolver that fails for real (its table is gone) gives a generic, coded error."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    await upgrade_async(url)
    database = Database(url)
    try:
        shop = await make_shop(database)
        _order, rma = await seeded_rma(database, shop)
        async with database.write_engine.begin() as connection:
            await connection.exec_driver_sql("DROP TABLE rma_event")
        app = create_app(Settings(database_url=url, secret_key="x" * 40), database=database)
        async with _client(app) as http:
            response = await post(
                http,
                "query($id: ID!) { rma(id: $id) { number events { kind } } }",
                {"id": gid("Rma", rma.id)},
                token=shop.admin,
            )
            prod_app = create_app(_production_settings(url), database=database)
            async with _client(prod_app) as prod_http:
                prod_response = await post(
                    prod_http,
                    "query($id: ID!) { rma(id: $id) { events { kind } } }",
                    {"id": gid("Rma", rma.id)},
                    token=shop.admin,
                )
    finally:
        await database.dispose()

    for answer in (response, prod_response):
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        assert payload["data"] == {"rma": None}
        [error] = payload["errors"]
        assert error["message"] == "Unexpected error."
        assert error["path"] == ["rma", "events"]
        assert error["extensions"]["code"] == "INTERNAL"
        assert re.fullmatch(r"[0-9a-f]{32}", error["extensions"]["requestId"])
        for leak in ("Traceback", "sqlite", "SELECT", "rma_event", "no such table", "File "):
            assert leak.lower() not in answer.text.lower(), (leak, answer.text)
    request_ids = [
        a.json()["errors"][0]["extensions"]["requestId"] for a in (response, prod_response)
    ]
    assert request_ids[0] != request_ids[1]
    # Support finds the real error in the log by the id the caller was given.
    logged = [entry for entry in logs if entry["event"] == "unexpected error in a resolver"]
    assert [entry["request_id"] for entry in logged] == request_ids
    assert all(entry["log_level"] == "error" for entry in logged)
    assert all("rma_event" in str(entry["exc_info"]) for entry in logged)


async def test_expected_errors_keep_their_message_and_code(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    anonymous = clean(await post(client, "{ me { kind } }"))
    assert anonymous["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    readonly = clean(
        await post(
            client, 'mutation { closeRma(id: "x") { userErrors { code } } }', token=shop.readonly
        )
    )
    assert readonly["errors"][0]["extensions"] == {"code": "FORBIDDEN"}


# --- Automatic persisted queries ---------------------------------------------------------------


def persisted(digest: str) -> Json:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_an_unknown_persisted_query_asks_for_the_document(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/graphql", json={"extensions": persisted("0" * 64)})
    assert response.status_code == 200
    payload = response.json()
    assert payload["errors"][0]["message"] == "PersistedQueryNotFound"
    assert payload["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_persisted_query_is_registered_then_served_by_hash(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    query = "query Persisted { me { kind role } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    headers = bearer(shop.admin)
    missing = await client.post("/graphql", json={"extensions": persisted(digest)}, headers=headers)
    assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"

    registered = await client.post(
        "/graphql", json={"query": query, "extensions": persisted(digest)}, headers=headers
    )
    expected = {"me": {"kind": "STAFF", "role": "ADMIN"}}
    assert clean(registered)["data"] == expected
    by_hash = await client.post("/graphql", json={"extensions": persisted(digest)}, headers=headers)
    assert clean(by_hash)["data"] == expected


async def test_a_hash_that_does_not_match_the_query_is_400(client: httpx.AsyncClient) -> None:
    query = "{ __typename }"
    wrong = hashlib.sha256(b"{ something else }").hexdigest()
    response = await client.post("/graphql", json={"query": query, "extensions": persisted(wrong)})
    assert response.status_code == 400
    # ... and the wrong hash was not registered for the query.
    later = await client.post("/graphql", json={"extensions": persisted(wrong)})
    assert later.json()["errors"][0]["message"] == "PersistedQueryNotFound"


@pytest.mark.parametrize(
    "extension",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": "a" * 64}},
        {"persistedQuery": {"version": 1}},
        {"persistedQuery": {"version": 1, "sha256Hash": 5}},
    ],
)
async def test_malformed_persisted_query_extensions_are_400(
    client: httpx.AsyncClient, extension: Json
) -> None:
    response = await client.post("/graphql", json={"extensions": extension})
    assert response.status_code == 400, response.text


# --- Bad input ---------------------------------------------------------------------------------


async def test_invalid_enum_values_are_validation_errors(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    refused(
        await post(client, "{ rmas(filter: {status: [NOPE]}) { nodes { id } } }", token=shop.admin),
        "NOPE",
    )
    refused(
        await post(
            client,
            "query($s: [RmaStatus!]) { rmas(filter: {status: $s}) { nodes { id } } }",
            {"s": ["NOPE"]},
            token=shop.admin,
        ),
        "NOPE",
    )
    refused(
        await post(
            client,
            'mutation($r: ResolutionKind!) { resolveRma(id: "x", resolution: $r) '
            "{ userErrors { code } } }",
            {"r": "CASH"},
            token=shop.admin,
        ),
        "CASH",
    )


async def test_ids_of_the_wrong_type_or_shape_find_nothing(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    order, rma = await seeded_rma(db, shop)
    lookups = {
        "rma": "query($i: ID) { rma(id: $i) { id } }",
        "node": "query($i: ID!) { node(id: $i) { id } }",
        "order": "query($i: ID!) { order(id: $i) { id } }",
        "customer": "query($i: ID!) { customer(id: $i) { id } }",
        "returnEligibility": "query($i: ID!) { returnEligibility(orderId: $i) { policyVersion } }",
    }
    an_order = gid("Order", order.id)
    for field in ("rma", "customer"):
        payload = clean(await post(client, lookups[field], {"i": an_order}, token=shop.admin))
        assert payload == {"data": {field: None}}
    for bad in ("%%%", "garbage", "", "Um1h", "Rma:" + str(rma.id), "=" * 9, "\u00e9" * 5):
        for field, query in lookups.items():
            payload = clean(await post(client, query, {"i": bad}, token=shop.admin))
            assert payload == {"data": {field: None}}, (bad, payload)
        mutation = "mutation($i: ID!) { authorizeRma(id: $i) { rma { id } userErrors { code } } }"
        payload = clean(await post(client, mutation, {"i": bad}, token=shop.admin))
        assert payload["data"]["authorizeRma"]["userErrors"][0]["code"] == "NOT_FOUND"
    mutation = "mutation($i: ID!) { authorizeRma(id: $i) { rma { id } userErrors { code } } }"
    payload = clean(await post(client, mutation, {"i": an_order}, token=shop.admin))
    assert payload["data"]["authorizeRma"]["userErrors"][0]["code"] == "NOT_FOUND"
    not_an_id = await post(client, "{ rma(id: 12.5) { id } }", token=shop.admin)
    refused(not_an_id, "ID cannot represent")


async def test_an_id_of_the_wrong_type_in_a_filter_is_a_coded_error(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    _order, rma = await seeded_rma(db, shop)
    for bad in (gid("Rma", rma.id), "garbage"):
        payload = clean(
            await post(
                client,
                "query($o: ID) { rmas(filter: {orderId: $o}) { nodes { id } } }",
                {"o": bad},
                token=shop.admin,
            )
        )
        assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND", payload


async def test_overlong_text_is_a_user_error(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    order = await fresh_order(db, shop)
    request = await post(
        client,
        """mutation($i: RequestRmaInput!) { requestRma(input: $i) {
             rma { id } userErrors { code field message } } }""",
        {
            "i": {
                "orderId": gid("Order", order.id),
                "customerNote": "n" * 3000,
                "lines": [
                    {
                        "orderLineId": gid("OrderLine", order.lines[0].id),
                        "quantity": 1,
                        "reason": "STYLE",
                    }
                ],
            }
        },
        token=shop.agent,
    )
    payload = clean(request)["data"]["requestRma"]
    assert payload["rma"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["customerNote"]

    _order, rma = await seeded_rma(db, shop)
    shipment = await post(
        client,
        """mutation($i: ID!, $t: String!) { recordRmaShipment(id: $i, carrier: UPS,
             trackingNumber: $t) { rma { id } userErrors { code field } } }""",
        {"i": gid("Rma", rma.id), "t": "1" * 3000},
        token=shop.agent,
    )
    payload = clean(shipment)["data"]["recordRmaShipment"]
    assert payload["rma"] is None
    assert payload["userErrors"] == [{"code": "INVALID_INPUT", "field": ["trackingNumber"]}]

    for query, variables in (
        ("query($n: String) { rma(number: $n) { id } }", {"n": "R" * 3000}),
        (
            "query($e: String) { rmas(filter: {customerEmail: $e}) { nodes { id } } }",
            {"e": "e" * 3000},
        ),
        (
            "query($e: String) { orders(filter: {orderNumber: $e}) { nodes { id } } }",
            {"e": "9" * 3000},
        ),
    ):
        answer = clean(await post(client, query, variables, token=shop.admin))
        assert answer["errors"][0]["extensions"]["code"] in ("INVALID_INPUT", "INVALID_RMA_NUMBER")


async def test_negative_and_zero_quantities_are_user_errors(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    order = await fresh_order(db, shop)
    for quantity in (-1, 0, -2147483648):
        request = await post(
            client,
            """mutation($i: RequestRmaInput!) { requestRma(input: $i) {
                 rma { id } userErrors { code field } } }""",
            {
                "i": {
                    "orderId": gid("Order", order.id),
                    "lines": [
                        {
                            "orderLineId": gid("OrderLine", order.lines[0].id),
                            "quantity": quantity,
                            "reason": "STYLE",
                        }
                    ],
                }
            },
            token=shop.agent,
        )
        payload = clean(request)["data"]["requestRma"]
        assert payload["rma"] is None
        assert payload["userErrors"] == [
            {"code": "INVALID_INPUT", "field": ["lines", "0", "quantity"]}
        ]

    _order, rma = await seeded_rma(db, shop)
    receive = await post(
        client,
        """mutation($i: ID!, $l: ID!) { receiveRma(id: $i, lines: [{rmaLineId: $l, quantity: -3}])
             { rma { id } userErrors { code field } } }""",
        {"i": gid("Rma", rma.id), "l": gid("RmaLine", rma.lines[0].id)},
        token=shop.agent,
    )
    payload = clean(receive)["data"]["receiveRma"]
    assert payload["rma"] is None
    assert payload["userErrors"][0]["code"] in ("INVALID_INPUT", "INVALID_TRANSITION")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "Z2FyYmFnZQ==",  # base64, but not a cursor
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00|not-a-uuid").decode(),
        base64.urlsafe_b64encode(f"2026-01-01T00:00:00|{uuid.uuid4()}".encode()).decode(),
        "\u00e9\u00e9",
        "=" * 40,
        # Forged times: year 1 east of UTC is year 0 there, year 9999 west of it year 10000.
        base64.urlsafe_b64encode(f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"9999-12-31T23:59:59-14:00|{uuid.uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"0001-01-01T00:00:00+00:00|{uuid.uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"9999-12-31T23:59:59+05:30|{uuid.uuid4()}".encode()).decode(),
    ],
    # Named by position: the random ids would differ between pytest-xdist's workers.
    ids=lambda cursor: "",
)
async def test_bad_cursors_are_coded_errors(
    client: httpx.AsyncClient, shop: Shop, cursor: str
) -> None:
    for connection in ("rmas", "orders"):
        payload = clean(
            await post(
                client,
                f"query($a: String) {{ {connection}(after: $a) {{ nodes {{ id }} }} }}",
                {"a": cursor},
                token=shop.admin,
            )
        )
        assert payload["data"] is None
        assert payload["errors"][0]["extensions"]["code"] == "INVALID_CURSOR", payload
        assert payload["errors"][0]["path"] == [connection]


async def test_bad_request_bodies_are_4xx(client: httpx.AsyncClient, shop: Shop) -> None:
    headers = {**bearer(shop.admin), **JSON_HEADERS}
    for body in (
        b"{not json",
        b"\xff\xfe",
        b"{}",
        b'{"query": 5}',
        b'{"query": "{ me { kind } }", "variables": [1]}',
        b'{"query": "{ me { kind } }", "extensions": "x"}',
        b'{"query": "{ me { kind } }", "operationName": "Other"}',
        b"[]",
    ):
        response = await client.post("/graphql", content=body, headers=headers)
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = await client.post(
            "/graphql",
            content=b"query={ me { kind } }",
            headers={**bearer(shop.admin), "Content-Type": content_type},
        )
        assert 400 <= response.status_code < 500, (content_type, response.text)


@pytest.mark.parametrize("body", [b'"hello"', b"5", b"null", b"true"])
async def test_a_json_body_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    """strawberry calls ``.get`` on whatever JSON it parsed; anything but an object (or a list,
    refused as a batch) must stop at a 400 before that."""
    response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


async def test_deeply_nested_json_is_400(client: httpx.AsyncClient) -> None:
    """5,000 nested arrays (10 KB, well under the body limit) make ``json.loads`` raise
    ``RecursionError``: the client gets a 400, not a 500."""
    body = b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    assert len(body) < GRAPHQL_BODY_LIMIT
    response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param("2026-01-01T00:00:00", id="naive"),
        pytest.param("0001-01-01T00:00:00+05:00", id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:59-05:00", id="after-year-9999-in-utc"),
    ],
)
@pytest.mark.parametrize(
    "argument",
    [
        pytest.param("rmas(filter: {createdFrom: $t})", id="rmas.createdFrom"),
        pytest.param("rmas(filter: {createdTo: $t})", id="rmas.createdTo"),
        pytest.param("orders(filter: {placedFrom: $t})", id="orders.placedFrom"),
        pytest.param("orders(filter: {placedTo: $t})", id="orders.placedTo"),
    ],
)
async def test_datetimes_the_database_cannot_take_are_refused_cleanly_in_filters(
    client: httpx.AsyncClient, shop: Shop, moment: str, argument: str
) -> None:
    """A naive time, or one whose UTC equivalent leaves the calendar, is refused with a coded
    error before it reaches SQL (it would otherwise fail in the column type or in
    ``astimezone``)."""
    query = f"query($t: DateTime) {{ {argument} {{ nodes {{ id }} }} }}"
    payload = clean(await post(client, query, {"t": moment}, token=shop.admin))
    assert payload.get("errors"), payload


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param("0001-01-01T00:00:00+05:00", id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:59-05:00", id="after-year-9999-in-utc"),
    ],
)
async def test_upserting_an_order_at_the_edge_of_the_calendar_is_a_user_error(
    client: httpx.AsyncClient, shop: Shop, moment: str
) -> None:
    """The same calendar edge as in the filters, from ``placedAt``: a userError."""
    tag = uuid.uuid4().hex[:8]
    payload = clean(
        await post(
            client,
            """mutation($i: UpsertOrderInput!) { upsertOrder(input: $i) {
                 order { id } userErrors { code field } } }""",
            {
                "i": {
                    "externalId": tag,
                    "orderNumber": f"#{tag}",
                    "currency": "USD",
                    "placedAt": moment,
                    "customer": {"email": f"{tag}@example.com"},
                    "lines": [
                        {"externalId": "1", "title": "t", "quantity": 1, "unitPriceMinor": 100}
                    ],
                }
            },
            token=shop.agent,
        )
    )
    result = payload["data"]["upsertOrder"] if payload.get("data") else None
    assert result is None or (result["order"] is None and result["userErrors"]), payload


async def test_an_order_worth_more_than_32_bits_of_minor_units_is_refused(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    """Amounts are 32-bit minor units in storage and in GraphQL's Int: a larger order total
    (here 2e9 + 2e9 tax, each a valid Int) is refused up front, never wrapped or crashed on."""
    payload = clean(
        await post(
            client,
            """mutation { upsertOrder(input: {externalId: "big", orderNumber: "#big",
                 currency: "USD", placedAt: "2026-01-01T00:00:00+00:00",
                 customer: {email: "big@example.com"},
                 lines: [{externalId: "1", title: "Yacht", quantity: 1,
                          unitPriceMinor: 2000000000, taxMinor: 2000000000}]}) {
                 order { id } userErrors { code field message } } }""",
            token=shop.agent,
        )
    )
    result = payload["data"]["upsertOrder"]
    assert result["order"] is None
    assert result["userErrors"][0]["code"] == "INVALID_INPUT"
    assert result["userErrors"][0]["field"] == ["lines"]


NUL = "a\x00b"
NUL_CASES = {
    "rma-filter": "query($v: String) { rmas(filter: {customerEmail: $v}) { nodes { id } } }",
    "order-filter": "query($v: String) { orders(filter: {orderNumber: $v}) { nodes { id } } }",
    "session": """mutation($m: ID!, $v: String!) { startCustomerSession(merchantId: $m,
        orderNumber: $v, email: "a@example.com") { token userErrors { code } } }""",
    "policy": """mutation($v: String) { updateReturnPolicy(input: {specialInstructions: $v}) {
        returnPolicy { version } userErrors { code } } }""",
    "order": """mutation($v: String!) { upsertOrder(input: {externalId: $v, orderNumber: "#n",
        currency: "USD", placedAt: "2026-01-01T00:00:00+00:00",
        customer: {email: "nul@example.com"},
        lines: [{externalId: "1", title: $v, quantity: 1, unitPriceMinor: 1}]}) {
        order { id } userErrors { code } } }""",
    "note": """mutation($o: ID!, $l: ID!, $v: String!) { requestRma(input: {orderId: $o,
        customerNote: $v, lines: [{orderLineId: $l, quantity: 1, reason: STYLE,
        comment: $v}]}) { rma { id } userErrors { code } } }""",
}


@pytest.mark.parametrize("case", list(NUL_CASES))
async def test_nul_characters_never_reach_the_database_as_an_internal_error(
    client: httpx.AsyncClient, db: Database, shop: Shop, case: str
) -> None:
    """PostgreSQL text cannot hold NUL, so it is refused at the door: 400 with a readable
    reason, on every backend, before any query runs."""
    variables: Json = {"v": NUL}
    if case == "note":
        order = await fresh_order(db, shop)
        variables |= {"o": gid("Order", order.id), "l": gid("OrderLine", order.lines[0].id)}
    if case == "session":
        variables["m"] = gid("Merchant", shop.id)
    response = await post(client, NUL_CASES[case], variables, token=shop.admin)
    assert response.status_code == 400, response.text
    assert "NUL characters are not accepted" in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"query": 5, "extensions": persisted("a" * 64)},
        {"query": ["{ __typename }"], "extensions": persisted("a" * 64)},
    ],
)
async def test_persisted_query_bodies_of_the_wrong_shape_are_400(
    client: httpx.AsyncClient, body: Json
) -> None:
    response = await client.post("/graphql", json=body)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "params",
    [
        {
            "query": "{ __typename }",
            "extensions": '{"persistedQuery": {"version": 1, "sha256Hash": "\\ud800"}}',
        },
        {
            "query": '{ __typename @skip(if: false) } # "\\ud800"',
            "extensions": '{"persistedQuery": {"version": 1, "sha256Hash": "\\u0000"}}',
        },
    ],
)
async def test_persisted_queries_with_unstorable_text_are_400_by_get_too(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/graphql", params=params)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "literal",
    ['"a\\u0000b"', '"\\ud800"', '"""x\u0000"""'],
)
async def test_text_escaped_in_the_document_is_checked_like_json_text(
    client: httpx.AsyncClient, db: Database, shop: Shop, literal: str
) -> None:
    """``\\u0000`` written in the GraphQL document itself passes the JSON check; it is
    refused by the same rule before anything runs, in a filter as in a mutation."""
    order = await f.order(db, shop.id)
    documents = [
        f"{{ rmas(filter: {{customerEmail: {literal}}}) {{ nodes {{ id }} }} }}",
        f'mutation {{ requestRma(input: {{orderId: "{gid("Order", order.id)}", '
        f'customerNote: {literal}, lines: [{{orderLineId: "{gid("OrderLine", order.lines[0].id)}"'
        f", quantity: 1, reason: SIZE_TOO_SMALL}}]}}) {{ rma {{ id }} }} }}",
    ]
    for document in documents:
        response = await post(client, document, token=shop.admin)
        if response.status_code == 400:
            continue  # a NUL the JSON check already saw (a raw one in the body)
        payload = clean(response)
        assert payload.get("data") is None, payload
        [error] = payload["errors"]
        # graphql-core's lexer already refuses an escaped lone surrogate as a syntax error.
        assert (error.get("extensions") or {}).get("code") == "INVALID_INPUT" or (
            error["message"].startswith("Syntax Error: Invalid Unicode escape")
        ), payload
    async with db.read_session() as session:
        assert (await session.exec(select(Rma).where(Rma.order_id == order.id))).all() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"lines": [{"externalId": "L" * 65, "title": "T", "quantity": 1, "unitPriceMinor": 1}]},
            "lines.0.externalId",
        ),
        ({"customer": {"email": "a@example.com", "externalId": "c" * 65}}, "customer.externalId"),
        (
            {"customer": {"email": "a@example.com", "stripeCustomerId": "c" * 65}},
            "customer.stripeCustomerId",
        ),
        (
            {
                "payments": [
                    {
                        "provider": "STRIPE",
                        "reference": "p" * 101,
                        "capturedMinor": 1,
                        "currency": "USD",
                    }
                ]
            },
            "payments.0.reference",
        ),
    ],
)
async def test_order_ids_longer_than_their_columns_are_refused_on_both_databases(
    client: httpx.AsyncClient, shop: Shop, change: Json, field: str
) -> None:
    order = {
        "externalId": f"ext-{uuid.uuid4().hex}",
        "orderNumber": "#L-1",
        "currency": "USD",
        "placedAt": "2026-11-01T10:00:00+00:00",
        "customer": {"email": "a@example.com"},
        "lines": [{"externalId": "L1", "title": "T", "quantity": 1, "unitPriceMinor": 100}],
        **change,
    }
    document = (
        "mutation($input: UpsertOrderInput!) { upsertOrder(input: $input) {"
        " order { id } userErrors { code field } } }"
    )
    payload = clean(await post(client, document, {"input": order}, token=shop.admin))
    answer = payload["data"]["upsertOrder"]
    assert answer["order"] is None
    assert answer["userErrors"][0]["code"] == "INVALID_INPUT"
    assert ".".join(answer["userErrors"][0]["field"]) == field
