"""The WooCommerce REST API v3 through the ``woocommerce`` package, off the event loop.

The package is synchronous (``requests``) and never raises on an HTTP status: each call runs in
a worker thread and its answer is turned into the core's platform errors here. Over ``http``
the package signs with OAuth 1.0a in the query string; over ``https`` it uses HTTP Basic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import requests
from woocommerce import API

from core.ports.commerce import PlatformRejected, PlatformUnavailable

# How many times a request refused for a reused OAuth nonce is sent again.
NONCE_RETRIES = 3


class WooCommerceClient:
    def __init__(
        self,
        store_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        timeout: float,
        verify: bool | str = True,
    ) -> None:
        self._api = API(
            url=store_url.rstrip("/"),
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            version="wc/v3",
            timeout=timeout,
            verify_ssl=verify,
        )

    async def get(self, endpoint: str, params: dict[str, Any] | None = None) -> requests.Response:
        return await self._call("get", endpoint, params=params or {})

    async def post(self, endpoint: str, data: dict[str, Any]) -> requests.Response:
        return await self._call("post", endpoint, data)

    async def put(self, endpoint: str, data: dict[str, Any]) -> requests.Response:
        return await self._call("put", endpoint, data)

    async def _call(
        self, method: str, endpoint: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        for _ in range(NONCE_RETRIES):
            response = await self._call_once(method, endpoint, *args, **kwargs)
            if not _nonce_reused(response):
                break
        return _checked(response)

    async def _call_once(
        self, method: str, endpoint: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        try:
            response: requests.Response = await asyncio.to_thread(
                getattr(self._api, method), endpoint, *args, **kwargs
            )
        except requests.Timeout as error:
            raise PlatformUnavailable("the store did not answer in time") from error
        except requests.RequestException as error:
            raise PlatformUnavailable(
                f"the store is unreachable: {type(error).__name__}"
            ) from error
        return response


def _checked(response: requests.Response) -> requests.Response:
    """The answer, or the core's error for a refusal of the keys or an outage."""
    if response.status_code in (401, 403):
        raise PlatformRejected(
            f"the store refused the API keys (revoked, or without write access): "
            f"HTTP {response.status_code}"
        )
    if response.status_code == 429 or response.status_code >= 500:
        if _woocommerce_refusal(response):
            return response  # e.g. an invalid refund amount: an answer, not an outage
        raise PlatformUnavailable(f"the store answered HTTP {response.status_code}")
    return response


def _nonce_reused(response: requests.Response) -> bool:
    """The package signs over http with an 8-digit random nonce, and the store refuses one it
    saw in the last 15 minutes: over thousands of requests that happens now and then. The
    request was refused before anything ran, so sending it again (with a new nonce) is safe."""
    if response.status_code != 401:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "nonce" in str(body.get("message", "")).lower()


def error_message(response: requests.Response) -> str:
    """The store's own words for a refused request (never the request, which holds keys)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code") or response.status_code)[:300]
    return f"HTTP {response.status_code}"


def _woocommerce_refusal(response: requests.Response) -> bool:
    """WooCommerce answers some refusals with a 500 carrying its own error code
    (``woocommerce_rest_cannot_create_order_refund``), unlike a server that broke."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and str(body.get("code", "")).startswith("woocommerce_rest_")
