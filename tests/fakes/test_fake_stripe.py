"""The fake Stripe server, driven by the real ``stripe`` package (sync and async)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.clock import SYSTEM_CLOCK
from testkit.fakes import STRIPE_HTTPX_WARNING_FILTER, FakeAccount, FakeStripe, sign_payload

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING_FILTER)

SHORT_TIMEOUT = 0.5


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server
        assert server.server_errors == []


@pytest.fixture
def account(fake: FakeStripe) -> FakeAccount:
    return fake.add_account("sk_test_fake_main")


@pytest.fixture
def payment(fake: FakeStripe, account: FakeAccount) -> tuple[str, str]:
    return fake.create_payment(account, 5000, "usd")


@pytest.fixture(params=["requests", "httpx"])
def sync_http(request: pytest.FixtureRequest) -> Iterator[stripe.HTTPClient]:
    """Both sync transports: the default RequestsClient, and HTTPXClient in sync mode."""
    http: stripe.HTTPClient
    if request.param == "requests":
        http = stripe.RequestsClient(timeout=SHORT_TIMEOUT)
    else:
        http = stripe.HTTPXClient(timeout=SHORT_TIMEOUT, allow_sync_methods=True)
    yield http
    http.close()  # type: ignore[no-untyped-call]


@pytest.fixture
async def async_http() -> AsyncIterator[stripe.HTTPXClient]:
    http = stripe.HTTPXClient(timeout=SHORT_TIMEOUT)
    yield http
    await http.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK sleeps 0.5 s+ between its own retries; tests need not."""
    monkeypatch.setattr(stripe.HTTPClient, "_sleep_time_seconds", lambda self, n: 0.01)


def metadata(obj: Any) -> dict[str, str]:
    """A Stripe object's metadata as a plain dict."""
    return {} if obj.metadata is None else dict(obj.metadata.to_dict())


ClientFactory = Callable[..., stripe.StripeClient]


@pytest.fixture
def client_for(fake: FakeStripe) -> ClientFactory:
    def make(
        key: FakeAccount | str, http: stripe.HTTPClient, retries: int = 0
    ) -> stripe.StripeClient:
        secret = key.secret_key if isinstance(key, FakeAccount) else key
        return stripe.StripeClient(
            secret,
            base_addresses={"api": fake.base_url},
            http_client=http,
            max_network_retries=retries,
        )

    return make


@pytest.fixture
def client(
    client_for: ClientFactory, account: FakeAccount, sync_http: stripe.HTTPClient
) -> stripe.StripeClient:
    return client_for(account, sync_http)


@pytest.fixture
def aclient(
    client_for: ClientFactory, account: FakeAccount, async_http: stripe.HTTPXClient
) -> stripe.StripeClient:
    return client_for(account, async_http)


