"""A job worker process to kill, and the harness that kills it: for the chaos test and benchmark.

Run as a process (from the project root)::

    python -m testkit.chaos_worker --url postgresql://... --concurrency 4 --name w1

it runs one real :class:`core.jobs.worker.Worker` with a short lease and one handler,
``chaos.effect``, that leaves a trace of every execution in two tables of its own:

- ``chaos_interval``: one row per execution, written in its own transaction before the work
  (job, lock key, worker, start) and completed after it (end, outcome); an execution whose
  process was killed keeps no end;
- ``chaos_effect``: the job's one effect, keyed by job id and inserted with ``ON CONFLICT DO
  NOTHING`` in the same transaction that completes the interval, as an idempotent handler does.

The clock is the database's ``clock_timestamp()``, one clock for every process. The process
stops gracefully on SIGTERM or SIGINT (the worker finishes or hands back the jobs in hand).

The tables are not part of the schema: :data:`SCHEMA` is created by whoever runs the chaos, in a
throwaway database. The rest of the module drives a fleet of these processes and reads the
traces back; ``tests/integration/test_job_chaos.py`` and ``benchmarks/jobs_chaos.py`` use it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.jobs.worker import Handler, JobContext, Worker
from core.outbox.queue import enqueue

KIND = "chaos.effect"
PROJECT = Path(__file__).resolve().parent.parent

SCHEMA = (
    """
    CREATE TABLE chaos_interval (
        id bigserial PRIMARY KEY,
        job_id uuid NOT NULL,
        lock_key text,
        worker text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        outcome text
    )
    """,
    "CREATE INDEX ix_chaos_interval_job ON chaos_interval (job_id)",
    """
    CREATE TABLE chaos_effect (
        job_id uuid PRIMARY KEY,
        worker text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )
    """,
)

_START = sa.text(
    "INSERT INTO chaos_interval (job_id, lock_key, worker, started_at)"
    " VALUES (:job_id, :lock_key, :worker, clock_timestamp()) RETURNING id"
)
_EFFECT = sa.text(
    "INSERT INTO chaos_effect (job_id, worker) VALUES (:job_id, :worker)"
    " ON CONFLICT (job_id) DO NOTHING"
)
_END = sa.text(
    "UPDATE chaos_interval SET finished_at = clock_timestamp(), outcome = :outcome WHERE id = :id"
)


class ChaosFailure(Exception):
    """The transient failure a handler reports when ``--fail-rate`` asks for one."""


# --- the worker process --------------------------------------------------------------------------


def effect_handler(worker_name: str, *, min_ms: float, max_ms: float, fail_rate: float) -> Handler:
    """The ``chaos.effect`` handler: trace the execution, wait, apply the effect once.

    A job's payload may set ``seconds`` to make that one job slow.
    """

    async def effect(context: JobContext) -> None:
        job = context.job
        engine = context.database.write_engine
        async with engine.begin() as connection:
            started = await connection.execute(
                _START, {"job_id": job.id, "lock_key": job.lock_key, "worker": worker_name}
            )
            interval = started.scalar_one()
        seconds = job.payload.get("seconds")
        await asyncio.sleep(
            float(seconds) if seconds is not None else random.uniform(min_ms, max_ms) / 1000
        )
        if fail_rate and random.random() < fail_rate:
            async with engine.begin() as connection:
                await connection.execute(_END, {"id": interval, "outcome": "failed"})
            raise ChaosFailure("the chaos handler failed on purpose")
        async with engine.begin() as connection:
            inserted = await connection.execute(_EFFECT, {"job_id": job.id, "worker": worker_name})
            outcome = "ok" if inserted.rowcount else "duplicate"
            await connection.execute(_END, {"id": interval, "outcome": outcome})

    return effect


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A chaos.effect job worker.")
    parser.add_argument("--url", required=True, help="the database URL")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--name", required=True, help="the worker's name (the pid is appended)")
    parser.add_argument("--lease", type=float, default=3.0, help="lease seconds (3)")
    parser.add_argument("--poll", type=float, default=0.05, help="poll interval seconds (0.05)")
    parser.add_argument("--grace", type=float, default=10.0, help="drain seconds on SIGTERM (10)")
    parser.add_argument("--retry-base", type=float, default=0.05, help="retry backoff base (0.05)")
    parser.add_argument("--min-ms", type=float, default=2.0, help="shortest job, ms (2)")
    parser.add_argument("--max-ms", type=float, default=8.0, help="longest job, ms (8)")
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="chance an execution fails (0)"
    )
    return parser.parse_args(argv)


async def run_worker(arguments: argparse.Namespace) -> None:
    name = f"{arguments.name}:{os.getpid()}"
    # Each running job may hold two connections (its own and its heartbeat's), plus the loop's.
    database = Database(arguments.url, pool_size=arguments.concurrency + 1)
    handler = effect_handler(
        name, min_ms=arguments.min_ms, max_ms=arguments.max_ms, fail_rate=arguments.fail_rate
    )
    worker = Worker(
        database,
        {KIND: handler},
        concurrency=arguments.concurrency,
        lease=timedelta(seconds=arguments.lease),
        poll_interval=arguments.poll,
        grace_seconds=arguments.grace,
        retry_base_seconds=arguments.retry_base,
        name=name,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await worker.run(stop)
    finally:
        await database.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run_worker(parse_arguments(argv)))


# --- the harness ---------------------------------------------------------------------------------


async def create_tables(database: Database) -> None:
    async with database.write_engine.begin() as connection:
        for statement in SCHEMA:
            await connection.execute(sa.text(statement))


async def enqueue_jobs(
    database: Database,
    count: int,
    *,
    rng: random.Random,
    keyed_share: float = 0.3,
    jobs_per_key: int = 10,
    key_count: int | None = None,
    batch: int = 2000,
) -> dict[uuid.UUID, str | None]:
    """Enqueue ``count`` chaos jobs; about ``keyed_share`` of them share lock keys.

    Returns each job's lock key. Keyed jobs are spread over ``keyed / jobs_per_key`` keys (or
    ``key_count``) and shuffled among the others, so jobs of one key wait behind each other all
    through the run.
    """
    keyed = round(count * keyed_share)
    keys = key_count or (max(1, keyed // jobs_per_key) if keyed else 0)
    lock_keys: list[str | None] = [f"chaos:{index % keys}" for index in range(keyed)]
    lock_keys += [None] * (count - keyed)
    rng.shuffle(lock_keys)
    created: dict[uuid.UUID, str | None] = {}
    for start in range(0, count, batch):
        async with database.session() as session, session.begin():
            for lock_key in lock_keys[start : start + batch]:
                job = enqueue(session, KIND, {}, lock_key=lock_key, now=SYSTEM_CLOCK.now())
                created[job.id] = lock_key
    return created


@dataclass
class Fleet:
    """Worker processes of ``python -m testkit.chaos_worker``, started, killed and replaced."""

    url: str
    logs: Path
    size: int = 4
    concurrency: int = 4
    extra: Sequence[str] = ()
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs_of: dict[int, Path] = field(default_factory=dict)
    started: int = 0
    kills: int = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        name = f"w{self.started}"
        environment = {key: value for key, value in os.environ.items() if key[:4] != "RMA_"}
        environment["PYTHONUNBUFFERED"] = "1"
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "testkit.chaos_worker",
                    "--url",
                    self.url,
                    "--concurrency",
                    str(self.concurrency),
                    "--name",
                    name,
                    *self.extra,
                ],
                cwd=PROJECT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        self.logs_of[process.pid] = self.logs / f"{name}.log"
        return process

    def fill(self) -> None:
        while len(self.alive()) < self.size:
            self.start()

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [process for process in self.processes if process.poll() is None]

    def crashed(self) -> list[subprocess.Popen[bytes]]:
        """Processes that exited on their own (a worker must only die when it is killed)."""
        return [
            process
            for process in self.processes
            if process.returncode is not None and process.returncode != -signal.SIGKILL
        ]

    def working(self) -> list[subprocess.Popen[bytes]]:
        """Live workers past their start-up (their worker loop has logged that it started)."""
        return [
            process
            for process in self.alive()
            if "worker started" in self.logs_of[process.pid].read_text(errors="replace")
        ]

    def kill_one(self, rng: random.Random) -> bool:
        """SIGKILL a random worker and start its replacement; False (and no kill) while the
        last replacement is still starting.

        So at most one worker is ever starting up: on a loaded machine start-up can take longer
        than the pause between kills, and a fleet that never gets past it would do no work.
        """
        working = self.working()
        if not working or len(working) < len(self.alive()):
            return False
        victim = rng.choice(working)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        self.kills += 1
        self.start()
        return True

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every live worker and wait; SIGKILL whatever does not stop in time."""
        for process in self.alive():
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def log_tail(self, files: int = 4, lines: int = 12) -> str:
        """The last lines of the last logs that say more than "worker started/stopped"."""
        chatty = []
        for process_number in range(self.started, 0, -1):
            path = self.logs / f"w{process_number}.log"
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            said = [line for line in text if "worker started" not in line]
            if [line for line in said if "worker stopped" not in line]:
                chatty.append(f"--- {path.name}\n" + "\n".join(said[-lines:]))
            if len(chatty) == files:
                break
        return "\n".join(chatty) or "(the workers logged nothing unusual)"


