"""How fast the job queue runs: no-op jobs per second, the delay from commit to job start, and
refunds from inspection to Stripe while the queue holds a backlog of other jobs.

The real ``core.jobs.worker.Worker`` runs a no-op handler registered for the benchmark kind
``bench.noop``, in three configurations, each on a fresh database:

- SQLite, one runner in this process (as under ``rma serve``: it shares the app's ``Database``);
- PostgreSQL, one worker process;
- PostgreSQL, four worker processes.

A worker process is this script started again with ``--run-worker URL``: it builds
``Worker(Database(url), {"bench.noop": handler}, concurrency=N)``, runs until SIGTERM, and prints
its ``WorkerStats`` as JSON. Processes are not pinned; PostgreSQL and the runners share the
machine's CPUs.

Each configuration measures two things:

1. Throughput: with the runners started and idle, ``--jobs`` jobs are committed at once in one
   transaction (timed: "enqueue jobs/s"), and the runners drain them. Jobs per second is the
   number of jobs over the span from the first claim (``job.started_at``) to the last finish
   (``job.finished_at``). "Runner CPU ms/job" is the runners' CPU time over the drain per job
   (for the in-process runner, this whole process; PostgreSQL's own CPU is not in it). The
   script checks that every job ended DONE after one attempt.
2. Commit-to-start delay: with the runners idle, ``--probes`` jobs are enqueued one at a time,
   each in its own transaction, at about ``--rate`` a second (randomized gaps, so probes do not
   line up with the worker's poll). The enqueuer notes the wall-clock time after each commit;
   the handler notes the time it starts and inserts ``(job_id, started)`` into a
   ``bench_start`` table the benchmark creates in its throwaway database. The delay is the
   difference (same machine, same clock). The in-process runner is measured twice: polling
   only, and with ``Worker.wake()`` called after each commit, as the webhook intake does;
   worker processes on PostgreSQL are woken by LISTEN/NOTIFY (``core.jobs.notify``).

Then, on PostgreSQL with four worker processes that run the app's handlers (as ``rma worker``
builds them) plus the no-op one, refunds under a backlog, twice on fresh databases: the backlog
is ``--backlog`` no-op jobs (the workers drain it as fast as they can: every CPU is busy), then
as many jobs that each wait ``--backlog-wait-ms`` (as for an API call: the workers' slots are
busy, the CPUs less so, and the backlog stays). Right after the backlog is committed,
``--refunds`` RMAs are inspected one at a time, each once the one before is RESOLVED and after
a random pause of up to 100 ms (the load is the backlog, not refunds competing with each
other). Each inspection enqueues ``rma.auto_resolve``, which resolves the RMA with a refund and
enqueues ``payments.execute_refund``, which POSTs ``/v1/refunds`` to the fake Stripe
(``testkit.fakes``, served from a thread of this process). The delay is the fake's time of the
POST minus the inspection's commit time, cut into stages at the two jobs'
``started_at``/``finished_at``; "backlog queued at inspections" shows that the backlog was
there. The money is checked as benchmarks/refunds.py checks it (one refund per RMA, none
twice), and the setup (merchant, Stripe connection, paid orders, RMAs received) is its.

At the end, the targets of issue 16 for PostgreSQL with four worker processes, MET or NOT MET:
at least 1,000 no-op jobs/s; commit-to-start p50 under 50 ms; refund p50 under 200 ms while the
queue holds 10,000 other jobs (one line per backlog).

What the profile said (pyinstrument and cProfile on one worker draining 2,000 to 3,000 no-op
jobs on PostgreSQL, December 2026, on 2 CPUs shared with other work), and what was done:

- Before: 5 to 10 ms of worker CPU per no-op job (111 to 187 jobs/s with four processes). Each
  job took two transactions of its own, a claim and a finish, each a pool checkout with a
  pre-ping (``pool_pre_ping``), BEGIN, an ORM-enabled UPDATE and COMMIT: about twelve socket
  sends per job. Half the samples were in the claim, half in the finish; inside both, the
  socket sends (each wakes PostgreSQL on a busy 2-CPU machine), SQLAlchemy building, cache-keying
  and compiling a fresh ``update(Job)`` per call, and the ORM's synchronize-session evaluator.
- After (``core.jobs.batches``): one statement claims a job for every free slot (a CTE with
  ``FOR UPDATE SKIP LOCKED``, one job per lock key), jobs that end while a finish is being
  written are finished together by the next one, and both run on one autocommit connection the
  worker keeps (no checkout, pre-ping, BEGIN or COMMIT): 0.6 to 0.8 ms of worker CPU per no-op
  job, about half a socket send per job. What is left: the sends themselves (a third of the
  profile), the ORM loading the claimed rows, and two asyncio tasks per job (the job and its
  lease heartbeat). With ``--concurrency 4`` a batch is at most four jobs; a claim that also
  wrote the previous batch's finishes would halve the statements again (not done).
- Refunds behind a backlog: the queue was first in, first out, so a refund waited for every job
  committed before it (about 90 s behind 10,000 jobs). Jobs now have a priority
  (``core.outbox.queue.priority_of``, migration 0020): the jobs of a customer's return in
  flight (restock, resolution, refund...) go before background work, and are claimed within a
  few ms whatever the backlog; priority orders lock keys, never the jobs of one key (an RMA's
  restock still runs before its refund). What is left of the delay is the handlers' own work
  (about 75 ms on an idle machine), slowed by the CPUs the backlog's drain takes: with the
  machine shared, 0.3 to 1.7 s p50, not under 200 ms.

Run it from the project root:

    .venv/bin/python benchmarks/jobs.py
    .venv/bin/python benchmarks/jobs.py --jobs 5000 --probes 200 --rate 20
    .venv/bin/python benchmarks/jobs.py --refunds 0        # without the refunds
    .venv/bin/python benchmarks/jobs.py --sqlite-only

PostgreSQL comes from ``--postgres-url`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
when it does not answer, its configurations are skipped with a line saying so. Each throwaway
database is dropped at the end, even after a failure. The defaults take about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from refunds import (
    STAGES,
    check_money,
    inspect_one,
    job_summary,
    job_times,
    prepare_shop,
    settled_rmas,
    stages_of,
    wait_resolved,
    worker_environment,
)
from refunds import Result as RefundResult
from sqlmodel import col, select
from support import PROJECT, BenchError
from support.cli import exit_status, positive
from support.databases import DEFAULT_POSTGRES_URL, PostgresServer, postgres_skip_reason
from support.processes import WorkerProcesses
from support.report import percentile, print_banner, progress, quiet_logs, table

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.enums import JobState
from core.jobs.worker import JobContext, Worker, WorkerStats
from core.migrate import upgrade
from core.outbox.queue import enqueue
from core.settings import Settings
from graphql_api.app import keep_out_of_collections
from graphql_api.composition import build_worker
from testkit.fakes import FakeStripe

SCRIPT = Path(__file__).resolve()
KIND = "bench.noop"
FOUR_WORKERS = "postgres, 4 worker processes"
STATE_POLL_SECONDS = 0.2
SETTLE_SECONDS = 1.0
PROBE_PAUSE_SECONDS = 0.1
RESOLVED_POLL_SECONDS = 0.02
STOP_SECONDS = 60.0
STARTUP_SECONDS = 60.0
READY = "bench worker ready"
BENCH_TABLE = """CREATE TABLE bench_start (
    job_id VARCHAR(36) PRIMARY KEY,
    started DOUBLE PRECISION NOT NULL
)"""
INSERT_START = sa.text("INSERT INTO bench_start (job_id, started) VALUES (:job_id, :started)")


# The handler and the worker process -----------------------------------------------------------


async def noop(context: JobContext) -> None:
    """Do nothing (or wait ``waitMs``, as for an API call); a probe first records its start."""
    if wait_ms := context.job.payload.get("waitMs"):
        await asyncio.sleep(wait_ms / 1000)
    if context.job.payload.get("probe"):
        started = SYSTEM_CLOCK.now().timestamp()
        async with context.database.write_engine.begin() as connection:
            await connection.execute(
                INSERT_START, {"job_id": str(context.job.id), "started": started}
            )


def run_worker_process(database_url: str, concurrency: int, *, app_handlers: bool) -> int:
    """The ``--run-worker`` entry point: run until SIGTERM, then print the stats as JSON.

    With ``app_handlers``, the worker ``rma worker`` builds (settings from the ``RMA_``
    environment), with the no-op handler added."""
    quiet_logs()

    async def work() -> WorkerStats:
        database = Database(database_url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if app_handlers:
            worker = build_worker(Settings(), database, clock=SYSTEM_CLOCK, concurrency=concurrency)
            worker.handlers = {**worker.handlers, KIND: noop}
        else:
            worker = Worker(database, {KIND: noop}, concurrency=concurrency)
        keep_out_of_collections()  # as `rma worker` does before it runs
        print(READY, flush=True)
        try:
            await worker.run(stop)
        finally:
            await database.dispose()
        return worker.stats

    stats = asyncio.run(work())
    print(json.dumps(asdict(stats)), flush=True)
    return 0


# Databases ------------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, options: Options, directory: Path) -> Iterator[str]:
    """A migrated database with the ``bench_start`` table; a PostgreSQL one is dropped after."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / f'jobs-{uuid.uuid4().hex[:8]}.db'}"
        prepare(url)
        yield url
        return
    with PostgresServer(options.postgres_url).throwaway() as created:
        prepare(created)
        yield created


