"""``POST /webhooks/{platform}/{connection}``: verify, store once, enqueue, answer at once.

The connection in the URL binds a delivery to one merchant before anything in it is trusted;
the platform's registered ``WebhookSource`` verifies it. Nothing is stored for a delivery that
fails its checks, or whose connection was disabled or re-keyed meanwhile (checked where it is
stored, so every process sees such a change on the next delivery). This module knows no
platform: each plugin brings its own source.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.clock import Clock, SystemClock
from core.database import Database
from core.entities import Connection
from core.enums import Platform
from core.ports.webhooks import AppDelivery, AppWebhookSource, DeliveryRefused, WebhookSource
from core.secrets import SecretsUnreadable, Vault
from core.usecases.connections import read_secrets
from core.usecases.installs import app_connection
from webhooks.inbox import InboxWriter, NewDelivery, Stored

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
        app_sources: Mapping[Platform, AppWebhookSource] | None = None,
        clock: Clock | None = None,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.vault = vault
        self.sources = dict(sources)
        self.app_sources = dict(app_sources or {})
        self.clock = clock or SystemClock()
        self.on_enqueued = on_enqueued
        self.inbox = InboxWriter(database, clock=self.clock)
        # Enabled connections with their decrypted webhook secrets, as last read. A cached
        # entry is only a guess: the inbox checks, in the transaction that stores a delivery,
        # that the connection is still enabled and still has the secrets it was verified with.
        self._known: dict[uuid.UUID, _KnownConnection] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/webhooks/{platform}/app", self.receive_for_app, methods=["POST"]),
            Route("/webhooks/{platform}/{connection_id}", self.receive, methods=["POST"]),
        ]

    async def receive_for_app(self, request: Request) -> Response:
        """A delivery signed with an app's secret; the shop header names the connection, and
        is believed only once the signature is checked."""
        body = await request.body()
        try:
            source = self.app_sources.get(_platform_of(request))
            if source is None:
                raise DeliveryRefused(404, "unknown webhook URL")
            delivery = source.verify_app(body, request.headers, now=self.clock.now())
            connection = await self._app_connection(source.platform, delivery)
            if connection is None:
                if delivery.reaches_disabled:
                    # A privacy request for a shop we hold nothing of: nothing to erase.
                    return JSONResponse({"received": True, "unknownAccount": True})
                raise DeliveryRefused(404, "no connection for this shop")
            structlog.contextvars.bind_contextvars(
                merchant_id=str(connection.merchant_id), connection_id=str(connection.id)
            )
            kept = (*source.kept_headers, *_ALWAYS_KEPT_HEADERS)
            outcome = await self.inbox.store(
                NewDelivery(
                    merchant_id=connection.merchant_id,
                    connection_id=connection.id,
                    platform=source.platform,
                    topic=delivery.topic,
                    dedupe_key=delivery.dedupe_key,
                    body=body,
                    headers={n: request.headers[n] for n in kept if n in request.headers},
                    verified_with=connection.webhook_secrets_encrypted,
                    even_if_disabled=delivery.reaches_disabled,
                )
            )
            if outcome in (Stored.CONNECTION_GONE, Stored.SECRETS_CHANGED):
                raise DeliveryRefused(404, "no connection for this shop")
            if outcome is Stored.NEW and self.on_enqueued is not None:
                self.on_enqueued()
            return JSONResponse({"received": True, "duplicate": outcome is Stored.DUPLICATE})
        except DeliveryRefused as refusal:
            log.info("webhook refused", status=refusal.status, reason=refusal.reason)
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        except SQLAlchemyError as error:
            log.error("webhook not stored", error=str(error)[:200])
            return JSONResponse({"error": "not stored, try again"}, status_code=503)

    async def _app_connection(self, platform: Platform, delivery: AppDelivery) -> Connection | None:
        async with self.database.read_session() as session:
            return await app_connection(
                session, platform, delivery.account, include_disabled=delivery.reaches_disabled
            )

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        connection_id: uuid.UUID | None = None
        try:
            source, connection_id = self._source_and_connection(request)
            known = self._known.get(connection_id)
            for fresh in (False, True) if known is not None else (True,):
                if fresh:
                    known = await self._read_connection(source.platform, connection_id)
                assert known is not None
                outcome = await self._verify_and_store(source, known, request, body)
                if outcome is not None:
                    return outcome
            raise DeliveryRefused(503, "the connection kept changing; try again")
        except DeliveryRefused as refusal:
            if refusal.status == 404 and connection_id is not None:
                self._known.pop(connection_id, None)
            log.info("webhook refused", status=refusal.status, reason=refusal.reason)
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        except SecretsUnreadable:
            log.error("webhook secrets unreadable", connection=str(request.path_params))
            return JSONResponse({"error": "connection secrets unreadable"}, status_code=401)
        except SQLAlchemyError as error:
            # Not stored: say so, and the platform delivers again later.
            log.error("webhook not stored", error=str(error)[:200])
            return JSONResponse({"error": "not stored, try again"}, status_code=503)

    async def _verify_and_store(
        self, source: WebhookSource, known: _KnownConnection, request: Request, body: bytes
    ) -> Response | None:
        """Verify against ``known`` and store; None when ``known`` proved stale (read again)."""
        connection = known.connection
        structlog.contextvars.bind_contextvars(
            merchant_id=str(connection.merchant_id), connection_id=str(connection.id)
        )
        if source.is_ping(request.headers, body):
            return JSONResponse({"received": True, "ping": True})
        try:
            verified = source.verify(
                body,
                request.headers,
                secrets=known.secrets,
                account=connection.account,
                now=self.clock.now(),
            )
        except DeliveryRefused:
            if not known.fresh:
                return None  # the secrets may have been rotated since they were cached
            raise
        kept = (*source.kept_headers, *_ALWAYS_KEPT_HEADERS)
        headers = {name: request.headers[name] for name in kept if name in request.headers}
        outcome = await self.inbox.store(
            NewDelivery(
                merchant_id=connection.merchant_id,
                connection_id=connection.id,
                platform=source.platform,
                topic=verified.topic,
                dedupe_key=verified.dedupe_key,
                body=body,
                headers=headers,
                verified_with=connection.webhook_secrets_encrypted,
            )
        )
        if outcome is Stored.CONNECTION_GONE:
            raise DeliveryRefused(404, "unknown webhook URL")
        if outcome is Stored.SECRETS_CHANGED:
            self._known.pop(connection.id, None)
            return None
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[connection.id] = _KnownConnection(connection, known.secrets, fresh=False)
        if outcome is Stored.NEW and self.on_enqueued is not None:
            self.on_enqueued()
        return JSONResponse({"received": True, "duplicate": outcome is Stored.DUPLICATE})

    def _source_and_connection(self, request: Request) -> tuple[WebhookSource, uuid.UUID]:
        try:
            platform = _platform_of(request)
            connection_id = uuid.UUID(request.path_params["connection_id"])
        except ValueError as error:
            raise DeliveryRefused(404, "unknown webhook URL") from error
        source = self.sources.get(platform)
        if source is None:
            raise DeliveryRefused(404, "unknown webhook URL")
        return source, connection_id

    async def _read_connection(
        self, platform: Platform, connection_id: uuid.UUID
    ) -> _KnownConnection:
        """The connection as the database has it now, with its decrypted webhook secrets."""
        async with self.database.read_session() as session:
            connection = await session.get(Connection, connection_id)
        if connection is None or connection.platform is not platform or connection.disabled_at:
            raise DeliveryRefused(404, "unknown webhook URL")
        secrets = read_secrets(self.vault, connection).webhook_secrets
        return _KnownConnection(connection, secrets, fresh=True)


def _platform_of(request: Request) -> Platform:
    try:
        return Platform(request.path_params["platform"])
    except ValueError as error:
        raise DeliveryRefused(404, "unknown webhook URL") from error


@dataclass(frozen=True, slots=True)
class _KnownConnection:
    connection: Connection
    secrets: list[str]
    fresh: bool  # read for this delivery, so a failed check is final
