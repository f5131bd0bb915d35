"""What webhook intake costs: signed deliveries per second into the inbox, under wrk.

For each backend (a fresh SQLite file, then a throwaway PostgreSQL database) the script runs
``rma db upgrade``, ``rma merchant create`` and ``rma connect shopify``, then loads three cases
with the same Shopify ``orders/create`` requests (the 10.7 kB body of
``tests/fixtures/shopify_orders_create.json``, compact, with its order id varied):

(a) bare       A bare Starlette POST endpoint that reads the body and answers 200 JSON
               (``benchmarks/webhook_support/bare_post.py``): the floor of the HTTP stack.
(b) inbox      The real intake, ``POST /webhooks/shopify/{connection}`` of ``rma serve`` with the
               in-process worker off (``RMA_RUN_WORKER=false``, and ``--no-worker`` when this
               ``rma serve`` has that flag), so only intake is measured:
               connection lookup, secret decryption, HMAC check, then the delivery and its
               processing job stored in one transaction. Every request is a new delivery.
(c) duplicate  The real intake receiving one already stored delivery over and over: the cost
               of the deduplication path (the insert fails on the unique key and rolls back).

wrk's Lua has no HMAC, so Python signs a pool of ``--pool`` distinct deliveries beforehand
(distinct ``X-Shopify-Event-Id`` and order id, so a distinct body and signature each) and
``benchmarks/webhook_support/deliveries.lua`` takes them in turn; the warm-up and the measured
run use disjoint parts of the pool. Every case is checked once with httpx first (a new delivery
answers ``"duplicate": false``, the same one again ``"duplicate": true``). After the measured
inbox run the script counts the rows stored against the requests wrk completed.

Servers run on CPU 1 and wrk (1 thread, ``--connections`` connections) on CPU 0, on 127.0.0.1
only; PostgreSQL itself is not pinned, and the "others" columns show what it (and anything else)
took from each benchmark CPU. The script prints deliveries/s, p50 and p99 latency, non-2xx
responses and CPU use per case, the ratio (b)/(a) and the target line
"target: at least 40% of the bare endpoint's rate".

Run it from the project root:

    .venv/bin/python benchmarks/webhooks.py
    .venv/bin/python benchmarks/webhooks.py --duration 5 --connections 64
    .venv/bin/python benchmarks/webhooks.py --postgres-url postgresql://postgres@127.0.0.1/postgres
    .venv/bin/python benchmarks/webhooks.py --sqlite-only

PostgreSQL comes from ``--postgres-url`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
when it does not answer, the PostgreSQL half is skipped with a line saying so. The throwaway
database is dropped at the end, even after a failure.
"""

# This file is named webhooks.py, and its folder comes first on sys.path when it runs: nothing
# here may import the project's ``webhooks`` package, directly or through another module.
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

from core.database import Database

PROJECT = Path(__file__).resolve().parent.parent
SUPPORT_DIR = Path(__file__).resolve().parent / "webhook_support"
LUA_SCRIPT = SUPPORT_DIR / "deliveries.lua"
FIXTURE = PROJECT / "tests" / "fixtures" / "shopify_orders_create.json"
SIGNING = PROJECT / "tests" / "webhook_signing.py"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_CPU = "1"
LOAD_CPU = "0"
HOST = "127.0.0.1"
WARMUP_SECONDS = 1
WRK_TIMEOUT = "10s"
STARTUP_SECONDS = 30.0
RMA_TIMEOUT_SECONDS = 300.0
SETTLE_SECONDS = 30.0
TARGET_RATIO = 0.40
NOISY_PERCENT = 10.0

