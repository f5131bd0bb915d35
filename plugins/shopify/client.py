"""The Shopify GraphQL Admin API over httpx, cost-aware.

ShopifyAPI's ``shopify.GraphQL`` is not used for the calls themselves: it reads the session
from class-level state (a worker serving several shops at once could send one shop's token
with another's query), calls ``urlopen`` with no timeout, and prints error bodies to stdout,
where the log scrubber never sees them. This client keeps one token per instance, has
timeouts, and reads Shopify's throttle status:

* every answer carries ``extensions.cost.throttleStatus``; when the bucket is short for the
  next query, it waits for it to refill instead of being refused;
* ``THROTTLED`` arrives as HTTP 200 with errors: wait for the points and send again;
* 429 and 5xx are retried with backoff; after ``max_attempts`` it raises
  ``PlatformUnavailable`` and the job retries later;
* 401/403 (a revoked or expired token, a missing scope) and GraphQL errors are
  ``PlatformRejected``: sending again would not help.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx

from core.ports.commerce import PlatformRejected, PlatformUnavailable

JSON = dict[str, Any]


class QueryRefused(PlatformRejected):
    """Shopify answered the query with errors; ``codes`` are their ``extensions.code``."""

    def __init__(self, message: str, codes: frozenset[str]) -> None:
        super().__init__(message)
        self.codes = codes


@dataclass
class Bucket:
    """The shop's cost bucket as Shopify last reported it."""

    maximum: float = 1000.0
    available: float = 1000.0
    restore_rate: float = 50.0
    at: float = 0.0  # loop time of the report

    def available_now(self, now: float) -> float:
        return min(self.maximum, self.available + (now - self.at) * self.restore_rate)


class ShopifyGraphQL:
    def __init__(
        self,
        shop: str,
        access_token: str,
        *,
        base_url: str,
        api_version: str,
        timeout: float = 20.0,
        max_attempts: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.shop = shop
        self.endpoint = f"{base_url}/admin/api/{api_version}/graphql.json"
        self.max_attempts = max_attempts
        self.bucket = Bucket()
        self.throttled = 0  # answers that said THROTTLED, for benchmarks and tests
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0),
            headers={"X-Shopify-Access-Token": access_token, "Accept": "application/json"},
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def execute(
        self,
        query: str,
        variables: JSON | None = None,
        *,
        cost: int = 0,
        resendable: bool = True,
    ) -> JSON:
        """The ``data`` of the answer. ``cost`` is the query's expected cost, to wait for the
        bucket before sending rather than be refused. ``resendable=False`` for a mutation that
        Shopify would apply twice (no ``@idempotent``): a dropped connection or a 5xx, after
        which it may have run, is raised at once instead of sent again."""
        loop = asyncio.get_running_loop()
        for attempt in range(1, self.max_attempts + 1):
            if cost:
                await self._wait_for(cost, loop)
            try:
                response = await self._http.post(
                    self.endpoint, json={"query": query, "variables": variables or {}}
                )
            except httpx.TimeoutException as error:
                raise PlatformUnavailable("Shopify did not answer in time") from error
            except httpx.TransportError as error:
                if attempt == self.max_attempts or not resendable:
                    message = f"Shopify unreachable: {type(error).__name__}"
                    raise PlatformUnavailable(message) from error
                await asyncio.sleep(_backoff(attempt))
                continue
            if response.status_code in (401, 403):
                raise PlatformRejected(
                    "Shopify refused the access token (app uninstalled, token revoked or "
                    f"expired, or a scope missing): HTTP {response.status_code}"
                )
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.max_attempts or (response.status_code != 429 and not resendable):
                    raise PlatformUnavailable(f"Shopify answered HTTP {response.status_code}")
                await asyncio.sleep(_retry_after(response) or _backoff(attempt))
                continue
            if response.status_code != 200:
                raise PlatformRejected(f"Shopify answered HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError as error:
                raise PlatformUnavailable("Shopify answered with something not JSON") from error
            self._note_cost(body, loop.time())
            errors = body.get("errors")
            if errors:
                if _is_throttled(errors):
                    self.throttled += 1
                    if attempt == self.max_attempts:
                        raise PlatformUnavailable("Shopify kept throttling")
                    await asyncio.sleep(self._throttle_wait(body, cost))
                    continue
                raise QueryRefused(
                    f"Shopify refused the query: {_messages(errors)}", _codes(errors)
                )
            data = body.get("data")
            if not isinstance(data, dict):
                raise PlatformUnavailable("Shopify answered without data")
            return data
        raise PlatformUnavailable("Shopify kept failing")  # pragma: no cover (loop returns)

    async def _wait_for(self, cost: int, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        if not self.bucket.at:
            return  # nothing known yet: the first answer tells
        missing = min(cost, self.bucket.maximum) - self.bucket.available_now(now)
        if missing > 0:
            await asyncio.sleep(missing / self.bucket.restore_rate)

    def _note_cost(self, body: JSON, now: float) -> None:
        status = (body.get("extensions") or {}).get("cost", {}).get("throttleStatus")
        if not isinstance(status, dict):
            return
        try:
            self.bucket = Bucket(
                maximum=float(status["maximumAvailable"]),
                available=float(status["currentlyAvailable"]),
                restore_rate=max(float(status["restoreRate"]), 1.0),
                at=now,
            )
        except (KeyError, TypeError, ValueError):
            return

    def _throttle_wait(self, body: JSON, cost: int) -> float:
        requested = (body.get("extensions") or {}).get("cost", {}).get("requestedQueryCost")
        needed = float(requested or cost or 50)
        missing = max(needed - self.bucket.available, 0.0)
        return missing / self.bucket.restore_rate + 0.05


def _is_throttled(errors: Any) -> bool:
    return isinstance(errors, list) and any(
        isinstance(error, dict) and (error.get("extensions") or {}).get("code") == "THROTTLED"
        for error in errors
    )


def _codes(errors: Any) -> frozenset[str]:
    if not isinstance(errors, list):
        return frozenset()
    return frozenset(
        str((error.get("extensions") or {}).get("code"))
        for error in errors
        if isinstance(error, dict) and (error.get("extensions") or {}).get("code")
    )


def _messages(errors: Any) -> str:
    if isinstance(errors, list):
        texts = [str(error.get("message", error)) for error in errors if isinstance(error, dict)]
        return "; ".join(texts)[:500] or "unknown error"
    return str(errors)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(str(response.headers.get("Retry-After", ""))), 30.0)
    except ValueError:
        return None


def _backoff(attempt: int) -> float:
    jitter: float = 0.5 + random.random() / 2
    return min(0.2 * 2.0**attempt, 10.0) * jitter


def user_errors(payload: JSON | None) -> str | None:
    """A mutation's ``userErrors`` as one message, or None when there were none."""
    errors = (payload or {}).get("userErrors") or []
    if not errors:
        return None
    return "; ".join(
        f"{'.'.join(map(str, error.get('field') or [])) or 'input'}: {error.get('message')}"
        for error in errors
    )[:500]


def gid_number(gid: str) -> str:
    """The number at the end of a GID (``gid://shopify/Order/123`` → ``123``)."""
    return gid.rsplit("/", 1)[-1]
