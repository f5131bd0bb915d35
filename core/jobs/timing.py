"""Pure timing rules of the job engine: retry backoff and periodic slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def retry_delay(
    attempt: int, *, base_seconds: float = 2.0, cap_seconds: float = 600.0, jitter: float = 0.5
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with jitter.

    ``jitter`` is a number in [0, 1) drawn by the caller; the delay is spread over
    [half, full] of the exponential value so that retries of many jobs do not align.
    """
    exponential = min(cap_seconds, base_seconds * 2.0 ** max(attempt - 1, 0))
    return exponential * (0.5 + jitter / 2)


def slot_start(now: datetime, every: timedelta) -> datetime:
    """The start of the period ``now`` falls in; every scheduler computes the same one."""
    periods = (now - EPOCH) // every
    return EPOCH + periods * every