class WebhookReceiver:
    """A real HTTP endpoint that stores what it receives and answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


# --------------------------------------------------------------------------------------------
# authentication and accounts
# --------------------------------------------------------------------------------------------


def test_unknown_key_is_an_authentication_error(
    fake: FakeStripe, client_for: ClientFactory, sync_http: stripe.HTTPClient
) -> None:
    bad = client_for("sk_test_not_registered_1234", sync_http)
    with pytest.raises(stripe.AuthenticationError) as caught:
        bad.v1.refunds.list()
    assert caught.value.http_status == 401
    assert "Invalid API Key" in str(caught.value.user_message)
    assert fake.requests[-1].account_id is None
    assert fake.requests[-1].status == 401


def test_missing_authorization_header_is_401(fake: FakeStripe) -> None:
    with httpx.Client(base_url=fake.base_url) as raw:
        response = raw.get("/v1/refunds")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Request-Id" in response.headers


async def test_unknown_key_async(client_for: ClientFactory, async_http: stripe.HTTPXClient) -> None:
    with pytest.raises(stripe.AuthenticationError):
        await client_for("sk_test_nope", async_http).v1.refunds.list_async()


def test_accounts_do_not_see_each_other(
    fake: FakeStripe,
    client: stripe.StripeClient,
    client_for: ClientFactory,
    sync_http: stripe.HTTPClient,
    payment: tuple[str, str],
) -> None:
    refund = client.v1.refunds.create({"payment_intent": payment[0], "amount": 100})
    other = client_for(fake.add_account(), sync_http)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        other.v1.refunds.retrieve(refund.id)
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError):
        other.v1.refunds.create({"payment_intent": payment[0]})


# --------------------------------------------------------------------------------------------
# refunds, charges, payment intents
# --------------------------------------------------------------------------------------------


def test_create_retrieve_and_list_refunds(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    pi, ch = payment
    created = [
        client.v1.refunds.create(
            {
                "payment_intent": pi,
                "amount": 1000 + i,
                "reason": "requested_by_customer",
                "metadata": {"rma_id": f"RMA-{i}", "shop_order_id": "820982911946154508"},
            },
            {"idempotency_key": f"rma-RMA-{i}-refund"},
        )
        for i in range(3)
    ]
    first = created[0]
    assert isinstance(first, stripe.Refund)
    assert first.id.startswith("re_")
    assert first.status == "succeeded"
    assert first.charge == ch and first.payment_intent == pi
    assert metadata(first) == {"rma_id": "RMA-0", "shop_order_id": "820982911946154508"}
    assert first.reason == "requested_by_customer"

    fetched = client.v1.refunds.retrieve(created[1].id)
    assert fetched.amount == 1001 and metadata(fetched) == metadata(created[1])

    page = client.v1.refunds.list({"payment_intent": pi, "limit": 2})
    assert [r.id for r in page.data] == [created[2].id, created[1].id]  # newest first
    assert page.has_more is True
    rest = client.v1.refunds.list({"charge": ch, "limit": 2, "starting_after": created[1].id})
    assert [r.id for r in rest.data] == [created[0].id] and rest.has_more is False
    assert [r.id for r in page.auto_paging_iter()] == [r.id for r in reversed(created)]

    charge = client.v1.charges.retrieve(ch)
    assert isinstance(charge, stripe.Charge)
    assert charge.amount_refunded == 3003 and charge.refunded is False
    intent = client.v1.payment_intents.retrieve(pi)
    assert intent.latest_charge == ch and intent.amount == 5000

    assert [r["id"] for r in fake.refunds(account)] == [r.id for r in created]
    posts = fake.requests_for("/v1/refunds", "POST")
    assert [r.idempotency_key for r in posts] == [f"rma-RMA-{i}-refund" for i in range(3)]
    assert posts[0].params["metadata"] == {"rma_id": "RMA-0", "shop_order_id": "820982911946154508"}


def test_amount_guard_and_full_refund(
    client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    pi, ch = payment
    client.v1.refunds.create({"charge": ch, "amount": 4000})
    with pytest.raises(stripe.InvalidRequestError) as too_large:
        client.v1.refunds.create({"payment_intent": pi, "amount": 1001})
    assert too_large.value.code == "amount_too_large"
    assert too_large.value.param == "amount"
    assert too_large.value.http_status == 400

    rest = client.v1.refunds.create({"payment_intent": pi})  # default: what is left
    assert rest.amount == 1000
    charge = client.v1.charges.retrieve(ch)
    assert charge.amount_refunded == 5000 and charge.refunded is True

    with pytest.raises(stripe.InvalidRequestError) as already:
        client.v1.refunds.create({"payment_intent": pi, "amount": 1})
    assert already.value.code == "charge_already_refunded"


def test_parameter_validation(client: stripe.StripeClient, payment: tuple[str, str]) -> None:
    pi = payment[0]
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        # the classic mistake: the key belongs in the options, not in the params
        client.v1.refunds.create({"payment_intent": pi, "idempotency_key": "k"})
    assert unknown.value.code == "parameter_unknown" and unknown.value.param == "idempotency_key"
    with pytest.raises(stripe.InvalidRequestError) as reason:
        client.v1.refunds.create({"payment_intent": pi, "reason": "changed_mind"})
    assert reason.value.param == "reason"
    with pytest.raises(stripe.InvalidRequestError) as neither:
        client.v1.refunds.create({"amount": 100})
    assert neither.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.create({"payment_intent": "pi_missing"})
    assert missing.value.code == "resource_missing" and missing.value.param == "payment_intent"


async def test_refunds_async(
    fake: FakeStripe, account: FakeAccount, aclient: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    pi, ch = payment
    refund = await aclient.v1.refunds.create_async(
        {"payment_intent": pi, "amount": 700, "metadata": {"rma_id": "RMA-9"}},
        {"idempotency_key": "async-1"},
    )
    again = await aclient.v1.refunds.create_async(
        {"payment_intent": pi, "amount": 700, "metadata": {"rma_id": "RMA-9"}},
        {"idempotency_key": "async-1"},
    )
    assert isinstance(refund, stripe.Refund) and again.id == refund.id
    listed = await aclient.v1.refunds.list_async({"charge": ch})
    assert [r.id for r in listed.data] == [refund.id]
    assert metadata(await aclient.v1.refunds.retrieve_async(refund.id)) == {"rma_id": "RMA-9"}
    with pytest.raises(stripe.IdempotencyError):
        await aclient.v1.refunds.create_async(
            {"payment_intent": pi, "amount": 701}, {"idempotency_key": "async-1"}
        )
    with pytest.raises(stripe.InvalidRequestError) as too_large:
        await aclient.v1.refunds.create_async({"payment_intent": pi, "amount": 4301})
    assert too_large.value.code == "amount_too_large"
    assert len(fake.refunds(account)) == 1


# --------------------------------------------------------------------------------------------
# idempotency
# --------------------------------------------------------------------------------------------


def test_same_key_same_params_replays_the_first_response(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    params: Any = {"payment_intent": payment[0], "amount": 1500, "metadata": {"rma_id": "RMA-1"}}
    first = client.v1.refunds.create(params, {"idempotency_key": "rma-RMA-1-refund-1"})
    second = client.v1.refunds.create(params, {"idempotency_key": "rma-RMA-1-refund-1"})
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(fake.refunds(account)) == 1
    assert fake.charge(payment[1])["amount_refunded"] == 1500
    assert [r.replayed for r in fake.requests_for("/v1/refunds", "POST")] == [False, True]

    changed: Any = {**params, "amount": 1600}
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.refunds.create(changed, {"idempotency_key": "rma-RMA-1-refund-1"})
    assert caught.value.http_status == 400
    assert caught.value.error is not None and caught.value.error.type == "idempotency_error"
    assert len(fake.refunds(account)) == 1


def test_same_key_on_another_endpoint_is_an_idempotency_error(
    client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    client.v1.refunds.create({"payment_intent": payment[0]}, {"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({}, {"idempotency_key": "k"})


def test_validation_failures_are_not_saved_but_business_errors_are(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    pi = payment[0]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"payment_intent": pi, "reason": "nope"}, {"idempotency_key": "v"})
    ok = client.v1.refunds.create({"payment_intent": pi, "amount": 10}, {"idempotency_key": "v"})
    assert ok.amount == 10  # the key was free: the validation failure was not saved

    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.refunds.create(
                {"payment_intent": pi, "amount": 9999}, {"idempotency_key": "b"}
            )
        assert caught.value.code == "amount_too_large"
    assert [r.replayed for r in fake.requests_for("/v1/refunds")][-2:] == [False, True]
    assert fake.idempotency_keys(account) == ["v", "b"]


def test_keys_expire_after_24_hours(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    params: Any = {"payment_intent": payment[0], "amount": 100}
    first = client.v1.refunds.create(params, {"idempotency_key": "old"})
    fake.advance_time(23 * 3600)
    assert client.v1.refunds.create(params, {"idempotency_key": "old"}).id == first.id
    fake.advance_time(3600)
    # pruned: the same key is now a brand-new request, and money moves twice
    assert client.v1.refunds.create(params, {"idempotency_key": "old"}).id != first.id
    assert len(fake.refunds(account)) == 2

    third = client.v1.refunds.create(params, {"idempotency_key": "manual"})
    assert fake.expire_idempotency_keys() == 2
    assert client.v1.refunds.create(params, {"idempotency_key": "manual"}).id != third.id


def test_concurrent_requests_with_one_key_execute_once(
    fake: FakeStripe, account: FakeAccount, payment: tuple[str, str]
) -> None:
    body = f"payment_intent={payment[0]}&amount=250"
    headers = {
        "Authorization": f"Bearer {account.secret_key}",
        "Idempotency-Key": "race",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    ids: list[str] = []
    start = threading.Barrier(8)

    def post(raw: httpx.Client) -> None:
        start.wait()
        ids.append(raw.post("/v1/refunds", content=body, headers=headers).json()["id"])

    with httpx.Client(base_url=fake.base_url) as raw:
        threads = [threading.Thread(target=post, args=(raw,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(set(ids)) == 1 and len(ids) == 8
    assert len(fake.refunds(account)) == 1


# --------------------------------------------------------------------------------------------
# injected faults
# --------------------------------------------------------------------------------------------


def test_saved_500_is_replayed_for_the_same_key(
    fake: FakeStripe,
    account: FakeAccount,
    client_for: ClientFactory,
    sync_http: stripe.HTTPClient,
    payment: tuple[str, str],
) -> None:
    client = client_for(account, sync_http, retries=2)
    fault = fake.inject("500", should_retry=False)
    params: Any = {"payment_intent": payment[0], "amount": 300}
    with pytest.raises(stripe.APIError) as first:
        client.v1.refunds.create(params, {"idempotency_key": "k500"})
    assert first.value.http_status == 500
    assert fault.hits == 1 and fault.remaining == 0
    assert len(fake.requests) == 1  # Stripe-Should-Retry: false stopped the SDK's retries

    with pytest.raises(stripe.APIError) as replay:
        client.v1.refunds.create(params, {"idempotency_key": "k500"})
    assert replay.value.http_body == first.value.http_body
    assert replay.value.headers is not None
    assert replay.value.headers["Idempotent-Replayed"] == "true"
    assert fake.refunds(account) == []

    fresh = client.v1.refunds.create(params, {"idempotency_key": "k500-second-attempt"})
    assert fresh.amount == 300


def test_sdk_retries_replay_a_saved_500(
    fake: FakeStripe,
    account: FakeAccount,
    client_for: ClientFactory,
    sync_http: stripe.HTTPClient,
    payment: tuple[str, str],
    no_backoff: None,
) -> None:
    """Without Stripe-Should-Retry the SDK retries a 500 with the same (auto) key: replayed."""
    fake.inject(500)
    with pytest.raises(stripe.APIError):
        client_for(account, sync_http, retries=2).v1.refunds.create({"payment_intent": payment[0]})
    sent = fake.requests_for("/v1/refunds")
    assert len(sent) == 3
    assert len({r.idempotency_key for r in sent}) == 1
    assert [r.replayed for r in sent] == [False, True, True]
    assert fake.refunds(account) == []


def test_unsaved_500_and_retryable_429_succeed_on_sdk_retry(
    fake: FakeStripe,
    account: FakeAccount,
    client_for: ClientFactory,
    sync_http: stripe.HTTPClient,
    payment: tuple[str, str],
    no_backoff: None,
) -> None:
    client = client_for(account, sync_http, retries=2)
    fake.inject("503", save=False)
    fake.inject("429", should_retry=True)
    refund = client.v1.refunds.create({"payment_intent": payment[0], "amount": 5})
    assert [r.status for r in fake.requests_for("/v1/refunds")] == [503, 429, 200]
    assert [r["id"] for r in fake.refunds(account)] == [refund.id]


def test_rate_limit_and_400_faults(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    params: Any = {"payment_intent": payment[0], "amount": 5}
    fake.inject("429")
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v1.refunds.create(params, {"idempotency_key": "rl"})
    assert limited.value.http_status == 429
    fake.inject("400", error={"code": "parameter_invalid_integer", "param": "amount"})
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        client.v1.refunds.create(params, {"idempotency_key": "rl"})
    assert invalid.value.code == "parameter_invalid_integer"
    # neither fault was saved, so the key still works
    assert client.v1.refunds.create(params, {"idempotency_key": "rl"}).amount == 5
    assert len(fake.refunds(account)) == 1


def test_faults_match_method_and_path(
    fake: FakeStripe, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    fault = fake.inject("500", times=2, path_prefix="/v1/charges", method="GET")
    client.v1.refunds.create({"payment_intent": payment[0], "amount": 5})
    client.v1.payment_intents.retrieve(payment[0])
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            client.v1.charges.retrieve(payment[1])
    assert client.v1.charges.retrieve(payment[1]).amount_refunded == 5
    assert fault.hits == 2 and fake.pending_faults == []


def test_timeout_is_a_connection_error_and_nothing_executed(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    fake.inject("timeout")
    params: Any = {"payment_intent": payment[0], "amount": 120}
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as caught:
        client.v1.refunds.create(params, {"idempotency_key": "slow"})
    assert time.monotonic() - started < SHORT_TIMEOUT + 2
    assert caught.value.should_retry is True
    assert fake.refunds(account) == []
    assert fake.requests[-1].fault == "timeout" and fake.requests[-1].delivered is False
    retried = client.v1.refunds.create(params, {"idempotency_key": "slow"})
    assert retried.amount == 120 and len(fake.refunds(account)) == 1


def test_drop_after_execute_then_retry_with_same_key(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    fake.inject("drop_after_execute")
    params: Any = {"payment_intent": payment[0], "amount": 900, "metadata": {"rma_id": "RMA-7"}}
    with pytest.raises(stripe.APIConnectionError):
        client.v1.refunds.create(params, {"idempotency_key": "rma-RMA-7-refund-1"})
    (stored,) = fake.refunds(account)  # the money moved although the client saw an error
    assert stored["metadata"] == {"rma_id": "RMA-7"}
    dropped = fake.requests[-1]
    assert dropped.executed and not dropped.delivered and dropped.status == 200

    retried = client.v1.refunds.create(params, {"idempotency_key": "rma-RMA-7-refund-1"})
    assert retried.id == stored["id"]
    assert len(fake.refunds(account)) == 1
    assert fake.requests[-1].replayed


def test_drop_after_execute_is_healed_by_sdk_retry(
    fake: FakeStripe,
    account: FakeAccount,
    client_for: ClientFactory,
    sync_http: stripe.HTTPClient,
    payment: tuple[str, str],
    no_backoff: None,
) -> None:
    fake.inject("drop_after_execute")
    refund = client_for(account, sync_http, retries=1).v1.refunds.create(
        {"payment_intent": payment[0], "amount": 42}
    )
    assert [r["id"] for r in fake.refunds(account)] == [refund.id]


def test_drop_before_execute(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    fake.inject("drop")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.refunds.create({"payment_intent": payment[0]}, {"idempotency_key": "d"})
    assert fake.refunds(account) == []


async def test_faults_async(
    fake: FakeStripe, account: FakeAccount, aclient: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    params: Any = {"payment_intent": payment[0], "amount": 60}
    fake.inject("drop_after_execute")
    with pytest.raises(stripe.APIConnectionError):
        await aclient.v1.refunds.create_async(params, {"idempotency_key": "a-drop"})
    (stored,) = fake.refunds(account)
    retried = await aclient.v1.refunds.create_async(params, {"idempotency_key": "a-drop"})
    assert retried.id == stored["id"]

    fake.inject("timeout")
    with pytest.raises(stripe.APIConnectionError):
        await aclient.v1.refunds.create_async(params, {"idempotency_key": "a-slow"})
    fake.inject("500", should_retry=False)
    with pytest.raises(stripe.APIError):
        await aclient.v1.refunds.create_async(params, {"idempotency_key": "a-500"})
    with pytest.raises(stripe.APIError):
        await aclient.v1.refunds.create_async(params, {"idempotency_key": "a-500"})
    assert len(fake.refunds(account)) == 1


# --------------------------------------------------------------------------------------------
# refund lifecycle
# --------------------------------------------------------------------------------------------


def test_pending_refunds_settle_later(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    pi, ch = payment
    fake.refund_mode = "pending"
    good = client.v1.refunds.create({"payment_intent": pi, "amount": 1000})
    bad = client.v1.refunds.create({"payment_intent": pi, "amount": 2000})
    assert good.status == bad.status == "pending"
    assert good.pending_reason == "processing"
    assert fake.charge(ch)["amount_refunded"] == 3000  # pending refunds count

    fake.settle_refund(good.id, "succeeded")
    fake.settle_refund(bad.id, "failed", failure_reason="expired_or_canceled_card")
    assert client.v1.refunds.retrieve(good.id).status == "succeeded"
    failed = client.v1.refunds.retrieve(bad.id)
    assert failed.status == "failed" and failed.failure_reason == "expired_or_canceled_card"
    assert client.v1.charges.retrieve(ch).amount_refunded == 1000  # the failed amount came back
    with pytest.raises(ValueError, match="cannot become"):
        fake.settle_refund(bad.id, "succeeded")

    types = [e["type"] for e in fake.events(account)]
    assert types.count("refund.created") == 2 and types.count("charge.refunded") == 2
    (failed_event,) = fake.events(account, "refund.failed")
    assert failed_event["data"]["object"]["id"] == bad.id
    assert failed_event["data"]["previous_attributes"]["status"] == "pending"
    listed = client.v1.events.list({"type": "refund.*", "limit": 100})
    assert {e.type for e in listed.data} == {"refund.created", "refund.updated", "refund.failed"}


def test_requires_action_refunds_can_be_canceled(
    fake: FakeStripe, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    fake.refund_mode = "requires_action"
    refund = client.v1.refunds.create({"payment_intent": payment[0], "amount": 500})
    assert refund.status == "requires_action" and refund.next_action is not None
    canceled = client.v1.refunds.cancel(refund.id)
    assert canceled.status == "canceled"
    assert fake.charge(payment[1])["amount_refunded"] == 0
    fake.refund_mode = "succeeded"
    done = client.v1.refunds.create({"payment_intent": payment[0], "amount": 500})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.cancel(done.id)


def test_refund_metadata_update(client: stripe.StripeClient, payment: tuple[str, str]) -> None:
    refund = client.v1.refunds.create(
        {"payment_intent": payment[0], "amount": 5, "metadata": {"a": "1", "b": "2"}}
    )
    updated = client.v1.refunds.update(refund.id, {"metadata": {"b": "", "c": "3"}})
    assert metadata(updated) == {"a": "1", "c": "3"}


def test_dashboard_refunds_count_against_the_charge(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    outside = fake.create_refund(account, charge=payment[1], amount=4500)
    assert outside["status"] == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": payment[0], "amount": 600})
    assert caught.value.code == "amount_too_large"
    with pytest.raises(ValueError, match="greater than unrefunded"):
        fake.create_refund(account, payment_intent=payment[0], amount=501)


def test_form_decoding_and_request_log(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    refund = client.v1.refunds.create(
        {"payment_intent": payment[0], "amount": 5, "metadata": {"820982911946154508": "order"}},
        {"idempotency_key": "numeric-metadata-key"},
    )
    assert metadata(refund) == {"820982911946154508": "order"}
    client.v1.refunds.list({"payment_intent": payment[0], "expand": ["data.charge"]})
    post, get = fake.requests_for("/v1/refunds")
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.api_key == account.secret_key and post.account_id == account.id
    assert get.params["expand"] == ["data.charge"] and get.idempotency_key is None


def test_control_api_guards(fake: FakeStripe, account: FakeAccount) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.inject("slow")
    with pytest.raises(ValueError, match="refund_mode"):
        fake.refund_mode = "instant"
    with pytest.raises(KeyError):
        fake.create_payment("acct_unknown", 100)
    pi, _ = fake.create_payment(account.secret_key, 100)  # an account by id or secret key
    fake.create_refund(account.id, payment_intent=pi)
    fake.inject("500")
    fake.reset()
    assert fake.refunds(account) == [] and fake.pending_faults == [] and fake.requests == []
    assert fake.accounts() == [account]


# --------------------------------------------------------------------------------------------
# customers and balance transactions
# --------------------------------------------------------------------------------------------


def test_customer_balance_transactions(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create({"email": "c@example.com", "metadata": {"shop": "s1"}})
    assert isinstance(customer, stripe.Customer) and customer.balance == 0

    params: Any = {
        "amount": -2500,
        "currency": "usd",
        "description": "RMA-1001 store credit",
        "metadata": {"rma_id": "RMA-1001"},
    }
    credit = client.v1.customers.balance_transactions.create(
        customer.id, params, {"idempotency_key": "rma-RMA-1001-credit"}
    )
    again = client.v1.customers.balance_transactions.create(
        customer.id, params, {"idempotency_key": "rma-RMA-1001-credit"}
    )
    assert isinstance(credit, stripe.CustomerBalanceTransaction)
    assert again.id == credit.id and credit.ending_balance == -2500
    assert metadata(credit) == {"rma_id": "RMA-1001"} and credit.type == "adjustment"
    client.v1.customers.balance_transactions.create(customer.id, {"amount": 500, "currency": "usd"})

    assert client.v1.customers.retrieve(customer.id).balance == -2000
    listed = client.v1.customers.balance_transactions.list(customer.id)
    assert [t.amount for t in listed.data] == [500, -2500]
    got = client.v1.customers.balance_transactions.retrieve(customer.id, credit.id)
    assert got.description == "RMA-1001 store credit"
    assert [t["amount"] for t in fake.balance_transactions(account, customer.id)] == [-2500, 500]

    with pytest.raises(stripe.InvalidRequestError) as currency:
        client.v1.customers.balance_transactions.create(
            customer.id, {"amount": -1, "currency": "eur"}
        )
    assert currency.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_missing")
    assert missing.value.http_status == 404


async def test_customer_balance_async(
    fake: FakeStripe, account: FakeAccount, aclient: stripe.StripeClient
) -> None:
    customer_id = fake.create_customer(account, email="x@example.com")
    credit = await aclient.v1.customers.balance_transactions.create_async(
        customer_id, {"amount": -100, "currency": "usd"}, {"idempotency_key": "credit-x"}
    )
    customer = await aclient.v1.customers.retrieve_async(customer_id)
    assert customer.balance == -100 and credit.ending_balance == -100
    assert fake.customer(customer_id)["currency"] == "usd"


# --------------------------------------------------------------------------------------------
# webhooks
# --------------------------------------------------------------------------------------------


def test_signed_events_verify_with_the_stripe_package(
    fake: FakeStripe, account: FakeAccount, client: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    refund = client.v1.refunds.create({"payment_intent": payment[0], "amount": 100})
    with WebhookReceiver() as receiver:
        response = fake.send_event(
            receiver.url, account.webhook_secret, "refund.created", refund, event_id="evt_fixed"
        )
        fake.send_event(
            receiver.url,
            account.webhook_secret,
            fake.event_for_refund(refund.id, "charge.refunded"),
        )
    assert response.status_code == 200
    (body, headers), (charge_body, charge_headers) = receiver.deliveries
    assert headers["stripe-signature"].startswith("t=")

    event = stripe.Webhook.construct_event(
        body, headers["stripe-signature"], account.webhook_secret
    )
    assert isinstance(event, stripe.Event)
    assert event.id == "evt_fixed" and event.type == "refund.created"
    assert isinstance(event.data.object, stripe.Refund)
    assert event.data.object.id == refund.id
    charge_event = stripe.Webhook.construct_event(
        charge_body, charge_headers["stripe-signature"], account.webhook_secret
    )
    assert isinstance(charge_event.data.object, stripe.Charge)
    assert charge_event.data.object.amount_refunded == 100

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["stripe-signature"], "whsec_wrong")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            body.replace(b"refund.created", b"refund.updated"),
            headers["stripe-signature"],
            account.webhook_secret,
        )


def test_signature_header_matches_the_sdk_generator() -> None:
    payload = json.dumps({"id": "evt_1", "object": "event"})
    ours = sign_payload(payload, "whsec_test", timestamp=1721950000)
    theirs = stripe.WebhookSignature.generate_signature_header(
        payload, "whsec_test", timestamp=1721950000
    )
    assert ours == theirs


async def test_settled_refund_event_to_an_asgi_receiver(
    fake: FakeStripe, account: FakeAccount, aclient: stripe.StripeClient, payment: tuple[str, str]
) -> None:
    received: list[stripe.Event] = []

    async def endpoint(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            event = stripe.Webhook.construct_event(
                raw, request.headers.get("stripe-signature"), account.webhook_secret
            )
        except (ValueError, stripe.SignatureVerificationError):
            return JSONResponse({"ok": False}, status_code=400)
        received.append(event)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/webhooks/stripe", endpoint, methods=["POST"])])
    fake.refund_mode = "pending"
    refund = await aclient.v1.refunds.create_async({"payment_intent": payment[0], "amount": 10})
    fake.settle_refund(refund.id, "failed", failure_reason="declined")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rma.test") as http:
        ok = await fake.send_event_async(
            "/webhooks/stripe",
            account.webhook_secret,
            fake.event_for_refund(refund.id, "refund.failed"),
            client=http,
        )
        stale = await fake.send_event_async(
            "/webhooks/stripe",
            account.webhook_secret,
            "refund.updated",
            fake.refund(refund.id),
            timestamp=int(SYSTEM_CLOCK.now().timestamp()) - 3600,
            client=http,
        )
        forged = await fake.send_event_async(
            "/webhooks/stripe", "whsec_other", "refund.updated", fake.refund(refund.id), client=http
        )
    assert (ok.status_code, stale.status_code, forged.status_code) == (200, 400, 400)
    (event,) = received
    assert event.type == "refund.failed"
    assert event.data.object.status == "failed"
    assert event.data.object.failure_reason == "declined"


def test_stop_releases_a_held_request() -> None:
    """stop() does not wait for a held timeout or for idle keep-alive connections."""
    server = FakeStripe().start()
    account = server.add_account()
    server.inject("timeout", path_prefix="/v1/refunds", method="GET")
    raw = httpx.Client(base_url=server.base_url, timeout=5)
    raw.get("/v1/charges/ch_x", headers={"Authorization": f"Bearer {account.secret_key}"})
    result: dict[str, Any] = {}

    def held() -> None:
        try:
            raw.get("/v1/refunds", headers={"Authorization": f"Bearer {account.secret_key}"})
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=held)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    raw.close()
    assert time.monotonic() - started < 2
    assert isinstance(result.get("error"), httpx.HTTPError)
