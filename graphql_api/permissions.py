"""Who may use which field. Every root field names one of these; a test enforces it."""

from __future__ import annotations

import abc
from typing import Any

from strawberry.permission import BasePermission

from core.enums import ApiKeyRole
from graphql_api.auth import CustomerSession, Staff
from graphql_api.errors import Denied

_OPERATORS = frozenset({ApiKeyRole.ADMIN, ApiKeyRole.AGENT})


class _Rule(BasePermission):
    """Raise a visible, coded error instead of strawberry's default."""

    code = "FORBIDDEN"
    message = "not allowed"

    @abc.abstractmethod
    def allows(self, principal: object) -> bool:
        """Whether this signed-in principal may use the field."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal is None:
            raise Denied("authentication required", "UNAUTHENTICATED")
        if not self.allows(principal):
            raise Denied(self.message, self.code)
        return True


class Public(BasePermission):
    """Anyone, signed in or not (starting a customer session)."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


class SignedIn(_Rule):
    """Any staff key or customer session; data is still limited to what they own."""

    def allows(self, principal: object) -> bool:
        return True


class StaffRead(_Rule):
    message = "staff only"

    def allows(self, principal: object) -> bool:
        return isinstance(principal, Staff)


class StaffWrite(_Rule):
    message = "needs an ADMIN or AGENT key"

    def allows(self, principal: object) -> bool:
        return isinstance(principal, Staff) and principal.role in _OPERATORS


class Admin(_Rule):
    message = "needs an ADMIN key"

    def allows(self, principal: object) -> bool:
        return isinstance(principal, Staff) and principal.role is ApiKeyRole.ADMIN


class CustomerOrStaffWrite(_Rule):
    """The customer's own return, or staff who may write."""

    message = "needs a customer session or an ADMIN or AGENT key"

    def allows(self, principal: object) -> bool:
        return isinstance(principal, CustomerSession) or (
            isinstance(principal, Staff) and principal.role in _OPERATORS
        )
