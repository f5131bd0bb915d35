"""A service with the WooCommerce plugin, a merchant with an ADMIN key, and a fake store;
the service's jobs run on demand and the store's webhooks are posted on demand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import select
from woocommerce import API

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Connection, Order
from core.enums import ApiKeyRole, Platform
from core.jobs import failpoints
from core.outbox.kinds import RECONCILE_CONNECTIONS
from core.outbox.queue import enqueue
from core.plugins import Registry
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY, Settings
from core.usecases.connections import connect_platform, set_connection_enabled
from core.usecases.merchants import create_api_key
from core.usecases.owned_rows import load_order
from graphql_api.app import create_app
from graphql_api.composition import build_registry
from plugins.stripe.plugin import StripePlugin
from plugins.stripe.settings import StripeSettings
from plugins.stripe.webhooks import StripeWebhookSource
from plugins.woocommerce.plugin import WooCommercePlugin
from plugins.woocommerce.settings import WooCommerceSettings
from testkit.fakes import FakeAccount, FakeStripe, FakeWooCommerce, FakeWooWebhook
from tests import factories as f
from tests.conftest import BACKENDS
from tests.integration.running_jobs import (
    RunsJobs,
    module_database_url,
)

PUBLIC_URL = "https://rma.example.test"


@pytest.fixture(scope="module", params=BACKENDS)
def woo_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from module_database_url(request.param, tmp_path_factory, "woocommerce")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def woo_db(woo_url: str) -> AsyncIterator[Database]:
    database = Database(woo_url, pool_size=8)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@dataclass
class WooWorld(RunsJobs):
    db: Database
    store: FakeWooCommerce
    settings: Settings
    registry: Registry
    client: httpx.AsyncClient
    merchant_id: uuid.UUID
    admin_key: str
    stripe: FakeStripe
    stripe_account: FakeAccount
    connection_id: uuid.UUID | None = None

    def stripe_paid_order(
        self, lines: list[dict[str, Any]], *, shipping: str = "5.00", email: str | None = None
    ) -> tuple[int, str]:
        """An order the customer paid through the WooCommerce Stripe Gateway: the payment is
        on the fake Stripe, the order names its PaymentIntent. ``(order id, pi_...)``."""
        total = sum(
            Decimal(str(line.get("price", "10.00"))) * int(line.get("quantity", 1))
            + Decimal(str(line.get("tax", "0.00")))
            for line in lines
        ) + Decimal(shipping)
        intent, charge = self.stripe.create_payment(self.stripe_account, int(total * 100), "usd")
        reference = self.store.create_order(
            email=email or f"{uuid.uuid4().hex[:8]}@example.com",
            lines=lines,
            shipping=shipping,
            payment_method="stripe",
            transaction_id=charge,
            meta=[{"key": "_stripe_intent_id", "value": intent}],
        )
        return reference, intent

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token or self.admin_key}"},
        )
        assert response.status_code == 200, response.text
        payload = response.json()
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data

    async def authorize_url(self, store_url: str | None = None) -> str:
        answer = await self.gql(
            "mutation($url: String!) { connectWooCommerce(storeUrl: $url) {"
            " authorizeUrl userErrors { code field message } } }",
            {"url": store_url or self.store.base_url},
        )
        payload = answer["connectWooCommerce"]
        assert payload["userErrors"] == [], payload
        url: str = payload["authorizeUrl"]
        return url

    async def connect(self) -> uuid.UUID:
        """The merchant connects the store by the key grant; the jobs run after."""
        authorize_url = await self.authorize_url()
        assert authorize_url.startswith(self.store.base_url + "/wc-auth/v1/authorize?")
        callback_url, keys = self.store.approve_connect(authorize_url)
        answered = await self.client.post(callback_url.removeprefix(PUBLIC_URL), json=keys)
        assert answered.status_code == 200, answered.text
        back = await self.client.get(
            self.store.connect_return_url(authorize_url).removeprefix(PUBLIC_URL)
        )
        assert back.status_code == 200, back.text
        self.connection_id = uuid.UUID(answered.json()["connection"])
        await self.run_jobs()
        return self.connection_id

    async def deliver_webhooks(self) -> list[int]:
        """What the store's queue holds now, built and posted to the service (as Action
        Scheduler would); the statuses the service answered."""
        built = [hook for hook, _ in self.store.deliver_pending(lambda hook: None)]
        return [await self.post_webhook(hook) for hook in built]

    async def post_webhook(self, hook: FakeWooWebhook) -> int:
        response = await self.client.post(
            hook.delivery_url.removeprefix(PUBLIC_URL), content=hook.body, headers=hook.headers
        )
        return response.status_code

    def store_client(self) -> API:
        """The woocommerce package with keys of the store's own admin (not the service's)."""
        key, secret = self.store.add_keys()
        return API(
            url=self.store.base_url,
            consumer_key=key,
            consumer_secret=secret,
            version="wc/v3",
            timeout=5,
        )

    async def poll(self) -> None:
        """The periodic reconciliation, now (a slot of its own), and the jobs it queues."""
        async with self.db.session() as session, session.begin():
            enqueue(
                session,
                RECONCILE_CONNECTIONS,
                {"slot": uuid.uuid4().hex},
                now=SYSTEM_CLOCK.now(),
            )
        await self.run_jobs()

    async def disconnect(self) -> None:
        """Disable the connection, so later tests' polls leave this (stopped) store alone."""
        if self.connection_id is None:
            return
        async with self.db.session() as session:
            await set_connection_enabled(
                session, self.connection_id, enabled=False, now=SYSTEM_CLOCK.now()
            )

    async def order(self, reference: int | str) -> Order | None:
        async with self.db.read_session() as session:
            row = (
                await session.exec(
                    select(Order).where(
                        Order.merchant_id == self.merchant_id,
                        Order.platform == Platform.WOOCOMMERCE,
                        Order.external_id == str(reference),
                    )
                )
            ).first()
            if row is None:
                return None
            return await load_order(session, self.merchant_id, row.id)

    async def connection(self) -> Connection:
        assert self.connection_id is not None
        async with self.db.read_session() as session:
            row = await session.get(Connection, self.connection_id)
        assert row is not None
        return row


