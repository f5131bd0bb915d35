"""``POST /webhooks/{platform}/{connection}``: verify, store once, enqueue, answer at once.

The connection in the URL binds a delivery to one merchant before anything in it is trusted;
the platform's registered ``WebhookSource`` verifies it. Nothing is stored for a delivery that
fails its checks. This module knows no platform: each plugin brings its own source.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.clock import Clock, SystemClock
from core.database import Database
from core.entities import Connection
from core.enums import Platform
from core.ports.webhooks import DeliveryRefused, WebhookSource
from core.secrets import SecretsUnreadable, Vault
from core.usecases.connections import read_secrets
from webhooks.inbox import InboxWriter, NewDelivery

log = structlog.get_logger()

WEBHOOK_BODY_LIMIT = 1024 * 1024
_ALWAYS_KEPT_HEADERS = ("content-type", "user-agent")


class WebhookIntake:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        sources: Mapping[Platform, WebhookSource],
        *,
        clock: Clock | None = None,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.vault = vault
        self.sources = dict(sources)
        self.clock = clock or SystemClock()
        self.on_enqueued = on_enqueued
        self.inbox = InboxWriter(database, clock=self.clock)
        # Decrypted webhook secrets by connection and ciphertext: a rotation changes the
        # ciphertext, so a stale entry is never used; decryption is the costly part.
        self._secrets: dict[tuple[uuid.UUID, str], list[str]] = {}

    def routes(self) -> list[Route]:
        return [Route("/webhooks/{platform}/{connection_id}", self.receive, methods=["POST"])]

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            source, connection_id = self._source_and_connection(request)
            connection, secrets = await self._connection(source.platform, connection_id)
            structlog.contextvars.bind_contextvars(
                merchant_id=str(connection.merchant_id), connection_id=str(connection.id)
            )
            if source.is_ping(request.headers, body):
                return JSONResponse({"received": True, "ping": True})
            verified = source.verify(
                body,
                request.headers,
                secrets=secrets,
                account=connection.account,
                now=self.clock.now(),
            )
        except DeliveryRefused as refusal:
            log.info("webhook refused", status=refusal.status, reason=refusal.reason)
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        except SecretsUnreadable:
            log.error("webhook secrets unreadable", connection=str(request.path_params))
            return JSONResponse({"error": "connection secrets unreadable"}, status_code=401)
        kept = (*source.kept_headers, *_ALWAYS_KEPT_HEADERS)
        headers = {name: request.headers[name] for name in kept if name in request.headers}
        try:
            duplicate = await self.inbox.store(
                NewDelivery(
                    merchant_id=connection.merchant_id,
                    connection_id=connection.id,
                    platform=source.platform,
                    topic=verified.topic,
                    dedupe_key=verified.dedupe_key,
                    body=body,
                    headers=headers,
                )
            )
        except SQLAlchemyError as error:
            # Not stored: say so, and the platform delivers again later.
            log.error("webhook not stored", error=str(error)[:200])
            return JSONResponse({"error": "not stored, try again"}, status_code=503)
        if not duplicate and self.on_enqueued is not None:
            self.on_enqueued()
        return JSONResponse({"received": True, "duplicate": duplicate})

    def _source_and_connection(self, request: Request) -> tuple[WebhookSource, uuid.UUID]:
        try:
            platform = Platform(request.path_params["platform"])
            connection_id = uuid.UUID(request.path_params["connection_id"])
        except ValueError as error:
            raise DeliveryRefused(404, "unknown webhook URL") from error
        source = self.sources.get(platform)
        if source is None:
            raise DeliveryRefused(404, "unknown webhook URL")
        return source, connection_id

    async def _connection(
        self, platform: Platform, connection_id: uuid.UUID
    ) -> tuple[Connection, list[str]]:
        """The connection as the database has it now, with its webhook secrets.

        Read on every delivery (one lookup by primary key), never from a cache: disabling,
        re-enabling or rotating a secret takes effect on the next delivery, in every process.
        """
        async with self.database.read_session() as session:
            connection = await session.get(Connection, connection_id)
        if connection is None or connection.platform is not platform or connection.disabled_at:
            raise DeliveryRefused(404, "unknown webhook URL")
        key = (connection.id, connection.webhook_secrets_encrypted)
        secrets = self._secrets.get(key)
        if secrets is None:
            secrets = read_secrets(self.vault, connection).webhook_secrets
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[key] = secrets
        return connection, secrets
