"""Throwaway databases: a SQLite file in a temporary directory, or a PostgreSQL database created
on a server and dropped afterwards."""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from support import BenchError

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def add_postgres_url_option(parser: argparse.ArgumentParser) -> None:
    """``--postgres-url``: the server for throwaway databases, else ``RMA_BENCH_POSTGRES_URL``,
    else ``DEFAULT_POSTGRES_URL``."""
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RMA_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create throwaway databases on (env RMA_BENCH_POSTGRES_URL)",
    )


def safe_url(url: str) -> str:
    """``url`` with its password hidden, fit to print."""
    return sa.make_url(url).render_as_string(hide_password=True)


class PostgresUnavailable(BenchError):
    """The PostgreSQL server could not be reached or refused the connection; ``error`` is why."""

    def __init__(self, server_url: str, error: Exception) -> None:
        super().__init__(f"PostgreSQL {safe_url(server_url)}: {error}")
        self.error = error


class PostgresServer:
    """A PostgreSQL server to create throwaway databases on, reached through the database its
    URL names; the user needs the right to create databases."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def execute(self, statement: str | None = None) -> None:
        """Run ``statement`` on the server (just connect when it is None)."""
        dsn = sa.make_url(self.url).set(drivername="postgresql")
        try:
            connection = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise PostgresUnavailable(self.url, error) from error
        try:
            if statement is not None:
                await connection.execute(statement)
        finally:
            await connection.close()

    def unreachable(self) -> str | None:
        """Why the server cannot be used, or None when it answers."""
        try:
            asyncio.run(self.execute())
        except PostgresUnavailable as error:
            return str(error)
        return None

    def _database_url(self, name: str) -> str:
        return sa.make_url(self.url).set(database=name).render_as_string(hide_password=False)

    @asynccontextmanager
    async def throwaway_async(self, prefix: str = "rma_bench_") -> AsyncIterator[str]:
        """The URL of a new empty database, dropped afterwards even on failure."""
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        await self.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self._database_url(name)
        finally:
            await self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextmanager
    def throwaway(self, prefix: str = "rma_bench_") -> Iterator[str]:
        """``throwaway_async`` for code that runs no event loop."""
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        asyncio.run(self.execute(f'CREATE DATABASE "{name}"'))
        try:
            yield self._database_url(name)
        finally:
            asyncio.run(self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_skip_reason(sqlite_only: bool, postgres_url: str) -> str | None:
    """Why the PostgreSQL half of a benchmark is skipped, or None when it runs."""
    if sqlite_only:
        return "--sqlite-only"
    return PostgresServer(postgres_url).unreachable()


@contextmanager
def empty_database(backend: str, directory: Path, postgres_url: str | None) -> Iterator[str]:
    """The URL of an empty database: ``rma.db`` in ``directory`` for ``sqlite``, else a
    throwaway database on the server of ``postgres_url``, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'rma.db'}"
        return
    if postgres_url is None:
        raise BenchError(f"{backend} needs a PostgreSQL server")
    with PostgresServer(postgres_url).throwaway() as url:
        yield url
