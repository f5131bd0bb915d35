"""What the GraphQL layer costs: requests per second and latency of four HTTP cases under wrk.

The cases, each served by uvicorn (uvloop, httptools, one worker, access log off) over the same
freshly seeded demo database (``rma db upgrade`` then ``rma demo``):

(a) bare     Starlette returning a fixed JSON body: the floor of the HTTP stack.
(b) hand     A hand-written Starlette endpoint, ``GET /rma/{number}``: Bearer API key lookup,
             then the merchant's RMA by number and its lines with plain SQLModel selects
             (``benchmarks/graphql_support/apps.py``).
(c) rma      The real API (``rma serve``): ``rma(number:)`` with the same fields as (b),
             ``number status lines { quantity reason condition receivedQuantity }``.
(d) rmas     The real API: ``rmas(first: 50)`` with ``lines { quantity reason }`` and
             ``order { orderNumber }``.

Servers run on CPU 1 and wrk (1 thread, ``--connections`` connections) on CPU 0, on 127.0.0.1
only. Every case is checked once with httpx (HTTP 200 and the expected JSON) before it is
loaded, then warmed up for a second, then measured for ``--duration`` seconds. The script
prints requests/s, p50 and p99 latency, the server's CPU use and wrk's error counts per case,
then the ratios (c)/(b) and (c)/(a) and whether the target "(c) at least half of (b)" is met.

Run it from the project root (as root: it installs wrk with apt when it is missing):

    .venv/bin/python benchmarks/graphql.py
    .venv/bin/python benchmarks/graphql.py --duration 5 --connections 64
    .venv/bin/python benchmarks/graphql.py --postgres-url postgresql://postgres@127.0.0.1/postgres

SQLite only by default; with ``--postgres-url`` the cases also run on a throwaway PostgreSQL
database created on that server and dropped at the end, even after a failure.
"""

# This file is named graphql.py, and its folder comes first on sys.path when it runs: nothing
# here may import the ``graphql`` package (graphql-core), directly or through strawberry.
from __future__ import annotations

import argparse
import asyncio
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
SUPPORT_DIR = Path(__file__).resolve().parent / "graphql_support"
SERVER_CPU = "1"
LOAD_CPU = "0"
HOST = "127.0.0.1"
WARMUP_SECONDS = 1
WRK_TIMEOUT = "10s"
STARTUP_SECONDS = 30.0
SEED_TIMEOUT_SECONDS = 600.0
APT_TIMEOUT_SECONDS = 600.0
PAGE_SIZE = 50
# What the bare app answers (``BARE_BODY`` in graphql_support/apps.py).
BARE_BODY = {"status": "ok", "service": "rma", "bench": True}

RMA_QUERY = """query Rma($number: String!) {
  rma(number: $number) { number status lines { quantity reason condition receivedQuantity } }
}"""
RMAS_QUERY = """query Rmas($first: Int!) {
  rmas(first: $first) { nodes { number lines { quantity reason } order { orderNumber } } }
}"""


class BenchError(RuntimeError):
    """Something the benchmark needs failed; the message says what."""


# Tools ----------------------------------------------------------------------------------------


def progress(message: str) -> None:
    sys.stdout.flush()
    print(f"... {message}", file=sys.stderr, flush=True)