def prepare(url: str) -> None:
    upgrade(url)

    async def create_table() -> None:
        database = Database(url)
        try:
            async with database.write_engine.begin() as connection:
                await connection.execute(sa.text(BENCH_TABLE))
        finally:
            await database.dispose()

    asyncio.run(create_table())


# Runners --------------------------------------------------------------------------------------


class Runners:
    """The workers of one configuration: started, woken (in-process only), stopped."""

    async def start(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        """Tell the runners a job was committed; only an in-process worker can hear it."""

    def cpu_seconds(self) -> float:
        """CPU time the runners have used so far."""
        raise NotImplementedError

    async def stop(self) -> WorkerStats:
        raise NotImplementedError


class InProcess(Runners):
    def __init__(self, database: Database, concurrency: int) -> None:
        self.worker = Worker(database, {KIND: noop}, concurrency=concurrency)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.worker.run(self._stop))

    def wake(self) -> None:
        self.worker.wake()

    def cpu_seconds(self) -> float:
        """This whole process: the worker, and the benchmark polling for the count."""
        return time.process_time()

    async def stop(self) -> WorkerStats:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.worker.stats


class Processes(Runners):
    """Worker processes: this script again with ``--run-worker``, each printing its
    ``WorkerStats`` as JSON when it stops."""

    def __init__(
        self,
        database_url: str,
        count: int,
        concurrency: int,
        logs: Path,
        *,
        app_env: dict[str, str] | None = None,
    ) -> None:
        command = [
            sys.executable,
            str(SCRIPT),
            "--run-worker",
            database_url,
            "--concurrency",
            str(concurrency),
        ]
        if app_env is not None:
            command.append("--app-handlers")
        self.workers = WorkerProcesses(
            command,
            count,
            logs=logs,
            cwd=PROJECT,
            env=app_env,
            ready=READY,
            startup_seconds=STARTUP_SECONDS,
            stop_seconds=STOP_SECONDS,
        )

    async def start(self) -> None:
        await self.workers.start()

    def cpu_seconds(self) -> float:
        return self.workers.cpu_seconds()

    def check_alive(self) -> None:
        self.workers.check_alive()

    async def stop(self) -> WorkerStats:
        await self.workers.stop()
        total = WorkerStats()
        for log in self.workers.log_files:
            stats = json.loads(log.read_text().strip().splitlines()[-1])
            for name in (entry.name for entry in fields(WorkerStats)):
                setattr(total, name, getattr(total, name) + stats[name])
        return total

    def kill(self) -> None:
        """Stop whatever is still running (after a failure)."""
        self.workers.kill()