SHOP = "bench-shop.myshopify.com"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 (a throwaway database's)
TOPIC = "orders/create"
# The fixture's order id is replaced by this marker, then the body is split around it.
ORDER_ID_MARKER = 987_654_321_987_654_321
FIRST_ORDER_ID = 5_000_000_000_000


class BenchError(RuntimeError):
    """Something the benchmark needs failed; the message says what."""


# Tools ----------------------------------------------------------------------------------------


def progress(message: str) -> None:
    sys.stdout.flush()
    print(f"... {message}", file=sys.stderr, flush=True)


def find_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    return found


def check_cpus() -> None:
    allowed = os.sched_getaffinity(0)
    if not {int(SERVER_CPU), int(LOAD_CPU)} <= allowed:
        raise BenchError(f"needs CPUs {LOAD_CPU} and {SERVER_CPU}; allowed: {sorted(allowed)}")
    if shutil.which("taskset") is None:
        raise BenchError("taskset (util-linux) is missing")


def rma_command() -> list[str]:
    """The ``rma`` console script next to this interpreter, else the module behind it."""
    script = Path(sys.executable).with_name("rma")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "graphql_api.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def load_signing() -> ModuleType:
    """``tests/webhook_signing.py``, the project's own signing helpers (``tests`` is no package
    on the path of a script run from ``benchmarks/``)."""
    spec = importlib.util.spec_from_file_location("rma_webhook_signing", SIGNING)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {SIGNING}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Databases ------------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def asyncpg_dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_execute(server_url: str, statement: str | None) -> None:
    """Run ``statement`` on the server (just connect when it is None)."""
    try:
        connection = await asyncpg.connect(asyncpg_dsn(server_url), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise BenchError(f"PostgreSQL {safe_url(server_url)}: {error}") from error
    try:
        if statement is not None:
            await connection.execute(statement)
    finally:
        await connection.close()


def postgres_unreachable(server_url: str) -> str | None:
    """Why the server cannot be used, or None when it answers."""
    try:
        asyncio.run(_admin_execute(server_url, None))
    except BenchError as error:
        return str(error)
    return None


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A throwaway database on ``server_url``'s server, dropped afterwards even on failure."""
    name = f"rma_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def database_for(backend: str, options: Options, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'rma.db'}"
    else:
        with postgres_database(options.postgres_url) as url:
            yield url


@dataclass(frozen=True)
class Counts:
    deliveries: int
    jobs: int


async def _count_rows(database_url: str) -> Counts:
    database = Database(database_url)
    try:
        async with database.read_engine.connect() as connection:
            deliveries = await connection.scalar(sa.text("SELECT count(*) FROM webhook_delivery"))
            jobs = await connection.scalar(sa.text("SELECT count(*) FROM job"))
            return Counts(int(deliveries or 0), int(jobs or 0))
    finally:
        await database.dispose()


def count_rows(database_url: str) -> Counts:
    return asyncio.run(_count_rows(database_url))


def settled_counts(database_url: str) -> Counts:
    """The row counts once requests still in the server when wrk stopped have been stored."""
    counts = count_rows(database_url)
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.3)
        again = count_rows(database_url)
        if again == counts:
            return counts
        counts = again
    raise BenchError(f"rows still being added {SETTLE_SECONDS} s after wrk stopped")


def run_rma(arguments: Sequence[str], database_url: str) -> str:
    """Run ``rma ARGUMENTS`` against ``database_url``; the last line of its standard output."""
    env = {**os.environ, "RMA_DATABASE_URL": database_url}
    try:
        done = subprocess.run(
            [*rma_command(), *arguments],
            env=env,
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=RMA_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"rma {' '.join(arguments)} took over {RMA_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"rma {' '.join(arguments)} exited {done.returncode}: {tail[0]}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise BenchError(f"rma {' '.join(arguments)} printed nothing")
    return lines[-1]


def prepare(database_url: str) -> str:
    """Migrate, create a merchant and connect a Shopify shop; the webhook path."""
    run_rma(["db", "upgrade"], database_url)
    merchant = run_rma(["merchant", "create", "--name", "Webhook bench"], database_url)
    path = run_rma(
        [
            "connect",
            "shopify",
            "--merchant",
            merchant,
            "--shop",
            SHOP,
            "--access-token",
            "shpat_bench_token",
            "--webhook-secret",
            WEBHOOK_SECRET,
        ],
        database_url,
    )
    if not re.fullmatch(r"/webhooks/shopify/[0-9a-f-]{36}", path):
        raise BenchError(f"rma connect shopify did not print a webhook path last: {path!r}")
    return path


# The delivery pool ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Distinct signed deliveries on disk for the Lua script, and how to rebuild any of them."""

    pool_file: Path
    template_file: Path
    parts: list[str]
    size: int
    signatures: list[str]

    def event_id(self, index: int) -> str:
        return f"evt-bench-{index:08d}"

    def body(self, index: int) -> bytes:
        return str(FIRST_ORDER_ID + index).join(self.parts).encode()

    def headers(self, index: int) -> dict[str, str]:
        """The headers the Lua script sends with entry ``index``."""
        event = self.event_id(index)
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": TOPIC,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Event-Id": event,
            "X-Shopify-Webhook-Id": f"wh-{event}",
            "X-Shopify-Hmac-Sha256": self.signatures[index],
        }

    @property
    def body_bytes(self) -> int:
        return len(self.body(0))


def body_parts() -> list[str]:
    """The compact fixture body split around its (replaced) order id."""
    document = json.loads(FIXTURE.read_text())
    document["id"] = ORDER_ID_MARKER
    document["admin_graphql_api_id"] = f"gid://shopify/Order/{ORDER_ID_MARKER}"
    text = json.dumps(document, separators=(",", ":"))
    if "\n" in text:
        raise BenchError("the compact body has a line break; the template file cannot hold it")
    return text.split(str(ORDER_ID_MARKER))


def write_pool(directory: Path, size: int) -> Pool:
    """Sign ``size`` distinct deliveries with the project's helper and write the pool files."""
    signing = load_signing()
    parts = body_parts()
    template = directory / "body-template.txt"
    template.write_text("".join(f"{part}\n" for part in parts))
    signatures: list[str] = []
    lines: list[str] = []
    for index in range(size):
        order_id = str(FIRST_ORDER_ID + index)
        event = f"evt-bench-{index:08d}"
        body = order_id.join(parts).encode()
        headers = signing.shopify_headers(body, WEBHOOK_SECRET, SHOP, event_id=event)
        signature = headers["x-shopify-hmac-sha256"]
        signatures.append(signature)
        lines.append(f"{event}\t{order_id}\t{signature}\n")
    pool_file = directory / "deliveries.tsv"
    pool_file.write_text("".join(lines))
    return Pool(pool_file, template, parts, size, signatures)


# Servers --------------------------------------------------------------------------------------


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
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def bare_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bare_post:app",
        "--app-dir",
        str(SUPPORT_DIR),
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


def serve_has_no_worker_flag() -> bool:
    """Whether this ``rma serve`` takes ``--no-worker`` (the environment variable always works)."""
    done = subprocess.run(
        [*rma_command(), "serve", "--help"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=RMA_TIMEOUT_SECONDS,
        env={**os.environ, "COLUMNS": "200"},
    )
    return "--no-worker" in done.stdout


def inbox_command(no_worker_flag: bool) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        flag = ["--no-worker"] if no_worker_flag else []
        return [*rma_command(), "serve", "--host", HOST, "--port", str(port), *flag]

    return command


@contextmanager
def server(
    name: str, command: Callable[[int], list[str]], env: dict[str, str], logs: Path
) -> Iterator[Server]:
    """Start ``command`` on a free port pinned to ``SERVER_CPU``; stopped on the way out."""
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
    deadline = time.monotonic() + STARTUP_SECONDS
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
        f"{running.name} server not up after {STARTUP_SECONDS} s:\n{running.log_tail()}"
    )


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


@contextmanager
def cpu_use(running: Server, into: list[CpuUse]) -> Iterator[None]:
    """Account the CPU time spent while the block runs; appends one ``CpuUse`` to ``into``."""
    server_before, wrk_before = running.cpu_seconds(), children_cpu_seconds()
    busy_before, started = cpu_busy_seconds(), time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    busy_after = cpu_busy_seconds()
    server = running.cpu_seconds() - server_before
    wrk = children_cpu_seconds() - wrk_before
    server_cpu, load_cpu = int(SERVER_CPU), int(LOAD_CPU)
    into.append(
        CpuUse(
            elapsed=elapsed,
            server=server,
            wrk=wrk,
            others_on_server_cpu=max(
                0.0, busy_after[server_cpu] - busy_before[server_cpu] - server
            ),
            others_on_load_cpu=max(0.0, busy_after[load_cpu] - busy_before[load_cpu] - wrk),
        )
    )


# wrk ------------------------------------------------------------------------------------------


TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_time_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"cannot read wrk time {text!r}")
    return float(match.group(1)) * TIME_UNITS_MS[match.group(2)]


