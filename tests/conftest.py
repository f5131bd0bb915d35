"""Databases for the tests: a SQLite file always, PostgreSQL when RMA_TEST_POSTGRES_URL is set.

Each run creates its own databases, migrates them with the real Alembic scripts, and drops them at
the end. Tests share a database but never a merchant, so they cannot see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import sqlalchemy as sa

from core.database import Database
from core.migrate import upgrade

POSTGRES_URL = os.environ.get("RMA_TEST_POSTGRES_URL", "")


def pytest_configure(config: pytest.Config) -> None:
    if "faketime" in os.environ.get("LD_PRELOAD", ""):
        # Under Debian's libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 (see the Makefile's
        # test-shifted), the absolute clock_nanosleep behind time.sleep fails with EINVAL;
        # select() waits correctly, so the shifted pass sleeps with it (subprocess waits too).
        time.sleep = _sleep_with_select


def _sleep_with_select(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def _asyncpg_dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresServer:
    """Creates and drops throwaway databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)

    async def create(self) -> str:
        name = f"rma_test_{uuid.uuid4().hex[:12]}"
        connection = await asyncpg.connect(_asyncpg_dsn(str(self.url.set(database="postgres"))))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url.set(database=name).render_as_string(hide_password=False)

    async def drop(self, url: str) -> None:
        name = sa.make_url(url).database
        connection = await asyncpg.connect(_asyncpg_dsn(str(self.url.set(database="postgres"))))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def terminate_backends(admin_url: str, database_name: str) -> int:
    """Terminate every connection to ``database_name``, as a server restart would; how many."""
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        terminated = await connection.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database_name,
        )
    finally:
        await connection.close()
    return int(terminated)


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    if not POSTGRES_URL:
        pytest.fail("RMA_TEST_POSTGRES_URL is not set")
    return PostgresServer(POSTGRES_URL)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "rma.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = asyncio.run(postgres_server.create())
    upgrade(url)
    yield url
    asyncio.run(postgres_server.drop(url))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database of each backend, shared by the session's tests."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=8)
    yield database
    await database.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each backend with nothing in it, not even the schema; dropped after."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server = PostgresServer(POSTGRES_URL)
    url = asyncio.run(server.create())
    yield url
    asyncio.run(server.drop(url))
