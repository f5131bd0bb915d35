"""Knowing at once that staff API keys may have changed, without asking the database each time.

A process may remember which keys are live only while it can tell that none was revoked since:

- **SQLite**: ``PRAGMA data_version`` on a connection of our own changes whenever any other
  connection, in this process or another, commits to the file. Reading it costs microseconds
  (it reads the shared WAL index), so it runs on the event loop without a thread hop. Any commit
  at all forgets every remembered key: coarse, but a revocation can never be missed.
- **PostgreSQL**: revoking a key sends ``NOTIFY rma_api_keys`` in its transaction, delivered at
  commit. A listening connection counts them. While it is not connected (starting, or lost),
  nothing may be remembered: every request asks the database, as before.

``generation()`` is a number that changes whenever keys may have changed, or ``None`` when the
process cannot tell (then nothing may be remembered).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
import structlog

from core.listen import listen

log = structlog.get_logger()
CHANNEL = "rma_api_keys"


class KeyChanges(Protocol):
    def generation(self) -> int | None:
        """Changes whenever keys may have changed; ``None`` when that cannot be known."""

    async def close(self) -> None:
        """Stop watching; release what watching holds."""


class Unknowable:
    """An in-memory SQLite database or any other case: nothing may be remembered."""

    def generation(self) -> int | None:
        return None

    async def close(self) -> None:
        return None


class SqliteDataVersion:
    """Any commit to the file by any connection changes ``PRAGMA data_version``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def generation(self) -> int | None:
        try:
            if self._connection is None:
                # Read-only, autocommit, used only on the event loop's thread.
                uri = Path(self.path).absolute().as_uri() + "?mode=ro"
                self._connection = sqlite3.connect(uri, uri=True, isolation_level=None)
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as error:
            log.info("cannot watch the database for key changes", error=str(error)[:200])
            return None
        return int(row[0])

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresNotifications:
    """Counts ``NOTIFY rma_api_keys``; unknowable while its connection is not listening."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._count = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def generation(self) -> int | None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                listen(
                    self.url,
                    CHANNEL,
                    self._changed,
                    self._stop,
                    listening=self._listening_now,
                    unavailable="key change notifications unavailable",
                )
            )
        return self._count if self._listening else None

    def _changed(self) -> None:
        self._count += 1

    def _listening_now(self, listening: bool) -> None:
        if listening:
            # Whatever happened while nobody listened is unknown: count it as a change.
            self._count += 1
        self._listening = listening

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None


def key_changes_for(url: str) -> KeyChanges:
    """How a process with this database URL learns that keys may have changed."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return PostgresNotifications(url)
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        return SqliteDataVersion(parsed.database)
    return Unknowable()