def ensure_wrk() -> str:
    """The path of wrk, installed with apt-get when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("wrk is missing and installing it with apt-get needs root")
    progress("installing wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS
        )
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise BenchError(f"{' '.join(command)} exited {done.returncode}: {tail[0]}")
    found = shutil.which("wrk")
    if not found:
        raise BenchError("apt-get installed wrk but it is not on PATH")
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


# Databases ------------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def asyncpg_dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_execute(server_url: str, statement: str) -> None:
    try:
        connection = await asyncpg.connect(asyncpg_dsn(sa.make_url(server_url)), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise BenchError(f"PostgreSQL {safe_url(server_url)}: {error}") from error
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    yield f"sqlite:///{directory / 'rma.db'}"


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A throwaway database on ``server_url``'s server, dropped afterwards even on failure."""
    name = f"rma_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_rma(arguments: Sequence[str], database_url: str) -> str:
    """Run ``rma ARGUMENTS`` against ``database_url``; its standard output."""
    env = {**os.environ, "RMA_DATABASE_URL": database_url}
    try:
        done = subprocess.run(
            [*rma_command(), *arguments],
            env=env,
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=SEED_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"rma {' '.join(arguments)} took over {SEED_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"rma {' '.join(arguments)} exited {done.returncode}: {tail[0]}")
    return done.stdout


def seed(database_url: str) -> tuple[str, float]:
    """Migrate and seed the demo data; the ADMIN API key and the seconds ``rma demo`` took."""
    run_rma(["db", "upgrade"], database_url)
    started = time.perf_counter()
    output = run_rma(["demo"], database_url)
    seconds = time.perf_counter() - started
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines or not lines[-1].startswith("rma_sk_"):
        raise BenchError(f"rma demo did not print an API key last: {lines[-1:]}")
    return lines[-1], seconds


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


def uvicorn_command(app: str, port: int, *, factory: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *(["--factory"] if factory else []),
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


# Cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    url: str
    method: str
    headers: dict[str, str]
    body: str | None
    expect: Callable[[Any], None]
    server: Server


@dataclass(frozen=True)
class Result:
    case: Case
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    cpu: CpuUse


@dataclass
class Suite:
    """What one backend's run found: the RMA measured and the cases over it."""

    backend: str
    number: str
    demo_seconds: float
    cases: list[Case] = field(default_factory=list)


def graphql_body(query: str, variables: dict[str, Any]) -> str:
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


def fetch_json(url: str, method: str, headers: dict[str, str], body: str | None) -> Any:
    """One request; its JSON, failing loudly unless it is HTTP 200 with a JSON body."""
    response = httpx.request(method, url, headers=headers, content=body, timeout=30.0)
    if response.status_code != 200:
        raise BenchError(f"{method} {url}: HTTP {response.status_code}: {response.text}")
    try:
        return response.json()
    except ValueError as error:
        raise BenchError(f"{method} {url}: not JSON: {response.text[:300]}") from error


def graphql_data(payload: Any, name: str) -> Any:
    """``data`` of a GraphQL response, failing loudly on errors."""
    if not isinstance(payload, dict) or payload.get("errors") or not payload.get("data"):
        raise BenchError(f"GraphQL {name} answered with errors: {json.dumps(payload)[:500]}")
    return payload["data"]


def expect_equal(name: str, wanted: Any) -> Callable[[Any], None]:
    def check(payload: Any) -> None:
        if payload != wanted:
            raise BenchError(
                f"{name}: unexpected JSON\n  got:    {json.dumps(payload)[:500]}\n"
                f"  wanted: {json.dumps(wanted)[:500]}"
            )

    return check


def expect_rmas_page(payload: Any) -> None:
    nodes = graphql_data(payload, "rmas")["rmas"]["nodes"]
    if len(nodes) != PAGE_SIZE:
        raise BenchError(f"rmas(first: {PAGE_SIZE}) returned {len(nodes)} RMAs")
    for node in nodes:
        if not node["lines"] or not node["order"]["orderNumber"]:
            raise BenchError(f"rmas: RMA {node['number']} has no lines or no order number")


def pick_rma(api: Server, headers: dict[str, str]) -> str:
    """The number of the first RMA with the most lines on the first page, from the API itself."""
    payload = fetch_json(
        f"{api.base}/graphql", "POST", headers, graphql_body(RMAS_QUERY, {"first": PAGE_SIZE})
    )
    nodes = graphql_data(payload, "rmas")["rmas"]["nodes"]
    if not nodes:
        raise BenchError("the demo database has no RMAs")
    return str(max(nodes, key=lambda node: len(node["lines"]))["number"])


def build_cases(bare: Server, hand: Server, api: Server, api_key: str, number: str) -> list[Case]:
    """The four cases, with the JSON each must answer (the hand-written one's from the API)."""
    auth = {"Authorization": f"Bearer {api_key}"}
    post = {**auth, "Content-Type": "application/json"}
    rma_body = graphql_body(RMA_QUERY, {"number": number})
    rma = graphql_data(fetch_json(f"{api.base}/graphql", "POST", post, rma_body), "rma")["rma"]
    if rma is None or rma["number"] != number:
        raise BenchError(f"rma(number: {number!r}) returned {rma!r}")
    return [
        Case("a", "bare", f"{bare.base}/", "GET", {}, None, expect_equal("bare", BARE_BODY), bare),
        Case(
            "b",
            "hand",
            f"{hand.base}/rma/{number}",
            "GET",
            auth,
            None,
            expect_equal("hand-written /rma", rma),
            hand,
        ),
        Case(
            "c",
            "rma",
            f"{api.base}/graphql",
            "POST",
            post,
            rma_body,
            expect_equal("GraphQL rma", {"data": {"rma": rma}}),
            api,
        ),
        Case(
            "d",
            "rmas",
            f"{api.base}/graphql",
            "POST",
            post,
            graphql_body(RMAS_QUERY, {"first": PAGE_SIZE}),
            expect_rmas_page,
            api,
        ),
    ]


def check_case(case: Case) -> None:
    case.expect(fetch_json(case.url, case.method, case.headers, case.body))


# wrk ------------------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def write_wrk_script(case: Case, directory: Path) -> Path:
    lines = [f"wrk.method = {lua_string(case.method)}"]
    if case.body is not None:
        lines.append(f"wrk.body = {lua_string(case.body)}")
    lines += [
        f"wrk.headers[{lua_string(name)}] = {lua_string(value)}"
        for name, value in case.headers.items()
    ]
    script = directory / f"wrk-{case.key}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_time_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"cannot read wrk time {text!r}")
    return float(match.group(1)) * TIME_UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> tuple[int, float, float, float, int, dict[str, int]]:
    """Requests, requests/s, p50 ms, p99 ms, non-2xx/3xx count and socket errors from wrk."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    requests = int(find(r"^\s*(\d+) requests in ").group(1))
    per_second = float(find(r"^Requests/sec:\s*([\d.]+)").group(1))
    p50 = parse_time_ms(find(r"^\s*50%\s+(\S+)").group(1))
    p99 = parse_time_ms(find(r"^\s*99%\s+(\S+)").group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True))
        if errors
        else {}
    )
    return requests, per_second, p50, p99, int(non_2xx.group(1)) if non_2xx else 0, socket_errors


def run_wrk(wrk: str, case: Case, script: Path, seconds: int, connections: int) -> str:
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
        case.url,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on case ({case.key}) did not finish") from None
    if done.returncode != 0:
        raise BenchError(f"wrk on case ({case.key}) exited {done.returncode}: {done.stderr}")
    return done.stdout


def measure(wrk: str, case: Case, directory: Path, duration: int, connections: int) -> Result:
    """Check the case once, warm it up, then load it for ``duration`` seconds."""
    check_case(case)
    script = write_wrk_script(case, directory)
    run_wrk(wrk, case, script, WARMUP_SECONDS, connections)
    used: list[CpuUse] = []
    with cpu_use(case.server, used):
        output = run_wrk(wrk, case, script, duration, connections)
    if case.server.process.poll() is not None:
        raise BenchError(f"{case.server.name} server died under load:\n{case.server.log_tail()}")
    requests, per_second, p50, p99, non_2xx, socket_errors = parse_wrk(output)
    return Result(case, requests, per_second, p50, p99, non_2xx, socket_errors, used[0])


# One backend ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    duration: int
    connections: int
    postgres_url: str | None


@contextmanager
def database_for(backend: str, options: Options, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        with sqlite_database(directory) as url:
            yield url
    else:
        assert options.postgres_url is not None
        with postgres_database(options.postgres_url) as url:
            yield url


def bench_backend(
    backend: str, wrk: str, options: Options, directory: Path
) -> tuple[Suite, list[Result]]:
    """Seed a fresh database, start the three servers, check and load the four cases."""
    with database_for(backend, options, directory) as url, ExitStack() as stack:
        progress(f"{backend}: rma db upgrade && rma demo")
        api_key, demo_seconds = seed(url)
        env = {**os.environ, "RMA_DATABASE_URL": url}
        progress(f"{backend}: starting servers on CPU {SERVER_CPU}")
        bare = stack.enter_context(
            server(
                f"{backend}-bare",
                lambda p: uvicorn_command("apps:bare_app", p, factory=False),
                env,
                directory,
            )
        )
        hand = stack.enter_context(
            server(
                f"{backend}-hand",
                lambda p: uvicorn_command("apps:create_handwritten_app", p, factory=True),
                env,
                directory,
            )
        )
        api = stack.enter_context(
            server(
                f"{backend}-api",
                lambda p: [*rma_command(), "serve", "--host", HOST, "--port", str(p)],
                env,
                directory,
            )
        )
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        number = pick_rma(api, headers)
        suite = Suite(backend, number, demo_seconds, build_cases(bare, hand, api, api_key, number))
        results = []
        for case in suite.cases:
            progress(f"{backend}: ({case.key}) {case.label}, {options.duration} s")
            results.append(measure(wrk, case, directory, options.duration, options.connections))
        return suite, results


# Output ---------------------------------------------------------------------------------------


def print_header(options: Options, wrk: str) -> None:
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    print("GraphQL benchmark: the API against a bare endpoint and a hand-written one.")
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
    print()


NOISY_PERCENT = 10.0


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows under a header: the first column left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        cells = [line[0].ljust(widths[0])]
        cells += [line[i].rjust(widths[i]) for i in range(1, len(header))]
        print("  ".join(cells))


def print_suite(suite: Suite, results: Sequence[Result]) -> None:
    print(
        f"[{suite.backend}] demo seeded in {suite.demo_seconds:.1f} s; "
        f"RMA {suite.number}; rmas page of {PAGE_SIZE}"
    )
    table(
        (
            "case",
            "requests/s",
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
                f"({r.case.key}) {r.case.label}",
                f"{r.requests_per_second:.1f}",
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                str(r.requests),
                str(r.non_2xx_3xx),
                f"{1000.0 * r.cpu.server / max(r.requests, 1):.2f}",
                f"{r.cpu.percent(r.cpu.server):.0f}%",
                f"{r.cpu.percent(r.cpu.wrk):.0f}%",
                f"{r.cpu.percent(r.cpu.others_on_server_cpu):.0f}%",
                f"{r.cpu.percent(r.cpu.others_on_load_cpu):.0f}%",
            )
            for r in results
        ],
    )
    for r in results:
        if any(r.socket_errors.values()):
            detail = ", ".join(f"{name} {count}" for name, count in r.socket_errors.items())
            print(f"socket errors in ({r.case.key}): {detail}")
    noisy = [
        f"({r.case.key})"
        for r in results
        if max(r.cpu.percent(r.cpu.others_on_server_cpu), r.cpu.percent(r.cpu.others_on_load_cpu))
        > NOISY_PERCENT
    ]
    if noisy:
        print(
            f"warning: other processes used over {NOISY_PERCENT:.0f}% of a benchmark CPU during "
            f"{', '.join(noisy)}; requests/s there is understated, CPU ms/req is steadier"
        )
    by_key = {r.case.key: r for r in results}
    a, b, c = by_key["a"], by_key["b"], by_key["c"]
    c_over_b = c.requests_per_second / b.requests_per_second
    c_over_a = c.requests_per_second / a.requests_per_second
    print(f"(c)/(b) = {c_over_b:.3f}   (c)/(a) = {c_over_a:.3f}   (requests/s)")

    def cpu_per_request(result: Result) -> float:
        return result.cpu.server / max(result.requests, 1)

    print(
        f"(c)/(b) = {cpu_per_request(b) / cpu_per_request(c):.3f}   "
        f"(c)/(a) = {cpu_per_request(a) / cpu_per_request(c):.3f}   "
        "(inverse server CPU per request)"
    )
    verdict = "MET" if c_over_b >= 0.5 else "NOT MET"
    print(f"target: (c) at least half of (b): {verdict} ({c_over_b:.2f} by requests/s)")
    print(f"non-2xx/3xx responses under load: {sum(r.non_2xx_3xx for r in results)}")
    print()


# Entry point ----------------------------------------------------------------------------------


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
        "--postgres-url",
        default=None,
        help="also run on a throwaway database on this PostgreSQL server (off by default)",
    )
    parsed = parser.parse_args(argv)
    return Options(parsed.duration, parsed.connections, parsed.postgres_url)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        check_cpus()
        wrk = ensure_wrk()
        print_header(options, wrk)
        backends = ["sqlite"] + (["postgres"] if options.postgres_url else [])
        for backend in backends:
            with tempfile.TemporaryDirectory(prefix="rma-graphql-bench-") as directory:
                suite, results = bench_backend(backend, wrk, options, Path(directory))
            print_suite(suite, results)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
