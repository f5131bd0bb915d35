"""Logging, configured once at start-up: one format for structlog and the standard library.

No log line may carry a secret, whatever a failure drags along:
- tracebacks are rendered plainly, never with local variables (they held the whole settings);
- every value is scrubbed of the configured secrets and of anything shaped like a credential
  (Stripe, Shopify and WooCommerce keys, webhook secrets, our API keys and session tokens,
  sealed Fernet tokens, bearer headers) before it is rendered;
- one request may write at most ``REQUEST_LOG_BUDGET`` bytes; the line that crosses it is cut with
  a marker and later lines of that request are dropped, so a hostile request cannot flood the log.

Every line of a request carries its ``request_id`` (and the merchant and RMA once known), bound
with structlog's context variables by the HTTP layer and the use cases.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from core.settings import Settings

REQUEST_LOG_BUDGET = 16 * 1024
REDACTED = "[redacted]"
TRUNCATED = "[log budget of this request used up: the rest is dropped]"

# Credential shapes, wherever they appear (messages, exception text, SQL, URLs).
_CREDENTIALS = re.compile(
    "|".join(
        [
            r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{6,}",  # Stripe secret and restricted keys
            r"\bwhsec_[A-Za-z0-9+/=]{6,}",  # webhook signing secrets
            r"\bshp(?:at|ca|pa|ss)_[A-Za-z0-9]{6,}",  # Shopify access tokens and secrets
            r"\bc[ks]_[A-Fa-f0-9]{16,}",  # WooCommerce consumer key and secret
            r"\brma_(?:sk|cs)_[A-Za-z0-9._~+/=-]{6,}",  # our staff keys and customer sessions
            r"\bgAAAAA[A-Za-z0-9_-]{16,}=*",  # Fernet tokens: sealed secrets
            r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{6,}",  # any bearer credential
        ]
    )
)


class SecretScrubber:
    """A structlog processor that removes secrets from every value of an event."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        # Short values would blank ordinary words; real secrets are long.
        self.known = sorted({s for s in known_secrets if len(s) >= 8}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.known:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _CREDENTIALS.sub(REDACTED, text)

    def clean(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {str(key): self.clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.clean(item) for item in value]
        return self.scrub(repr(value))

    def __call__(self, _logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
        return {
            key: value if key.startswith("_") else self.clean(value) for key, value in event.items()
        }


@dataclass
class _Budget:
    remaining: int
    spent: bool = False


_request_budget: ContextVar[_Budget | None] = ContextVar("request_log_budget", default=None)


@contextmanager
def request_log_budget(limit: int = REQUEST_LOG_BUDGET) -> Iterator[None]:
    """Cap what the code inside (one request) may write to the log."""
    token = _request_budget.set(_Budget(limit))
    try:
        yield
    finally:
        _request_budget.reset(token)


class BudgetedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes formatted lines, spending the current request's budget (each line is capped too)."""

    def __init__(self, stream: TextIO, *, json_lines: bool) -> None:
        super().__init__(stream)
        self.json_lines = json_lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self._spend(self.format(record))
            if line is not None:
                self.stream.write(line + self.terminator)
                self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _spend(self, line: str) -> str | None:
        budget = _request_budget.get() or _Budget(REQUEST_LOG_BUDGET)
        if budget.spent:
            return None
        if len(line) <= budget.remaining:
            budget.remaining -= len(line)
            return line
        budget.spent = True
        kept = line[: max(budget.remaining - 200, 0)]
        if self.json_lines:
            return json.dumps({"level": "warning", "event": TRUNCATED, "truncated": kept})
        return f"{kept} {TRUNCATED}"


def configure_logging(
    *,
    level: str = "INFO",
    json_lines: bool = False,
    known_secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library through one scrubbed, budgeted handler."""
    scrubber = SecretScrubber(known_secrets)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    before_render: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=before_render,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Plain text, no locals: the traceback is scrubbed like any other value.
            structlog.processors.format_exc_info,
            scrubber,
            renderer,
        ],
    )
    handler = BudgetedHandler(stream or sys.stderr, json_lines=json_lines)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, BudgetedHandler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "strawberry.execution"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    structlog.configure(
        processors=[*before_render, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # A failure inside logging itself must not print the record (and its values) to stderr.
    logging.raiseExceptions = False


def configure_logging_for(
    settings: Settings, *, plugin_secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Logging as the settings ask: level, format, and the secrets to keep out (the service's
    own and the plugins' settings' secrets)."""
    configure_logging(
        level=settings.log_level,
        json_lines=settings.json_logs,
        known_secrets=[*settings.known_secrets(), *plugin_secrets],
        stream=stream,
    )
