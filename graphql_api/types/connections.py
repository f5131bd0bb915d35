"""A merchant's connections to platforms, as ADMINs see them (never their credentials)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum

import strawberry

from core import entities
from graphql_api.errors import UserError
from graphql_api.ids import to_global_id
from graphql_api.types.common import Platform


@strawberry.enum(description="Where a connection's order sync stands.")
class SyncStatus(Enum):
    NEVER = "NEVER"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@strawberry.type(description="One setting of a connection; an empty value means the default.")
class ConnectionSetting:
    name: str
    value: str


@strawberry.input
class ConnectionSettingInput:
    name: str
    value: str


@strawberry.type(description="A merchant's account on a platform (a shop, a store).")
class Connection:
    id: strawberry.ID
    platform: Platform
    account: str = strawberry.field(description="The shop domain, store URL or account id.")
    enabled: bool
    installed_by_app: bool = strawberry.field(
        description="Made by installing the platform's app, not with credentials by hand."
    )
    sync_status: SyncStatus
    sync_progress: int = strawberry.field(description="Orders read by the running or last sync.")
    last_synced_at: datetime | None
    last_sync_error: str | None
    settings: list[ConnectionSetting] = strawberry.field(
        description="The connection's settings, with the platform's defaults filled in."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: entities.Connection, defaults: dict[str, object]) -> Connection:
        return cls(
            id=strawberry.ID(to_global_id("Connection", row.id)),
            platform=row.platform,
            account=row.account,
            enabled=row.disabled_at is None,
            installed_by_app=row.installed_by_app,
            sync_status=SyncStatus(row.sync_status),
            sync_progress=row.sync_progress,
            last_synced_at=row.last_synced_at,
            last_sync_error=row.last_sync_error,
            settings=[
                ConnectionSetting(name=name, value=str(value))
                for name, value in sorted({**defaults, **row.settings}.items())
            ],
            created_at=row.created_at,
        )


@strawberry.type
class ConnectionPayload:
    connection: Connection | None
    user_errors: list[UserError]


@strawberry.type
class ConnectShopifyPayload:
    install_url: str | None = strawberry.field(
        description="Send the merchant here to approve the app; the link works once, for an hour."
    )
    user_errors: list[UserError]


@strawberry.type
class ConnectWooCommercePayload:
    authorize_url: str | None = strawberry.field(
        description="Send the merchant here (their store's key grant page); the link works "
        "once, for an hour."
    )
    user_errors: list[UserError]


@strawberry.type(description="A customer's data gathered for a privacy request, to hand over.")
class DataExport:
    id: strawberry.ID
    request_reference: str = strawberry.field(description="The platform's id of the request.")
    customer_email: str
    created_at: datetime
    document: str = strawberry.field(description="Everything held about the customer, as JSON.")

    @classmethod
    def from_row(cls, row: entities.DataExport) -> DataExport:
        return cls(
            id=strawberry.ID(to_global_id("DataExport", row.id)),
            request_reference=row.request_reference,
            customer_email=row.customer_email,
            created_at=row.created_at,
            document=json.dumps(row.document, ensure_ascii=False),
        )
