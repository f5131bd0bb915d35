"""The one place the service reads the wall clock.

Use cases, jobs, the GraphQL layer and webhook intake ask a ``Clock`` for "now"; it is built in
the composition roots (``create_app``, ``rma worker``, the CLI) and handed down, so a test can
fix time where it needs an exact instant. Pure rules never see a clock: they take ``now`` as an
argument. Monotonic time for timeouts and measurements is not wall time and stays with ``time``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the current time, timezone-aware in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The host's wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until told to move: for tests and replays."""

    def __init__(self, at: datetime) -> None:
        self._at = _aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _aware(at)

    def advance(self, by: timedelta) -> datetime:
        self._at += by
        return self._at

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"


SYSTEM_CLOCK = SystemClock()


def utcnow() -> datetime:
    """The wall clock, for row bookkeeping (``created_at`` defaults) where no caller chose a time.

    Everything that decides something (windows, expiry, retries) takes its time from a ``Clock``
    passed down instead.
    """
    return SYSTEM_CLOCK.now()


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a clock keeps timezone-aware times")
    return at.astimezone(UTC)
