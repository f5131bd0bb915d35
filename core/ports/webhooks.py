"""A platform's webhooks: how a delivery is verified, and what its topics mean.

The generic intake (``webhooks/``) finds the registered ``WebhookSource`` for the platform in
the URL, verifies the raw delivery with the connection's secrets, and stores it. A worker later
calls the topic's handler, which parses the payload into values (a refund report, a note);
core's use cases apply them. Neither a source nor a handler touches the database.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.enums import Platform
from core.errors import InvalidInput
from core.ports.payments import RefundReport


@dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    topic: str
    dedupe_key: str  # unique per genuine delivery: duplicates of it are stored once


class DeliveryRefused(Exception):
    """A delivery that fails its checks; ``status`` is the HTTP answer (401, 400)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebhookSource(Protocol):
    """Verifies one platform's deliveries; pure functions of bytes, headers, secrets and time."""

    platform: Platform
    # Headers stored with a delivery (lower case), for replay and support.
    kept_headers: tuple[str, ...]

    def normalize_account(self, account: str) -> str:
        """The account a connection speaks for, as its deliveries will claim it (a shop
        domain, a store URL); raises ``InvalidInput`` for one that cannot be right."""
        ...

    def is_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        """A platform's unsigned check that the URL answers, to be answered 200 and dropped."""
        ...

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        secrets: Sequence[str],
        account: str,
        now: datetime,
    ) -> VerifiedDelivery:
        """The delivery's topic and dedupe key, or ``DeliveryRefused``: signed with one of
        ``secrets`` (constant-time), from ``account``, and not too old where that is checked."""
        ...


@dataclass(frozen=True, slots=True)
class AppDelivery:
    """A delivery signed with an app's own secret, for whichever shop installed the app."""

    account: str  # the shop it is for, as the connection names it
    topic: str
    dedupe_key: str
    # Privacy topics (a shop's data to erase) must reach a connection even after the app
    # was uninstalled and the connection disabled.
    reaches_disabled: bool = False


class AppWebhookSource(Protocol):
    """Verifies deliveries at a platform's app-wide address (``/webhooks/{platform}/app``):
    signed with the app's secret (the current one or the one before a rotation), with the
    account named in a header that is trusted only after the signature is checked."""

    platform: Platform
    kept_headers: tuple[str, ...]

    def verify_app(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> AppDelivery:
        """The delivery, or ``DeliveryRefused`` (401 for a bad signature)."""
        ...


@dataclass(frozen=True, slots=True)
class TopicContext:
    """What a topic handler knows besides the payload."""

    delivery_id: uuid.UUID
    merchant_id: uuid.UUID
    connection_id: uuid.UUID
    topic: str
    headers: Mapping[str, str]
    now: datetime


@dataclass(frozen=True, slots=True)
class Note:
    """A delivery that was read and needs nothing applied; the text is kept on it."""

    text: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A genuine delivery that is not this service's to apply; kept as IGNORED with why."""

    reason: str


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order changed on the platform: read it again from there (the payload may be stale
    or reordered), and apply it if it is newer than what is stored."""

    order_reference: str


@dataclass(frozen=True, slots=True)
class AccessRevoked:
    """The platform no longer lets the service act for this account (the app was
    uninstalled): the connection is disabled at once and its jobs stop."""

    reason: str
    # When the platform triggered it: an event from before the last install is ignored.
    triggered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlatformReturnEnded:
    """Staff closed, declined or cancelled a return on the platform (perhaps one mirroring an
    RMA, perhaps our own action coming back)."""

    return_reference: str
    outcome: str  # CLOSED, DECLINED, CANCELED


@dataclass(frozen=True, slots=True)
class CustomerDataRequested:
    """A customer asked, through the platform, for the data held about them."""

    email: str | None
    customer_reference: str | None
    request_reference: str


@dataclass(frozen=True, slots=True)
class CustomerRedactionRequested:
    """A customer asked, through the platform, to be forgotten."""

    email: str | None
    customer_reference: str | None


@dataclass(frozen=True, slots=True)
class AccountErasureRequested:
    """The account left the platform's app for good: erase what is held for it (refused
    while the connection is enabled: a reinstall came in between)."""


TopicResult = (
    RefundReport
    | Note
    | Ignored
    | OrderChanged
    | AccessRevoked
    | PlatformReturnEnded
    | CustomerDataRequested
    | CustomerRedactionRequested
    | AccountErasureRequested
)
# A handler parses a delivery's JSON payload into one result or several (a refund to settle and
# its order to read again); bad payloads raise ValueError, KeyError or TypeError and are
# marked FAILED without retries.
TopicHandler = Callable[[TopicContext, Any], Awaitable[TopicResult | Sequence[TopicResult]]]


def body_sha256(body: bytes) -> str:
    """The hex SHA-256 of a raw body: a dedupe key for deliveries that carry no id."""
    return hashlib.sha256(body).hexdigest()


def header_dedupe_key(prefix: str, value: str) -> str:
    """A dedupe key from an unsigned header's value: hashed when long, so it always fits its
    column (and an overlong header harms no other delivery)."""
    key = f"{prefix}:{value}"
    return key if len(key) <= 200 else f"{prefix}#sha256:{body_sha256(value.encode())}"


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def required_account(account: str) -> str:
    """A connection's account as given, trimmed; every platform needs one of sane length."""
    value = account.strip()
    if not value or len(value) > 255:
        raise InvalidInput("account", "the shop, store URL or account is required")
    return value
