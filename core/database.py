"""Engines and sessions for the embedded SQLite default and for PostgreSQL.

SQLite allows one writer at a time. So that concurrent requests never fail with "database is
locked", every write transaction starts with ``BEGIN IMMEDIATE`` (it takes the write lock up front
instead of failing when a read transaction tries to upgrade) on a single pooled connection, so
writers in this process queue for the connection while writers in other processes wait on the
busy timeout. Reads use their own pool and plain deferred transactions, which WAL lets run beside
the writer.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from core.inline_sqlite import inline_connector
from core.key_changes import KeyChanges, key_changes_for
from core.settings import Settings, async_url


def _configure_sqlite(engine: AsyncEngine, *, begin: str, busy_timeout: float) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Hand transaction control to SQLAlchemy instead of the driver's legacy mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        # FULL: a committed refund must survive a power cut, which NORMAL does not promise in WAL.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(begin)


def decode_json(text: str | bytes) -> Any:
    """JSON columns decoded with orjson, several times faster than the standard library (a page
    of RMAs decodes some 150 values); anything orjson refuses (integers beyond 64 bits) falls
    back to the standard library, which reads all valid JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class Database:
    """The engines and session factories of one database; build one per process."""

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_busy_timeout: float = 30.0) -> None:
        self.url = async_url(url)
        self.dialect = sa.make_url(self.url).get_backend_name()
        if self.dialect == "sqlite":
            connect_args: dict[str, Any] = {"timeout": sqlite_busy_timeout}
            self.write_engine = create_async_engine(
                self.url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=300,
                connect_args=connect_args,
                json_deserializer=decode_json,
            )
            _configure_sqlite(
                self.write_engine, begin="BEGIN IMMEDIATE", busy_timeout=sqlite_busy_timeout
            )
            self.read_engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=0,
                async_creator=inline_connector(
                    sa.make_url(self.url).database or "", timeout=sqlite_busy_timeout
                ),
                json_deserializer=decode_json,
            )
            _configure_sqlite(self.read_engine, begin="BEGIN", busy_timeout=sqlite_busy_timeout)
        else:
            self.write_engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                json_deserializer=decode_json,
            )
            self.read_engine = self.write_engine
        self._sessions = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._read_sessions = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._key_changes: KeyChanges | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database_url,
            pool_size=settings.database_pool_size,
            sqlite_busy_timeout=settings.sqlite_busy_timeout,
        )

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def session(self) -> AsyncSession:
        """A session for use cases that write."""
        return self._sessions()

    def read_session(self) -> AsyncSession:
        """A session for reads only; on SQLite it does not wait for the writer."""
        return self._read_sessions()

    async def ping(self) -> None:
        """Run a trivial query; raises if the database cannot be reached."""
        async with self.read_engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))

    def key_changes(self) -> KeyChanges:
        """What tells this process that staff keys may have changed (watched from first use)."""
        if self._key_changes is None:
            self._key_changes = key_changes_for(self.url)
        return self._key_changes

    async def dispose(self) -> None:
        if self._key_changes is not None:
            await self._key_changes.close()
            self._key_changes = None
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
