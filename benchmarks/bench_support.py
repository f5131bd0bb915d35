"""What the benchmark scripts share: the report's banner and tables, the ``rma`` command, throwaway
PostgreSQL databases, server and worker processes, CPU accounting, and wrk.

The scripts in ``benchmarks/`` are run as files (``.venv/bin/python benchmarks/jobs.py``), so
their own folder is first on ``sys.path`` and they import this module as ``bench_support``.
Nothing here may import the ``graphql`` package (graphql-core) or the project's ``webhooks``
package: ``benchmarks/graphql.py`` and ``benchmarks/webhooks.py`` would stand in for them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import sqlalchemy as sa
import structlog

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
# Under wrk, the server under test runs on one CPU and wrk on another.
SERVER_CPU = "1"
LOAD_CPU = "0"
WARMUP_SECONDS = 1
WRK_TIMEOUT = "10s"
SERVER_STARTUP_SECONDS = 30.0
# Other processes taking more than this share of a benchmark CPU make requests/s unreliable.
NOISY_PERCENT = 10.0

T = TypeVar("T")


class BenchError(RuntimeError):
    """Something the benchmark needs failed; the message says what."""


# The report -----------------------------------------------------------------------------------


def progress(message: str) -> None:
    """A progress line on standard error, after what the report printed so far."""
    sys.stdout.flush()
    print(f"... {message}", file=sys.stderr, flush=True)


def quiet_logs() -> None:
    """Keep the project's info lines out of the report; warnings still show."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def positive(value: str) -> int:
    """An argparse type: an integer of 1 or more."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def add_postgres_url_option(parser: argparse.ArgumentParser) -> None:
    """``--postgres-url``: the server for throwaway databases, else ``RMA_BENCH_POSTGRES_URL``,
    else ``DEFAULT_POSTGRES_URL``."""
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RMA_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create throwaway databases on (env RMA_BENCH_POSTGRES_URL)",
    )


def exit_status(bench: Callable[[], object]) -> int:
    """Run ``bench``; the exit status: 0, or 1 after printing the ``BenchError`` that stopped
    it."""
    try:
        bench()
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def safe_url(url: str) -> str:
    """``url`` with its password hidden, fit to print."""
    return sa.make_url(url).render_as_string(hide_password=True)


def print_banner(title: str, *lines: str, wrk: str | None = None, load: bool = True) -> None:
    """The report's head: ``title``, the machine and Python, wrk's version (given its path), the
    load average (unless ``load`` is false), then the script's own ``lines`` and a blank line."""
    print(title)
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} "
        f"{platform.release()}"
    )
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    if wrk is not None:
        print(f"wrk:     {wrk_version(wrk)}")
    if load:
        averages = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"load:    {averages} (1, 5, 15 min) at the start")
    for line in lines:
        print(line)
    print()


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> None:
    """Print rows under a header: the first ``left`` columns left-aligned, the others
    right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        cells = [line[i].ljust(widths[i]) for i in range(left)]
        cells += [line[i].rjust(widths[i]) for i in range(left, len(header))]
        print("  ".join(cells))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank ``fraction`` percentile of ``values`` (0.5 for the median)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# The rma command ------------------------------------------------------------------------------


def rma_command() -> list[str]:
    """The ``rma`` console script next to this interpreter, else the module behind it."""
    script = Path(sys.executable).with_name("rma")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "graphql_api.cli"]


def rma_serve_command(port: int, *flags: str) -> list[str]:
    """``rma serve`` on ``HOST`` and ``port``, with ``flags`` after."""
    return [*rma_command(), "serve", "--host", HOST, "--port", str(port), *flags]


def run_rma(arguments: Sequence[str], database_url: str, *, timeout: float) -> str:
    """Run ``rma ARGUMENTS`` against ``database_url`` from the project root; its standard
    output. Fails when it exits non-zero (with its last line of standard error) or outlasts
    ``timeout`` seconds."""
    env = {**os.environ, "RMA_DATABASE_URL": database_url}
    try:
        done = subprocess.run(
            [*rma_command(), *arguments],
            env=env,
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"rma {' '.join(arguments)} took over {timeout} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"rma {' '.join(arguments)} exited {done.returncode}: {tail[0]}")
    return done.stdout


# Databases ------------------------------------------------------------------------------------


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


# Processes ------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_tail(log: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or ``(no output)``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def check_cpus() -> None:
    """Fail unless this process may use ``SERVER_CPU`` and ``LOAD_CPU`` and taskset is there."""
    allowed = os.sched_getaffinity(0)
    if not {int(SERVER_CPU), int(LOAD_CPU)} <= allowed:
        raise BenchError(f"needs CPUs {LOAD_CPU} and {SERVER_CPU}; allowed: {sorted(allowed)}")
    if shutil.which("taskset") is None:
        raise BenchError("taskset (util-linux) is missing")


@dataclass
class Server:
    """A server process pinned to ``SERVER_CPU``, its output in a log file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        return log_tail(self.log, lines)

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process so far."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def uvicorn_command(app: str, port: int, *, app_dir: Path, factory: bool = False) -> list[str]:
    """uvicorn serving ``app`` from ``app_dir`` the way the API is served: uvloop, httptools,
    one worker, access log off."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *(["--factory"] if factory else []),
        "--app-dir",
        str(app_dir),
        "--host",
        HOST,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextmanager
def pinned_server(
    name: str, command: Callable[[int], list[str]], env: dict[str, str], logs: Path
) -> Iterator[Server]:
    """Start ``command`` on a free port pinned to ``SERVER_CPU``, its output in
    ``logs/NAME.log``; up once ``/healthz`` answers 200, stopped on the way out."""
    port = free_port()
    log = logs / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *command(port)],
            env=env,
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Server(name, port, process, log)
    try:
        wait_until_up(running)
        yield running
    finally:
        running.stop()


def wait_until_up(running: Server) -> None:
    deadline = time.monotonic() + SERVER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise BenchError(
                f"{running.name} server exited {running.process.returncode}:\n" + running.log_tail()
            )
        try:
            if httpx.get(f"{running.base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError(
        f"{running.name} server not up after {SERVER_STARTUP_SECONDS} s:\n{running.log_tail()}"
    )


class WorkerProcesses:
    """Processes running ``command`` side by side: started together and ready once each has
    logged ``ready``, watched, CPU-metered, stopped with SIGTERM, killed after a failure. Each
    writes its output (stdout and stderr) to its own log file in ``logs``."""

    def __init__(
        self,
        command: Sequence[str],
        count: int,
        *,
        logs: Path,
        cwd: Path,
        env: dict[str, str] | None,
        ready: str,
        startup_seconds: float,
        stop_seconds: float,
    ) -> None:
        self.command = command
        self.count = count
        self.logs = logs
        self.cwd = cwd
        self.env = env
        self.ready = ready
        self.startup_seconds = startup_seconds
        self.stop_seconds = stop_seconds
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    @property
    def log_files(self) -> list[Path]:
        return [log for _process, log in self.processes]

    async def start(self) -> None:
        for number in range(self.count):
            self.processes.append(self._spawn(number))
        deadline = time.monotonic() + self.startup_seconds
        while not all(self.ready in log.read_text(errors="replace") for log in self.log_files):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker processes not ready after {self.startup_seconds:.0f} s")
            await asyncio.sleep(0.1)

    def _spawn(self, number: int) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"worker-{uuid.uuid4().hex[:6]}-{number}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                list(self.command),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return process, log

    def check_alive(self) -> None:
        for process, log in self.processes:
            if process.poll() is not None:
                raise BenchError(f"worker process exited {process.returncode}:\n{log_tail(log)}")

    def cpu_seconds(self) -> float:
        """CPU time the processes have used so far."""
        return sum(process_cpu_seconds(process.pid) for process, _log in self.processes)

    async def stop(self) -> None:
        """SIGTERM each, wait; a process that does not stop or exits non-zero is an error."""
        for process, _log in self.processes:
            if process.poll() is None:
                process.terminate()
        for process, log in self.processes:
            try:
                await asyncio.to_thread(process.wait, self.stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise BenchError(
                    f"worker process did not stop on SIGTERM:\n{log_tail(log)}"
                ) from None
            if process.returncode != 0:
                raise BenchError(f"worker process exited {process.returncode}:\n{log_tail(log)}")

    def kill(self) -> None:
        """Stop whatever still runs (after a failure); only the processes started here."""
        for process, _log in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


# CPU accounting -------------------------------------------------------------------------------


def cpu_busy_seconds() -> dict[int, float]:
    """Busy (non-idle, non-iowait) seconds of every CPU since boot, from /proc/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values[:8])
            busy[int(name[3:])] = (user + nice + system + irq + softirq + steal) / ticks
    return busy


