"""How fast RMAs go from request to close, and how long ``rma demo`` takes: the baseline.

Later work compares against these figures. For each backend (a fresh SQLite file, and a
throwaway PostgreSQL database when a server answers) the script

1. creates a merchant with the default policy (requests are authorized at once) and one delivered
   order per RMA, untimed;
2. walks every RMA from request to close through the real use cases, one session and transaction
   per step as the API does it (request, shipment, receipt, inspection, resolution, outcome,
   close: 7 transactions per RMA), first one RMA after another, then with ``--concurrency`` RMAs
   in flight; one untimed RMA warms the engines up first;
3. runs the real ``rma db upgrade`` and ``rma demo`` commands against another fresh database and
   times them.

Run it from the project root:

    .venv/bin/python benchmarks/lifecycle.py
    .venv/bin/python benchmarks/lifecycle.py --rmas 100 --backends sqlite --skip-demo

PostgreSQL comes from ``--postgres-url``, else ``RMA_BENCH_POSTGRES_URL``, else the local default
server; the user needs the right to create databases. Each throwaway database is dropped at the
end, even after a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select
from support.cli import positive
from support.databases import (
    PostgresServer,
    PostgresUnavailable,
    add_postgres_url_option,
    safe_url,
)
from support.report import print_banner, progress, table
from support.rma_command import run_rma

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order, Rma
from core.enums import ItemCondition, PaymentProviderName, ResolutionKind, ReturnReason, RmaStatus
from core.migrate import upgrade_async
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma, record_shipment
from core.usecases.merchants import create_merchant
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import close_rma, record_resolution_outcome, resolve_rma

BACKENDS = ("sqlite", "postgres")
TRANSACTIONS_PER_RMA = 7
NOW = SYSTEM_CLOCK.now().replace(microsecond=0)  # dates relative to the day it runs
PLACED = NOW - timedelta(days=10)
STAFF = "staff:bench"
CUSTOMER = "customer:bench"
UNIT_PRICE_MINOR = 2500
DEMO_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Shop:
    """A merchant and the orders prepared for one measurement, one order per RMA."""

    merchant_id: uuid.UUID
    orders: list[Order]


@dataclass(frozen=True, slots=True)
class Row:
    backend: str
    mode: str
    rmas: int
    seconds: float

    @property
    def rmas_per_second(self) -> float:
        return self.rmas / self.seconds

    @property
    def transactions_per_second(self) -> float:
        return self.rmas * TRANSACTIONS_PER_RMA / self.seconds


@dataclass(frozen=True, slots=True)
class DemoTiming:
    backend: str
    upgrade_seconds: float
    demo_seconds: float
    error: str = ""


# Preparation (untimed) ----------------------------------------------------------------------


def order_input(number: int) -> OrderInput:
    """A delivered one-line order placed 10 days before ``NOW``, paid by card."""
    tag = f"{number:06d}-{uuid.uuid4().hex[:8]}"
    return OrderInput(
        platform="storefront",
        external_id=f"bench-{tag}",
        order_number=f"#B{tag}",
        currency="USD",
        placed_at=PLACED,
        delivered_at=PLACED + timedelta(days=2),
        # A customer per order keeps the risk score at zero, so every request is authorized.
        customer=CustomerInput(email=f"bench{tag}@example.com"),
        lines=[
            OrderLineInput(
                external_id="L1",
                title="Organic cotton tee",
                quantity=1,
                unit_price_minor=UNIT_PRICE_MINOR,
                category="apparel",
            )
        ],
        payments=[
            PaymentInput(PaymentProviderName.STRIPE, f"pi_{tag}", UNIT_PRICE_MINOR, "USD"),
        ],
    )


async def prepare_shop(db: Database, count: int, label: str) -> Shop:
    """A merchant with the default policy (auto-authorize) and ``count`` orders."""
    async with db.session() as session:
        merchant = await create_merchant(session, name=f"Bench {label}", now=NOW)
    orders = []
    for number in range(count):
        async with db.session() as session:
            orders.append(await upsert_order(session, merchant.id, order_input(number), now=NOW))
    return Shop(merchant.id, orders)


# One RMA, request to close ------------------------------------------------------------------


async def rma_lifecycle(db: Database, merchant_id: uuid.UUID, order: Order) -> None:
    """Walk one RMA from request to close: 7 use cases, each in its own session."""
    async with db.session() as session:
        rma = await request_rma(
            session,
            merchant_id,
            order_id=order.id,
            lines=[ReturnLineInput(order.lines[0].id, 1, ReturnReason.SIZE_TOO_SMALL)],
            actor=CUSTOMER,
            now=NOW,
        )
    if rma.status is not RmaStatus.AUTHORIZED:
        raise RuntimeError(f"RMA {rma.number} was not authorized at once: {rma.status.value}")
    async with db.session() as session:
        await record_shipment(
            session,
            merchant_id,
            rma.id,
            carrier="UPS",
            tracking_number="1Z999AA10123456784",
            actor=CUSTOMER,
            now=NOW,
        )
    async with db.session() as session:
        rma = await receive_rma(
            session,
            merchant_id,
            rma.id,
            lines=[ReceivedLine(line.id, line.quantity) for line in rma.lines],
            actor=STAFF,
            now=NOW,
        )
    async with db.session() as session:
        await inspect_rma(
            session,
            merchant_id,
            rma.id,
            lines=[InspectedLine(line.id, ItemCondition.UNOPENED, "RESTOCK") for line in rma.lines],
            actor=STAFF,
            now=NOW,
        )
    async with db.session() as session:
        chosen = await resolve_rma(
            session, merchant_id, rma.id, kind=ResolutionKind.REFUND, actor=STAFF, now=NOW
        )
    async with db.session() as session:
        await record_resolution_outcome(
            session,
            merchant_id,
            chosen.resolution.id,
            succeeded=True,
            actor="system",
            provider_reference=f"re_{rma.number}",
            now=NOW,
        )
    async with db.session() as session:
        await close_rma(session, merchant_id, rma.id, actor=STAFF, now=NOW)


# Measurements -------------------------------------------------------------------------------


async def run_sequential(db: Database, shop: Shop) -> None:
    for order in shop.orders:
        await rma_lifecycle(db, shop.merchant_id, order)


async def run_concurrent(db: Database, shop: Shop, concurrency: int) -> None:
    """At most ``concurrency`` RMAs in flight; a new one starts as soon as one closes."""
    gate = asyncio.Semaphore(concurrency)

    async def one(order: Order) -> None:
        async with gate:
            await rma_lifecycle(db, shop.merchant_id, order)

    await asyncio.gather(*(one(order) for order in shop.orders))


async def closed_count(db: Database, merchant_id: uuid.UUID) -> int:
    async with db.read_session() as session:
        statement = (
            select(sa.func.count())
            .select_from(Rma)
            .where(Rma.merchant_id == merchant_id, Rma.status == RmaStatus.CLOSED)
        )
        return int((await session.exec(statement)).one())


async def measure(
    db: Database, backend: str, mode: str, count: int, walk: Callable[[Shop], Awaitable[None]]
) -> Row:
    """Prepare ``count`` orders, time ``walk`` over them, and check every RMA ended closed."""
    shop = await prepare_shop(db, count, f"{backend} {mode}")
    started = time.perf_counter()
    await walk(shop)
    seconds = time.perf_counter() - started
    closed = await closed_count(db, shop.merchant_id)
    if closed != count:
        raise RuntimeError(f"{backend} {mode}: {closed} of {count} RMAs closed")
    return Row(backend, mode, count, seconds)


async def measure_throughput(url: str, backend: str, count: int, concurrency: int) -> list[Row]:
    db = Database(url, pool_size=max(10, concurrency))
    try:
        warm_up = await prepare_shop(db, 1, f"{backend} warm-up")
        await run_sequential(db, warm_up)
        rows = [await measure(db, backend, "sequential", count, lambda s: run_sequential(db, s))]
        rows.append(
            await measure(
                db,
                backend,
                f"concurrent {concurrency}",
                count,
                lambda s: run_concurrent(db, s, concurrency),
            )
        )
        return rows
    finally:
        await db.dispose()


# Databases ----------------------------------------------------------------------------------


@asynccontextmanager
async def sqlite_file() -> AsyncIterator[str]:
    """The URL of an empty SQLite file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rma-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'rma.db'}"