@dataclass(frozen=True)
class WrkRun:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    pool_taken: int
    pool_next: int


def parse_wrk(output: str) -> WrkRun:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkRun(
        requests=int(find(r"^\s*(\d+) requests in ").group(1)),
        per_second=float(find(r"^Requests/sec:\s*([\d.]+)").group(1)),
        p50_ms=parse_time_ms(find(r"^\s*50%\s+(\S+)").group(1)),
        p99_ms=parse_time_ms(find(r"^\s*99%\s+(\S+)").group(1)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=(
            dict(
                zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
            )
            if errors
            else {}
        ),
        pool_taken=int(find(r"^pool-taken: (\d+)").group(1)),
        pool_next=int(find(r"^pool-next: (\d+)").group(1)),
    )


def run_wrk(
    wrk: str, url: str, pool: Pool, *, offset: int, mode: str, seconds: int, connections: int
) -> WrkRun:
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
        str(LUA_SCRIPT),
        url,
        "--",
        str(pool.pool_file),
        str(pool.template_file),
        SHOP,
        str(offset),
        mode,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on {url} did not finish") from None
    if done.returncode != 0 or "PANIC" in done.stderr:
        raise BenchError(f"wrk on {url} exited {done.returncode}: {done.stderr}{done.stdout}")
    return parse_wrk(done.stdout)


# Cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    key: str
    label: str
    run: WrkRun
    cpu: CpuUse
    offset: int
    before: Counts | None
    after: Counts | None

    def added(self) -> Counts:
        """Rows stored during the measured run."""
        if self.before is None or self.after is None:
            raise BenchError(f"rows were not counted around ({self.key})")
        return Counts(
            self.after.deliveries - self.before.deliveries, self.after.jobs - self.before.jobs
        )


def post_delivery(url: str, pool: Pool, index: int) -> dict[str, Any]:
    """Send entry ``index`` once with httpx; its JSON, failing loudly unless HTTP 200."""
    response = httpx.post(url, content=pool.body(index), headers=pool.headers(index), timeout=30.0)
    if response.status_code != 200:
        raise BenchError(f"POST {url}: HTTP {response.status_code}: {response.text[:300]}")
    payload: dict[str, Any] = response.json()
    return payload


def expect(url: str, payload: dict[str, Any], wanted: dict[str, Any]) -> None:
    if payload != wanted:
        raise BenchError(f"POST {url}: answered {payload!r}, wanted {wanted!r}")


def measure(
    key: str,
    label: str,
    target: Server,
    url: str,
    wrk: str,
    pool: Pool,
    options: Options,
    *,
    offset: int,
    mode: str,
    database_url: str | None = None,
) -> Result:
    """Warm up for a second from ``offset``, then load for ``--duration`` from where it ended.

    With ``database_url``, the rows are counted (once the server is done with the requests in
    flight) after the warm-up and after the measured run.
    """
    warm = run_wrk(
        wrk,
        url,
        pool,
        offset=offset,
        mode=mode,
        seconds=WARMUP_SECONDS,
        connections=options.connections,
    )
    start = warm.pool_next if mode == "unique" else offset
    before = settled_counts(database_url) if database_url else None
    used: list[CpuUse] = []
    with cpu_use(target, used):
        run = run_wrk(
            wrk,
            url,
            pool,
            offset=start,
            mode=mode,
            seconds=options.duration,
            connections=options.connections,
        )
    if target.process.poll() is not None:
        raise BenchError(f"{target.name} server died under load:\n{target.log_tail()}")
    after = settled_counts(database_url) if database_url else None
    return Result(key, label, run, used[0], start, before, after)


@dataclass(frozen=True)
class Suite:
    backend: str
    results: list[Result]
    no_worker_flag: bool
    pool_size: int


def bench_backend(backend: str, wrk: str, pool: Pool, options: Options, directory: Path) -> Suite:
    """Prepare a fresh database, start both servers, check and load the three cases."""
    with database_for(backend, options, directory) as url, ExitStack() as stack:
        progress(f"{backend}: rma db upgrade, merchant create, connect shopify")
        path = prepare(url)
        no_worker_flag = serve_has_no_worker_flag()
        env = {**os.environ, "RMA_DATABASE_URL": url, "RMA_RUN_WORKER": "false"}
        progress(f"{backend}: starting servers on CPU {SERVER_CPU}")
        bare = stack.enter_context(server(f"{backend}-bare", bare_command, env, directory))
        inbox = stack.enter_context(
            server(f"{backend}-inbox", inbox_command(no_worker_flag), env, directory)
        )
        bare_url, inbox_url = f"{bare.base}{path}", f"{inbox.base}{path}"
        new, seen = {"received": True, "duplicate": False}, {"received": True, "duplicate": True}
        expect(bare_url, post_delivery(bare_url, pool, 0), new)
        expect(inbox_url, post_delivery(inbox_url, pool, 0), new)
        expect(inbox_url, post_delivery(inbox_url, pool, 0), seen)

        progress(f"{backend}: (a) bare, {options.duration} s")
        bare_result = measure(
            "a", "bare", bare, bare_url, wrk, pool, options, offset=0, mode="unique"
        )
        progress(f"{backend}: (b) inbox, {options.duration} s")
        inbox_result = measure(
            "b",
            "inbox",
            inbox,
            inbox_url,
            wrk,
            pool,
            options,
            offset=1,
            mode="unique",
            database_url=url,
        )
        progress(f"{backend}: (c) duplicate, {options.duration} s")
        duplicate_result = measure(
            "c",
            "duplicate",
            inbox,
            inbox_url,
            wrk,
            pool,
            options,
            offset=0,
            mode="repeat",
            database_url=url,
        )
        return Suite(
            backend, [bare_result, inbox_result, duplicate_result], no_worker_flag, pool.size
        )


# Output ---------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows under a header: the first column left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        cells = [line[0].ljust(widths[0])]
        cells += [line[i].rjust(widths[i]) for i in range(1, len(header))]
        print("  ".join(cells))


def print_header(options: Options, wrk: str, pool: Pool, directory: Path) -> None:
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    print("Webhook intake benchmark: signed Shopify deliveries into the inbox against a bare POST.")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} "
        f"{platform.release()}"
    )
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"wrk:     {(version.strip().splitlines() or ['?'])[0]}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load:    {load} (1, 5, 15 min) at the start")
    print(
        f"run:     servers on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU} (1 thread, "
        f"{options.connections} connections), {WARMUP_SECONDS} s warm-up then "
        f"{options.duration} s per case"
    )
    print(
        f"pool:    {pool.size} distinct signed deliveries, {pool.body_bytes} B body each "
        f"(topic {TOPIC}); SQLite files under {directory}"
    )
    print()


