"""The per-request context every resolver receives."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from strawberry.types import Info as StrawberryInfo

from core.clock import Clock
from core.database import Database
from core.plugins import Registry
from core.settings import Settings
from graphql_api.auth import CustomerSession, CustomerTokens, FailureLimiter, Principal, Staff
from graphql_api.errors import Denied
from graphql_api.loaders import Loaders


@dataclass
class Context:
    request: Request
    database: Database
    settings: Settings
    tokens: CustomerTokens
    limiter: FailureLimiter
    principal: Principal | None
    clock: Clock
    on_write: Callable[[], None] | None = None
    registry: Registry = field(default_factory=Registry)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _loaders: Loaders | None = None

    @property
    def merchant_id(self) -> uuid.UUID:
        if self.principal is None:
            raise Denied("authentication required", "UNAUTHENTICATED")
        return self.principal.merchant_id

    @property
    def customer_id(self) -> uuid.UUID | None:
        """Set for customer sessions: every read and write is limited to this customer."""
        return self.principal.customer_id if isinstance(self.principal, CustomerSession) else None

    @property
    def staff(self) -> Staff | None:
        return self.principal if isinstance(self.principal, Staff) else None

    @property
    def actor(self) -> str:
        if self.principal is None:
            raise Denied("authentication required", "UNAUTHENTICATED")
        return self.principal.actor

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.database, self.merchant_id, self.customer_id)
        return self._loaders


Info = StrawberryInfo[Context, None]
