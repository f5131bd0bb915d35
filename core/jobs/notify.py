"""Waking PostgreSQL workers when jobs are inserted (LISTEN rma_jobs; see migration 0004).

A hint only: the worker keeps polling, so a dropped connection or a missed notification costs
latency, never a job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog

log = structlog.get_logger()
CHANNEL = "rma_jobs"
RECONNECT_SECONDS = 5.0


def asyncpg_dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_for_jobs(url: str, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Call ``wake`` on every notification until ``stop``; reconnect after any loss."""
    while not stop.is_set():
        connection = None
        try:
            connection = await asyncpg.connect(asyncpg_dsn(url))
            await connection.add_listener(CHANNEL, lambda *_args: wake())
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            await _first(stop.wait(), lost.wait())
        except (OSError, asyncpg.PostgresError) as error:
            log.info("job notifications unavailable, polling only", error=str(error)[:200])
        finally:
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(OSError, asyncpg.PostgresError):
                    await connection.close(timeout=2)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_SECONDS)


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
