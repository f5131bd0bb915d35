"""The real ASGI app over the test databases, and a small GraphQL client for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Merchant, Order
from core.enums import ApiKeyRole
from core.settings import Settings
from core.usecases.merchants import create_api_key
from graphql_api.app import create_app
from graphql_api.ids import to_global_id
from testkit.addresses import fresh_client
from tests import factories as f


@dataclass
class Api:
    client: httpx.AsyncClient

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict[str, Any] = {"query": query, **extra}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql", json=body, headers=headers)

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Run an operation that must succeed at the GraphQL level; returns ``data``."""
        response = await self.post(query, variables, token)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data


@pytest_asyncio.fixture(loop_scope="session")
async def api(db: Database) -> AsyncIterator[Api]:
    app = create_app(Settings(database_url=db.url, secret_key="x" * 40), database=db)
    transport = httpx.ASGITransport(app=app, client=fresh_client())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client)


@dataclass
class Shop:
    merchant: Merchant
    admin: str
    agent: str
    readonly: str

    @property
    def id(self) -> uuid.UUID:
        return self.merchant.id


async def make_shop(db: Database, **policy: object) -> Shop:
    merchant = await f.merchant(db, **policy)
    keys = {}
    for role in ApiKeyRole:
        async with db.session() as session:
            keys[role] = (
                await create_api_key(
                    session, merchant_id=merchant.id, role=role, now=SYSTEM_CLOCK.now()
                )
            ).plaintext
    return Shop(merchant, keys[ApiKeyRole.ADMIN], keys[ApiKeyRole.AGENT], keys[ApiKeyRole.READONLY])


def gid(type_name: str, row_id: uuid.UUID) -> str:
    return to_global_id(type_name, row_id)


def order_gid(order: Order) -> str:
    return gid("Order", order.id)
