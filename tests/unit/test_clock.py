"""The one clock: a fixed clock for tests stands still, moves when told, and keeps UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.clock import SYSTEM_CLOCK, FixedClock

AT = datetime(2030, 2, 28, 23, 30, tzinfo=UTC)  # injected, never compared with the real clock


def test_a_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock(AT)
    assert clock.now() == clock.now() == AT
    assert clock.advance(timedelta(hours=1)) == AT + timedelta(hours=1)
    assert clock.now() == datetime(2030, 3, 1, 0, 30, tzinfo=UTC)


def test_a_fixed_clock_keeps_utc_and_refuses_naive_times() -> None:
    clock = FixedClock(AT.astimezone(timezone(timedelta(hours=-5))))
    assert clock.now().tzinfo is UTC
    assert clock.now() == AT
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(AT.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(AT.replace(tzinfo=None))


def test_the_system_clock_tells_aware_utc_time() -> None:
    first = SYSTEM_CLOCK.now()
    assert first.tzinfo is UTC
    assert SYSTEM_CLOCK.now() >= first
