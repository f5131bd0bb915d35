"""Webhook deliveries as received, and the job table (outbox and queue in one)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.entities.base import created_field, id_field, json_dict_field, timestamp_field
from core.entities.columns import StrEnumType, UtcDateTime
from core.enums import JobState, Platform, WebhookState


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (sa.UniqueConstraint("connection_id", "dedupe_key"),)

    id: uuid.UUID = id_field()
    merchant_id: uuid.UUID = Field(
        foreign_key="merchant.id", index=True, nullable=False, ondelete="CASCADE"
    )
    connection_id: uuid.UUID = Field(foreign_key="connection.id", nullable=False)
    platform: Platform = Field(sa_type=StrEnumType(Platform), nullable=False)
    topic: str = Field(max_length=100, nullable=False)
    dedupe_key: str = Field(max_length=255, nullable=False)
    body: bytes = Field(sa_type=sa.LargeBinary, nullable=False)
    headers: dict[str, Any] = json_dict_field()
    state: WebhookState = Field(sa_type=StrEnumType(WebhookState), nullable=False)
    error: str | None = Field(default=None, max_length=2000)
    received_at: datetime = created_field()
    processed_at: datetime | None = timestamp_field()


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        # Claims take the most urgent due job first, then the oldest (core.outbox.queue).
        sa.Index("ix_job_ready", "state", "priority", "run_at"),
        # Jobs that share a lock key never run at the same time: the database refuses a second
        # RUNNING row for a key, whatever the workers believe.
        sa.Index(
            "uq_job_running_lock_key",
            "lock_key",
            unique=True,
            sqlite_where=sa.text("state = 'RUNNING'"),
            postgresql_where=sa.text("state = 'RUNNING'"),
        ),
    )

    id: uuid.UUID = id_field()
    merchant_id: uuid.UUID | None = Field(
        default=None, foreign_key="merchant.id", index=True, ondelete="CASCADE"
    )
    kind: str = Field(max_length=100, nullable=False)
    payload: dict[str, Any] = json_dict_field()
    state: JobState = Field(default=JobState.QUEUED, sa_type=StrEnumType(JobState), nullable=False)
    # Jobs sharing a lock key (e.g. "rma:<id>") never run at the same time.
    lock_key: str | None = Field(default=None, max_length=200)
    # Set for jobs that must exist at most once (a periodic job's slot, a delivery's processing).
    unique_key: str | None = Field(default=None, max_length=255, unique=True)
    run_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    # Lower runs first: 0 for jobs someone is waiting on, 1 for background work.
    priority: int = Field(
        default=1, sa_type=sa.SmallInteger, nullable=False, sa_column_kwargs={"server_default": "1"}
    )
    attempts: int = Field(default=0, nullable=False)
    max_attempts: int = Field(default=10, nullable=False)
    locked_by: str | None = Field(default=None, max_length=200)
    locked_until: datetime | None = timestamp_field()
    last_error: str | None = Field(default=None)
    created_at: datetime = created_field()
    started_at: datetime | None = timestamp_field()
    finished_at: datetime | None = timestamp_field()