@asynccontextmanager
async def empty_database(backend: str, server: PostgresServer) -> AsyncIterator[str]:
    if backend == "sqlite":
        async with sqlite_file() as url:
            yield url
    else:
        async with server.throwaway_async() as url:
            yield url


# The demo command ---------------------------------------------------------------------------


async def run_cli(arguments: Sequence[str], database_url: str) -> float:
    """Run ``rma ARGUMENTS`` against ``database_url``; its wall time in seconds."""
    started = time.perf_counter()
    await asyncio.to_thread(run_rma, arguments, database_url, timeout=DEMO_TIMEOUT_SECONDS)
    return time.perf_counter() - started


async def time_demo(backend: str, server: PostgresServer) -> DemoTiming:
    """``rma db upgrade`` then ``rma demo`` on a fresh database, each timed."""
    async with empty_database(backend, server) as url:
        try:
            upgrade_seconds = await run_cli(["db", "upgrade"], url)
            demo_seconds = await run_cli(["demo"], url)
        except RuntimeError as error:
            return DemoTiming(backend, 0.0, 0.0, str(error))
    return DemoTiming(backend, upgrade_seconds, demo_seconds)


# One backend --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    rmas: int
    concurrency: int
    skip_demo: bool
    postgres_url: str
    backends: tuple[str, ...]


