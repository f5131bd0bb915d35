"""Merchants and their staff API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import ApiKey, Merchant, ReturnPolicy
from core.enums import ApiKeyRole
from core.errors import InvalidInput, NotFound
from core.key_changes import CHANNEL as KEY_CHANGES_CHANNEL
from core.money import normalize_currency
from core.usecases.inputs import as_uuid, checked_now, clean_text, parse_enum

API_KEY_PREFIX = "rma_sk_"


def hash_api_key(key: str) -> str:
    """Keys carry 256 random bits, so a plain SHA-256 is enough to keep them unrecoverable."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_merchant(
    session: AsyncSession,
    *,
    name: str,
    default_currency: str = "USD",
    now: datetime,
) -> Merchant:
    """Create a merchant with version 1 of a default return policy."""
    cleaned = clean_text(name, "name", limit=200)
    if not cleaned:
        raise InvalidInput("name", "a merchant needs a name")
    currency = normalize_currency(default_currency)
    async with session.begin():
        return await add_merchant(session, cleaned, currency, now=checked_now(now))


async def add_merchant(
    session: AsyncSession, name: str, currency: str, *, now: datetime
) -> Merchant:
    """Within the caller's transaction: a merchant with version 1 of a default return policy."""
    merchant = Merchant(name=name, default_currency=currency, created_at=now)
    session.add(merchant)
    await session.flush()
    session.add(ReturnPolicy(merchant_id=merchant.id, version=1, created_at=now))
    return merchant


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    api_key: ApiKey
    # The only time the key exists in plain text.
    plaintext: str


async def create_api_key(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID | str,
    role: ApiKeyRole | str,
    label: str = "",
    now: datetime,
) -> IssuedApiKey:
    """Issue a staff API key; only its hash is stored."""
    chosen_role = parse_enum(
        ApiKeyRole, role, "role", f"{role!s} is not a role; use ADMIN, AGENT or READONLY"
    )
    merchant_uuid = as_uuid(merchant_id, "merchant")
    cleaned = clean_text(label, "label", limit=200)
    async with session.begin():
        if await session.get(Merchant, merchant_uuid) is None:
            raise NotFound("Merchant", merchant_uuid, field="merchant")
        return add_api_key(session, merchant_uuid, chosen_role, cleaned, now=checked_now(now))


def add_api_key(
    session: AsyncSession, merchant_id: uuid.UUID, role: ApiKeyRole, label: str, *, now: datetime
) -> IssuedApiKey:
    """Within the caller's transaction: a new key for an existing merchant."""
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        merchant_id=merchant_id,
        role=role,
        prefix=plaintext[: len(API_KEY_PREFIX) + 4],
        key_hash=hash_api_key(plaintext),
        label=label,
        created_at=now,
    )
    session.add(api_key)
    return IssuedApiKey(api_key, plaintext)


async def find_api_key(session: AsyncSession, plaintext: str) -> ApiKey | None:
    """The live key matching ``plaintext``, or ``None``."""
    if not plaintext.startswith(API_KEY_PREFIX):
        return None
    statement = select(ApiKey).where(
        ApiKey.key_hash == hash_api_key(plaintext),
        ApiKey.revoked_at == None,  # noqa: E711 (SQL IS NULL)
    )
    return (await session.exec(statement)).first()


async def list_api_keys(session: AsyncSession, merchant_id: uuid.UUID | str) -> list[ApiKey]:
    """The merchant's keys, live and revoked, oldest first (never the keys themselves)."""
    merchant_uuid = as_uuid(merchant_id, "merchant")
    statement = (
        select(ApiKey).where(ApiKey.merchant_id == merchant_uuid).order_by(col(ApiKey.created_at))
    )
    return list((await session.exec(statement)).all())


async def revoke_api_key(
    session: AsyncSession, *, merchant_id: uuid.UUID | str, key_id: uuid.UUID | str, now: datetime
) -> ApiKey:
    """Revoke one of the merchant's keys; every process stops accepting it at once.

    On PostgreSQL the processes that remember live keys hear ``NOTIFY rma_api_keys`` at commit
    (``core.key_changes``); on SQLite any commit tells them.
    """
    merchant_uuid = as_uuid(merchant_id, "merchant")
    key_uuid = as_uuid(key_id, "key")
    async with session.begin():
        api_key = await session.get(ApiKey, key_uuid, with_for_update=True)
        if api_key is None or api_key.merchant_id != merchant_uuid:
            raise NotFound("ApiKey", key_uuid, field="key")
        if api_key.revoked_at is None:
            api_key.revoked_at = checked_now(now)
            session.add(api_key)
            if session.get_bind().dialect.name == "postgresql":
                connection = await session.connection()
                await connection.execute(sa.select(sa.func.pg_notify(KEY_CHANGES_CHANNEL, "")))
        return api_key
