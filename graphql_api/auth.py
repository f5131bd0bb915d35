"""Who is calling: a staff API key or a customer session token, from ``Authorization: Bearer``."""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from core.database import Database
from core.enums import ApiKeyRole
from core.usecases.merchants import API_KEY_PREFIX, find_api_key

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
    authorization: str | None, database: Database, tokens: CustomerTokens
) -> Principal | None:
    """The principal named by an ``Authorization`` header, or ``None`` when there is none valid."""
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > 512:
        return None
    if credential.startswith(API_KEY_PREFIX):
        async with database.read_session() as session:
            api_key = await find_api_key(session, credential)
        if api_key is None:
            return None
        return Staff(api_key.merchant_id, api_key.role, api_key.id)
    return tokens.verify(credential)


@dataclass
class FailureLimiter:
    """Counts failed attempts per key in a sliding window (per process).

    Used to slow down guessing of order number and e-mail pairs. Each process keeps its own
    counts, so N processes allow N times the limit: enough to stop enumeration, cheap to run.
    """

    limit: int = 5
    window_seconds: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, key: str) -> bool:
        recent = self._recent(key)
        return len(recent) >= self.limit

    def record_failure(self, key: str) -> None:
        self._recent(key).append(time.monotonic())

    def _recent(self, key: str) -> deque[float]:
        now = time.monotonic()
        recent = self._failures.setdefault(key, deque())
        while recent and now - recent[0] > self.window_seconds:
            recent.popleft()
        if len(self._failures) > 100_000:
            self._failures.clear()
        return recent
