"""Merchants, their platform connections and their staff API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.entities.base import TenantRow, created_field, id_field, timestamp_field
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
