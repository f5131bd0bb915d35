"""Webhook intake through the real app: verified, stored once, processed by the worker."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Connection, Job, Resolution, Rma, WebhookDelivery
from core.enums import ResolutionStatus, RmaStatus, WebhookState
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY, Settings
from core.usecases.connections import connect_platform, set_connection_enabled
from core.usecases.resolutions import resolve_rma
from graphql_api.app import create_app
from graphql_api.composition import build_worker
from plugins.shopify.webhooks import ShopifyWebhookSource
from plugins.stripe.webhooks import StripeWebhookSource
from plugins.woocommerce.webhooks import WooCommerceWebhookSource
from testkit.webhook_signing import (
    fixture_bytes,
    shopify_headers,
    stripe_event,
    stripe_headers,
    woocommerce_headers,
)
from tests import factories as f
from webhooks.inbox import InboxWriter, NewDelivery

SHOP = "northwind.myshopify.com"
STORE = "https://shop.example.com/"
SECRET = "whsec_current_secret"
WEBHOOK_SOURCES = {
    "shopify": ShopifyWebhookSource(),
    "woocommerce": WooCommerceWebhookSource(),
    "stripe": StripeWebhookSource(),
}


@dataclass
class Inbox:
    db: Database
    client: httpx.AsyncClient
    merchant_id: uuid.UUID
    urls: dict[str, str]
    connections: dict[str, uuid.UUID]

    async def post(self, platform: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post(self.urls[platform], content=body, headers=headers)

    async def deliveries(self) -> list[WebhookDelivery]:
        async with self.db.read_session() as session:
            statement = select(WebhookDelivery).where(
                WebhookDelivery.merchant_id == self.merchant_id
            )
            return list((await session.exec(statement)).all())

    async def jobs(self) -> int:
        async with self.db.read_session() as session:
            statement = select(sa.func.count()).where(Job.merchant_id == self.merchant_id)
            return int((await session.exec(statement)).one())

    async def process(self) -> None:
        worker = build_worker(
            Settings(database_url=self.db.url), self.db, clock=SYSTEM_CLOCK, concurrency=2
        )
        worker.handlers = {k: v for k, v in worker.handlers.items() if k.startswith("webhooks.")}
        await worker.run_until_idle()


@pytest_asyncio.fixture(loop_scope="session")
async def inbox(db: Database) -> AsyncIterator[Inbox]:
    shop = await f.merchant(db)
    vault = Vault(DEVELOPMENT_ENCRYPTION_KEY)
    urls, connections = {}, {}
    for platform, account, credentials in (
        ("shopify", SHOP, {"access_token": "shpat_x"}),
        ("woocommerce", STORE, {"consumer_key": "ck_x", "consumer_secret": "cs_x"}),
        ("stripe", "acct_1", {"secret_key": "sk_test_x"}),
    ):
        async with db.session() as session:
            connection = await connect_platform(
                session,
                vault,
                WEBHOOK_SOURCES[platform],
                merchant_id=shop.id,
                account=account,
                credentials=credentials,
                webhook_secret=SECRET,
                now=SYSTEM_CLOCK.now(),
            )
        urls[platform] = f"/webhooks/{platform}/{connection.id}"
        connections[platform] = connection.id
    app = create_app(Settings(database_url=db.url, run_worker=False), database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Inbox(db, client, shop.id, urls, connections)


SAMPLES = {
    "shopify": lambda body: shopify_headers(body, SECRET, SHOP),
    "woocommerce": lambda body: woocommerce_headers(body, SECRET, STORE),
    "stripe": lambda body: stripe_headers(body, SECRET),
}
FIXTURE_FILES = {
    "shopify": "shopify_orders_create.json",
    "woocommerce": "woocommerce_order_created.json",
    "stripe": "stripe_charge_refunded.json",
}


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "stripe"])
async def test_a_delivery_posted_five_times_at_once_is_stored_once(
    inbox: Inbox, platform: str
) -> None:
    body = fixture_bytes(FIXTURE_FILES[platform])
    headers = SAMPLES[platform](body)
    responses = await asyncio.gather(*(inbox.post(platform, body, headers) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert sum(r.json()["duplicate"] for r in responses) == 4
    assert len(await inbox.deliveries()) == 1
    assert await inbox.jobs() == 1


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "stripe"])
async def test_a_forged_delivery_gets_401_and_nothing_is_stored(
    inbox: Inbox, platform: str
) -> None:
    body = fixture_bytes(FIXTURE_FILES[platform])
    good = SAMPLES[platform](body)
    signature_header = next(h for h in good if "signature" in h or "hmac" in h)
    tampered = body[:-2] + bytes([body[-2] ^ 1]) + body[-1:]
    wrong_secret = {
        "shopify": shopify_headers(body, "another-secret", SHOP),
        "woocommerce": woocommerce_headers(body, "another-secret", STORE),
        "stripe": stripe_headers(body, "another-secret"),
    }[platform]
    missing = {k: v for k, v in good.items() if k != signature_header}
    for attempt_body, headers in ((tampered, good), (body, wrong_secret), (body, missing)):
        response = await inbox.post(platform, attempt_body, headers)
        assert response.status_code == 401, response.text
    assert await inbox.deliveries() == []
    assert await inbox.jobs() == 0


@pytest.mark.parametrize("offset", [-400, 400])
async def test_stale_or_future_stripe_timestamps_are_refused(inbox: Inbox, offset: int) -> None:

    body = stripe_event("evt_time", "refund.updated", {"id": "re_1", "status": "pending"})
    headers = stripe_headers(body, SECRET, timestamp=int(SYSTEM_CLOCK.now().timestamp()) + offset)
    assert (await inbox.post("stripe", body, headers)).status_code == 401
    assert await inbox.deliveries() == []


async def test_the_previous_secret_still_works_during_a_rotation(
    inbox: Inbox, db: Database
) -> None:
    async with db.session() as session:
        await connect_platform(
            session,
            Vault(DEVELOPMENT_ENCRYPTION_KEY),
            ShopifyWebhookSource(),
            merchant_id=inbox.merchant_id,
            account=SHOP,
            credentials={"access_token": "shpat_y"},
            webhook_secret="whsec_brand_new_secret",
            now=SYSTEM_CLOCK.now(),
        )
    body = fixture_bytes(FIXTURE_FILES["shopify"])
    old = await inbox.post("shopify", body, shopify_headers(body, SECRET, SHOP, event_id="a"))
    new = await inbox.post(
        "shopify", body, shopify_headers(body, "whsec_brand_new_secret", SHOP, event_id="b")
    )
    assert (old.status_code, new.status_code) == (200, 200)


async def test_a_shopify_delivery_for_another_shop_is_refused(inbox: Inbox) -> None:
    body = fixture_bytes(FIXTURE_FILES["shopify"])
    headers = shopify_headers(body, SECRET, "someone-else.myshopify.com")
    assert (await inbox.post("shopify", body, headers)).status_code == 401
    assert await inbox.deliveries() == []


async def test_two_woocommerce_deliveries_sharing_an_id_in_one_second_are_both_kept(
    inbox: Inbox,
) -> None:
    first = b'{"id": 1, "status": "processing"}'
    second = b'{"id": 2, "status": "processing"}'
    for body in (first, second, first):
        headers = woocommerce_headers(body, SECRET, STORE, delivery_id="same-second")
        assert (await inbox.post("woocommerce", body, headers)).status_code == 200
    assert len(await inbox.deliveries()) == 2


async def test_the_woocommerce_creation_ping_is_answered_and_not_stored(inbox: Inbox) -> None:
    response = await inbox.post(
        "woocommerce",
        b"webhook_id=12",
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert await inbox.deliveries() == []


async def test_unknown_urls_and_oversized_bodies_are_refused(inbox: Inbox) -> None:
    body = fixture_bytes(FIXTURE_FILES["stripe"])
    headers = SAMPLES["stripe"](body)
    unknown = await inbox.client.post(
        f"/webhooks/stripe/{uuid.uuid4()}", content=body, headers=headers
    )
    wrong_platform = await inbox.client.post(
        inbox.urls["stripe"].replace("/stripe/", "/shopify/"), content=body, headers=headers
    )
    too_big = await inbox.post("stripe", b"x" * (1024 * 1024 + 1), headers)
    assert (unknown.status_code, wrong_platform.status_code, too_big.status_code) == (404, 404, 413)
    assert await inbox.deliveries() == []


async def test_unknown_topics_are_stored_acknowledged_and_marked_ignored(inbox: Inbox) -> None:
    body = fixture_bytes(FIXTURE_FILES["shopify"])
    headers = shopify_headers(body, SECRET, SHOP, topic="products/update", event_id="p1")
    assert (await inbox.post("shopify", body, headers)).status_code == 200
    await inbox.process()
    [delivery] = await inbox.deliveries()
    assert delivery.state is WebhookState.IGNORED


async def test_connection_secrets_are_encrypted_and_bound_to_their_row(
    inbox: Inbox, db: Database
) -> None:
    async with db.read_session() as session:
        rows = (
            await session.exec(
                select(Connection).where(Connection.merchant_id == inbox.merchant_id)
            )
        ).all()
    for row in rows:
        assert SECRET not in row.webhook_secrets_encrypted
        assert "sk_test_x" not in row.credentials_encrypted
    vault = Vault(DEVELOPMENT_ENCRYPTION_KEY)
    stripe_row = next(row for row in rows if row.platform.value == "stripe")
    shopify_row = next(row for row in rows if row.platform.value == "shopify")
    from core.secrets import SecretsUnreadable

    with pytest.raises(SecretsUnreadable):
        vault.open(shopify_row.merchant_id, shopify_row.id, stripe_row.credentials_encrypted)


async def _refund_resolution(db: Database, merchant_id: uuid.UUID) -> tuple[Rma, Resolution]:
    order = await f.order(db, merchant_id)
    rma = await f.inspected_rma(db, merchant_id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, merchant_id, rma.id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
        )
    return rma, chosen.resolution


def refund_body(
    event_id: str, event_type: str, resolution: Resolution, status: str, **changes: object
) -> bytes:
    refund = {
        "id": f"re_{resolution.id.hex[:12]}",
        "object": "refund",
        "status": status,
        "amount": resolution.amount_minor,
        "currency": resolution.currency.lower(),
        "payment_intent": resolution.payment_reference,
        "charge": "ch_3Nx0000000000000",
        "failure_reason": "expired_or_canceled_card" if status == "failed" else None,
        "metadata": {"resolution_id": str(resolution.id)},
    }
    return stripe_event(event_id, event_type, {**refund, **changes})


async def test_stripe_refund_events_settle_the_resolution_whatever_their_order(
    inbox: Inbox,
) -> None:
    rma, resolution = await _refund_resolution(inbox.db, inbox.merchant_id)
    events = [
        refund_body("evt_c", "refund.created", resolution, "pending"),
        refund_body("evt_u", "refund.updated", resolution, "succeeded"),
    ]
    # Newest first and duplicated: the final state must still be "succeeded".
    for body in (events[1], events[0], events[1], events[0]):
        assert (await inbox.post("stripe", body, stripe_headers(body, SECRET))).status_code == 200
    await inbox.process()
    async with inbox.db.read_session() as session:
        stored = await session.get(Resolution, resolution.id)
        moved = await session.get(Rma, rma.id)
    assert stored is not None
    assert moved is not None
    assert stored.status is ResolutionStatus.SUCCEEDED
    assert stored.provider_reference == f"re_{resolution.id.hex[:12]}"
    assert moved.status is RmaStatus.RESOLVED


async def test_a_failed_stripe_refund_sends_the_rma_back_to_inspected(inbox: Inbox) -> None:
    rma, resolution = await _refund_resolution(inbox.db, inbox.merchant_id)
    body = refund_body("evt_f", "refund.failed", resolution, "failed")
    assert (await inbox.post("stripe", body, stripe_headers(body, SECRET))).status_code == 200
    await inbox.process()
    async with inbox.db.read_session() as session:
        stored = await session.get(Resolution, resolution.id)
        moved = await session.get(Rma, rma.id)
        processed = (
            await session.exec(
                select(WebhookDelivery).where(col(WebhookDelivery.dedupe_key) == "event:evt_f")
            )
        ).one()
    assert stored is not None
    assert moved is not None
    assert stored.status is ResolutionStatus.FAILED
    assert stored.failure_reason == "expired_or_canceled_card"
    assert moved.status is RmaStatus.INSPECTED
    assert processed.state is WebhookState.PROCESSED


async def test_an_overlong_event_id_is_stored_under_a_hash_and_harms_no_other_delivery(
    inbox: Inbox,
) -> None:
    long_id = "evt_" + "x" * 400
    odd = stripe_event(long_id, "refund.updated", {"id": "re_x", "status": "pending"})
    normal = stripe_event("evt_normal", "refund.updated", {"id": "re_y", "status": "pending"})
    responses = await asyncio.gather(
        inbox.post("stripe", odd, stripe_headers(odd, SECRET)),
        inbox.post("stripe", normal, stripe_headers(normal, SECRET)),
    )
    assert [r.status_code for r in responses] == [200, 200]
    keys = sorted(d.dedupe_key for d in await inbox.deliveries())
    assert keys[0] == "event#sha256:" + hashlib.sha256(long_id.encode()).hexdigest()
    assert keys[1] == "event:evt_normal"


async def _manual_resolution(db: Database, merchant_id: uuid.UUID) -> tuple[Rma, Resolution]:
    order = await f.order(db, merchant_id, stripe_paid=False)
    rma = await f.inspected_rma(db, merchant_id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, merchant_id, rma.id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
        )
    assert chosen.resolution.provider.value == "manual"
    return rma, chosen.resolution


async def _store_credit(db: Database, merchant_id: uuid.UUID) -> tuple[Rma, Resolution]:
    order = await f.order(db, merchant_id)
    rma = await f.inspected_rma(db, merchant_id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session,
            merchant_id,
            rma.id,
            kind="STORE_CREDIT",
            actor="staff",
            now=SYSTEM_CLOCK.now(),
        )
    return rma, chosen.resolution


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("a manual refund", "manual resolution, not stripe"),
        ("a store credit", "STORE_CREDIT resolution, not a refund"),
        ("another amount", "the refund is 1, the resolution"),
        ("another currency", "the refund is in EUR"),
        ("another payment", "the refund is of another payment"),
    ],
)
async def test_a_stripe_event_settles_only_a_refund_stripe_made_for_that_resolution(
    inbox: Inbox, case: str, why: str
) -> None:
    """A merchant's own Stripe account once marked a MANUAL refund that never went to Stripe
    as SUCCEEDED, just by naming the resolution in a refund's metadata."""
    if case == "a manual refund":
        rma, resolution = await _manual_resolution(inbox.db, inbox.merchant_id)
    elif case == "a store credit":
        rma, resolution = await _store_credit(inbox.db, inbox.merchant_id)
    else:
        rma, resolution = await _refund_resolution(inbox.db, inbox.merchant_id)
    changes: dict[str, object] = {
        "another amount": {"amount": 1},
        "another currency": {"currency": "eur"},
        "another payment": {"payment_intent": "pi_someone_else", "charge": "ch_someone_else"},
    }.get(case, {})
    event_id = f"evt_{uuid.uuid4().hex[:12]}"
    body = refund_body(event_id, "refund.updated", resolution, "succeeded", **changes)
    before = await _states(inbox.db, rma, resolution)

    assert (await inbox.post("stripe", body, stripe_headers(body, SECRET))).status_code == 200
    await inbox.process()

    assert await _states(inbox.db, rma, resolution) == before
    async with inbox.db.read_session() as session:
        delivery = (
            await session.exec(
                select(WebhookDelivery).where(
                    col(WebhookDelivery.dedupe_key) == f"event:{event_id}"
                )
            )
        ).one()
    assert delivery.state is WebhookState.IGNORED
    assert delivery.error is not None
    assert why in delivery.error


