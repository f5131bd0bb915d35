"""Per-request logging context: a request id on every line, and a cap on what one request logs;
and how long the server took to answer, in a ``Server-Timing`` header."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import request_log_budget

# The keys a request binds (here, at sign-in, and when a use case locks an RMA); all are dropped
# when the request ends, so nothing leaks into the next request handled by the same task.
REQUEST_LOG_KEYS = ("request_id", "merchant_id", "customer_id", "rma_id", "connection_id")


class RequestContext:
    """ASGI middleware: give each HTTP request an id, bind it for logging, echo it back, and say
    in ``Server-Timing: app;dur=MS`` how long the app took from the request's arrival here to
    its answer's first bytes (the GraphQL answer is whole by then). Measured inside the server,
    it leaves out the network and the client's own waiting; Prometheus' latency buckets are too
    coarse to tell a p99 of 12 ms from one of 20.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                milliseconds = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"server-timing", f"app;dur={milliseconds:.3f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            with request_log_budget():
                await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars(*REQUEST_LOG_KEYS)


def request_id_of(scope: Scope) -> str:
    """The id ``RequestContext`` gave this request (a fresh one outside it)."""
    state = scope.get("state") or {}
    return str(state.get("request_id") or uuid.uuid4().hex)
