"""Merchant connections to platforms, with their credentials and webhook secrets sealed."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection, Merchant
from core.enums import ONE_ACCOUNT_PLATFORMS, Platform
from core.errors import Conflict, InvalidInput, NotFound
from core.ports.commerce import CredentialRefresher
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

    The account is normalized by the platform's source, as its deliveries will claim it.
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
        return await save_connection(
            session,
            vault,
            merchant_id=merchant_uuid,
            platform=chosen,
            account=normalized,
            credentials=dict(credentials),
            webhook_secret=secret,
            now=checked_now(now),
        )


async def refuse_second_account(
    session: AsyncSession, merchant_id: uuid.UUID, platform: Platform, account: str
) -> None:
    """``Conflict`` when the merchant already has another account on a platform whose order
    ids are only unique per account (their orders would overwrite each other)."""
    if platform not in ONE_ACCOUNT_PLATFORMS:
        return
    other = (
        await session.exec(
            select(Connection.account).where(
                Connection.merchant_id == merchant_id,
                Connection.platform == platform,
                Connection.account != account,
            )
        )
    ).first()
    if other is not None:
        raise Conflict(
            f"this merchant is already connected to {other}; one {platform.value} store per "
            "merchant (its order numbers would collide with another store's)",
            field="storeUrl",
        )


async def save_connection(
    session: AsyncSession,
    vault: Vault,
    *,
    merchant_id: uuid.UUID,
    platform: Platform,
    account: str,
    credentials: dict[str, Any],
    webhook_secret: str | None,
    installed_by_app: bool = False,
    now: datetime,
) -> Connection:
    """Within the caller's transaction: create or update (and re-enable) the connection.

    A new webhook secret goes first; the previous one stays valid until the next rotation,
    because platforms take a while to sign with the new one. ``None`` keeps the secrets (an
    app's deliveries are signed with the app's secret instead).
    """
    await refuse_second_account(session, merchant_id, platform, account)
    statement = select(Connection).where(
        Connection.merchant_id == merchant_id,
        Connection.platform == platform,
        Connection.account == account,
    )
    connection = (await session.exec(statement)).first()
    secrets: list[str] = []
    if connection is None:
        connection = Connection(
            merchant_id=merchant_id, platform=platform, account=account, created_at=now
        )
    elif connection.webhook_secrets_encrypted:
        secrets = read_secrets(vault, connection).webhook_secrets
    if webhook_secret is not None:
        secrets = [webhook_secret, *(old for old in secrets if old != webhook_secret)]
    connection.credentials_encrypted = vault.seal(merchant_id, connection.id, credentials)
    connection.webhook_secrets_encrypted = vault.seal(
        merchant_id, connection.id, secrets[:KEPT_WEBHOOK_SECRETS]
    )
    connection.installed_by_app = installed_by_app or connection.installed_by_app
    connection.disabled_at = None
    connection.enabled_at = now
    session.add(connection)
    await session.flush()
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
    session: AsyncSession,
    connection_id: uuid.UUID | str,
    *,
    enabled: bool,
    now: datetime,
    unless_enabled_since: datetime | None = None,
) -> Connection:
    """Stop (or resume) a connection: its webhooks are refused from the next delivery on, and
    its provider is no longer used for new money movements. Its secrets are kept."""
    identifier = as_uuid(connection_id, "connection")
    async with session.begin():
        connection = await session.get(Connection, identifier, with_for_update=True)
        if connection is None:
            raise NotFound("Connection", identifier, field="connection")
        if (
            unless_enabled_since is not None
            and connection.enabled_at is not None
            and connection.enabled_at > unless_enabled_since
        ):
            return connection  # a late event from before the last install: it no longer applies
        if enabled and connection.disabled_at is not None:
            connection.enabled_at = checked_now(now)
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


@dataclass(frozen=True, slots=True)
class ConnectionAccess:
    """What a plugin's factory needs to act for one connection (never log it)."""

    connection_id: uuid.UUID
    merchant_id: uuid.UUID
    platform: Platform
    account: str
    credentials: dict[str, Any]
    settings: dict[str, Any]


def _access(vault: Vault, connection: Connection) -> ConnectionAccess:
    return ConnectionAccess(
        connection_id=connection.id,
        merchant_id=connection.merchant_id,
        platform=connection.platform,
        account=connection.account,
        credentials=read_secrets(vault, connection).credentials,
        settings=dict(connection.settings),
    )