@dataclass(frozen=True, slots=True)
class Interval:
    job_id: uuid.UUID
    lock_key: str | None
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None


@dataclass
class Census:
    """What the database says happened to the chaos jobs."""

    states: Counter[str]
    attempts: int
    effects: set[uuid.UUID]
    intervals: list[Interval]
    max_lag: timedelta
    dead_errors: list[str]

    @property
    def executions(self) -> int:
        return len(self.intervals)

    @property
    def duplicates_avoided(self) -> int:
        """Executions that reached the effect after another execution had already applied it."""
        return sum(interval.outcome == "duplicate" for interval in self.intervals)

    @property
    def interrupted(self) -> int:
        """Executions cut short by a kill (they never recorded an end)."""
        return sum(interval.finished_at is None for interval in self.intervals)

    def overlaps(self) -> list[tuple[Interval, Interval]]:
        """Completed executions that overlap although they share a lock key or a job."""
        groups: dict[tuple[str, object], list[Interval]] = defaultdict(list)
        for interval in self.intervals:
            if interval.finished_at is None:
                continue
            groups[("job", interval.job_id)].append(interval)
            if interval.lock_key is not None:
                groups[("key", interval.lock_key)].append(interval)
        found = []
        for spans in groups.values():
            ordered = sorted(spans, key=lambda interval: interval.started_at)
            for earlier, later in itertools.pairwise(ordered):
                assert earlier.finished_at is not None
                if later.started_at < earlier.finished_at:
                    found.append((earlier, later))
        return found