def print_suite(suite: Suite) -> None:
    flag = "--no-worker" if suite.no_worker_flag else "RMA_RUN_WORKER=false (no --no-worker flag)"
    print(f"[{suite.backend}] intake: rma serve, worker off via {flag}")
    table(
        (
            "case",
            "deliveries/s",
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
            for r in suite.results
        ],
    )
    for r in suite.results:
        if any(r.run.socket_errors.values()):
            detail = ", ".join(f"{name} {count}" for name, count in r.run.socket_errors.items())
            print(f"socket errors in ({r.key}): {detail}")
    noisy = [
        f"({r.key})"
        for r in suite.results
        if max(r.cpu.percent(r.cpu.others_on_server_cpu), r.cpu.percent(r.cpu.others_on_load_cpu))
        > NOISY_PERCENT
    ]
    if noisy:
        print(
            f"note: other processes (PostgreSQL among them) used over {NOISY_PERCENT:.0f}% of a "
            f"benchmark CPU during {', '.join(noisy)}; deliveries/s there is understated, server "
            "CPU ms/req is steadier"
        )
    bare, inbox, duplicate = suite.results
    ratio = inbox.run.per_second / bare.run.per_second
    print(
        f"(b)/(a) = {ratio:.3f}   (c)/(a) = "
        f"{duplicate.run.per_second / bare.run.per_second:.3f}   (deliveries/s)"
    )

    def cpu_per_request(result: Result) -> float:
        return result.cpu.server / max(result.run.requests, 1)

    print(
        f"(b)/(a) = {cpu_per_request(bare) / cpu_per_request(inbox):.3f}   (c)/(a) = "
        f"{cpu_per_request(bare) / cpu_per_request(duplicate):.3f}   "
        "(inverse server CPU per request; the server process only, not PostgreSQL)"
    )
    verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
    print(
        f"target: at least {TARGET_RATIO:.0%} of the bare endpoint's rate: {verdict} "
        f"({ratio:.1%} by deliveries/s)"
    )
    print_stored(suite, inbox, duplicate)
    print()


