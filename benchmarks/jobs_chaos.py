"""The job queue under chaos: worker processes killed at random while they drain one queue.

The full-size run of ``tests/integration/test_job_chaos.py``. On a throwaway PostgreSQL database
the script

1. enqueues ``--jobs`` jobs of kind ``chaos.effect`` (10,000), a ``--keyed`` share of them (30%)
   on lock keys shared by ``--per-key`` jobs each (10), all at once, or at ``--rate`` jobs per
   second while the workers run;
2. runs ``--workers`` worker processes (4; ``python -m testkit.chaos_worker``, each a real
   ``core.jobs.worker.Worker`` with ``--concurrency`` slots and a ``--lease`` second lease) and
   SIGKILLs a random one every ``--kill-every`` seconds (3, jittered by +-30%; 0 never kills),
   starting a replacement each time (the next kill waits until it is up), until every job is
   DONE or ``--timeout`` passes; ``--fail-rate`` makes executions fail at random, to retry;
3. checks what the test checks (every job DONE, its effect applied exactly once, none dead,
   executions of one lock key or one job never overlapping) and prints the figures: jobs/s, kills,
   executions, duplicates avoided (executions that found their effect already applied: the
   job ran again after a kill that came between its effect and its acknowledgement), lag from due
   to done (p50, p99, max), and the worst delay a kill caused a job.

Each job's handler traces itself in its own tables (see ``testkit/chaos_worker.py``): a row per
execution with start and end on the database clock, and the effect keyed by job id, inserted with
``ON CONFLICT DO NOTHING``.

Run it from the project root:

    .venv/bin/python benchmarks/jobs_chaos.py
    .venv/bin/python benchmarks/jobs_chaos.py --jobs 2000 --kill-every 1
    .venv/bin/python benchmarks/jobs_chaos.py --kill-every 0      # the same load, no kills
    .venv/bin/python benchmarks/jobs_chaos.py --rate 150 --jobs 6000   # lag at a steady load

PostgreSQL comes from ``--postgres-url``, else ``RMA_BENCH_POSTGRES_URL``, else the local default
server; the user needs the right to create databases. The database is dropped at the end, even
after a failure. Exit status 1 when a check fails or the jobs are not done in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
# The worker entry script and the chaos harness are in ``testkit``, shared with the chaos test and
# not installed: import it from the project root, where the workers run as
# ``python -m testkit.chaos_worker``.
sys.path.insert(0, str(PROJECT))

from core.database import Database  # noqa: E402
from core.migrate import upgrade_async  # noqa: E402
from testkit.chaos_worker import (  # noqa: E402
    KIND,
    Census,
    ChaosRun,
    Fleet,
    census,
    create_tables,
    enqueue_jobs,
    run_chaos,
)

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class Options:
    jobs: int
    workers: int
    concurrency: int
    kill_every: float
    keyed: float
    per_key: int
    lease: float
    rate: float
    fail_rate: float
    timeout: float
    seed: int
    postgres_url: str
    logs: Path | None


# The throwaway database ---------------------------------------------------------------------


def asyncpg_dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def throwaway_database(server_url: str) -> AsyncIterator[str]:
    """A migrated empty database on the server, dropped afterwards even on failure."""
    server = sa.make_url(server_url)
    name = f"rma_bench_chaos_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        yield url
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(server))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# The run ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lag:
    p50: float
    p99: float
    max: float
    worst_rerun: float


async def lag(database: Database) -> Lag:
    """Seconds from due to done, and the longest a job that ran twice took from first start."""
    async with database.write_engine.connect() as connection:
        p50, p99, longest = (
            await connection.execute(
                sa.text(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),"
                    " percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), max(lag)"
                    " FROM (SELECT extract(epoch FROM finished_at - run_at) AS lag FROM job"
                    " WHERE kind = :kind AND state = 'DONE') AS done"
                ),
                {"kind": KIND},
            )
        ).one()
        worst_rerun = (
            await connection.execute(
                sa.text(
                    "SELECT coalesce(max(extract(epoch FROM job.finished_at - runs.first)), 0)"
                    " FROM job JOIN (SELECT job_id, min(started_at) AS first, count(*) AS n"
                    " FROM chaos_interval GROUP BY job_id) AS runs ON runs.job_id = job.id"
                    " WHERE runs.n > 1"
                )
            )
        ).scalar_one()
    return Lag(float(p50 or 0), float(p99 or 0), float(longest or 0), float(worst_rerun))


async def produce(
    database: Database,
    options: Options,
    rng: random.Random,
    keys: int,
    created: dict[uuid.UUID, str | None],
) -> None:
    """Enqueue the jobs at ``options.rate`` per second, a tenth of a second's worth at a time."""
    step = max(1, round(options.rate / 10))
    begin = time.monotonic()
    while len(created) < options.jobs:
        chunk = min(step, options.jobs - len(created))
        created |= await enqueue_jobs(
            database,
            chunk,
            rng=rng,
            keyed_share=options.keyed,
            jobs_per_key=options.per_key,
            key_count=keys,
        )
        due = begin + len(created) / options.rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))


