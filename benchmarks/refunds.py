"""How fast inspected returns become Stripe refunds: refunds/s, and inspection-to-refund delay.

End to end, nothing mocked: real ``rma worker`` processes on a throwaway PostgreSQL database,
the real ``stripe`` package inside them, and the fake Stripe API (``testkit/fakes``) serving real
HTTP from a thread of this process on 127.0.0.1. For each ``--workers`` count (1 and 4):

1. Setup, untimed: a fresh database migrated with ``core.migrate``; a merchant whose policy
   settles passed inspections by itself (``auto_resolve``, a 10-year return window,
   ``auto_authorize_max_risk=100``), connected to an account on the fake with
   ``connect_platform`` (the development encryption key); one paid order per RMA (its payment
   created on the fake first) and the RMA walked to RECEIVED with the use cases (request with
   ``preferred_resolution="REFUND"``, receive).
2. The workers: ``rma worker --concurrency C`` processes with ``RMA_DATABASE_URL``,
   ``RMA_STRIPE_API_BASE`` (the fake) and the development ``RMA_ENCRYPTION_KEYS``; the run
   starts once they have logged ``worker started`` and sat idle for a second.
3. Burst, timed: ``--rmas`` RMAs are inspected, each in its own transaction as the warehouse
   does it (``--inspectors`` at a time), noting the wall-clock time after each commit. Each
   inspection enqueues ``rma.auto_resolve``; a worker resolves the RMA with its preferred
   REFUND, which enqueues ``payments.execute_refund``; that job POSTs ``/v1/refunds`` to the fake
   (``refund_mode="succeeded"``) and records the outcome: the RMA is RESOLVED. Refunds per second
   is ``--rmas`` over the span from the first inspection commit to the last ``rma.resolved_at``.
4. Idle probes: ``--probes`` more RMAs inspected one at a time, each once the one before is
   RESOLVED and after a random pause of up to one poll interval (so that commits fall at random
   points of the workers' poll cycle): the delay without a backlog.

The delay of an RMA is the time the fake recorded its first refund POST for the RMA's payment
(``RecordedRequest.at``) minus its inspection's commit time; same machine, same clock. It is also
cut into stages at the two jobs' ``started_at``/``finished_at``: waiting for a worker to claim
``rma.auto_resolve`` (the poll), running it, waiting for ``payments.execute_refund`` to be
claimed, and that job until its POST. The script then checks the money: exactly one refund at
the fake per RMA (none twice, none missing, the resolution's amount, succeeded), every RMA
RESOLVED with that refund's id, every job DONE after one attempt, no warnings in the workers'
logs; it reports retried POSTs and idempotent replays, and exits 1 when a check fails.

Run it from the project root:

    .venv/bin/python benchmarks/refunds.py
    .venv/bin/python benchmarks/refunds.py --rmas 100 --workers 1,2,4 --probes 0

PostgreSQL comes from ``--postgres-url``, else ``RMA_BENCH_POSTGRES_URL``, else the local default
server; the user needs the right to create databases. Databases are dropped, worker processes
stopped and the fake shut down at the end, even after a failure. The defaults take about a
minute and a half on two CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col
from support import PROJECT, BenchError
from support.cli import positive
from support.databases import PostgresServer, add_postgres_url_option, safe_url
from support.processes import WorkerProcesses
from support.report import percentile, print_banner, progress, quiet_logs, table
from support.rma_command import rma_command

from core.clock import SYSTEM_CLOCK
from plugins.stripe.webhooks import StripeWebhookSource

# The fake Stripe server is in ``testkit``, which is not installed: import it from the project
# root.
sys.path.insert(0, str(PROJECT))

from core.database import Database
from core.entities import Job, OrderPayment, Resolution, Rma
from core.enums import (
    ItemCondition,
    JobState,
    PaymentProviderName,
    ResolutionKind,
    ResolutionStatus,
    ReturnReason,
    RmaStatus,
)
from core.jobs.worker import Worker
from core.migrate import upgrade
from core.outbox.kinds import AUTO_RESOLVE, EXECUTE_REFUND
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY
from core.usecases.connections import connect_platform
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.merchants import create_merchant
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.requests import ReturnLineInput, request_rma
from testkit.fakes import FakeAccount, FakeStripe

UNIT_PRICE_MINOR = 2500
SETUP_CONCURRENCY = 8
STATE_POLL_SECONDS = 0.2
PROBE_POLL_SECONDS = 0.05
SETTLE_SECONDS = 1.0
STARTUP_SECONDS = 60.0
STOP_SECONDS = 60.0
READY = "worker started"
STAFF = "staff:bench"
CUSTOMER = "customer:bench"
WEBHOOK_SECRET = "whsec_refund_bench"  # noqa: S105 (a fake's secret)
JOB_KINDS = (AUTO_RESOLVE, EXECUTE_REFUND)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def poll_interval() -> float:
    default = next(entry.default for entry in fields(Worker) if entry.name == "poll_interval")
    return float(default)  # type: ignore[arg-type]


# Databases ------------------------------------------------------------------------------------


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A migrated throwaway database on the server, dropped afterwards even on failure."""
    with PostgresServer(server_url).throwaway("rma_bench_refunds_") as url:
        upgrade(url)
        yield url


