"""Failed customer sign-ins, shared by every process that serves the API."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.entities.base import created_field, id_field


class LoginFailure(SQLModel, table=True):
    """One failed sign-in under one limiter key (an address, an order). Keys are keyed
    hashes: the table never holds an address, an order number or an e-mail."""

    __tablename__ = "login_failure"
    __table_args__ = (sa.Index("ix_login_failure_key_created", "key", "created_at"),)

    id: uuid.UUID = id_field()
    key: str = Field(max_length=64, nullable=False)
    created_at: datetime = created_field()