def children_cpu_seconds() -> float:
    """CPU time of the waited-for child processes so far (wrk among them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent during one measurement: the server, wrk, and everything else."""

    elapsed: float
    server: float
    wrk: float
    others_on_server_cpu: float
    others_on_load_cpu: float

    def percent(self, seconds: float) -> float:
        """``seconds`` as a percentage of one CPU over the measurement."""
        return 100.0 * seconds / self.elapsed

    @property
    def noisy(self) -> bool:
        """Whether other processes took over ``NOISY_PERCENT`` of a benchmark CPU."""
        others = max(self.percent(self.others_on_server_cpu), self.percent(self.others_on_load_cpu))
        return others > NOISY_PERCENT


def under_load(server: Server, load: Callable[[], T]) -> tuple[T, CpuUse]:
    """Run ``load`` (wrk on ``LOAD_CPU`` against ``server``); what it returned and the CPU time
    spent meanwhile. Fails when the server did not survive it."""
    server_before, wrk_before = server.cpu_seconds(), children_cpu_seconds()
    busy_before, started = cpu_busy_seconds(), time.perf_counter()
    outcome = load()
    elapsed = time.perf_counter() - started
    busy_after = cpu_busy_seconds()
    server_seconds = server.cpu_seconds() - server_before
    wrk_seconds = children_cpu_seconds() - wrk_before
    server_cpu, load_cpu = int(SERVER_CPU), int(LOAD_CPU)
    used = CpuUse(
        elapsed=elapsed,
        server=server_seconds,
        wrk=wrk_seconds,
        others_on_server_cpu=max(
            0.0, busy_after[server_cpu] - busy_before[server_cpu] - server_seconds
        ),
        others_on_load_cpu=max(0.0, busy_after[load_cpu] - busy_before[load_cpu] - wrk_seconds),
    )
    if server.process.poll() is not None:
        raise BenchError(f"{server.name} server died under load:\n{server.log_tail()}")
    return outcome, used


