"""Installing a platform's app (OAuth): a single-use state out, a connection back in.

The plugin's pages speak the platform's protocol; these use cases keep what must survive
between the two requests (the ``state``, only hashed) and, on the way back, create the
merchant when it is new, the connection with its sealed credentials, the merchant's first
ADMIN key, and the jobs that subscribe to webhooks and run the first sync, in one transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Connection, Merchant, PendingInstall
from core.enums import ApiKeyRole, Platform
from core.errors import DomainError, NotFound
from core.outbox.kinds import SUBSCRIBE_WEBHOOKS
from core.outbox.queue import enqueue
from core.secrets import Vault
from core.usecases.connections import refuse_second_account, save_connection
from core.usecases.inputs import as_uuid, checked_now
from core.usecases.merchants import add_api_key, add_merchant
from core.usecases.platform_sync import queue_sync

# How long a merchant has to approve an install on the platform's page, and how many
# installs may be in progress at once.
INSTALL_VALID_FOR = timedelta(hours=1)
MAX_PENDING_INSTALLS = 10_000


class InstallRefused(DomainError):
    """The callback does not match an install this service started (forged, replayed, late)."""

    code = "INSTALL_REFUSED"


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def begin_install(
    session: AsyncSession,
    *,
    platform: Platform,
    account: str,
    merchant_id: uuid.UUID | str | None,
    now: datetime,
) -> str:
    """Remember an install about to start; returns the single-use state to send along.

    ``merchant_id`` is the merchant that asked (``connectShopify``), or None when a shop
    installs the app from the platform's side (then the callback creates the merchant or
    finds the one that already has the shop).
    """
    moment = checked_now(now)
    state = secrets.token_urlsafe(32)
    owner = None if merchant_id is None else as_uuid(merchant_id, "merchant")
    async with session.begin():
        if owner is not None and await session.get(Merchant, owner) is None:
            raise NotFound("Merchant", owner, field="merchant")
        if owner is not None:
            await refuse_second_account(session, owner, platform, account)
        await session.exec(
            sa.delete(PendingInstall).where(
                col(PendingInstall.created_at) < moment - INSTALL_VALID_FOR
            )
        )
        pending = (await session.exec(select(sa.func.count()).select_from(PendingInstall))).one()
        if pending >= MAX_PENDING_INSTALLS:
            # Anyone may start an install; nobody may fill the table with them.
            raise InstallRefused("too many installs are in progress; try again in a while")
        session.add(
            PendingInstall(
                platform=platform,
                account=account,
                state_hash=_hash(state),
                merchant_id=owner,
                created_at=moment,
            )
        )
    return state


@dataclass(frozen=True, slots=True)
class CompletedInstall:
    connection: Connection
    merchant_id: uuid.UUID
    # Only for a merchant created by this install: shown once, never stored in plain text.
    admin_api_key: str | None


@dataclass(frozen=True, slots=True)
class ClaimedInstall:
    # The merchant that asked; None for an install started from the platform's side.
    merchant_id: uuid.UUID | None
    account: str


async def claim_install(
    session: AsyncSession,
    *,
    platform: Platform,
    account: str | None,
    state: str,
    now: datetime,
) -> ClaimedInstall:
    """Use up the state of an install in progress. ``InstallRefused`` when it is unknown,
    used, expired or for another account (``account`` None: a platform whose callback does
    not name the account, which the state then tells). Called before the platform is asked
    for anything, so a replayed callback never reaches the platform."""
    moment = checked_now(now)
    async with session.begin():
        pending = (
            await session.exec(
                select(PendingInstall)
                .where(PendingInstall.state_hash == _hash(state))
                .with_for_update()
            )
        ).first()
        if (
            pending is None
            or pending.used_at is not None
            or pending.platform is not platform
            or (account is not None and pending.account != account)
            or pending.created_at < moment - INSTALL_VALID_FOR
        ):
            raise InstallRefused("this install link is unknown, used or expired; start again")
        pending.used_at = moment
        session.add(pending)
        return ClaimedInstall(pending.merchant_id, pending.account)


async def complete_install(
    session: AsyncSession,
    vault: Vault,
    *,
    platform: Platform,
    account: str,
    merchant_id: uuid.UUID | None,
    credentials: dict[str, Any],
    webhook_secret: str | None = None,
    now: datetime,
) -> CompletedInstall:
    """Store the connection made by an app install and start using it.

    A shop installing again finds the merchant that already has it; a new one gets a merchant
    and an ADMIN API key. Webhook subscription and the first sync run as jobs afterwards.
    ``webhook_secret``: for a platform whose webhooks the service registers with a secret of
    its own (None: they are signed with the app's secret).
    """
    moment = checked_now(now)
    api_key: str | None = None
    async with session.begin():
        if merchant_id is None:
            merchant_id = (
                await session.exec(
                    select(Connection.merchant_id)
                    .where(
                        Connection.platform == platform,
                        Connection.account == account,
                        col(Connection.installed_by_app).is_(True),
                    )
                    .order_by(col(Connection.created_at))
                )
            ).first()
        if merchant_id is None:
            merchant = await add_merchant(session, account, "USD", now=moment)
            merchant_id = merchant.id
            api_key = add_api_key(
                session, merchant_id, ApiKeyRole.ADMIN, f"{platform.value} install", now=moment
            ).plaintext
        connection = await save_connection(
            session,
            vault,
            merchant_id=merchant_id,
            platform=platform,
            account=account,
            credentials=credentials,
            webhook_secret=webhook_secret,
            installed_by_app=True,
            now=moment,
        )
        enqueue(
            session,
            SUBSCRIBE_WEBHOOKS,
            {"connectionId": str(connection.id)},
            now=moment,
            merchant_id=merchant_id,
            lock_key=f"connection:{connection.id}",
        )
        queue_sync(session, connection, full=True, now=moment)
    return CompletedInstall(connection, merchant_id, api_key)


async def app_connection(
    session: AsyncSession, platform: Platform, account: str, *, include_disabled: bool = False
) -> Connection | None:
    """The connection an app-wide webhook for ``account`` belongs to: the enabled one, or
    (``include_disabled``, for privacy topics) the latest one even after an uninstall."""
    statement = select(Connection).where(
        Connection.platform == platform,
        Connection.account == account,
        col(Connection.installed_by_app).is_(True),
    )
    if not include_disabled:
        statement = statement.where(col(Connection.disabled_at).is_(None))
    statement = statement.order_by(
        col(Connection.disabled_at).is_not(None), col(Connection.created_at).desc()
    )
    return (await session.exec(statement)).first()
