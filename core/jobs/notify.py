"""Waking PostgreSQL workers when jobs are inserted (LISTEN rma_jobs; see migration 0004).

A hint only: the worker keeps polling, so a dropped connection or a missed notification costs
latency, never a job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.listen import listen

CHANNEL = "rma_jobs"


async def listen_for_jobs(url: str, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Call ``wake`` on every notification until ``stop``; reconnect after any loss."""
    await listen(
        url, CHANNEL, wake, stop, unavailable="job notifications unavailable, polling only"
    )