def print_stored(suite: Suite, inbox: Result, duplicate: Result) -> None:
    """Rows stored during the measured inbox run against what wrk sent and completed."""
    stored = inbox.added()
    completed_2xx = inbox.run.requests - inbox.run.non_2xx_3xx
    wrapped = max(0, inbox.offset + inbox.run.pool_taken - suite.pool_size)
    in_flight = inbox.run.pool_taken - inbox.run.requests
    print(
        f"stored: {stored.deliveries} deliveries and {stored.jobs} jobs during (b), for "
        f"{completed_2xx} 2xx responses; {inbox.run.pool_taken} requests sent, {in_flight} of "
        "them unanswered when wrk stopped (the server may still have stored them)"
    )
    if wrapped:
        print(
            f"warning: the pool of {suite.pool_size} ran out; {wrapped} requests in (b) "
            "repeated earlier deliveries (raise --pool)"
        )
    if stored.deliveries != stored.jobs:
        print(
            f"warning: {stored.deliveries} deliveries but {stored.jobs} jobs: every delivery "
            "should have one job"
        )
    if not completed_2xx <= stored.deliveries <= inbox.run.pool_taken:
        print("warning: stored deliveries are outside [2xx responses, requests sent]")
    added = duplicate.added()
    print(
        f"duplicates: (c) repeated one stored delivery {duplicate.run.requests} times, "
        f"{duplicate.run.non_2xx_3xx} non-2xx; rows added: {added.deliveries} deliveries, "
        f"{added.jobs} jobs"
    )


