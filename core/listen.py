"""Listening to a PostgreSQL notification channel for as long as a process runs.

One connection per listener, given back at ``stop``; a lost connection is made again after a
pause. Who listens decides what a notification, and a gap in listening, mean to it: a hint to
poll now (the job queue), or a reason to forget what it remembered (staff keys).
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
RECONNECT_SECONDS = 5.0


def asyncpg_dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(
    url: str,
    channel: str,
    notified: Callable[[], None],
    stop: asyncio.Event,
    *,
    listening: Callable[[bool], None] = lambda _now: None,
    unavailable: str = "notifications unavailable",
) -> None:
    """Call ``notified`` on every notification on ``channel`` until ``stop``; reconnect after any
    loss. ``listening(True)`` once each connection listens, ``listening(False)`` when it stops."""
    while not stop.is_set():
        connection = None
        try:
            connection = await asyncpg.connect(asyncpg_dsn(url))
            await connection.add_listener(channel, lambda *_args: notified())
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            listening(True)
            await _first(stop.wait(), lost.wait())
        except (OSError, asyncpg.PostgresError) as error:
            log.info(unavailable, channel=channel, error=str(error)[:200])
        finally:
            listening(False)
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
