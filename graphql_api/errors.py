"""Expected failures as ``userErrors``; everything else is masked and logged with a request id."""

from __future__ import annotations

import re
from enum import Enum

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from core.errors import DomainError
from graphql_api.metrics import count_error

log = structlog.get_logger()


@strawberry.enum(description="Stable codes of expected failures; frontends switch on these.")
class ErrorCode(Enum):
    INVALID_INPUT = strawberry.enum_value(
        "INVALID_INPUT", description="A value is malformed, too long or out of range."
    )
    NOT_FOUND = strawberry.enum_value(
        "NOT_FOUND", description="No such object for this caller (another merchant's included)."
    )
    INVALID_TRANSITION = strawberry.enum_value(
        "INVALID_TRANSITION", description="The RMA's status does not allow this step."
    )
    NOT_ELIGIBLE = strawberry.enum_value(
        "NOT_ELIGIBLE", description="The return policy refuses; see eligibilityCodes."
    )
    QUANTITY_EXCEEDED = strawberry.enum_value(
        "QUANTITY_EXCEEDED", description="More units than bought, returned or authorized."
    )
    CURRENCY_MISMATCH = strawberry.enum_value(
        "CURRENCY_MISMATCH", description="An amount's currency differs from the order's."
    )
    INVALID_RMA_NUMBER = strawberry.enum_value(
        "INVALID_RMA_NUMBER", description="Malformed, or its check symbol is wrong (a typo)."
    )
    RESOLUTION_NOT_ALLOWED = strawberry.enum_value(
        "RESOLUTION_NOT_ALLOWED", description="The policy does not offer this resolution."
    )
    REFUND_EXCEEDS_PAID = strawberry.enum_value(
        "REFUND_EXCEEDS_PAID", description="Refunds would add up to more than was paid."
    )
    INSUFFICIENT_CREDIT = strawberry.enum_value(
        "INSUFFICIENT_CREDIT", description="Less store credit here than the amount to spend."
    )
    OVERRIDE_NEEDS_ADMIN = strawberry.enum_value(
        "OVERRIDE_NEEDS_ADMIN",
        description="The price change is above what an AGENT may give; an ADMIN decides.",
    )
    CONFLICT = strawberry.enum_value(
        "CONFLICT", description="Clashes with an earlier request (e.g. a reused idempotency key)."
    )
    INVALID_CURSOR = strawberry.enum_value(
        "INVALID_CURSOR", description="The cursor was not given out by this API."
    )
    INVALID_CREDENTIALS = strawberry.enum_value(
        "INVALID_CREDENTIALS", description="No order matches that number and e-mail."
    )
    RATE_LIMITED = strawberry.enum_value(
        "RATE_LIMITED", description="Too many failed attempts; wait a few minutes."
    )
    NOT_CONFIGURED = strawberry.enum_value(
        "NOT_CONFIGURED", description="The platform's app is not set up on this service."
    )
    INVALID = strawberry.enum_value("INVALID", description="Any other expected failure.")


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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def user_error(error: DomainError) -> UserError:
    """The ``userErrors`` entry for an expected failure (logged briefly, as it is no fault)."""
    try:
        code = ErrorCode(error.code)
    except ValueError:
        code = ErrorCode.INVALID
    log.info("request refused", code=code.value, message=error.message[:300], field=error.field)
    count_error(code.name)
    codes = list(getattr(error, "codes", ())) or None
    path = (
        [_camel(part) for part in error.field.replace("]", "").replace("[", ".").split(".")]
        if error.field
        else None
    )
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


SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


class MaskUnexpectedErrors(MaskErrors):
    """Keep expected errors (with their ``code``), replace the rest with a generic message.

    The real error is logged with the request id, which the caller also gets, so support can
    find it without the caller ever seeing a traceback or SQL.
    """

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        super().__init__(should_mask_error=should_mask, error_message="Unexpected error.")
        self.hide_suggestions = hide_suggestions

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
            if self.hide_suggestions and SUGGESTION.search(error.message):
                # With introspection off, "did you mean" would still reveal the schema.
                error.message = SUGGESTION.sub("", error.message)
        return super()._process_errors(errors)