async def census(database: Database) -> Census:
    async with database.write_engine.connect() as connection:
        states = Counter(
            {
                state: count
                for state, count in await connection.execute(
                    sa.text("SELECT state, count(*) FROM job WHERE kind = :kind GROUP BY state"),
                    {"kind": KIND},
                )
            }
        )
        attempts, max_lag = (
            await connection.execute(
                sa.text(
                    "SELECT coalesce(sum(attempts), 0), coalesce(max(finished_at - run_at),"
                    " interval '0') FROM job WHERE kind = :kind"
                ),
                {"kind": KIND},
            )
        ).one()
        dead_errors = list(
            (
                await connection.execute(
                    sa.text(
                        "SELECT coalesce(last_error, '') FROM job"
                        " WHERE kind = :kind AND state = 'DEAD' LIMIT 5"
                    ),
                    {"kind": KIND},
                )
            ).scalars()
        )
        effects = set(
            (await connection.execute(sa.text("SELECT job_id FROM chaos_effect"))).scalars()
        )
        intervals = [
            Interval(*row)
            for row in await connection.execute(
                sa.text(
                    "SELECT job_id, lock_key, worker, started_at, finished_at, outcome"
                    " FROM chaos_interval"
                )
            )
        ]
    return Census(states, int(attempts), effects, intervals, max_lag, dead_errors)


@dataclass(frozen=True, slots=True)
class ChaosRun:
    seconds: float
    kills: int
    workers_started: int
    finished: bool


async def run_chaos(
    database: Database,
    fleet: Fleet,
    *,
    rng: random.Random,
    kill_every: tuple[float, float] | None = (0.7, 1.3),
    within_seconds: float = 90.0,
    poll: float = 0.1,
    expected: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> ChaosRun:
    """Keep ``fleet`` full and SIGKILL one of its working workers every ``kill_every`` seconds.

    The pause between kills is drawn uniformly from ``kill_every`` (None: no kills); a kill
    waits until the previous replacement is past its start-up. Stops when
    every chaos job is DONE (at least ``expected`` of them, when jobs are still being added),
    after ``within_seconds``, or as soon as a worker exits on its own (a crash). ``progress``
    hears (done, total, kills) at each poll.
    """
    fleet.fill()
    begin = time.monotonic()
    next_kill = begin + rng.uniform(*kill_every) if kill_every else float("inf")
    finished = False
    while time.monotonic() - begin < within_seconds and not fleet.crashed():
        done, total = await jobs_done(database)
        if progress is not None:
            progress(done, total, fleet.kills)
        if done == total and done >= (expected or 0):
            finished = True
            break
        if kill_every and time.monotonic() >= next_kill and fleet.kill_one(rng):
            next_kill = time.monotonic() + rng.uniform(*kill_every)
        await asyncio.sleep(poll)
    return ChaosRun(time.monotonic() - begin, fleet.kills, fleet.started, finished)


async def jobs_done(database: Database) -> tuple[int, int]:
    """(DONE, all) chaos jobs."""
    async with database.write_engine.connect() as connection:
        done, total = (
            await connection.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE state = 'DONE'), count(*) FROM job"
                    " WHERE kind = :kind"
                ),
                {"kind": KIND},
            )
        ).one()
    return int(done), int(total)


if __name__ == "__main__":
    main()
