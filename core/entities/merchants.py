"""Merchants, their platform connections and their staff API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.entities.base import (
    TenantRow,
    created_field,
    id_field,
    json_dict_field,
    timestamp_field,
)
from core.entities.columns import StrEnumType
from core.enums import ApiKeyRole, Platform


class Merchant(SQLModel, table=True):
    __tablename__ = "merchant"

    id: uuid.UUID = id_field()
    name: str = Field(max_length=200, nullable=False)
    default_currency: str = Field(default="USD", max_length=3, nullable=False)
    created_at: datetime = created_field()


class Connection(TenantRow, table=True):
    """A merchant's account on a platform; credentials and webhook secrets are encrypted."""

    __tablename__ = "connection"
    __table_args__ = (sa.UniqueConstraint("merchant_id", "platform", "account"),)

    platform: Platform = Field(sa_type=StrEnumType(Platform), nullable=False)
    # The shop domain, store URL or Stripe account the connection speaks for.
    account: str = Field(max_length=255, nullable=False, index=True)
    credentials_encrypted: str = Field(default="", nullable=False)
    webhook_secrets_encrypted: str = Field(default="", nullable=False)
    disabled_at: datetime | None = timestamp_field()
    # When it was last made or enabled (an install, a reinstall): platform events from
    # before then (a late "uninstalled") no longer apply.
    enabled_at: datetime | None = timestamp_field()
    # Made by installing the platform's app (OAuth): its webhooks are signed with the app's
    # secret and arrive at the app-wide address, not at this connection's own.
    installed_by_app: bool = Field(default=False, nullable=False)
    # What staff chose for this connection (a restock location, where store credit lives);
    # each plugin documents its own keys.
    settings: dict[str, Any] = json_dict_field()
    # Order sync: where the next incremental sync starts (the plugin's opaque cursor), how far
    # the running one got, and how the last one ended.
    sync_cursor: str | None = Field(default=None, max_length=500)
    sync_status: str = Field(default="NEVER", max_length=20, nullable=False)
    sync_progress: int = Field(default=0, nullable=False)
    last_synced_at: datetime | None = timestamp_field()
    last_sync_error: str | None = Field(default=None, max_length=2000)


class PendingInstall(SQLModel, table=True):
    """An app install or store connection in progress: the single-use ``state`` sent to the
    platform, kept hashed, and who asked (an existing merchant, or none for a new one)."""

    __tablename__ = "pending_install"

    id: uuid.UUID = id_field()
    platform: Platform = Field(sa_type=StrEnumType(Platform), nullable=False)
    account: str = Field(max_length=255, nullable=False)
    state_hash: str = Field(max_length=64, nullable=False, unique=True)
    merchant_id: uuid.UUID | None = Field(
        default=None, foreign_key="merchant.id", ondelete="CASCADE"
    )
    created_at: datetime = created_field()
    used_at: datetime | None = timestamp_field()


class ApiKey(TenantRow, table=True):
    """A staff API key. Only a SHA-256 hash of the key is kept; the key is shown once."""

    __tablename__ = "api_key"

    role: ApiKeyRole = Field(sa_type=StrEnumType(ApiKeyRole), nullable=False)
    # The first characters of the key, so that staff can tell keys apart in listings.
    prefix: str = Field(max_length=16, nullable=False)
    key_hash: str = Field(max_length=64, nullable=False, unique=True)
    label: str = Field(default="", max_length=200, nullable=False)
    last_used_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()
