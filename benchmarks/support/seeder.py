"""A database full of returns, fast: one merchant (and an ADMIN key) made through the service's own
use cases, then its customers, orders, order lines, RMAs and RMA lines written in bulk (PostgreSQL
COPY, SQLite batched inserts) from ``scale_rows``.

Reusable: ``await seed_scale(url, rmas=...)`` from any event loop, or ``seed_scale_sync`` from
code that runs none. It imports nothing else from ``support``, so tests and other tools can import
it as ``benchmarks.support.seeder``. The database is migrated first; rows of other merchants are
left alone. On PostgreSQL the whole load is one transaction (``postgres_copy``) and the tables
are analyzed at the end, as autovacuum would soon do after such a load. On SQLite each batch is
a transaction of its own (a failure leaves the batches before it) and nothing is analyzed: the
service never runs ANALYZE there.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import ReturnPolicy, metadata
from core.enums import ApiKeyRole
from core.migrate import upgrade_async
from core.usecases.merchants import create_api_key, create_merchant

from .postgres_copy import write_postgres
from .scale_rows import (
    COLUMNS,
    TABLES,
    Batch,
    Plan,
    RowSource,
    default_customers,
)

# Called after each batch with the RMAs written so far.
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class SeedResult:
    merchant_id: uuid.UUID
    api_key: str
    rows: dict[str, int]
    seconds: float

    @property
    def rmas(self) -> int:
        return self.rows["rma"]


def check_columns() -> None:
    """Every NOT NULL column without a server default is written: the database would refuse
    the rows otherwise, and only after minutes of work."""
    for name in TABLES:
        table = metadata.tables[name]
        required = {
            column.name
            for column in table.columns
            if not column.nullable and column.server_default is None
        }
        missing = required - set(COLUMNS[name])
        if missing:
            raise ValueError(f"the seeder leaves {name}.{', '.join(sorted(missing))} empty")


async def seed_scale(
    database_url: str,
    *,
    rmas: int,
    customers: int | None = None,
    seed: int = 0,
    now: datetime | None = None,
    merchant_name: str = "Scale Outfitters",
    batch_rmas: int = 10_000,
    processes: int | None = None,
    progress: Progress | None = None,
) -> SeedResult:
    """Migrate ``database_url``, then add a merchant with ``rmas`` RMAs (one order each, 1 to 3
    order lines, RMA lines for some of them) over the two years before ``now`` (the real clock's
    when None) and ``customers`` customers (a fifth of ``rmas`` when None); the same seed and
    now give the same rows, ids and numbers included. On PostgreSQL ``processes`` worker
    processes draw the rows (one per CPU when None)."""
    check_columns()
    moment = now or SYSTEM_CLOCK.now()
    await upgrade_async(database_url)
    merchant_id, policy_id, api_key = await add_merchant(database_url, merchant_name, moment)
    plan = Plan(
        merchant_id=merchant_id,
        policy_id=policy_id,
        rmas=rmas,
        customers=customers or default_customers(rmas),
        seed=seed,
        now=moment,
        batch_rmas=batch_rmas,
    )
    started = time.perf_counter()
    if sa.make_url(database_url).get_backend_name() == "postgresql":
        rows = await write_postgres(database_url, plan, progress, processes)
    else:
        batches = RowSource(plan).batches()
        rows = await asyncio.to_thread(write_sqlite, database_url, batches, progress)
    return SeedResult(merchant_id, api_key, rows, time.perf_counter() - started)


def seed_scale_sync(database_url: str, **options: Any) -> SeedResult:
    """``seed_scale`` for code that runs no event loop."""
    return asyncio.run(seed_scale(database_url, **options))


async def add_merchant(
    database_url: str, name: str, now: datetime
) -> tuple[uuid.UUID, uuid.UUID | None, str]:
    """The merchant (with its default policy) and an ADMIN key, through the use cases."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.session() as session:
            merchant = await create_merchant(session, name=name, now=now)
        async with database.session() as session:
            issued = await create_api_key(
                session, merchant_id=merchant.id, role=ApiKeyRole.ADMIN, label="scale", now=now
            )
        async with database.read_session() as session:
            policy = (
                await session.exec(
                    select(ReturnPolicy.id).where(ReturnPolicy.merchant_id == merchant.id)
                )
            ).first()
    finally:
        await database.dispose()
    # Plain UUIDs: the driver's own class does not pickle to the worker processes.
    merchant_id = uuid.UUID(str(merchant.id))
    return merchant_id, policy and uuid.UUID(str(policy)), issued.plaintext


# SQLite ---------------------------------------------------------------------------------------


def write_sqlite(
    database_url: str, batches: Iterator[Batch], progress: Progress | None
) -> dict[str, int]:
    """Insert each batch with one executemany per table, one transaction each; the values go
    through the entities' column types, so they are stored exactly as the app stores them."""
    written = dict.fromkeys(TABLES, 0)
    rmas = 0
    engine = sa.create_engine(sa.make_url(database_url).set(drivername="sqlite"))
    try:
        for batch in batches:
            with engine.begin() as connection:
                for table in TABLES:
                    rows = batch.rows[table]
                    if rows:
                        names = COLUMNS[table]
                        connection.execute(
                            metadata.tables[table].insert(),
                            [dict(zip(names, row, strict=True)) for row in rows],
                        )
                        written[table] += len(rows)
            rmas += batch.rmas
            if progress is not None:
                progress(rmas)
    finally:
        engine.dispose()
    return written
