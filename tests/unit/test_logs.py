"""Log lines: secrets scrubbed from every value and traceback, and a budget per request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from core.logs import (
    REDACTED,
    REQUEST_LOG_BUDGET,
    TRUNCATED,
    BudgetedHandler,
    SecretScrubber,
    configure_logging,
    request_log_budget,
)

SIGNING_KEY = "signing-key-that-is-long-enough"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging(json_lines=True, known_secrets=[SIGNING_KEY, "short"], stream=buffer)
    yield buffer
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, BudgetedHandler):
            root.removeHandler(handler)
    structlog.reset_defaults()


@pytest.mark.parametrize(
    "secret",
    [
        "sk_live_51HxYzAbCdEf0123456789",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_0123456789abcdef",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "shpat_0123456789abcdef0123456789abcdef",
        "shpss_0123456789abcdef0123456789abcdef",
        "ck_0123456789abcdef0123456789abcdef01234567",
        "cs_0123456789abcdef0123456789abcdef01234567",
        "rma_sk_Zx81-kq_0pWm3nR5tY7uI9oP",
        "rma_cs_eyJtIjoiMSJ9.ZqV1aw.abcdefghijkl",
        "gAAAAABnYxYz0123456789abcdefghijklmnopqrstuvwxyz_-ABCDEF==",
        SIGNING_KEY,
    ],
)
def test_credentials_are_scrubbed_wherever_they_appear(secret: str) -> None:
    scrubber = SecretScrubber([SIGNING_KEY])
    event = {
        "event": f"calling with {secret}",
        "nested": {"headers": [f"Bearer {secret}"], "n": 3},
        "obj": ValueError(f"bad key {secret}"),
    }

    cleaned = scrubber(None, "info", event)

    assert secret not in json.dumps(cleaned)
    assert REDACTED in cleaned["event"]
    assert cleaned["nested"]["n"] == 3


def test_ordinary_words_and_short_known_values_stay() -> None:
    scrubber = SecretScrubber(["short"])
    assert scrubber.scrub("a short sk_ note about desks") == "a short sk_ note about desks"


def test_a_traceback_is_plain_and_scrubbed(stream: io.StringIO) -> None:
    settings_like = {"secret_key": SIGNING_KEY}
    try:
        raise RuntimeError(f"could not use {settings_like['secret_key']} or sk_live_0123456789abc")
    except RuntimeError:
        structlog.get_logger().exception("it failed")

    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert "Traceback" in line["exception"]
    assert "RuntimeError: could not use [redacted] or [redacted]" in line["exception"]
    assert SIGNING_KEY not in stream.getvalue()
    assert "settings_like" in line["exception"]  # the source line, but never the local's value


def test_standard_library_records_are_scrubbed_too(stream: io.StringIO) -> None:
    logging.getLogger("somelib").warning("connecting with %s", SIGNING_KEY)

    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "connecting with [redacted]"
    assert line["logger"] == "somelib"


def test_one_request_writes_at_most_its_budget(stream: io.StringIO) -> None:
    log = structlog.get_logger()
    with request_log_budget():
        for number in range(100):
            log.info("chatty", number=number, padding="x" * 1000)
    log.info("after the request")

    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(text) <= REQUEST_LOG_BUDGET + 200
    assert lines[-2]["event"] == TRUNCATED
    assert lines[-1]["event"] == "after the request"
    assert [line["number"] for line in lines[:-2]] == list(range(len(lines) - 2))
