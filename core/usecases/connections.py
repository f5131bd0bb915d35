"""Merchant connections to Shopify, WooCommerce and Stripe, with their secrets sealed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection, Merchant
from core.enums import Platform
from core.errors import InvalidInput, NotFound
from core.secrets import Vault
from core.usecases.common import as_uuid, checked_now

# How many webhook secrets stay valid: the current one and the one before it (rotation).
KEPT_WEBHOOK_SECRETS = 2


def normalize_account(platform: Platform, account: str) -> str:
    """The identity a platform's deliveries claim: a shop domain, a store URL, a Stripe account."""
    value = account.strip()
    if not value or len(value) > 255:
        raise InvalidInput("account", "the shop, store URL or account is required")
    if platform is Platform.SHOPIFY:
        domain = value.lower().removeprefix("https://").removeprefix("http://").strip("/")
        if not domain.endswith(".myshopify.com") or "/" in domain:
            raise InvalidInput("shop", "a Shopify shop looks like the-shop.myshopify.com")
        return domain
    if platform is Platform.WOOCOMMERCE:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput("storeUrl", "a store URL looks like https://shop.example.com/")
        return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}/"
    return value


@dataclass(frozen=True, slots=True)
class ConnectionSecrets:
    credentials: dict[str, Any]
    webhook_secrets: list[str]


async def connect_platform(
    session: AsyncSession,
    vault: Vault,
    *,
    merchant_id: uuid.UUID | str,
    platform: Platform | str,
    account: str,
    credentials: dict[str, str],
    webhook_secret: str,
    now: datetime,
) -> Connection:
    """Create the connection, or rotate its secrets when it exists.

    A new webhook secret goes first; the previous one stays valid until the next rotation,
    because platforms take a while to sign with the new one.
    """
    try:
        chosen = Platform(str(platform).lower())
    except ValueError as error:
        raise InvalidInput("platform", f"unknown platform {platform!r}") from error
    if chosen is Platform.STOREFRONT:
        raise InvalidInput("platform", "storefronts push orders through the API")
    normalized = normalize_account(chosen, account)
    secret = webhook_secret.strip()
    if len(secret) < 8 or len(secret) > 255:
        raise InvalidInput("webhookSecret", "a webhook secret has 8 to 255 characters")
    if any(not value.strip() for value in credentials.values()):
        raise InvalidInput("credentials", "credentials cannot be empty")
    merchant_uuid = as_uuid(merchant_id, "merchant")
    async with session.begin():
        if await session.get(Merchant, merchant_uuid) is None:
            raise NotFound("Merchant", merchant_uuid, field="merchant")
        statement = select(Connection).where(
            Connection.merchant_id == merchant_uuid,
            Connection.platform == chosen,
            Connection.account == normalized,
        )
        connection = (await session.exec(statement)).first()
        secrets = [secret]
        if connection is None:
            connection = Connection(
                merchant_id=merchant_uuid,
                platform=chosen,
                account=normalized,
                created_at=checked_now(now),
            )
        else:
            previous = read_secrets(vault, connection).webhook_secrets
            secrets += [old for old in previous if old != secret]
        connection.credentials_encrypted = vault.seal(
            merchant_uuid, connection.id, dict(credentials)
        )
        connection.webhook_secrets_encrypted = vault.seal(
            merchant_uuid, connection.id, secrets[:KEPT_WEBHOOK_SECRETS]
        )
        connection.disabled_at = None
        session.add(connection)
    return connection


def read_secrets(vault: Vault, connection: Connection) -> ConnectionSecrets:
    """Decrypt a connection's credentials and webhook secrets (never log the result)."""
    credentials = vault.open(
        connection.merchant_id, connection.id, connection.credentials_encrypted
    )
    webhook_secrets = vault.open(
        connection.merchant_id, connection.id, connection.webhook_secrets_encrypted
    )
    return ConnectionSecrets(dict(credentials), list(webhook_secrets))


async def set_connection_enabled(
    session: AsyncSession, connection_id: uuid.UUID | str, *, enabled: bool, now: datetime
) -> Connection:
    """Stop (or resume) a connection: its webhooks are refused from the next delivery on, and
    its provider is no longer used for new money movements. Its secrets are kept."""
    identifier = as_uuid(connection_id, "connection")
    async with session.begin():
        connection = await session.get(Connection, identifier, with_for_update=True)
        if connection is None:
            raise NotFound("Connection", identifier, field="connection")
        connection.disabled_at = None if enabled else checked_now(now)
        session.add(connection)
    return connection


async def list_connections(
    session: AsyncSession, *, merchant_id: uuid.UUID | str | None = None
) -> Sequence[Connection]:
    """Every connection (of one merchant when given), oldest first."""
    statement = select(Connection).order_by(col(Connection.created_at))
    if merchant_id is not None:
        statement = statement.where(Connection.merchant_id == as_uuid(merchant_id, "merchant"))
    return (await session.exec(statement)).all()