# Measurements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    jobs: int
    enqueue_seconds: float
    drain_seconds: float
    cpu_seconds: float
    done: int
    not_done: int
    rerun: int

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.drain_seconds

    @property
    def enqueued_per_second(self) -> float:
        return self.jobs / self.enqueue_seconds

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000.0 * self.cpu_seconds / self.jobs


@dataclass(frozen=True)
class Delays:
    label: str
    probes: int
    delays_ms: list[float]

    def percentile(self, fraction: float) -> float:
        return percentile(self.delays_ms, fraction)


@dataclass
class Config:
    label: str
    backend: str
    runners: int
    in_process: bool
    throughput: Throughput | None = None
    delays: list[Delays] | None = None
    stats: WorkerStats | None = None


async def enqueue_all(database: Database, count: int, wait_ms: int = 0) -> float:
    """Enqueue ``count`` no-op jobs in one transaction; the seconds it took."""
    started = time.perf_counter()
    payload = {"waitMs": wait_ms} if wait_ms else {}
    async with database.session() as session, session.begin():
        for _ in range(count):
            enqueue(session, KIND, payload, now=SYSTEM_CLOCK.now())
    return time.perf_counter() - started


async def count_in_states(database: Database, states: Sequence[JobState]) -> int:
    statement = select(sa.func.count()).where(col(Job.kind) == KIND, col(Job.state).in_(states))
    async with database.read_session() as session:
        return int((await session.exec(statement)).one())