# Entry point ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    duration: int
    connections: int
    pool: int
    postgres_url: str
    sqlite_only: bool


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=positive, default=10, help="seconds per case (10)")
    parser.add_argument("--connections", type=positive, default=32, help="wrk connections (32)")
    parser.add_argument(
        "--pool", type=positive, default=50_000, help="distinct signed deliveries (50000)"
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help=f"PostgreSQL server for the throwaway database ({DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parsed = parser.parse_args(argv)
    return Options(
        parsed.duration, parsed.connections, parsed.pool, parsed.postgres_url, parsed.sqlite_only
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        check_cpus()
        wrk = find_wrk()
        with tempfile.TemporaryDirectory(prefix="rma-webhook-bench-") as name:
            directory = Path(name)
            progress(f"signing {options.pool} deliveries")
            pool = write_pool(directory, options.pool)
            print_header(options, wrk, pool, directory)
            backends = ["sqlite"]
            if options.sqlite_only:
                print("[postgres] skipped: --sqlite-only\n")
            elif reason := postgres_unreachable(options.postgres_url):
                print(f"[postgres] skipped: {reason}\n")
            else:
                backends.append("postgres")
            for backend in backends:
                backend_directory = directory / backend
                backend_directory.mkdir()
                print_suite(bench_backend(backend, wrk, pool, options, backend_directory))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
