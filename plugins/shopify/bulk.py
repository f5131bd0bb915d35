"""Backfills with a bulk operation: one query run by Shopify, its result read as JSON lines.

Beyond a page of orders, a first sync asks Shopify to run the orders query itself
(``bulkOperationRunQuery``), waits for it, and streams the JSONL file line by line: each order
is followed by its line items (``__parentId``, grouped under their order since
``groupObjects: true``), so one order at a time is held, never the file. The file lives in
Shopify's storage at a signed URL: it is fetched without the shop's token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from core.ports.commerce import PlatformRejected, PlatformUnavailable
from plugins.shopify.client import JSON, ShopifyGraphQL, user_errors
from plugins.shopify.queries import MONEY

# Bulk queries take no pagination arguments; nested connections become their own lines.
BULK_ORDERS = f"""
{{
  orders(query: "status:any") {{
    edges {{
      node {{
        id name email createdAt processedAt updatedAt cancelledAt presentmentCurrencyCode
        customer {{ id email firstName lastName }}
        totalShippingPriceSet {{ {MONEY} }}
        fulfillments {{ deliveredAt }}
        transactions {{
          id kind status gateway
          amountSet {{ {MONEY} }}
          parentTransaction {{ id }}
        }}
        refunds {{ id note totalRefundedSet {{ {MONEY} }} }}
        lineItems {{
          edges {{
            node {{
              id sku title quantity
              originalUnitPriceSet {{ {MONEY} }}
              totalDiscountSet {{ {MONEY} }}
              taxLines {{ priceSet {{ {MONEY} }} }}
              product {{ productType tags }}
            }}
          }}
        }}
      }}
    }}
  }}
}}
"""

RUN = """
mutation RunBulk($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

STATUS = """
query BulkStatus($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url createdAt } }
}
"""

ORDERS_COUNT = 'query OrdersCount { ordersCount(query: "status:any") { count } }'


async def orders_count(client: ShopifyGraphQL) -> int:
    data = await client.execute(ORDERS_COUNT, cost=1)
    return int((data.get("ordersCount") or {}).get("count") or 0)


async def start(client: ShopifyGraphQL) -> str:
    data = await client.execute(RUN, {"query": BULK_ORDERS}, cost=10)
    payload = data.get("bulkOperationRunQuery") or {}
    problem = user_errors(payload)
    if problem:
        if "OPERATION_IN_PROGRESS" in json.dumps(payload.get("userErrors")):
            raise PlatformUnavailable(f"another bulk operation is running: {problem}")
        raise PlatformRejected(f"Shopify refused the bulk query: {problem}")
    return str(payload["bulkOperation"]["id"])


class BulkGone(PlatformRejected):
    """The operation failed, was cancelled, or its result expired: it will not finish."""


async def finished_url(
    client: ShopifyGraphQL, operation: str, *, patience: float
) -> tuple[str | None, str | None]:
    """The result file's URL once the operation completed (None: it found no orders), and
    when the operation was created. ``PlatformUnavailable`` when it is still running after
    ``patience`` seconds: the job retries later with the same operation."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    wait = 0.05
    while True:
        data = await client.execute(STATUS, {"id": operation}, cost=1)
        node = data.get("node") or {}
        status = node.get("status")
        if status == "COMPLETED":
            url = node.get("url")
            return (str(url) if url else None), node.get("createdAt")
        if not node or status in ("FAILED", "CANCELED", "CANCELLED", "EXPIRED"):
            raise BulkGone(f"the bulk operation ended {status}: {node.get('errorCode')}")
        if loop.time() > deadline:
            raise PlatformUnavailable("the bulk operation is still running")
        await asyncio.sleep(wait)
        wait = min(wait * 2, 5.0)


class BulkReader:
    """Orders from a result file, one at a time, resumable after ``skip`` orders."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.read = 0  # orders handed out so far
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, read=120.0))
        self._orders: AsyncIterator[JSON] | None = None
        self._response: httpx.Response | None = None

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()
        await self._http.aclose()

    async def next_orders(self, skip: int, limit: int) -> tuple[list[JSON], bool]:
        """Up to ``limit`` orders after the first ``skip``; and whether the file goes on."""
        if self._orders is None or self.read != skip:
            await self._open(skip)
        assert self._orders is not None
        found: list[JSON] = []
        async for order in self._orders:
            found.append(order)
            self.read += 1
            if len(found) >= limit:
                return found, True
        return found, False

    async def _open(self, skip: int) -> None:
        if self._response is not None:
            await self._response.aclose()
        request = self._http.build_request("GET", self.url)
        try:
            self._response = await self._http.send(request, stream=True)
        except httpx.HTTPError as error:
            raise PlatformUnavailable(
                f"the bulk file is unreachable: {type(error).__name__}"
            ) from error
        if self._response.status_code in (403, 404, 410):
            raise BulkGone(f"the bulk file is gone ({self._response.status_code})")
        if self._response.status_code != 200:
            raise PlatformUnavailable(f"the bulk file answered {self._response.status_code}")
        self.read = 0
        self._orders = self._assemble(self._response)
        for _ in range(skip):
            if await anext(self._orders, None) is None:
                break
            self.read += 1

    @staticmethod
    async def _assemble(response: httpx.Response) -> AsyncIterator[JSON]:
        """Orders with their line items, from lines that name their parent."""
        current: dict[str, Any] | None = None
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            row = json.loads(line)
            parent = row.pop("__parentId", None)
            if parent is None:
                if current is not None:
                    yield current
                current = row
                current["lineItems"] = {"pageInfo": {"hasNextPage": False}, "nodes": []}
            elif current is not None and parent == current["id"]:
                current["lineItems"]["nodes"].append(row)
            else:
                raise PlatformRejected("the bulk file is not grouped by order")
        if current is not None:
            yield current