async def _states(db: Database, rma: Rma, resolution: Resolution) -> tuple[object, ...]:
    async with db.read_session() as session:
        stored = await session.get(Resolution, resolution.id)
        moved = await session.get(Rma, rma.id)
    assert stored is not None
    assert moved is not None
    return stored.status, stored.provider_reference, stored.failure_reason, moved.status


async def test_disabling_enabling_and_rotating_take_effect_on_the_next_delivery_everywhere(
    inbox: Inbox, db: Database
) -> None:
    """Two app processes share the database; neither may act on what it saw before."""
    other_app = create_app(Settings(database_url=db.url, run_worker=False), database=db)
    transport = httpx.ASGITransport(app=other_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:

        async def statuses(secret: str) -> list[int]:
            answers = []
            for client in (inbox.client, other):
                body = stripe_event(f"evt_{uuid.uuid4().hex}", "charge.refunded", {"id": "ch_1"})
                headers = stripe_headers(body, secret)
                response = await client.post(inbox.urls["stripe"], content=body, headers=headers)
                answers.append(response.status_code)
            return answers

        async def set_enabled(enabled: bool) -> None:
            async with db.session() as session:
                await set_connection_enabled(
                    session, inbox.connections["stripe"], enabled=enabled, now=SYSTEM_CLOCK.now()
                )

        async def rotate(secret: str) -> None:
            async with db.session() as session:
                await connect_platform(
                    session,
                    Vault(DEVELOPMENT_ENCRYPTION_KEY),
                    StripeWebhookSource(),
                    merchant_id=inbox.merchant_id,
                    account="acct_1",
                    credentials={"secret_key": "sk_test_x"},
                    webhook_secret=secret,
                    now=SYSTEM_CLOCK.now(),
                )

        assert await statuses(SECRET) == [200, 200]
        await set_enabled(False)
        assert await statuses(SECRET) == [404, 404]
        await set_enabled(True)
        assert await statuses(SECRET) == [200, 200]
        await rotate("whsec_rotated_first")
        assert await statuses("whsec_rotated_first") == [200, 200]
        assert await statuses(SECRET) == [200, 200]  # the previous secret stays valid once
        await rotate("whsec_rotated_second")
        assert await statuses("whsec_rotated_second") == [200, 200]
        assert await statuses(SECRET) == [401, 401]


async def test_one_delivery_in_batches_committed_side_by_side_is_stored_once(
    inbox: Inbox, db: Database
) -> None:
    """PostgreSQL commits several batches at once: the unique key still keeps one copy."""
    writer = InboxWriter(db, max_batch=1, max_wait_seconds=0, writes_at_once=4)
    async with db.read_session() as session:
        connection = await session.get(Connection, inbox.connections["shopify"])
    assert connection is not None
    delivery = NewDelivery(
        merchant_id=inbox.merchant_id,
        connection_id=connection.id,
        platform=connection.platform,
        topic="orders/create",
        dedupe_key="body:side-by-side",
        body=b"{}",
        headers={},
        verified_with=connection.webhook_secrets_encrypted,
    )
    try:
        outcomes = await asyncio.gather(*(writer.store(delivery) for _ in range(8)))
    finally:
        await writer.close()
    assert sorted(o.value for o in outcomes) == ["duplicate"] * 7 + ["new"]
    assert len(await inbox.deliveries()) == 1
    assert await inbox.jobs() == 1


async def test_another_merchants_connection_never_takes_a_delivery_signed_for_this_one(
    inbox: Inbox, db: Database
) -> None:
    """Each connection is known by its own id with its own secrets, however warm the cache."""
    other = await f.merchant(db)
    async with db.session() as session:
        theirs = await connect_platform(
            session,
            Vault(DEVELOPMENT_ENCRYPTION_KEY),
            WEBHOOK_SOURCES["shopify"],
            merchant_id=other.id,
            account="elsewhere.myshopify.com",
            credentials={"access_token": "shpat_y"},
            webhook_secret="whsec_theirs",
            now=SYSTEM_CLOCK.now(),
        )
    their_url = f"/webhooks/shopify/{theirs.id}"
    body = fixture_bytes("shopify_orders_create.json")
    ours = shopify_headers(body, SECRET, SHOP, event_id="ours")
    assert (await inbox.post("shopify", body, ours)).status_code == 200  # warms the cache
    refused = await inbox.client.post(their_url, content=body, headers=ours)
    assert refused.status_code == 401
    async with db.read_session() as session:
        statement = select(WebhookDelivery).where(WebhookDelivery.merchant_id == other.id)
        assert (await session.exec(statement)).all() == []
    assert len(await inbox.deliveries()) == 1