async def connection_access(
    session: AsyncSession,
    vault: Vault,
    merchant_id: uuid.UUID,
    platform: Platform,
    *,
    connection_id: uuid.UUID | None = None,
) -> ConnectionAccess | None:
    """The given enabled connection of the merchant, or its oldest enabled one to
    ``platform``; None when there is none. For plugin factories, which never read the
    database themselves."""
    statement = select(Connection).where(
        Connection.merchant_id == merchant_id,
        Connection.platform == platform,
        col(Connection.disabled_at).is_(None),
    )
    if connection_id is not None:
        statement = statement.where(Connection.id == connection_id)
    connection = (await session.exec(statement.order_by(col(Connection.created_at)))).first()
    return None if connection is None else _access(vault, connection)


async def connection_credentials(
    session: AsyncSession, vault: Vault, merchant_id: uuid.UUID, platform: Platform
) -> dict[str, Any] | None:
    """The decrypted credentials of the merchant's oldest enabled connection to ``platform``."""
    access = await connection_access(session, vault, merchant_id, platform)
    return None if access is None else access.credentials


async def refresh_credentials(
    session: AsyncSession,
    vault: Vault,
    connection_id: uuid.UUID,
    refresher: CredentialRefresher,
    *,
    now: datetime,
    hold_row_lock: bool = True,
) -> ConnectionAccess:
    """Renew a connection's expiring credentials and store what the platform returned (a
    rotated refresh token) at once. A caller that waited finds them renewed already and makes
    no second call.

    With ``hold_row_lock`` (PostgreSQL: many processes) the renewal happens under the
    connection's row lock. Without it (SQLite: one process, whose callers serialize renewals
    themselves) the platform is called outside any transaction, since a SQLite write
    transaction would hold up every other writer for as long as the platform takes; the result
    is stored only if the credentials did not change meanwhile.
    """
    if hold_row_lock:
        async with session.begin():
            connection = await _enabled(session, connection_id, lock=True)
            access = _access(vault, connection)
            if not refresher.due(access.credentials, now):
                return access
            renewed = await refresher.refresh(access.credentials, now)
            connection.credentials_encrypted = vault.seal(
                connection.merchant_id, connection.id, renewed
            )
            session.add(connection)
        return dataclasses.replace(access, credentials=renewed)
    async with session.begin():
        connection = await _enabled(session, connection_id, lock=False)
        sealed = connection.credentials_encrypted
        access = _access(vault, connection)
    if not refresher.due(access.credentials, now):
        return access
    renewed = await refresher.refresh(access.credentials, now)
    async with session.begin():
        connection = await _enabled(session, connection_id, lock=True)
        if connection.credentials_encrypted != sealed:
            return _access(vault, connection)  # renewed or replaced meanwhile: theirs stands
        connection.credentials_encrypted = vault.seal(
            connection.merchant_id, connection.id, renewed
        )
        session.add(connection)
    return dataclasses.replace(access, credentials=renewed)


async def _enabled(session: AsyncSession, connection_id: uuid.UUID, *, lock: bool) -> Connection:
    connection = await session.get(
        Connection, connection_id, with_for_update=lock, populate_existing=True
    )
    if connection is None or connection.disabled_at is not None:
        raise NotFound("Connection", connection_id, field="connection")
    return connection


async def update_connection_settings(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    connection_id: uuid.UUID | str,
    changes: dict[str, Any],
    *,
    allowed: dict[str, Any],
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> Connection:
    """Change some of a connection's settings; ``allowed`` names the keys its platform knows
    (with their defaults), a value must have the default's type, and one of ``choices`` where
    the platform names them (the empty value always restores the default)."""
    identifier = as_uuid(connection_id, "connection")
    for key, value in changes.items():
        if key not in allowed:
            raise InvalidInput("settings", f"{key!r} is not a setting of this platform")
        default = allowed[key]
        if default is not None and value is not None and not isinstance(value, type(default)):
            raise InvalidInput("settings", f"{key!r} takes a {type(default).__name__}")
        if isinstance(value, str) and (len(value) > 255 or "\x00" in value):
            raise InvalidInput("settings", f"{key!r} is too long or contains a NUL")
        options = (choices or {}).get(key)
        if options and value not in (*options, ""):
            raise InvalidInput("settings", f"{key!r} is one of {', '.join(options)}")
    async with session.begin():
        connection = await session.get(Connection, identifier, with_for_update=True)
        if connection is None or connection.merchant_id != merchant_id:
            raise NotFound("Connection", identifier, field="connection")
        connection.settings = {**connection.settings, **changes}
        session.add(connection)
    return connection
