"""The /graphql endpoint: context per request, automatic persisted queries, body limits."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.schema import BaseSchema

from core.clock import Clock
from core.database import Database
from core.plugins import Registry
from core.settings import Settings
from core.usecases.live_keys import LiveKeys
from graphql_api.auth import CustomerSession, CustomerTokens, FailureLimiter, authenticate
from graphql_api.context import Context
from graphql_api.request_context import request_id_of

GRAPHQL_BODY_LIMIT = 64 * 1024


class PersistedQueryNotFound(Exception):
    """The client sent only a hash we have not seen; it retries with the full query."""


class PersistedQueries:
    """Apollo-style automatic persisted queries: documents by their SHA-256, in an LRU."""

    def __init__(self, maxsize: int = 4096) -> None:
        self._documents: OrderedDict[str, str] = OrderedDict()
        self.maxsize = maxsize

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        persisted = (extensions or {}).get("persistedQuery")
        if not isinstance(persisted, dict):
            return query
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or persisted.get("version", 1) != 1:
            raise HTTPException(400, "persistedQuery needs version 1 and a sha256Hash")
        if query is not None and not isinstance(query, str):
            raise HTTPException(400, "the query is a string")
        problem = unstorable_string(digest) or (query and unstorable_string(query))
        if problem:
            # Hashing a lone surrogate would fail; it is no text a client meant to send.
            raise HTTPException(400, problem)
        if query is None:
            found = self._documents.get(digest)
            if found is None:
                raise PersistedQueryNotFound()
            self._documents.move_to_end(digest)
            return found
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise HTTPException(400, "provided sha256Hash does not match the query")
        self._documents[digest] = query
        if len(self._documents) > self.maxsize:
            self._documents.popitem(last=False)
        return query


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: BaseSchema,
        *,
        settings: Settings,
        database: Database,
        tokens: CustomerTokens,
        limiter: FailureLimiter,
        clock: Clock,
        on_write: Callable[[], None] | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None if settings.is_production else "graphiql",
            allow_queries_via_get=False,
            multipart_uploads_enabled=False,
        )
        self.settings = settings
        self.database = database
        self.tokens = tokens
        self.limiter = limiter
        self.clock = clock
        self.on_write = on_write
        self.registry = registry or Registry()
        self.persisted = PersistedQueries()
        self.keys = LiveKeys(database)

    async def get_context(self, request: Request, response: Any) -> Context:  # type: ignore[override]
        principal = await authenticate(request.headers.get("authorization"), self.keys, self.tokens)
        if principal is not None:
            structlog.contextvars.bind_contextvars(merchant_id=str(principal.merchant_id))
            if isinstance(principal, CustomerSession):
                structlog.contextvars.bind_contextvars(customer_id=str(principal.customer_id))
        return Context(
            request=request,
            database=self.database,
            settings=self.settings,
            tokens=self.tokens,
            limiter=self.limiter,
            principal=principal,
            clock=self.clock,
            on_write=self.on_write,
            registry=self.registry,
            request_id=request_id_of(request.scope),
        )

    def encode_json(self, data: object) -> bytes:
        """Responses encoded with orjson (a page of 50 RMAs: several times faster than the
        standard library); what orjson cannot encode (integers beyond 64 bits in a JSON
        value) falls back to the standard library."""
        try:
            return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return json.dumps(data, separators=(",", ":")).encode()

    def parse_json(self, data: str | bytes) -> Any:
        """A request is a JSON object (or a list, refused later as a batch); nothing else."""
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError) as error:
            raise HTTPException(400, "the body is not JSON this API can read") from error
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "a GraphQL request is a JSON object")
        problem = _unstorable_text(parsed)
        if problem is not None:
            raise HTTPException(400, problem)
        return parsed

    async def parse_http_body(self, request: Any) -> GraphQLRequestData:
        data = await super().parse_http_body(request)
        if isinstance(data, list):  # batching is off; the base class already refused it
            raise HTTPException(400, "batched operations are not supported")
        data.query = self.persisted.resolve(data.query, data.extensions)
        return data

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        try:
            if context is None and root_value is None:
                return await super().run(request)
            return await super().run(request, context, root_value)
        except PersistedQueryNotFound:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "PersistedQueryNotFound",
                            "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                        }
                    ]
                }
            )


def unstorable_string(text: str) -> str | None:
    """Why one string cannot be stored or compared, if it cannot."""
    if "\x00" in text:
        return "NUL characters are not accepted"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "the text is not valid Unicode (a lone surrogate)"
    return None


def _unstorable_text(document: Any) -> str | None:
    """Why a string in the request cannot be stored or compared, if one cannot.

    PostgreSQL refuses NUL in text, and a lone UTF-16 surrogate (``"\\ud800"`` in JSON) is no
    character at all: it cannot be encoded for either database. Both are refused before any query.
    """
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            problem = unstorable_string(item)
            if problem is not None:
                return problem
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


class BodyLimit:
    """Refuse request bodies over a limit with 413, without reading more than the limit.

    The body is buffered (it is at most the limit) and replayed to the app, so the app never
    sees part of an oversized body.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    def _limit_for(self, path: str) -> int | None:
        for prefix, limit in self.limits.items():
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit_for(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(scope, receive, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response: Response = JSONResponse(
        {"errors": [{"message": f"request body over {limit} bytes"}]}, status_code=413
    )
    await response(scope, receive, send)
