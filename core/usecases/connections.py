"""Merchant connections to platforms, with their credentials and webhook secrets sealed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection, Merchant
from core.enums import Platform
from core.errors import InvalidInput, NotFound
from core.ports.webhooks import WebhookSource
from core.secrets import Vault
from core.usecases.inputs import as_uuid, checked_now

# How many webhook secrets stay valid: the current one and the one before it (rotation).
KEPT_WEBHOOK_SECRETS = 2


@dataclass(frozen=True, slots=True)
class ConnectionSecrets:
    credentials: dict[str, Any]
    webhook_secrets: list[str]


async def connect_platform(
    session: AsyncSession,
    vault: Vault,
    source: WebhookSource,
    *,
    merchant_id: uuid.UUID | str,
    account: str,
    credentials: dict[str, str],
    webhook_secret: str,
    now: datetime,
) -> Connection:
    """Create the connection to ``source``'s platform, or rotate its secrets when it exists.

    The account is normalized by the platform's source, as its deliveries will claim it. A new
    webhook secret goes first; the previous one stays valid until the next rotation, because
    platforms take a while to sign with the new one.
    """
    chosen = source.platform
    normalized = source.normalize_account(account)
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


async def connection_credentials(
    session: AsyncSession, vault: Vault, merchant_id: uuid.UUID, platform: Platform
) -> dict[str, Any] | None:
    """The decrypted credentials of the merchant's oldest enabled connection to ``platform``;
    None when it has none. For plugin factories, which never read the database themselves."""
    connection = (
        await session.exec(
            select(Connection)
            .where(
                Connection.merchant_id == merchant_id,
                Connection.platform == platform,
                col(Connection.disabled_at).is_(None),
            )
            .order_by(col(Connection.created_at))
        )
    ).first()
    return None if connection is None else read_secrets(vault, connection).credentials
