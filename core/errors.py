"""Expected failures of the domain.

Each carries a stable ``code`` (the GraphQL ``userErrors.code`` and the CLI's message prefix), the
input ``field`` it concerns when there is one, and a readable ``message``. Anything that is not a
:class:`DomainError` is a bug and is masked at the edges.
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every expected failure. Raising one means nothing was written."""

    code = "INVALID"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InsufficientCredit(DomainError):
    """The customer's store credit here is less than the amount to spend."""

    code = "INSUFFICIENT_CREDIT"


class OverrideNeedsAdmin(DomainError):
    """The price change is more than an AGENT may give on their own."""

    code = "OVERRIDE_NEEDS_ADMIN"


class InvalidInput(DomainError):
    """A value is malformed or out of range."""

    code = "INVALID_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class NotFound(DomainError):
    """Unknown id, or the id of another merchant's object: both answer the same."""

    code = "NOT_FOUND"

    def __init__(self, entity: str, identifier: object, *, field: str | None = None) -> None:
        super().__init__(f"{entity} {identifier} does not exist", field=field)
        self.entity = entity


class InvalidTransition(DomainError):
    """The RMA's status does not allow the requested move."""

    code = "INVALID_TRANSITION"

    def __init__(self, current: str, target: str, *, hint: str = "") -> None:
        message = f"an RMA in status {current} cannot move to {target}"
        super().__init__(f"{message}: {hint}" if hint else message, field="status")
        self.current = current
        self.target = target


class NotEligible(DomainError):
    """The return policy refuses the request; ``codes`` says which rules decided."""

    code = "NOT_ELIGIBLE"

    def __init__(self, message: str, codes: Sequence[str], *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.codes = tuple(codes)


class QuantityExceeded(DomainError):
    """More units than were bought minus those already returned."""

    code = "QUANTITY_EXCEEDED"


class CurrencyMismatch(DomainError):
    """An amount's currency differs from the order's."""

    code = "CURRENCY_MISMATCH"


class InvalidRmaNumber(DomainError):
    """An RMA number that is malformed or fails its check character."""

    code = "INVALID_RMA_NUMBER"

    def __init__(self, number: str) -> None:
        super().__init__(f"{number!r} is not a valid RMA number", field="number")


class ResolutionNotAllowed(DomainError):
    """The policy does not offer this resolution, or one is already under way."""

    code = "RESOLUTION_NOT_ALLOWED"


class Conflict(DomainError):
    """Something with the same identity already exists."""

    code = "CONFLICT"


class RefundExceedsPaid(DomainError):
    """The refunds on an order would add up to more than was paid for it."""

    code = "REFUND_EXCEEDS_PAID"


class NotConfigured(DomainError):
    """A platform's app is not set up on this service (its key and secret are missing)."""

    code = "NOT_CONFIGURED"