# Setup (untimed) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """An RMA at RECEIVED, its one line, and the fake payment its order was paid with."""

    rma_id: uuid.UUID
    line_id: uuid.UUID
    payment_intent: str


@dataclass(frozen=True, slots=True)
class Shop:
    merchant_id: uuid.UUID
    account: FakeAccount
    rmas: list[Received]


async def prepare_rma(
    db: Database, fake: FakeStripe, account: FakeAccount, merchant_id: uuid.UUID, number: int
) -> Received:
    payment_intent, _charge = fake.create_payment(account, UNIT_PRICE_MINOR, "usd")
    placed = SYSTEM_CLOCK.now() - timedelta(days=10)
    tag = f"{number:06d}-{uuid.uuid4().hex[:8]}"
    async with db.session() as session:
        order = await upsert_order(
            session,
            merchant_id,
            OrderInput(
                platform="storefront",
                external_id=f"bench-{tag}",
                order_number=f"#R{tag}",
                currency="USD",
                placed_at=placed,
                delivered_at=placed + timedelta(days=2),
                customer=CustomerInput(email=f"refund{tag}@example.com"),
                lines=[OrderLineInput("L1", "Organic cotton tee", 1, UNIT_PRICE_MINOR)],
                payments=[
                    PaymentInput(
                        PaymentProviderName.STRIPE, payment_intent, UNIT_PRICE_MINOR, "USD"
                    )
                ],
            ),
            now=SYSTEM_CLOCK.now(),
        )
    async with db.session() as session:
        rma = await request_rma(
            session,
            merchant_id,
            order_id=order.id,
            lines=[
                ReturnLineInput(
                    order.lines[0].id, 1, ReturnReason.SIZE_TOO_SMALL, ItemCondition.UNOPENED
                )
            ],
            actor=CUSTOMER,
            preferred_resolution="REFUND",
            now=SYSTEM_CLOCK.now(),
        )
    if rma.status is not RmaStatus.AUTHORIZED:
        raise BenchError(f"RMA {rma.number} was not authorized at once: {rma.status.value}")
    line_id = rma.lines[0].id
    async with db.session() as session:
        rma = await receive_rma(
            session,
            merchant_id,
            rma.id,
            lines=[ReceivedLine(line_id, 1)],
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    if rma.status is not RmaStatus.RECEIVED:
        raise BenchError(f"RMA {rma.number} is {rma.status.value} after receipt")
    return Received(rma.id, line_id, payment_intent)


async def prepare_shop(db: Database, fake: FakeStripe, count: int) -> Shop:
    """A merchant that settles passed inspections by itself, on Stripe, and ``count`` RMAs."""
    account = fake.add_account()
    async with db.session() as session:
        merchant = await create_merchant(session, name="Refund bench", now=SYSTEM_CLOCK.now())
    async with db.session() as session:
        await update_return_policy(
            session,
            merchant.id,
            PolicyChanges(auto_resolve=True, return_window_days=365, auto_authorize_max_risk=100),
            now=SYSTEM_CLOCK.now(),
        )
    async with db.session() as session:
        await connect_platform(
            session,
            Vault(DEVELOPMENT_ENCRYPTION_KEY),
            StripeWebhookSource(),
            merchant_id=merchant.id,
            account=account.id,
            credentials={"secret_key": account.secret_key},
            webhook_secret=WEBHOOK_SECRET,
            now=SYSTEM_CLOCK.now(),
        )
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(number: int) -> Received:
        async with gate:
            return await prepare_rma(db, fake, account, merchant.id, number)

    rmas = await asyncio.gather(*(one(number) for number in range(count)))
    return Shop(merchant.id, account, list(rmas))


# Worker processes -----------------------------------------------------------------------------


def worker_environment(database_url: str, stripe_api_base: str) -> dict[str, str]:
    """This environment without any ``RMA_`` variable, plus the worker's configuration."""
    variables = {name: value for name, value in os.environ.items() if not name.startswith("RMA_")}
    variables.update(
        RMA_ENV="development",
        RMA_DATABASE_URL=database_url,
        RMA_STRIPE_API_BASE=stripe_api_base,
        RMA_ENCRYPTION_KEYS=DEVELOPMENT_ENCRYPTION_KEY,
        PYTHONUNBUFFERED="1",
    )
    return variables


class Workers(WorkerProcesses):
    """``rma worker`` processes, and the warnings and errors they logged."""

    def __init__(self, count: int, concurrency: int, env: dict[str, str], logs: Path) -> None:
        super().__init__(
            [*rma_command(), "worker", "--concurrency", str(concurrency)],
            count,
            logs=logs,
            cwd=logs,
            env=env,
            ready=READY,
            startup_seconds=STARTUP_SECONDS,
            stop_seconds=STOP_SECONDS,
        )

    def complaints(self) -> list[str]:
        """Warning and error lines the workers logged (structlog's console format)."""
        pattern = re.compile(r"\[(warning|error|critical)\s*\]|Traceback", re.IGNORECASE)
        found = []
        for log in self.log_files:
            for line in log.read_text(errors="replace").splitlines():
                plain = ANSI.sub("", line)
                if pattern.search(plain):
                    found.append(plain.strip())
        return found


# Timed phases ---------------------------------------------------------------------------------


async def inspect_one(db: Database, merchant_id: uuid.UUID, rma: Received) -> float:
    """Inspect one RMA in its own transaction; the wall-clock time just after the commit."""
    async with db.session() as session:
        inspected = await inspect_rma(
            session,
            merchant_id,
            rma.rma_id,
            lines=[InspectedLine(rma.line_id, ItemCondition.UNOPENED, "RESTOCK")],
            actor=STAFF,
            now=SYSTEM_CLOCK.now(),
        )
    committed = SYSTEM_CLOCK.now().timestamp()
    if inspected.status is not RmaStatus.INSPECTED:
        raise BenchError(f"RMA {inspected.number} is {inspected.status.value} after inspection")
    return committed


async def inspect_burst(
    db: Database, shop: Shop, rmas: Sequence[Received], inspectors: int
) -> dict[uuid.UUID, float]:
    """Inspect every RMA as fast as ``inspectors`` concurrent warehouse hands can."""
    committed: dict[uuid.UUID, float] = {}
    queue = iter(rmas)

    async def hand() -> None:
        for rma in queue:
            committed[rma.rma_id] = await inspect_one(db, shop.merchant_id, rma)

    await asyncio.gather(*(hand() for _ in range(inspectors)))
    return committed


async def inspect_probes(
    db: Database, shop: Shop, rmas: Sequence[Received], workers: Workers
) -> dict[uuid.UUID, float]:
    """Inspect one RMA at a time, each after the one before is RESOLVED and a random pause."""
    committed: dict[uuid.UUID, float] = {}
    rng = random.Random(len(rmas))
    for rma in rmas:
        await asyncio.sleep(rng.uniform(0.0, poll_interval()))
        committed[rma.rma_id] = await inspect_one(db, shop.merchant_id, rma)
        await wait_resolved(db, [rma.rma_id], workers, STARTUP_SECONDS, every=PROBE_POLL_SECONDS)
    return committed


async def status_counts(db: Database, rma_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    statement = (
        sa.select(col(Rma.status), sa.func.count())
        .where(col(Rma.id).in_(rma_ids))
        .group_by(col(Rma.status))
    )
    async with db.read_engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {str(getattr(status, "value", status)): int(count) for status, count in rows}


async def wait_resolved(
    db: Database,
    rma_ids: Sequence[uuid.UUID],
    workers: Workers,
    within_seconds: float,
    *,
    every: float = STATE_POLL_SECONDS,
) -> None:
    """Wait until every RMA is RESOLVED; fail early when one falls back or a worker dies."""
    deadline = time.monotonic() + within_seconds
    while True:
        workers.check_alive()
        counts = await status_counts(db, rma_ids)
        if counts.get(RmaStatus.RESOLVED.value, 0) == len(rma_ids):
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"not every RMA RESOLVED after {within_seconds:.0f} s: {counts}; "
                f"worker complaints: {workers.complaints()[-5:]}"
            )
        await asyncio.sleep(every)


# Results and checks ---------------------------------------------------------------------------


STAGES = (
    "commit -> auto_resolve claimed",
    "auto_resolve runs",
    "-> execute_refund claimed",
    "-> POST at the fake",
)


@dataclass(frozen=True, slots=True)
class Delays:
    phase: str
    seconds: list[float]
    stages: list[tuple[float, ...]]
    """Per RMA, the delay cut at the jobs' ``started_at``/``finished_at`` (see ``STAGES``)."""


@dataclass
class Result:
    label: str
    workers: int
    rmas: int
    span_seconds: float = 0.0
    feed_seconds: float = 0.0
    first_claim_seconds: float = 0.0
    load: float = 0.0
    post_span_seconds: float = 0.0
    worker_cpu_seconds: float = 0.0
    delays: list[Delays] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def refunds_per_second(self) -> float:
        return self.rmas / self.span_seconds

    @property
    def inspections_per_second(self) -> float:
        return self.rmas / self.feed_seconds if self.feed_seconds > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class Settled:
    """What the database says about one RMA once the workers are done."""

    status: RmaStatus
    resolved_at: datetime | None
    resolution_status: ResolutionStatus | None
    provider_reference: str | None
    amount_minor: int | None
    payment_reference: str | None


async def settled_rmas(db: Database, merchant_id: uuid.UUID) -> dict[uuid.UUID, Settled]:
    statement = (
        sa.select(
            col(Rma.id),
            col(Rma.status),
            col(Rma.resolved_at),
            col(Resolution.status),
            col(Resolution.provider_reference),
            col(Resolution.amount_minor),
            col(OrderPayment.reference),
        )
        .select_from(Rma)
        .outerjoin(
            Resolution,
            sa.and_(
                col(Resolution.rma_id) == col(Rma.id),
                col(Resolution.kind) == ResolutionKind.REFUND,
                col(Resolution.status) == ResolutionStatus.SUCCEEDED,
            ),
        )
        .outerjoin(OrderPayment, col(OrderPayment.order_id) == col(Rma.order_id))
        .where(col(Rma.merchant_id) == merchant_id)
    )
    async with db.read_engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {row[0]: Settled(*row[1:]) for row in rows}


async def job_times(db: Database) -> dict[tuple[str, str], tuple[float, float]]:
    """(kind, lock key "rma:<id>") -> (started, finished), Unix seconds, for the two jobs."""
    statement = sa.select(
        col(Job.kind), col(Job.lock_key), col(Job.started_at), col(Job.finished_at)
    ).where(col(Job.kind).in_(JOB_KINDS))
    async with db.read_engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {
        (kind, str(key)): (started.timestamp(), finished.timestamp())
        for kind, key, started, finished in rows
        if started is not None and finished is not None
    }


def stages_of(
    rma_id: uuid.UUID,
    committed: float,
    posted: float,
    jobs: dict[tuple[str, str], tuple[float, float]],
) -> tuple[float, ...]:
    auto = jobs.get((AUTO_RESOLVE, f"rma:{rma_id}"))
    refund = jobs.get((EXECUTE_REFUND, f"rma:{rma_id}"))
    if auto is None or refund is None:
        return (float("nan"),) * len(STAGES)
    return (auto[0] - committed, auto[1] - auto[0], refund[0] - auto[1], posted - refund[0])


async def job_summary(db: Database) -> dict[str, tuple[int, int, int, int]]:
    """Per benchmarked kind: jobs, DONE, DEAD, run more than once."""
    statement = (
        sa.select(
            col(Job.kind),
            sa.func.count(),
            sa.func.sum(sa.case((col(Job.state) == JobState.DONE, 1), else_=0)),
            sa.func.sum(sa.case((col(Job.state) == JobState.DEAD, 1), else_=0)),
            sa.func.sum(sa.case((col(Job.attempts) > 1, 1), else_=0)),
        )
        .where(col(Job.kind).in_(JOB_KINDS))
        .group_by(col(Job.kind))
    )
    async with db.read_engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {
        kind: (int(n), int(done or 0), int(dead or 0), int(rerun or 0))
        for kind, n, done, dead, rerun in rows
    }


def check_money(
    result: Result,
    fake: FakeStripe,
    shop: Shop,
    settled: dict[uuid.UUID, Settled],
    jobs: dict[str, tuple[int, int, int, int]],
) -> dict[str, float]:
    """Exactly one refund per RMA at the fake, matching the database; the first POST per RMA."""
    expected = {rma.payment_intent: rma.rma_id for rma in shop.rmas}
    refunds = fake.refunds(shop.account)
    by_payment: dict[str, list[dict[str, object]]] = {}
    for refund in refunds:
        by_payment.setdefault(str(refund["payment_intent"]), []).append(refund)
    twice = sorted(pi for pi, found in by_payment.items() if len(found) > 1)
    missing = sorted(set(expected) - set(by_payment))
    strangers = sorted(set(by_payment) - set(expected))
    not_succeeded = [r["id"] for r in refunds if r["status"] != "succeeded"]
    wrong = []
    for pi, rma_id in expected.items():
        state = settled.get(rma_id)
        found = by_payment.get(pi, [])
        if state is None or state.status is not RmaStatus.RESOLVED or len(found) != 1:
            wrong.append(str(rma_id))
            continue
        refund = found[0]
        if (
            state.provider_reference != refund["id"]
            or state.amount_minor != refund["amount"]
            or state.payment_reference != pi
            or state.resolved_at is None
        ):
            wrong.append(str(rma_id))
    posts = [
        request
        for request in fake.requests_for("/v1/refunds", "POST")
        if request.path == "/v1/refunds" and request.account_id == shop.account.id
    ]
    replays = sum(1 for request in posts if request.replayed)
    executed = sum(1 for request in posts if request.executed and not request.replayed)
    first_post: dict[str, float] = {}
    for request in posts:
        pi = str(request.params.get("payment_intent"))
        first_post[pi] = min(first_post.get(pi, request.at), request.at)
    result.checks.append(
        f"{len(refunds)} refunds at the fake for {len(expected)} RMAs: {len(by_payment)} payments "
        f"refunded, {len(twice)} twice, {len(missing)} missing, {len(strangers)} unknown, "
        f"{len(not_succeeded)} not succeeded; {len(posts)} refund POSTs "
        f"({executed} executed, {replays} idempotent replays)"
    )
    result.checks.append(
        f"{len(expected) - len(wrong)} of {len(expected)} RMAs RESOLVED with that refund's id "
        "and amount"
    )
    result.checks.append(
        "jobs: "
        + "; ".join(
            f"{kind} {n} ({done} DONE, {dead} DEAD, {rerun} run more than once)"
            for kind, (n, done, dead, rerun) in sorted(jobs.items())
        )
    )
    if twice or missing or strangers or not_succeeded or wrong or len(refunds) != len(expected):
        result.problems.append(
            f"money check failed: twice {twice[:3]}, missing {missing[:3]}, unknown "
            f"{strangers[:3]}, not succeeded {not_succeeded[:3]}, RMAs wrong {wrong[:3]}"
        )
    if executed != len(expected) or replays:
        result.problems.append(
            f"{executed} refund POSTs executed and {replays} replayed for {len(expected)} RMAs"
        )
    for kind in JOB_KINDS:
        n, done, dead, rerun = jobs.get(kind, (0, 0, 0, 0))
        if n != len(expected) or done != n or dead or rerun:
            result.problems.append(
                f"{kind}: {n} jobs for {len(expected)} RMAs, {done} DONE, {dead} DEAD, "
                f"{rerun} run more than once"
            )
    return {pi: at for pi, at in first_post.items() if pi in expected}


# One configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    rmas: int
    workers: tuple[int, ...]
    concurrency: int
    inspectors: int
    probes: int
    postgres_url: str


async def run_config(
    url: str, fake: FakeStripe, workers_count: int, options: Options, logs: Path
) -> Result:
    label = f"{workers_count} worker process{'es' if workers_count > 1 else ''}"
    result = Result(label, workers_count, options.rmas)
    db = Database(url, pool_size=max(SETUP_CONCURRENCY, options.inspectors) + 2)
    workers = Workers(
        workers_count,
        options.concurrency,
        worker_environment(sa.make_url(url).render_as_string(hide_password=False), fake.base_url),
        logs,
    )
    try:
        errors_before = len(fake.server_errors)
        progress(f"{label}: setup, {options.rmas + options.probes} paid orders and RMAs received")
        shop = await prepare_shop(db, fake, options.rmas + options.probes)
        burst, probes = shop.rmas[: options.rmas], shop.rmas[options.rmas :]
        await workers.start()
        await asyncio.sleep(SETTLE_SECONDS)

        progress(f"{label}: {options.rmas} inspections, {options.inspectors} at a time")
        cpu_before = workers.cpu_seconds()
        committed = await inspect_burst(db, shop, burst, options.inspectors)
        await wait_resolved(
            db, [rma.rma_id for rma in burst], workers, STARTUP_SECONDS + options.rmas / 2
        )
        result.worker_cpu_seconds = workers.cpu_seconds() - cpu_before
        result.load = os.getloadavg()[0]

        probe_committed: dict[uuid.UUID, float] = {}
        if probes:
            progress(f"{label}: {len(probes)} idle probes, one at a time")
            await asyncio.sleep(SETTLE_SECONDS)
            probe_committed = await inspect_probes(db, shop, probes, workers)
        await workers.stop()

        if len(fake.server_errors) > errors_before:
            result.problems.append(
                f"the fake Stripe hit {len(fake.server_errors) - errors_before} internal errors"
            )
        settled = await settled_rmas(db, shop.merchant_id)
        first_post = check_money(result, fake, shop, settled, await job_summary(db))
        complaints = workers.complaints()
        if complaints:
            result.problems.append(
                f"the workers logged {len(complaints)} warnings or errors, first: "
                f"{complaints[0][:300]}"
            )
        by_rma = {rma.rma_id: rma.payment_intent for rma in shop.rmas}

        resolved = [settled[rma.rma_id].resolved_at for rma in burst]
        last_resolved = max(at.timestamp() for at in resolved if at is not None)
        first_inspected = min(committed.values())
        result.span_seconds = last_resolved - first_inspected
        result.feed_seconds = max(committed.values()) - first_inspected
        if any(by_rma[rma.rma_id] not in first_post for rma in shop.rmas):
            raise BenchError(f"{label}: an RMA has no refund POST at the fake: {result.problems}")
        burst_posts = [first_post[by_rma[rma.rma_id]] for rma in burst]
        result.post_span_seconds = max(burst_posts) - min(burst_posts)
        jobs = await job_times(db)
        result.first_claim_seconds = (
            min(jobs[(AUTO_RESOLVE, f"rma:{rma.rma_id}")][0] for rma in burst) - first_inspected
        )
        for phase, times in (("burst", committed), ("idle probes", probe_committed)):
            if times:
                posted = {rma_id: first_post[by_rma[rma_id]] for rma_id in times}
                result.delays.append(
                    Delays(
                        phase,
                        [posted[rma_id] - at for rma_id, at in times.items()],
                        [stages_of(r, at, posted[r], jobs) for r, at in times.items()],
                    )
                )
        return result
    finally:
        workers.kill()
        await db.dispose()


# Output ---------------------------------------------------------------------------------------


def print_header(options: Options) -> None:
    print_banner(
        "Refund benchmark: inspected RMAs to Stripe refunds, rma worker processes, fake Stripe.",
        f"db:      PostgreSQL at {safe_url(options.postgres_url)} (throwaway databases)",
        f"run:     {options.rmas} RMAs inspected at once ({options.inspectors} inspectors), then "
        f"{options.probes} idle probes one at a time; worker processes "
        f"{','.join(str(n) for n in options.workers)}, rma worker --concurrency "
        f"{options.concurrency}; poll interval {poll_interval():g} s",
    )


def print_results(results: Sequence[Result], options: Options) -> None:
    print("Throughput (burst): RMAs / (last rma.resolved_at - first inspection commit)")
    table(
        (
            "configuration",
            "RMAs",
            "refunds/s",
            "span s",
            "inspect s",
            "inspect/s",
            "1st claim s",
            "POST span s",
            "worker CPU ms/refund",
            "load 1m",
        ),
        [
            (
                r.label,
                str(r.rmas),
                f"{r.refunds_per_second:.1f}",
                f"{r.span_seconds:.2f}",
                f"{r.feed_seconds:.2f}",
                f"{r.inspections_per_second:.0f}",
                f"{r.first_claim_seconds:.2f}",
                f"{r.post_span_seconds:.2f}",
                f"{1000 * r.worker_cpu_seconds / r.rmas:.1f}",
                f"{r.load:.1f}",
            )
            for r in results
        ],
    )
    print()
    print("Delay: inspection commit -> refund POST received by the fake Stripe")
    table(
        ("configuration", "phase", "RMAs", "p50 ms", "p99 ms", "max ms", "min ms", "mean ms"),
        [
            (
                r.label,
                d.phase,
                str(len(d.seconds)),
                f"{1000 * percentile(d.seconds, 0.50):.0f}",
                f"{1000 * percentile(d.seconds, 0.99):.0f}",
                f"{1000 * max(d.seconds):.0f}",
                f"{1000 * min(d.seconds):.0f}",
                f"{1000 * statistics.fmean(d.seconds):.0f}",
            )
            for r in results
            for d in r.delays
        ],
    )
    print()
    print("Where the delay goes (median ms of each stage, cut at the jobs' started/finished_at)")
    table(
        ("configuration", "phase", *STAGES),
        [
            (
                r.label,
                d.phase,
                *(
                    f"{1000 * statistics.median(stage[i] for stage in d.stages):.0f}"
                    for i in range(len(STAGES))
                ),
            )
            for r in results
            for d in r.delays
        ],
    )
    print()
    print("Checks")
    for r in results:
        for line in r.checks:
            print(f"  {r.label}: {line}")
        for line in r.problems:
            print(f"  {r.label}: PROBLEM: {line}")
    print()
    print("Notes")
    for note in notes(poll_interval()):
        print(textwrap.fill(note, 100, initial_indent="- ", subsequent_indent="  "))


def notes(interval: float) -> list[str]:
    return [
        f"Worker processes hear of new jobs only by polling: an idle worker looks every "
        f"{interval:g} s (Worker.poll_interval). An inspection waits for the next poll of some "
        f"idle worker: up to {interval:g} s, {interval / 2:g} s on average with one process, and "
        f"{interval:g}/(k+1) s with k processes only if their polls were spread evenly; they are "
        "not (no jitter; processes started together, and each restarts its wait when a job "
        "ends), so more processes shorten it less than that. That wait is the first stage of the "
        "idle probes' delay, and most of it; the rest is the two jobs' own work. "
        "The second hop (auto_resolve -> execute_refund) costs no poll: the worker that "
        "finishes auto_resolve looks for work at once, and that is when the refund job's lock "
        "key frees it.",
        "In the burst the delay is backlog, not polling: jobs are claimed oldest run_at first, "
        "so the burst's auto_resolve jobs all come before the execute_refund jobs they enqueue, "
        "and even the first refund waits for most of the auto_resolve backlog.",
        "The throughput span starts at the first inspection commit, so it holds one poll wait "
        "(column '1st claim s'); with few RMAs that lowers refunds/s noticeably. When 'inspect s' "
        "comes close to 'span s', the inspections set the pace, not the workers: raise "
        "--inspectors.",
        f"The {os.cpu_count()} CPUs are shared by PostgreSQL, the worker processes and this "
        "process (the inspections and the fake Stripe's threads, under one GIL: the fake may "
        "timestamp a POST late while an inspection holds the GIL). 'load 1m' is the load "
        "average when the burst was done; other work on the machine shows there.",
    ]


# Entry point ----------------------------------------------------------------------------------


def not_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def worker_counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError("a comma-separated list of process counts, e.g. 1,4")
    return counts


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rmas", type=positive, default=300, help="RMAs in the burst (300)")
    parser.add_argument(
        "--workers", type=worker_counts, default=(1, 4), help="worker processes, per run (1,4)"
    )
    parser.add_argument(
        "--concurrency", type=positive, default=4, help="rma worker --concurrency (4)"
    )
    parser.add_argument(
        "--inspectors", type=positive, default=4, help="inspections at once in the burst (4)"
    )
    parser.add_argument(
        "--probes", type=not_negative, default=30, help="idle probes after the burst (30)"
    )
    add_postgres_url_option(parser)
    parsed = parser.parse_args(argv)
    return Options(
        rmas=parsed.rmas,
        workers=parsed.workers,
        concurrency=parsed.concurrency,
        inspectors=parsed.inspectors,
        probes=parsed.probes,
        postgres_url=parsed.postgres_url,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    quiet_logs()
    print_header(options)
    if reason := PostgresServer(options.postgres_url).unreachable():
        print(f"error: PostgreSQL is needed: {reason}", file=sys.stderr)
        return 1
    fake = FakeStripe(refund_mode="succeeded")
    results: list[Result] = []
    try:
        fake.start()
        with tempfile.TemporaryDirectory(prefix="rma-refund-bench-") as name:
            for count in options.workers:
                with fresh_database(options.postgres_url) as url:
                    results.append(asyncio.run(run_config(url, fake, count, options, Path(name))))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        failed = True
    else:
        failed = False
    finally:
        fake.stop()
    if results:
        print_results(results, options)
    return 1 if failed or any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