async def wait_for_jobs(
    database: Database, expected: int, runners: Runners, within_seconds: float
) -> None:
    """Wait until ``expected`` jobs of the benchmark kind are DONE or DEAD."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        if isinstance(runners, Processes):
            runners.check_alive()
        finished = await count_in_states(database, [JobState.DONE, JobState.DEAD])
        if finished >= expected:
            return
        await asyncio.sleep(STATE_POLL_SECONDS)
    raise BenchError(f"jobs still outstanding after {within_seconds:.0f} s")


async def drain_span(database: Database) -> tuple[float, int, int, int]:
    """Seconds from the first claim to the last finish, jobs DONE, not DONE, run more than once."""
    statement = sa.select(
        sa.func.min(col(Job.started_at)),
        sa.func.max(col(Job.finished_at)),
        sa.func.count(),
        sa.func.sum(sa.case((col(Job.state) == JobState.DONE, 1), else_=0)),
        sa.func.sum(sa.case((col(Job.attempts) > 1, 1), else_=0)),
    ).where(col(Job.kind) == KIND)
    async with database.read_engine.connect() as connection:
        first, last, total, done, rerun = (await connection.execute(statement)).one()
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        raise BenchError("no job was started or finished")
    return (last - first).total_seconds(), int(done), int(total) - int(done), int(rerun or 0)


async def measure_throughput(database: Database, runners: Runners, options: Options) -> Throughput:
    """Start the runners, commit all the jobs at once, wait until they are done."""
    await runners.start()
    await asyncio.sleep(SETTLE_SECONDS)
    enqueue_seconds = await enqueue_all(database, options.jobs)
    cpu_before = runners.cpu_seconds()
    await wait_for_jobs(database, options.jobs, runners, STARTUP_SECONDS + options.jobs / 10)
    cpu = runners.cpu_seconds() - cpu_before
    span, done, not_done, rerun = await drain_span(database)
    return Throughput(options.jobs, enqueue_seconds, span, cpu, done, not_done, rerun)


async def measure_delays(
    database: Database, runners: Runners, options: Options, label: str, *, wake: bool
) -> Delays:
    """Enqueue probes one at a time with the runners idle; their commit-to-start delays."""
    await asyncio.sleep(SETTLE_SECONDS)
    committed: dict[str, float] = {}
    rng = random.Random(len(label))
    for number in range(options.probes):
        async with database.session() as session, session.begin():
            job = enqueue(session, KIND, {"probe": True, "number": number}, now=SYSTEM_CLOCK.now())
        committed[str(job.id)] = SYSTEM_CLOCK.now().timestamp()
        if wake:
            runners.wake()
        await asyncio.sleep(rng.uniform(0.5, 1.5) / options.rate)
    started = await wait_for_starts(database, committed, runners)
    delays = [1000.0 * (started[job_id] - at) for job_id, at in committed.items()]
    return Delays(label, options.probes, delays)


async def wait_for_starts(
    database: Database, committed: dict[str, float], runners: Runners
) -> dict[str, float]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if isinstance(runners, Processes):
            runners.check_alive()
        async with database.read_engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT job_id, started FROM bench_start"))
            started = {str(job_id): float(at) for job_id, at in rows}
        if set(committed) <= set(started):
            async with database.write_engine.begin() as connection:
                await connection.execute(sa.text("DELETE FROM bench_start"))
            return started
        await asyncio.sleep(STATE_POLL_SECONDS)
    raise BenchError(f"probe jobs not started after {STARTUP_SECONDS:.0f} s")


@asynccontextmanager
async def runners_for(
    config: Config, database: Database, url: str, options: Options, logs: Path
) -> AsyncIterator[Runners]:
    runners: Runners
    if config.in_process:
        runners = InProcess(database, options.concurrency)
    else:
        runners = Processes(url, config.runners, options.concurrency, logs)
    try:
        yield runners
    finally:
        if isinstance(runners, Processes):
            runners.kill()


async def run_config(config: Config, url: str, options: Options, logs: Path) -> None:
    database = Database(url)
    try:
        async with runners_for(config, database, url, options, logs) as runners:
            progress(f"{config.label}: {options.jobs} jobs committed at once, then drained")
            config.throughput = await measure_throughput(database, runners, options)
            config.delays = []
            modes = [("poll only", False), ("wake()", True)] if config.in_process else [("", False)]
            for mode, wake in modes:
                label = f"{config.label}, {mode}" if mode else config.label
                progress(f"{label}: {options.probes} probes at ~{options.rate:g}/s")
                config.delays.append(
                    await measure_delays(database, runners, options, label, wake=wake)
                )
            config.stats = await runners.stop()
    finally:
        await database.dispose()


# Refunds under a backlog ----------------------------------------------------------------------


@dataclass
class Backlogged:
    """Refunds inspected one after another just after ``backlog`` no-op jobs were committed."""

    refunds: int
    backlog: int
    wait_ms: int
    delays_ms: list[float]
    stages: list[tuple[float, ...]]
    queued_at_inspection: list[int]
    checks: list[str]
    problems: list[str]

    def percentile(self, fraction: float) -> float:
        return percentile(self.delays_ms, fraction)


async def measure_refunds_under_backlog(
    url: str, options: Options, logs: Path, wait_ms: int
) -> Backlogged:
    """The delay from an inspection's commit to the fake Stripe receiving its refund POST, for
    ``--refunds`` RMAs inspected one at a time (random gaps of up to 50 ms) right after
    ``--backlog`` no-op jobs were committed, with 4 worker processes running the app's handlers
    and the no-op one. The RMAs are set up as in benchmarks/refunds.py (auto_resolve policy, a
    Stripe connection to the fake); the money is checked the same way."""
    fake = FakeStripe(refund_mode="succeeded")
    fake.start()
    database = Database(url)
    env = worker_environment(sa.make_url(url).render_as_string(hide_password=False), fake.base_url)
    runners = Processes(url, 4, options.concurrency, logs, app_env=env)
    try:
        progress(f"refunds under a backlog: setup, {options.refunds} paid orders and RMAs")
        shop = await prepare_shop(database, fake, options.refunds)
        await runners.start()
        await asyncio.sleep(SETTLE_SECONDS)
        progress(
            f"refunds under a backlog: {options.backlog} {backlog_name(wait_ms)} committed, "
            f"then {options.refunds} inspections"
        )
        await enqueue_all(database, options.backlog, wait_ms)
        committed: dict[uuid.UUID, float] = {}
        queued: list[int] = []
        rng = random.Random(options.refunds)
        # One refund at a time, as in refunds.py's idle probes: the load is the backlog, not
        # refunds competing with each other.
        for rma in shop.rmas:
            await asyncio.sleep(rng.uniform(0.0, PROBE_PAUSE_SECONDS))
            queued.append(await count_in_states(database, [JobState.QUEUED]))
            committed[rma.rma_id] = await inspect_one(database, shop.merchant_id, rma)
            await wait_resolved(
                database,
                [rma.rma_id],
                runners,  # type: ignore[arg-type]
                STARTUP_SECONDS,
                every=RESOLVED_POLL_SECONDS,
            )
        # The backlog is left behind: stopping hands back the jobs in hand.
        await runners.stop()
        result = RefundResult("4 worker processes", 4, options.refunds)
        first_post = check_money(
            result,
            fake,
            shop,
            await settled_rmas(database, shop.merchant_id),
            await job_summary(database),
        )
        by_rma = {rma.rma_id: rma.payment_intent for rma in shop.rmas}
        delays = [1000.0 * (first_post[by_rma[r]] - at) for r, at in committed.items()]
        jobs = await job_times(database)
        stages = [stages_of(r, at, first_post[by_rma[r]], jobs) for r, at in committed.items()]
        return Backlogged(
            options.refunds,
            options.backlog,
            wait_ms,
            delays,
            stages,
            queued,
            result.checks,
            result.problems,
        )
    finally:
        runners.kill()
        await database.dispose()
        fake.stop()


# Output ---------------------------------------------------------------------------------------


def print_header(options: Options) -> None:
    poll_interval = next(entry.default for entry in fields(Worker) if entry.name == "poll_interval")
    print_banner(
        "Job queue benchmark: no-op jobs through core.jobs.worker.Worker.",
        f"run:     {options.jobs} jobs committed at once then drained per configuration; "
        f"concurrency {options.concurrency} per runner; poll interval {poll_interval} s; "
        f"{options.probes} probes at ~{options.rate:g}/s for the delay",
    )


def print_results(configs: Sequence[Config]) -> None:
    measured = [config for config in configs if config.throughput and config.stats]
    print("Throughput (first claim to last finish, from job.started_at / job.finished_at)")
    table(
        (
            "configuration",
            "jobs/s",
            "drain s",
            "runner CPU ms/job",
            "enqueue jobs/s",
            "done",
            "not done",
            "rerun",
        ),
        [
            (
                c.label,
                f"{c.throughput.jobs_per_second:.1f}",
                f"{c.throughput.drain_seconds:.2f}",
                f"{c.throughput.cpu_ms_per_job:.2f}",
                f"{c.throughput.enqueued_per_second:.0f}",
                str(c.throughput.done),
                str(c.throughput.not_done),
                str(c.throughput.rerun),
            )
            for c in measured
            if c.throughput
        ],
    )
    print()
    print("Commit to job start (probes one at a time, runners idle)")
    table(
        ("configuration", "p50 ms", "p99 ms", "max ms", "mean ms", "probes"),
        [
            (
                d.label,
                f"{d.percentile(0.50):.1f}",
                f"{d.percentile(0.99):.1f}",
                f"{max(d.delays_ms):.1f}",
                f"{statistics.fmean(d.delays_ms):.1f}",
                str(d.probes),
            )
            for c in measured
            for d in c.delays or []
        ],
    )
    print()
    print("Worker stats (all runners of a configuration, at stop)")
    table(
        ("configuration", *(entry.name for entry in fields(WorkerStats))),
        [
            (c.label, *(str(getattr(c.stats, entry.name)) for entry in fields(WorkerStats)))
            for c in measured
        ],
    )
    for c in measured:
        expected = c.throughput.jobs + sum(d.probes for d in c.delays or []) if c.throughput else 0
        if c.stats and c.stats.done != expected:
            print(
                f"warning: {c.label}: the workers report {c.stats.done} jobs done, not {expected}"
            )
        if c.throughput and (c.throughput.not_done or c.throughput.rerun):
            print(
                f"warning: {c.label}: {c.throughput.not_done} jobs not DONE, "
                f"{c.throughput.rerun} run more than once"
            )


def backlog_name(wait_ms: int) -> str:
    return f"jobs of {wait_ms} ms (asleep)" if wait_ms else "no-op jobs"


def print_backlogged(backlogged: Backlogged) -> None:
    print()
    print(
        f"Refunds under a backlog: inspection commit -> refund POST at the fake Stripe, "
        f"{backlogged.backlog} {backlog_name(backlogged.wait_ms)} committed just before, "
        "4 worker processes"
    )
    table(
        ("refunds", "p50 ms", "p99 ms", "max ms", "min ms", "backlog queued at inspections"),
        [
            (
                str(backlogged.refunds),
                f"{backlogged.percentile(0.50):.0f}",
                f"{backlogged.percentile(0.99):.0f}",
                f"{max(backlogged.delays_ms):.0f}",
                f"{min(backlogged.delays_ms):.0f}",
                f"{min(backlogged.queued_at_inspection)} to {max(backlogged.queued_at_inspection)}",
            )
        ],
    )
    print("Where it goes (median ms of each stage, cut at the jobs' started/finished_at)")
    table(
        STAGES,
        [
            tuple(
                f"{1000 * statistics.median(stage[i] for stage in backlogged.stages):.0f}"
                for i in range(len(STAGES))
            )
        ],
    )
    for line in backlogged.checks:
        print(f"  {line}")
    for line in backlogged.problems:
        print(f"  PROBLEM: {line}")


def print_targets(configs: Sequence[Config], backlogs: Sequence[Backlogged]) -> None:
    """The targets of issue 16 (jobs), for PostgreSQL with 4 worker processes."""
    four = next((c for c in configs if c.label == FOUR_WORKERS and c.throughput), None)
    rows: list[tuple[str, str, str]] = []
    if four is not None and four.throughput is not None and four.delays:
        jobs = four.throughput.jobs_per_second
        p50 = four.delays[0].percentile(0.50)
        rows += [
            ("at least 1,000 no-op jobs/s", f"{jobs:.0f} jobs/s", met(jobs >= 1000)),
            ("commit-to-start p50 under 50 ms", f"{p50:.1f} ms", met(p50 < 50)),
        ]
    for backlogged in backlogs:
        p50 = backlogged.percentile(0.50)
        rows.append(
            (
                f"refund p50 under 200 ms, {backlogged.backlog} "
                f"{backlog_name(backlogged.wait_ms)} queued",
                f"{p50:.0f} ms",
                met(p50 < 200 and not backlogged.problems),
            )
        )
    if rows:
        print()
        print("Targets (PostgreSQL, 4 worker processes)")
        table(("target", "measured", ""), rows)


def met(condition: bool) -> str:
    return "MET" if condition else "NOT MET"


# Entry point ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    jobs: int
    concurrency: int
    probes: int
    rate: float
    postgres_url: str
    sqlite_only: bool
    refunds: int
    backlog: int
    backlog_wait_ms: int


def non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return number


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--jobs", type=positive, default=1000, help="jobs drained per configuration (1000)"
    )
    parser.add_argument(
        "--concurrency", type=positive, default=4, help="jobs at once per runner (4)"
    )
    parser.add_argument("--probes", type=positive, default=100, help="delay probes (100)")
    parser.add_argument("--rate", type=positive_float, default=20.0, help="probes a second (20)")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help=f"PostgreSQL server for the throwaway databases ({DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--refunds",
        type=non_negative,
        default=20,
        help="refunds measured under the backlog, 0 to skip (20)",
    )
    parser.add_argument(
        "--backlog", type=positive, default=10_000, help="other jobs queued around them (10000)"
    )
    parser.add_argument(
        "--backlog-wait-ms",
        type=positive,
        default=50,
        help="the second backlog's jobs each wait this long, as for an API call (50)",
    )
    parser.add_argument("--run-worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--app-handlers", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bench(options: Options) -> None:
    configs = [Config("sqlite, 1 in-process runner", "sqlite", 1, in_process=True)]
    print_header(options)
    if reason := postgres_skip_reason(options.sqlite_only, options.postgres_url):
        print(f"[postgres] skipped: {reason}\n")
    else:
        configs += [
            Config("postgres, 1 worker process", "postgres", 1, in_process=False),
            Config(FOUR_WORKERS, "postgres", 4, in_process=False),
        ]
    backlogs: list[Backlogged] = []
    with tempfile.TemporaryDirectory(prefix="rma-jobs-bench-") as name:
        directory = Path(name)
        for config in configs:
            with fresh_database(config.backend, options, directory) as url:
                asyncio.run(run_config(config, url, options, directory))
        if len(configs) > 1 and options.refunds:
            for wait_ms in (0, options.backlog_wait_ms):
                with fresh_database("postgres", options, directory) as url:
                    backlogs.append(
                        asyncio.run(measure_refunds_under_backlog(url, options, directory, wait_ms))
                    )
    print_results(configs)
    for backlogged in backlogs:
        print_backlogged(backlogged)
    print_targets(configs, backlogs)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.run_worker:
        return run_worker_process(
            arguments.run_worker, arguments.concurrency, app_handlers=arguments.app_handlers
        )
    options = Options(
        arguments.jobs,
        arguments.concurrency,
        arguments.probes,
        arguments.rate,
        arguments.postgres_url,
        arguments.sqlite_only,
        arguments.refunds,
        arguments.backlog,
        arguments.backlog_wait_ms,
    )
    quiet_logs()
    return exit_status(lambda: bench(options))


if __name__ == "__main__":
    sys.exit(main())
