"""The schema and its protections: limits, caches, masking, production hardening."""

from __future__ import annotations

from typing import Any

import strawberry
import structlog
from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from core.errors import DomainError
from graphql_api.errors import MaskUnexpectedErrors, should_mask
from graphql_api.metrics import RequestTimer, count_error
from graphql_api.mutations import Mutation
from graphql_api.queries import Query
from graphql_api.types.commerce import Customer, Order
from graphql_api.types.returns import Resolution, Rma
from graphql_api.view import unstorable_string

log = structlog.get_logger()

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000


class StorableStrings(ValidationRule):
    """String literals in the document are checked as JSON strings are: a GraphQL escape
    (``"\\u0000"``, ``"\\ud800"``) makes text that neither database can store."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        problem = unstorable_string(node.value)
        if problem is not None:
            self.report_error(GraphQLError(problem, node, extensions={"code": "INVALID_INPUT"}))


class RmaSchema(strawberry.Schema):
    """The schema, logging expected refusals briefly instead of as errors with tracebacks."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if should_mask(error):
                continue  # MaskUnexpectedErrors logs it, with its traceback and the request id
            code = (error.extensions or {}).get("code")
            if code is None and isinstance(error.original_error, DomainError):
                code = error.original_error.code
            log.info("request refused", code=code or "INVALID_QUERY", message=error.message[:300])
            count_error(code or "INVALID_QUERY")


def build_schema(*, production: bool) -> strawberry.Schema:
    """The schema; in production introspection and "did you mean" suggestions are off."""
    # The limiters' rule classes are made once: the validation cache keys on the rule classes,
    # so limiters rebuilt per request would never hit it.
    limits = [
        *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
        StorableStrings,
    ]
    # Factories: strawberry builds fresh extensions per request (the caches are shared).
    extensions: list[Any] = [
        lambda: MaskUnexpectedErrors(hide_suggestions=production),
        RequestTimer,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=2048),
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(maxsize=2048),
    ]
    if production:
        extensions.append(DisableIntrospection)
    return RmaSchema(
        query=Query,
        mutation=Mutation,
        types=[Rma, Order, Customer, Resolution],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )


def schema_sdl() -> str:
    """The SDL printed by ``rma schema`` and committed as ``schema.graphql``."""
    return build_schema(production=False).as_str() + "\n"
