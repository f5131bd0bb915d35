"""A module's own database, and its jobs run to the end, as the integration worlds use them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.enums import JobState
from core.jobs import failpoints
from core.jobs.worker import Worker, reap_expired_leases
from core.migrate import upgrade
from core.plugins import Registry
from core.settings import Settings
from graphql_api.composition import build_worker
from tests.conftest import POSTGRES_URL, PostgresServer


def module_database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[str]:
    """A migrated database for one test module (SQLite file or PostgreSQL database), so
    that its workers see only its jobs; dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(name) / f'{name}.db'}"
        upgrade(url)
        yield url
        return
    server = PostgresServer(POSTGRES_URL)
    url = asyncio.run(server.create())
    upgrade(url)
    yield url
    asyncio.run(server.drop(url))


async def run_jobs(db: Database, worker: Callable[[], Worker]) -> None:
    """Run jobs until none is due or about to be (retries wait a few milliseconds here)."""
    for _ in range(200):
        await worker().run_until_idle(within_seconds=120)
        async with db.read_session() as session:
            soon = (
                await session.exec(
                    select(sa.func.count()).where(
                        col(Job.state) == JobState.QUEUED,
                        col(Job.run_at) < SYSTEM_CLOCK.now() + timedelta(seconds=5),
                    )
                )
            ).one()
        if not soon:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("jobs kept coming back")


async def restart_after_crash(db: Database, worker: Callable[[], Worker]) -> None:
    """What a restarted worker finds: leases of the dead one expired, jobs back in line."""
    failpoints.disarm()
    await reap_expired_leases(db, SYSTEM_CLOCK, now=SYSTEM_CLOCK.now() + worker().lease)
    await run_jobs(db, worker)


class RunsJobs:
    """What an integration world needs to run its jobs: a worker of the app's real handlers,
    retrying at once, and the jobs run to the end (or after a crash). Mixed into a dataclass
    that has ``db``, ``settings`` and ``registry``."""

    db: Database
    settings: Settings
    registry: Registry

    def worker(self, concurrency: int = 4) -> Worker:
        worker = build_worker(
            self.settings,
            self.db,
            clock=SYSTEM_CLOCK,
            registry=self.registry,
            concurrency=concurrency,
        )
        worker.retry_base_seconds = 0.01
        worker.poll_interval = 0.01
        return worker

    async def run_jobs(self) -> None:
        await run_jobs(self.db, self.worker)

    async def restart_after_crash(self) -> None:
        await restart_after_crash(self.db, self.worker)
