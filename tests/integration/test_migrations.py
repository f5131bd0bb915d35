"""The migrations are the schema: an empty database migrated to head matches the models exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from core.entities import metadata
from core.migrate import alembic_config, upgrade
from core.settings import async_url
from tests.conftest import BACKENDS, POSTGRES_URL, PostgresServer


async def _differences(url: str) -> list[object]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: list(
                    compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
            )
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server = PostgresServer(POSTGRES_URL)
    url = asyncio.run(server.create())
    yield url
    asyncio.run(server.drop(url))


def test_an_empty_database_migrates_to_exactly_the_models(empty_database: str) -> None:
    upgrade(empty_database)
    assert asyncio.run(_differences(empty_database)) == []


def test_migrations_go_down_to_nothing_and_up_again(empty_database: str) -> None:
    upgrade(empty_database)
    command.downgrade(alembic_config(empty_database), "base")
    tables = asyncio.run(_differences(empty_database))
    assert tables, "after downgrading to base the models' tables should be missing"
    upgrade(empty_database)
    assert asyncio.run(_differences(empty_database)) == []
