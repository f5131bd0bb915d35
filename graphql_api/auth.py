"""Who is calling: a staff API key or a customer session token, from ``Authorization: Bearer``."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from core.clock import Clock
from core.database import Database
from core.enums import ApiKeyRole
from core.usecases.live_keys import LiveKeys
from core.usecases.login_limits import failures_since, record_login_failure
from core.usecases.merchants import API_KEY_PREFIX

CUSTOMER_TOKEN_PREFIX = "rma_cs_"  # noqa: S105 (a prefix, not a secret)
CUSTOMER_SESSION_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Staff:
    merchant_id: uuid.UUID
    role: ApiKeyRole
    api_key_id: uuid.UUID

    @property
    def actor(self) -> str:
        return f"staff:{self.api_key_id}"


@dataclass(frozen=True, slots=True)
class CustomerSession:
    merchant_id: uuid.UUID
    customer_id: uuid.UUID

    @property
    def actor(self) -> str:
        return f"customer:{self.customer_id}"


Principal = Staff | CustomerSession


class CustomerTokens:
    """Signs and checks customer session tokens (HMAC with the service's secret key)."""

    def __init__(self, secret_key: str, max_age: int = CUSTOMER_SESSION_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="rma-customer-session")
        self.max_age = max_age

    def issue(self, session: CustomerSession) -> str:
        payload = {"m": str(session.merchant_id), "c": str(session.customer_id)}
        return CUSTOMER_TOKEN_PREFIX + self._serializer.dumps(payload)

    def verify(self, token: str) -> CustomerSession | None:
        if not token.startswith(CUSTOMER_TOKEN_PREFIX):
            return None
        try:
            payload = self._serializer.loads(
                token[len(CUSTOMER_TOKEN_PREFIX) :], max_age=self.max_age
            )
            return CustomerSession(uuid.UUID(payload["m"]), uuid.UUID(payload["c"]))
        except (BadSignature, SignatureExpired, KeyError, TypeError, ValueError):
            return None


async def authenticate(
    authorization: str | None, keys: LiveKeys, tokens: CustomerTokens
) -> Principal | None:
    """The principal named by an ``Authorization`` header, or ``None`` when there is none valid."""
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > 512:
        return None
    if credential.startswith(API_KEY_PREFIX):
        grant = await keys.find(credential)
        if grant is None:
            return None
        return Staff(grant.merchant_id, grant.role, grant.api_key_id)
    return tokens.verify(credential)


@dataclass
class FailureLimiter:
    """Counts failed sign-ins per key in a sliding window, in the database.

    Every API process (on PostgreSQL, every machine) shares one budget per key. Keys are
    HMACs under the service's secret, so the table holds no address, order number or e-mail.
    """

    database: Database
    clock: Clock
    secret: bytes
    window: timedelta = timedelta(minutes=5)
    # Failures one order may take (guessing its e-mail), and one address (many customers
    # may share one behind a proxy; they still sign in with a right pair).
    per_order: int = 5
    per_address: int = 50

    def key(self, *parts: str) -> str:
        return hmac.new(self.secret, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    async def blocked(self, budgets: Mapping[str, int]) -> set[str]:
        """The keys that used up their budget (key -> failures allowed)."""
        since = self.clock.now() - self.window
        async with self.database.read_session() as session:
            counts = await failures_since(session, budgets.keys(), since=since)
        return {key for key, count in counts.items() if count >= budgets[key]}

    async def record_failure(self, keys: Collection[str]) -> None:
        now = self.clock.now()
        async with self.database.session() as session:
            await record_login_failure(session, keys, now=now, forget_before=now - self.window)
