"""Shopify's OAuth token endpoint: the code exchange at install, and renewing expiring tokens.

ShopifyAPI's ``Session.request_token`` is not used for this: it never asks for an expiring
token (``expiring=1``), drops ``refresh_token`` and ``expires_in`` from the answer, cannot
renew, always calls ``https://{shop}`` and has no timeout. Public apps created since April
2026 must use expiring offline tokens, so these two POSTs are made here over httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from core.ports.commerce import PlatformRejected, PlatformUnavailable
from plugins.shopify.settings import ShopifySettings

# Renew a token this long before it lapses, so no call made with it fails midway.
RENEW_BEFORE = timedelta(minutes=10)


def credentials_from(answer: Mapping[str, Any], shop: str, now: datetime) -> dict[str, Any]:
    """What a connection keeps from a token answer (expiry times made absolute)."""
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise PlatformRejected("Shopify's token answer has no access token")
    credentials: dict[str, Any] = {
        "shop": shop,
        "access_token": token,
        "scope": str(answer.get("scope") or ""),
    }
    if answer.get("refresh_token"):
        credentials["refresh_token"] = str(answer["refresh_token"])
    if answer.get("expires_in"):
        credentials["expires_at"] = (now + timedelta(seconds=int(answer["expires_in"]))).isoformat()
    if answer.get("refresh_token_expires_in"):
        lifetime = timedelta(seconds=int(answer["refresh_token_expires_in"]))
        credentials["refresh_expires_at"] = (now + lifetime).isoformat()
    return credentials


async def post_token(settings: ShopifySettings, shop: str, form: dict[str, str]) -> dict[str, Any]:
    """POST ``/admin/oauth/access_token``; the answer's JSON, or Platform* errors that never
    repeat the form (it holds the app secret)."""
    url = f"{settings.base_for(shop)}/admin/oauth/access_token"
    try:
        async with httpx.AsyncClient(timeout=settings.request_timeout) as client:
            response = await client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise PlatformUnavailable(
            f"Shopify's token endpoint failed: {type(error).__name__}"
        ) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise PlatformUnavailable(f"Shopify's token endpoint answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        reason = str(body.get("error_description") or body.get("error") or "refused")[:200]
        raise PlatformRejected(f"Shopify refused the token request: {reason}")
    return dict(body)


async def exchange_code(
    settings: ShopifySettings, shop: str, code: str, now: datetime
) -> dict[str, Any]:
    """The install's authorization code for an expiring offline token and its refresh token."""
    answer = await post_token(
        settings,
        shop,
        {
            "client_id": settings.api_key,
            "client_secret": settings.api_secret.get_secret_value(),
            "code": code,
            "expiring": "1",
        },
    )
    return credentials_from(answer, shop, now)


class ShopifyTokenRefresher:
    """The core's ``CredentialRefresher`` for connections made by installing the app."""

    def __init__(self, settings: ShopifySettings) -> None:
        self.settings = settings

    def due(self, credentials: Mapping[str, Any], now: datetime) -> bool:
        expires = credentials.get("expires_at")
        if not expires or not credentials.get("refresh_token"):
            return False  # a custom app's admin token, or a non-expiring one
        return datetime.fromisoformat(str(expires)) - now < RENEW_BEFORE

    async def refresh(self, credentials: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        shop = str(credentials["shop"])
        answer = await post_token(
            self.settings,
            shop,
            {
                "client_id": self.settings.api_key,
                "client_secret": self.settings.api_secret.get_secret_value(),
                "grant_type": "refresh_token",
                "refresh_token": str(credentials["refresh_token"]),
            },
        )
        renewed = credentials_from(answer, shop, now)
        renewed.setdefault("refresh_token", str(credentials["refresh_token"]))
        return renewed