async def bench_backend(
    backend: str, options: Options
) -> tuple[list[Row], DemoTiming | None, str | None]:
    """Throughput rows and the demo timing of one backend, or why it was skipped."""
    server = PostgresServer(options.postgres_url)
    if backend == "postgres":
        try:
            await server.execute()
        except PostgresUnavailable as unavailable:
            error = unavailable.error
            return (
                [],
                None,
                f"PostgreSQL skipped: {safe_url(options.postgres_url)} "
                f"({type(error).__name__}: {error})",
            )
    progress(f"{backend}: {options.rmas} RMAs sequential, then {options.concurrency} at a time")
    async with empty_database(backend, server) as url:
        await upgrade_async(url)
        rows = await measure_throughput(url, backend, options.rmas, options.concurrency)
    demo = None
    if not options.skip_demo:
        progress(f"{backend}: rma db upgrade && rma demo")
        demo = await time_demo(backend, server)
    return rows, demo, None


# Output -------------------------------------------------------------------------------------


def print_header(options: Options) -> None:
    print_banner(
        "RMA lifecycle benchmark: the baseline later work compares against.",
        f"run:     {options.rmas} RMAs per mode, concurrency {options.concurrency}, "
        f"{TRANSACTIONS_PER_RMA} transactions per RMA, backends {','.join(options.backends)}",
        load=False,
    )


def print_table(rows: Sequence[Row]) -> None:
    header = ("backend", "mode", "RMAs", "seconds", "RMAs/s", "transactions/s")
    cells = [
        (
            row.backend,
            row.mode,
            str(row.rmas),
            f"{row.seconds:.2f}",
            f"{row.rmas_per_second:.1f}",
            f"{row.transactions_per_second:.1f}",
        )
        for row in rows
    ]
    table(header, cells, left=2)


def print_demo(timings: Sequence[DemoTiming]) -> None:
    for timing in timings:
        if timing.error:
            print(f"rma demo  {timing.backend:<8}  failed: {timing.error}")
        else:
            print(
                f"rma demo  {timing.backend:<8}  {timing.demo_seconds:6.2f} s  "
                f"(rma db upgrade before it: {timing.upgrade_seconds:.2f} s)"
            )


# Entry point --------------------------------------------------------------------------------


def parse_backends(value: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"backends are a comma-separated subset of {BACKENDS}")
    return chosen


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rmas", type=positive, default=200, help="RMAs per mode (200)")
    parser.add_argument("--concurrency", type=positive, default=8, help="RMAs in flight (8)")
    parser.add_argument("--skip-demo", action="store_true", help="do not time `rma demo`")
    add_postgres_url_option(parser)
    parser.add_argument(
        "--backends",
        type=parse_backends,
        default=BACKENDS,
        help="comma-separated: sqlite,postgres (both)",
    )
    parsed = parser.parse_args(argv)
    return Options(
        rmas=parsed.rmas,
        concurrency=parsed.concurrency,
        skip_demo=parsed.skip_demo,
        postgres_url=parsed.postgres_url,
        backends=parsed.backends,
    )


async def bench(options: Options) -> None:
    rows: list[Row] = []
    timings: list[DemoTiming] = []
    skipped: list[str] = []
    for backend in options.backends:
        backend_rows, demo, why_skipped = await bench_backend(backend, options)
        rows.extend(backend_rows)
        timings.extend([demo] if demo else [])
        skipped.extend([why_skipped] if why_skipped else [])
    for line in skipped:
        print(line)
    if skipped:
        print()
    if rows:
        print_table(rows)
    if timings:
        print()
        print_demo(timings)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    print_header(options)
    asyncio.run(bench(options))


if __name__ == "__main__":
    main()
