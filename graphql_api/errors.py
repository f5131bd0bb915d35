"""Expected failures as ``userErrors``; everything else is masked and logged with a request id."""

from __future__ import annotations

from enum import Enum

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from core.errors import DomainError

log = structlog.get_logger()


@strawberry.enum(description="Stable codes of expected failures; frontends switch on these.")
class ErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    QUANTITY_EXCEEDED = "QUANTITY_EXCEEDED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    INVALID_RMA_NUMBER = "INVALID_RMA_NUMBER"
    RESOLUTION_NOT_ALLOWED = "RESOLUTION_NOT_ALLOWED"
    REFUND_EXCEEDS_PAID = "REFUND_EXCEEDS_PAID"
    CONFLICT = "CONFLICT"
    INVALID_CURSOR = "INVALID_CURSOR"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID = "INVALID"


@strawberry.type(description="An expected failure of a mutation; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, when there is one."
    )
    message: str
    code: ErrorCode
    eligibility_codes: list[str] | None = strawberry.field(
        default=None, description="For NOT_ELIGIBLE: the policy rules that refused the request."
    )


def user_error(error: DomainError) -> UserError:
    try:
        code = ErrorCode(error.code)
    except ValueError:
        code = ErrorCode.INVALID
    codes = list(getattr(error, "codes", ())) or None
    path = error.field.replace("]", "").replace("[", ".").split(".") if error.field else None
    return UserError(field=path, message=error.message, code=code, eligibility_codes=codes)


class Denied(GraphQLError):
    """Authentication or permission failure: shown to the caller, never masked."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


EXPECTED_ERRORS: tuple[type[Exception], ...] = (GraphQLError, DomainError)


def should_mask(error: GraphQLError) -> bool:
    """Mask everything that is not a validation error or one of ours."""
    original = error.original_error
    if original is None:
        return False
    return not isinstance(original, EXPECTED_ERRORS)


class MaskUnexpectedErrors(MaskErrors):
    """Keep expected errors (with their ``code``), replace the rest with a generic message.

    The real error is logged with the request id, which the caller also gets, so support can
    find it without the caller ever seeing a traceback or SQL.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message="Unexpected error.")

    def _request_id(self) -> str | None:
        context = self.execution_context.context
        return getattr(context, "request_id", None)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = self._request_id()
        log.error(
            "unexpected error in a resolver",
            request_id=request_id,
            path=error.path,
            exc_info=error.original_error,
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL", "requestId": request_id}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        for error in errors:
            if isinstance(error.original_error, DomainError):
                error.extensions = {**(error.extensions or {}), "code": error.original_error.code}
        return super()._process_errors(errors)
