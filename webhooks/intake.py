"""``POST /webhooks/{platform}/{connection}``: verify, store once, enqueue, answer at once.

The connection in the URL binds a delivery to one merchant before anything in it is trusted.
Nothing is stored for a delivery that fails its checks.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
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
from core.secrets import SecretsUnreadable, Vault
from core.usecases.connections import normalize_account, read_secrets
from webhooks.inbox import InboxWriter, NewDelivery
from webhooks.signatures import (
    shopify_signature_valid,
    stripe_signature_valid,
    woocommerce_signature_valid,
)

log = structlog.get_logger()

WEBHOOK_BODY_LIMIT = 1024 * 1024

_KEPT_HEADERS = (
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-event-id",
    "x-shopify-webhook-id",
    "x-shopify-triggered-at",
    "x-shopify-api-version",
    "x-wc-webhook-source",
    "x-wc-webhook-topic",
    "x-wc-webhook-id",
    "x-wc-webhook-delivery-id",
    "content-type",
    "user-agent",
)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    topic: str
    dedupe_key: str


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _header_key(prefix: str, value: str) -> str:
    """A dedupe key from an unsigned header: hashed when long, so it always fits its column."""
    key = f"{prefix}:{value}"
    return key if len(key) <= 200 else f"{prefix}#sha256:{_sha256(value.encode())}"


def verify_shopify(
    request: Request, body: bytes, connection: Connection, secrets: list[str]
) -> Verified:
    headers = request.headers
    if not shopify_signature_valid(body, headers.get("x-shopify-hmac-sha256"), secrets):
        raise Refused(401, "signature does not match")
    shop = (headers.get("x-shopify-shop-domain") or "").strip().lower()
    if shop != connection.account:
        raise Refused(401, "delivery is for another shop")
    topic = headers.get("x-shopify-topic") or ""
    if not topic:
        raise Refused(400, "X-Shopify-Topic is missing")
    event = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
    return Verified(topic[:100], _header_key("event", event) if event else f"body:{_sha256(body)}")


def verify_woocommerce(
    request: Request, body: bytes, connection: Connection, secrets: list[str]
) -> Verified:
    headers = request.headers
    if not woocommerce_signature_valid(body, headers.get("x-wc-webhook-signature"), secrets):
        raise Refused(401, "signature does not match")
    source = headers.get("x-wc-webhook-source")
    if source and normalize_account(Platform.WOOCOMMERCE, source) != connection.account:
        raise Refused(401, "delivery is from another store")
    topic = headers.get("x-wc-webhook-topic") or ""
    if not topic:
        raise Refused(400, "X-WC-Webhook-Topic is missing")
    # The delivery id is only unique per webhook per second, so the body's hash is part of it.
    webhook = headers.get("x-wc-webhook-id", "")
    delivery = headers.get("x-wc-webhook-delivery-id", "")
    return Verified(topic[:100], _header_key(f"{webhook}:{delivery}", _sha256(body)))


def verify_stripe(request: Request, body: bytes, secrets: list[str], now: float) -> Verified:
    if not stripe_signature_valid(body, request.headers.get("stripe-signature"), secrets, now=now):
        raise Refused(401, "signature does not match or is too old or too new")
    try:
        event = json.loads(body)
        event_id, event_type = str(event["id"]), str(event["type"])
    except (ValueError, KeyError, TypeError) as error:
        raise Refused(400, "the body is not a Stripe event") from error
    return Verified(event_type[:100], _header_key("event", event_id))


def is_woocommerce_ping(request: Request, body: bytes) -> bool:
    """WooCommerce checks a new delivery URL with an unsigned form post and wants a 200."""
    return not request.headers.get("x-wc-webhook-topic") and body.startswith(b"webhook_id=")


class WebhookIntake:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        *,
        clock: Clock | None = None,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.vault = vault
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
            platform, connection_id = _parse_path(request)
            connection, secrets = await self._connection(platform, connection_id)
            structlog.contextvars.bind_contextvars(
                merchant_id=str(connection.merchant_id), connection_id=str(connection.id)
            )
            if platform is Platform.WOOCOMMERCE and is_woocommerce_ping(request, body):
                return JSONResponse({"received": True, "ping": True})
            verified = self._verify(platform, request, body, connection, secrets)
        except Refused as refusal:
            log.info("webhook refused", status=refusal.status, reason=refusal.reason)
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        except SecretsUnreadable:
            log.error("webhook secrets unreadable", connection=str(request.path_params))
            return JSONResponse({"error": "connection secrets unreadable"}, status_code=401)
        headers = {name: request.headers[name] for name in _KEPT_HEADERS if name in request.headers}
        try:
            duplicate = await self.inbox.store(
                NewDelivery(
                    merchant_id=connection.merchant_id,
                    connection_id=connection.id,
                    platform=platform,
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
            raise Refused(404, "unknown webhook URL")
        key = (connection.id, connection.webhook_secrets_encrypted)
        secrets = self._secrets.get(key)
        if secrets is None:
            secrets = read_secrets(self.vault, connection).webhook_secrets
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[key] = secrets
        return connection, secrets

    def _verify(
        self,
        platform: Platform,
        request: Request,
        body: bytes,
        connection: Connection,
        secrets: list[str],
    ) -> Verified:
        if platform is Platform.SHOPIFY:
            return verify_shopify(request, body, connection, secrets)
        if platform is Platform.WOOCOMMERCE:
            return verify_woocommerce(request, body, connection, secrets)
        if platform is Platform.STRIPE:
            return verify_stripe(request, body, secrets, now=self.clock.now().timestamp())
        raise Refused(404, "unknown webhook URL")


def _parse_path(request: Request) -> tuple[Platform, uuid.UUID]:
    try:
        return (
            Platform(request.path_params["platform"]),
            uuid.UUID(request.path_params["connection_id"]),
        )
    except ValueError as error:
        raise Refused(404, "unknown webhook URL") from error
