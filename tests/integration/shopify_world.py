"""A service with the Shopify app installed on the fake Shopify, its jobs run on demand."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Connection, Order
from core.enums import Platform
from core.jobs import failpoints
from core.plugins import Registry
from core.settings import Settings
from core.usecases.owned_rows import load_order
from graphql_api.app import create_app
from graphql_api.composition import build_registry
from plugins.shopify.plugin import ShopifyPlugin
from plugins.shopify.settings import ShopifySettings
from testkit.fakes import FakeShop, FakeShopify, FakeWebhook
from tests.conftest import BACKENDS
from tests.integration.running_jobs import (
    RunsJobs,
    module_database_url,
)

API_KEY = "rma-app-client-id"
API_SECRET = "shpss_rma_app_secret_current"
PUBLIC_URL = "https://rma.example.test"


@pytest.fixture(scope="module")
def fake_shopify() -> Iterator[FakeShopify]:
    with FakeShopify(api_key=API_KEY, api_secret=API_SECRET) as fake:
        yield fake
        assert fake.server_errors() == []


@pytest.fixture(scope="module", params=BACKENDS)
def shopify_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of this module alone, so that its workers see only its jobs."""
    yield from module_database_url(request.param, tmp_path_factory, "shopify")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shopify_db(shopify_url: str) -> AsyncIterator[Database]:
    database = Database(shopify_url, pool_size=8)
    yield database
    await database.dispose()


@dataclass
class Installed:
    shop: FakeShop
    merchant_id: uuid.UUID
    connection_id: uuid.UUID
    admin_key: str | None
    page: str


@dataclass
class ShopifyWorld(RunsJobs):
    db: Database
    fake: FakeShopify
    settings: Settings
    registry: Registry
    client: httpx.AsyncClient
    installs: list[Installed] = field(default_factory=list)

    def new_shop(self, **options: Any) -> FakeShop:
        return self.fake.add_shop(f"shop-{uuid.uuid4().hex[:10]}.myshopify.com", **options)

    async def install(
        self, shop: FakeShop | None = None, *, admin_key: str | None = None
    ) -> Installed:
        """The merchant installs the app: from the shop (a new merchant), or through
        ``connectShopify`` with an ADMIN key of an existing merchant. Runs the jobs after."""
        shop = shop or self.new_shop()
        if admin_key is None:
            started = await self.client.get("/shopify/install", params={"shop": shop.domain})
            assert started.status_code == 302, started.text
            authorize_url = started.headers["location"]
        else:
            answer = await self.gql(
                "mutation($shop: String!) { connectShopify(shop: $shop) {"
                " installUrl userErrors { code message } } }",
                {"shop": shop.domain},
                admin_key,
            )
            assert answer["connectShopify"]["userErrors"] == []
            authorize_url = answer["connectShopify"]["installUrl"]
        assert authorize_url.startswith(self.fake.base_url + "/admin/oauth/authorize?")
        callback = self.fake.approve_install(authorize_url, shop)
        page = await self.client.get(callback.removeprefix(PUBLIC_URL))
        assert page.status_code == 200, page.text
        merchant = re.search(r"Merchant id: <code>([0-9a-f-]{36})</code>", page.text)
        connection = re.search(r"Connection id: <code>([0-9a-f-]{36})</code>", page.text)
        key = re.search(r"<code>(rma_sk_[^<]+)</code>", page.text)
        assert merchant and connection, page.text
        installed = Installed(
            shop,
            uuid.UUID(merchant.group(1)),
            uuid.UUID(connection.group(1)),
            key.group(1) if key else admin_key,
            page.text,
        )
        self.installs.append(installed)
        await self.run_jobs()
        return installed

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        payload = response.json()
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data

    async def sync_now(self, installed: Installed) -> dict[str, Any]:
        """``syncConnection`` on the install's connection, as its ADMIN; then the jobs."""
        [listed] = (await self.gql("{ connections { id } }", token=installed.admin_key))[
            "connections"
        ]
        answer = await self.gql(
            "mutation($id: ID!) { syncConnection(id: $id) { userErrors { code } } }",
            {"id": listed["id"]},
            installed.admin_key,
        )
        await self.run_jobs()
        return answer["syncConnection"]

    async def deliver(self, webhook: FakeWebhook) -> httpx.Response:
        """POST a webhook the fake recorded to the app-wide address, as Shopify would."""
        return await self.client.post(
            "/webhooks/shopify/app", content=webhook.body, headers=dict(webhook.headers)
        )

    async def order(self, merchant_id: uuid.UUID, reference: str) -> Order | None:
        async with self.db.read_session() as session:
            return (
                await session.exec(
                    select(Order).where(
                        Order.merchant_id == merchant_id,
                        Order.platform == Platform.SHOPIFY,
                        Order.external_id == reference,
                    )
                )
            ).first()

    async def synced_order(self, installed: Installed, **details: Any) -> Order:
        """An order made on the shop (delivered a day ago by default), arrived by webhook."""
        details.setdefault("email", f"{uuid.uuid4().hex[:8]}@example.com")
        details.setdefault("delivered_at", SYSTEM_CLOCK.now() - timedelta(days=1))
        details.setdefault("created_at", SYSTEM_CLOCK.now() - timedelta(days=3))
        gid = self.fake.create_order(installed.shop, **details)
        created = self.fake.webhooks(installed.shop, topic="orders/create")[-1]
        assert (await self.deliver(created)).status_code == 200
        await self.run_jobs()
        order = await self.order(installed.merchant_id, gid)
        assert order is not None
        async with self.db.read_session() as session:
            return await load_order(session, installed.merchant_id, order.id)

    async def connection(self, connection_id: uuid.UUID) -> Connection:
        async with self.db.read_session() as session:
            row = await session.get(Connection, connection_id)
        assert row is not None
        return row


def shopify_plugin(fake: FakeShopify, **overrides: Any) -> ShopifyPlugin:
    settings = ShopifySettings(
        api_key=API_KEY,
        api_secret=API_SECRET,
        api_base=fake.base_url,
        request_timeout=5.0,
        **overrides,
    )
    return ShopifyPlugin(settings)


@pytest_asyncio.fixture(name="world", loop_scope="session")
async def world_fixture(
    shopify_db: Database, fake_shopify: FakeShopify
) -> AsyncIterator[ShopifyWorld]:
    settings = Settings(
        database_url=shopify_db.url,
        secret_key="s" * 40,
        public_url=PUBLIC_URL,
        run_worker=False,
    )
    registry = build_registry([shopify_plugin(fake_shopify)])
    app = create_app(settings, database=shopify_db, registry=registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield ShopifyWorld(shopify_db, fake_shopify, settings, registry, client)
    failpoints.disarm()