def progress_printer() -> Callable[[int, int, int], None]:
    """A progress line on standard error every five seconds."""
    last = time.monotonic()

    def progress(done: int, total: int, kills: int) -> None:
        nonlocal last
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            print(f"  ... {done}/{total} done, {kills} kills", file=sys.stderr, flush=True)

    return progress


@dataclass(frozen=True, slots=True)
class Outcome:
    chaos: ChaosRun
    census: Census
    lag: Lag
    jobs: set[uuid.UUID]
    log_tail: str


async def run(options: Options, logs: Path) -> Outcome:
    rng = random.Random(options.seed)
    keyed = round(options.jobs * options.keyed)
    keys = max(1, keyed // options.per_key) if keyed else 0
    async with throwaway_database(options.postgres_url) as url:
        database = Database(url, pool_size=4)
        try:
            await create_tables(database)
            producer = None
            jobs: dict[uuid.UUID, str | None] = {}
            if options.rate:
                producer = asyncio.create_task(produce(database, options, rng, keys, jobs))
                await asyncio.sleep(0.2)
            else:
                jobs = await enqueue_jobs(
                    database,
                    options.jobs,
                    rng=rng,
                    keyed_share=options.keyed,
                    jobs_per_key=options.per_key,
                )
            fleet = Fleet(
                url,
                logs,
                size=options.workers,
                concurrency=options.concurrency,
                extra=["--lease", str(options.lease), "--fail-rate", str(options.fail_rate)],
            )
            spread = options.kill_every * 0.3
            try:
                chaos = await run_chaos(
                    database,
                    fleet,
                    rng=rng,
                    kill_every=(
                        (options.kill_every - spread, options.kill_every + spread)
                        if options.kill_every
                        else None
                    ),
                    within_seconds=options.timeout,
                    expected=options.jobs,
                    progress=progress_printer(),
                )
            finally:
                fleet.stop()
                if producer is not None:
                    producer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await producer
            return Outcome(
                chaos, await census(database), await lag(database), set(jobs), fleet.log_tail()
            )
        finally:
            await database.dispose()


# Output -------------------------------------------------------------------------------------


def print_header(options: Options) -> None:
    keyed = round(options.jobs * options.keyed)
    keys = max(1, keyed // options.per_key) if keyed else 0
    kills = f"SIGKILL every ~{options.kill_every:g} s" if options.kill_every else "no kills"
    arrival = f"enqueued at {options.rate:g}/s" if options.rate else "enqueued up front"
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"postgres   {sa.make_url(options.postgres_url).render_as_string(hide_password=True)}")
    print(
        f"jobs       {options.jobs} ({keyed} on {keys} lock keys), {arrival}, seed {options.seed}"
    )
    print(
        f"workers    {options.workers} x concurrency {options.concurrency}, "
        f"lease {options.lease:g} s, {kills}"
    )
    print()


def report(options: Options, outcome: Outcome) -> list[str]:
    """Print the figures; the failed checks."""
    chaos, result, lags, jobs = outcome.chaos, outcome.census, outcome.lag, outcome.jobs
    done = result.states.get("DONE", 0)
    reruns = result.attempts - len(jobs)
    print(f"elapsed            {chaos.seconds:8.1f} s    {done / chaos.seconds:8.1f} jobs/s")
    print(f"kills              {chaos.kills:8d}      ({chaos.workers_started} processes started)")
    print(f"executions         {result.executions:8d}      (one per job: {len(jobs)})")
    print(f"  cut short        {result.interrupted:8d}      (by a kill, never finished)")
    print(f"  duplicates       {result.duplicates_avoided:8d}      avoided (effect already there)")
    failed = sum(interval.outcome == "failed" for interval in result.intervals)
    if options.fail_rate:
        print(f"  failed           {failed:8d}      (on purpose, then retried)")
    print(f"extra attempts     {reruns:8d}")
    print(f"lag due -> done    {lags.p50:8.2f} s p50  {lags.p99:.2f} s p99  {lags.max:.2f} s max")
    print(f"worst re-run       {lags.worst_rerun:8.2f} s    (first start -> done, jobs run twice)")
    problems = []
    if not chaos.finished:
        problems.append(f"not every job was DONE within {options.timeout:g} s")
    if done != len(jobs) or set(result.states) - {"DONE"}:
        problems.append(f"job states {dict(result.states)}")
    if result.effects != jobs:
        problems.append(f"effects for {len(result.effects & jobs)} of {len(jobs)} jobs")
    if result.dead_errors:
        problems.append(f"dead jobs: {result.dead_errors}")
    overlaps = result.overlaps()
    if overlaps:
        problems.append(f"{len(overlaps)} overlapping executions, e.g. {overlaps[0]}")
    print()
    print("checks             " + ("OK" if not problems else "FAILED"))
    for problem in problems:
        print(f"  - {problem}")
    return problems


# Entry point --------------------------------------------------------------------------------


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def share(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=positive, default=10_000, help="jobs (10000)")
    parser.add_argument("--workers", type=positive, default=4, help="worker processes (4)")
    parser.add_argument("--concurrency", type=positive, default=4, help="slots a worker (4)")
    parser.add_argument(
        "--kill-every", type=non_negative, default=3.0, help="seconds between kills, 0: none (3)"
    )
    parser.add_argument("--keyed", type=share, default=0.3, help="share with lock keys (0.3)")
    parser.add_argument("--per-key", type=positive, default=10, help="jobs a lock key (10)")
    parser.add_argument("--lease", type=float, default=3.0, help="lease seconds (3)")
    parser.add_argument(
        "--rate", type=non_negative, default=0.0, help="jobs enqueued a second, 0: at once (0)"
    )
    parser.add_argument(
        "--fail-rate", type=share, default=0.0, help="chance an execution fails and retries (0)"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (900 s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (drawn)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RMA_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create the throwaway database on (env RMA_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--logs", type=Path, default=None, help="keep worker logs here")
    parsed = parser.parse_args(argv)
    return Options(
        jobs=parsed.jobs,
        workers=parsed.workers,
        concurrency=parsed.concurrency,
        kill_every=parsed.kill_every,
        keyed=parsed.keyed,
        per_key=parsed.per_key,
        lease=parsed.lease,
        rate=parsed.rate,
        fail_rate=parsed.fail_rate,
        timeout=parsed.timeout,
        seed=parsed.seed if parsed.seed is not None else random.randrange(2**32),
        postgres_url=parsed.postgres_url,
        logs=parsed.logs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    print_header(options)
    with tempfile.TemporaryDirectory(prefix="rma-chaos-") as directory:
        outcome = asyncio.run(run(options, options.logs or Path(directory)))
    problems = report(options, outcome)
    if problems:
        print()
        print(outcome.log_tail)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