# wrk ------------------------------------------------------------------------------------------


def wrk_version(wrk: str) -> str:
    """The first line ``wrk --version`` prints, or ``?``."""
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    return (version.strip().splitlines() or ["?"])[0]


def wrk_run_line(connections: int, duration: int) -> str:
    """The banner's ``run:`` line of a wrk benchmark."""
    return (
        f"run:     servers on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU} (1 thread, "
        f"{connections} connections), {WARMUP_SECONDS} s warm-up then {duration} s per case"
    )


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    *,
    seconds: int,
    connections: int,
    script_arguments: Sequence[str] = (),
    what: str | None = None,
) -> str:
    """wrk on ``LOAD_CPU`` (1 thread, latency percentiles) against ``url`` with a Lua script
    and its arguments; its standard output. ``what`` names the target in errors (``url``)."""
    command = [
        "taskset",
        "-c",
        LOAD_CPU,
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        "--script",
        str(script),
        url,
        *(["--", *script_arguments] if script_arguments else []),
    ]
    target = what or url
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on {target} did not finish") from None
    if done.returncode != 0 or "PANIC" in done.stderr:
        raise BenchError(f"wrk on {target} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done.stdout


TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_time_ms(text: str) -> float:
    """A wrk duration (``1.36ms``, ``2.00s``) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"cannot read wrk time {text!r}")
    return float(match.group(1)) * TIME_UNITS_MS[match.group(2)]


def wrk_match(output: str, pattern: str) -> re.Match[str]:
    """The first match of ``pattern`` (multiline) in wrk's output; failing loudly without one."""
    match = re.search(pattern, output, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk output lacks {pattern!r}:\n{output}")
    return match


@dataclass(frozen=True)
class WrkRun:
    """What wrk reported for one run."""

    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]


def parse_wrk(output: str) -> WrkRun:
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkRun(
        requests=int(wrk_match(output, r"^\s*(\d+) requests in ").group(1)),
        per_second=float(wrk_match(output, r"^Requests/sec:\s*([\d.]+)").group(1)),
        p50_ms=parse_time_ms(wrk_match(output, r"^\s*50%\s+(\S+)").group(1)),
        p99_ms=parse_time_ms(wrk_match(output, r"^\s*99%\s+(\S+)").group(1)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=(
            dict(
                zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
            )
            if errors
            else {}
        ),
    )


@dataclass(frozen=True)
class Measurement:
    """One case loaded with wrk: its key (``a``) and label, what wrk saw, the CPU it cost."""

    key: str
    label: str
    run: WrkRun
    cpu: CpuUse

    @property
    def server_cpu_per_request(self) -> float:
        return self.cpu.server / max(self.run.requests, 1)


def print_load_table(rate_header: str, results: Sequence[Measurement]) -> None:
    """The wrk cases' table (``rate_header`` names the requests/s column), then the socket
    errors of any case that had some."""
    table(
        (
            "case",
            rate_header,
            "p50 ms",
            "p99 ms",
            "requests",
            "non-2xx",
            "server CPU ms/req",
            "server CPU",
            "wrk CPU",
            f"others CPU{SERVER_CPU}",
            f"others CPU{LOAD_CPU}",
        ),
        [
            (
                f"({r.key}) {r.label}",
                f"{r.run.per_second:.1f}",
                f"{r.run.p50_ms:.2f}",
                f"{r.run.p99_ms:.2f}",
                str(r.run.requests),
                str(r.run.non_2xx_3xx),
                f"{1000.0 * r.cpu.server / max(r.run.requests, 1):.2f}",
                f"{r.cpu.percent(r.cpu.server):.0f}%",
                f"{r.cpu.percent(r.cpu.wrk):.0f}%",
                f"{r.cpu.percent(r.cpu.others_on_server_cpu):.0f}%",
                f"{r.cpu.percent(r.cpu.others_on_load_cpu):.0f}%",
            )
            for r in results
        ],
    )
    for r in results:
        if any(r.run.socket_errors.values()):
            detail = ", ".join(f"{name} {count}" for name, count in r.run.socket_errors.items())
            print(f"socket errors in ({r.key}): {detail}")


def noisy_cases(results: Sequence[Measurement]) -> list[str]:
    """``(key)`` of each case during which other processes crowded a benchmark CPU."""
    return [f"({r.key})" for r in results if r.cpu.noisy]