def woocommerce_plugin(**overrides: Any) -> WooCommercePlugin:
    return WooCommercePlugin(WooCommerceSettings(request_timeout=5.0, **overrides))


@pytest.fixture(name="store")
def store_fixture() -> Iterator[FakeWooCommerce]:
    with FakeWooCommerce() as fake:
        yield fake
        assert fake.server_errors() == []


async def make_world(
    db: Database,
    store: FakeWooCommerce,
    stripe: FakeStripe,
    client: httpx.AsyncClient,
    registry: Registry,
    settings: Settings,
) -> WooWorld:
    merchant = await f.merchant(db, return_window_days=365, auto_authorize_max_risk=100)
    account = stripe.add_account()
    async with db.session() as session:
        key = await create_api_key(
            session, merchant_id=merchant.id, role=ApiKeyRole.ADMIN, now=SYSTEM_CLOCK.now()
        )
    async with db.session() as session:
        await connect_platform(
            session,
            Vault(DEVELOPMENT_ENCRYPTION_KEY),
            StripeWebhookSource(),
            merchant_id=merchant.id,
            account=account.id,
            credentials={"secret_key": account.secret_key},
            webhook_secret="whsec_woo_world",
            now=SYSTEM_CLOCK.now(),
        )
    return WooWorld(
        db, store, settings, registry, client, merchant.id, key.plaintext, stripe, account
    )


@pytest_asyncio.fixture(name="world", loop_scope="session")
async def world_fixture(
    woo_db: Database, store: FakeWooCommerce, fake_stripe: FakeStripe
) -> AsyncIterator[WooWorld]:
    settings = Settings(
        database_url=woo_db.url, secret_key="s" * 40, public_url=PUBLIC_URL, run_worker=False
    )
    registry = build_registry(
        [woocommerce_plugin(), StripePlugin(StripeSettings(api_base=fake_stripe.base_url))]
    )
    app = create_app(settings, database=woo_db, registry=registry)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL
    ) as client:
        world = await make_world(woo_db, store, fake_stripe, client, registry, settings)
        yield world
        await world.disconnect()
    failpoints.disarm()
