"""What webhook intake costs: signed deliveries per second into the inbox, under wrk.

For each backend (a fresh SQLite file, then a throwaway PostgreSQL database) the script runs
``rma db upgrade``, ``rma merchant create`` and ``rma connect shopify``, then loads three cases
with the same Shopify ``orders/create`` requests (the 10.7 kB body of
``testkit/fixtures/shopify_orders_create.json``, compact, with its order id varied):

(a) bare       A bare Starlette POST endpoint that reads the body and answers 200 JSON
               (``benchmarks/support/apps/bare_post.py``): the floor of the HTTP stack.
(b) inbox      The real intake, ``POST /webhooks/shopify/{connection}`` of ``rma serve`` with the
               in-process worker off (``RMA_RUN_WORKER=false``, and ``--no-worker`` when this
               ``rma serve`` has that flag), so only intake is measured:
               connection lookup, secret decryption, HMAC check, then the delivery and its
               processing job stored in one transaction. Every request is a new delivery.
(c) duplicate  The real intake receiving one already stored delivery over and over: the cost
               of the deduplication path (the insert fails on the unique key and rolls back).

wrk's Lua has no HMAC, so Python signs a pool of ``--pool`` distinct deliveries beforehand
(distinct ``X-Shopify-Event-Id`` and order id, so a distinct body and signature each) and
``benchmarks/support/deliveries.lua`` takes them in turn; the warm-up and the measured
run use disjoint parts of the pool. Every case is checked once with httpx first (a new delivery
answers ``"duplicate": false``, the same one again ``"duplicate": true``). After the measured
inbox run the script counts the rows stored against the requests wrk completed.

Servers run on CPU 1 and wrk (1 thread, ``--connections`` connections) on CPU 0, on 127.0.0.1
only; PostgreSQL itself is not pinned, and the "others" columns show what it (and anything else)
took from each benchmark CPU. The script prints deliveries/s, p50 and p99 latency, non-2xx
responses and CPU use per case, the ratio (b)/(a) and issue 16's target line for the backend:
"target: at least 0.4 of bare on SQLite" / "target: at least 0.5 of bare on PostgreSQL", MET or
NOT MET by deliveries/s. The machine is shared: read the "server CPU ms/req" column beside the
rates, it moves far less with what else runs.

What the profile said (issue 16; pyinstrument on ``rma serve`` under wrk, and on the ASGI app
driven in-process with no HTTP client, 32 requests at once):

- The request path was not the cost. Without the inbox (its ``store`` stubbed) the app took
  0.14 ms CPU per delivery in-process; with it 0.75 (SQLite): four fifths of the CPU went to
  the group-commit writer. HMAC and SHA-256 of the 10.7 kB body take about 40 us together; the
  Shopify check parses no JSON (the dedupe key is the body's hash), so orjson would buy nothing;
  the connection's decrypted secrets were already cached per process and checked against the
  sealed secrets in the transaction that stores the delivery (a rotation or a disable is seen
  by the next delivery in every process), so neither lookup nor Fernet showed.
- The writer paid a fixed cost per batch that dwarfed the rows: an ORM session, the
  ``IN (...)`` clause rebuilt for every batch, about 16 hops to aiosqlite's thread (each
  statement is cursor, execute, fetch, close), a ``wait_for`` task per queued delivery while
  gathering. A one-delivery batch cost 3.8 ms CPU on SQLite and 2.4 ms on PostgreSQL; batches
  under load averaged 15 deliveries, half of them under 8. Core statements built once on a plain
  connection halved the fixed cost (2.0 ms for one delivery); gathering is one sleep of the
  group-commit window and a drain of the queue.
- What remains on SQLite is SQLite's own work in aiosqlite's thread (the 10.7 kB rows' pages
  and the fsync of ``synchronous=FULL``, about 0.13 ms CPU per delivery at 32 a batch) and the
  thread hops; JSON for the stored headers is 2 %.
- PostgreSQL was latency-bound, not CPU-bound (the server used 43 % of its CPU at 445
  deliveries/s): one batch at a time, each about six round trips (the pool's pre-ping, BEGIN,
  the connection check, the insert, the jobs, COMMIT). Up to four batches now commit side by
  side; each still answers only after its own COMMIT.
- Server CPU per delivery under wrk went from 1.18 to about 0.6 ms (SQLite) and from 1.03 to
  about 0.65 ms (PostgreSQL); the bare endpoint takes 0.08 to 0.09.

Run it from the project root:

    .venv/bin/python benchmarks/webhook_intake.py
    .venv/bin/python benchmarks/webhook_intake.py --duration 5 --connections 64
    .venv/bin/python benchmarks/webhook_intake.py --postgres-url postgresql://postgres@127.0.0.1/postgres
    .venv/bin/python benchmarks/webhook_intake.py --sqlite-only

PostgreSQL comes from ``--postgres-url`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
when it does not answer, the PostgreSQL half is skipped with a line saying so. The throwaway
database is dropped at the end, even after a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from support import PROJECT, BenchError
from support.cli import exit_status, positive
from support.cpu import NOISY_PERCENT, SERVER_CPU, check_cpus
from support.databases import DEFAULT_POSTGRES_URL, empty_database, postgres_skip_reason
from support.report import noisy_cases, print_banner, print_load_table, progress
from support.rma_command import rma_command, run_rma
from support.servers import Server, pinned_server, rma_serve_command, uvicorn_command
from support.wrk import (
    WARMUP_SECONDS,
    Measurement,
    WrkRun,
    parse_wrk,
    run_wrk,
    under_load,
    wrk_match,
    wrk_run_line,
)

# The signing helpers are in ``testkit``, which is not installed: import it from the project root.
sys.path.insert(0, str(PROJECT))

from core.database import Database
from testkit.webhook_signing import shopify_headers

SUPPORT_DIR = Path(__file__).resolve().parent / "support"
APPS_DIR = SUPPORT_DIR / "apps"
LUA_SCRIPT = SUPPORT_DIR / "deliveries.lua"
FIXTURE = PROJECT / "testkit" / "fixtures" / "shopify_orders_create.json"
RMA_TIMEOUT_SECONDS = 300.0
SETTLE_SECONDS = 30.0
# Issue 16: intake at least this fraction of the bare endpoint's deliveries/s, per backend.
TARGET_RATIOS = {"sqlite": 0.4, "postgres": 0.5}
BACKEND_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

SHOP = "bench-shop.myshopify.com"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 (a throwaway database's)
TOPIC = "orders/create"
# The fixture's order id is replaced by this marker, then the body is split around it.
ORDER_ID_MARKER = 987_654_321_987_654_321
FIRST_ORDER_ID = 5_000_000_000_000


# Tools ----------------------------------------------------------------------------------------


def find_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    return found


# Databases ------------------------------------------------------------------------------------


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


def rma_last_line(arguments: Sequence[str], database_url: str) -> str:
    """Run ``rma ARGUMENTS`` against ``database_url``; the last line of its standard output."""
    output = run_rma(arguments, database_url, timeout=RMA_TIMEOUT_SECONDS)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        raise BenchError(f"rma {' '.join(arguments)} printed nothing")
    return lines[-1]


def prepare(database_url: str) -> str:
    """Migrate, create a merchant and connect a Shopify shop; the webhook path."""
    rma_last_line(["db", "upgrade"], database_url)
    merchant = rma_last_line(["merchant", "create", "--name", "Webhook bench"], database_url)
    path = rma_last_line(
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
    parts = body_parts()
    template = directory / "body-template.txt"
    template.write_text("".join(f"{part}\n" for part in parts))
    signatures: list[str] = []
    lines: list[str] = []
    for index in range(size):
        order_id = str(FIRST_ORDER_ID + index)
        event = f"evt-bench-{index:08d}"
        body = order_id.join(parts).encode()
        headers = shopify_headers(body, WEBHOOK_SECRET, SHOP, event_id=event)
        signature = headers["x-shopify-hmac-sha256"]
        signatures.append(signature)
        lines.append(f"{event}\t{order_id}\t{signature}\n")
    pool_file = directory / "deliveries.tsv"
    pool_file.write_text("".join(lines))
    return Pool(pool_file, template, parts, size, signatures)


# Servers --------------------------------------------------------------------------------------


def bare_command(port: int) -> list[str]:
    return uvicorn_command("bare_post:app", port, app_dir=APPS_DIR)


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
        return rma_serve_command(port, *(["--no-worker"] if no_worker_flag else []))

    return command


# wrk ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolRun:
    """A wrk run through the Lua pool script: what wrk reported, and the pool entries it took
    (``next`` is where a run that sends only new deliveries starts)."""

    run: WrkRun
    taken: int
    next: int


def run_pool_wrk(
    wrk: str, url: str, pool: Pool, *, offset: int, mode: str, seconds: int, connections: int
) -> PoolRun:
    output = run_wrk(
        wrk,
        url,
        LUA_SCRIPT,
        seconds=seconds,
        connections=connections,
        script_arguments=[str(pool.pool_file), str(pool.template_file), SHOP, str(offset), mode],
    )
    return PoolRun(
        parse_wrk(output),
        taken=int(wrk_match(output, r"^pool-taken: (\d+)").group(1)),
        next=int(wrk_match(output, r"^pool-next: (\d+)").group(1)),
    )


# Cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result(Measurement):
    pool_taken: int
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
    warm = run_pool_wrk(
        wrk,
        url,
        pool,
        offset=offset,
        mode=mode,
        seconds=WARMUP_SECONDS,
        connections=options.connections,
    )
    start = warm.next if mode == "unique" else offset
    before = settled_counts(database_url) if database_url else None
    loaded, cpu = under_load(
        target,
        lambda: run_pool_wrk(
            wrk,
            url,
            pool,
            offset=start,
            mode=mode,
            seconds=options.duration,
            connections=options.connections,
        ),
    )
    after = settled_counts(database_url) if database_url else None
    return Result(key, label, loaded.run, cpu, loaded.taken, start, before, after)


@dataclass(frozen=True)
class Suite:
    backend: str
    results: list[Result]
    no_worker_flag: bool
    pool_size: int


def bench_backend(backend: str, wrk: str, pool: Pool, options: Options, directory: Path) -> Suite:
    """Prepare a fresh database, start both servers, check and load the three cases."""
    with empty_database(backend, directory, options.postgres_url) as url, ExitStack() as stack:
        progress(f"{backend}: rma db upgrade, merchant create, connect shopify")
        path = prepare(url)
        no_worker_flag = serve_has_no_worker_flag()
        env = {**os.environ, "RMA_DATABASE_URL": url, "RMA_RUN_WORKER": "false"}
        progress(f"{backend}: starting servers on CPU {SERVER_CPU}")
        bare = stack.enter_context(pinned_server(f"{backend}-bare", bare_command, env, directory))
        inbox = stack.enter_context(
            pinned_server(f"{backend}-inbox", inbox_command(no_worker_flag), env, directory)
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


def print_header(options: Options, wrk: str, pool: Pool, directory: Path) -> None:
    print_banner(
        "Webhook intake benchmark: signed Shopify deliveries into the inbox against a bare POST.",
        wrk_run_line(options.connections, options.duration),
        f"pool:    {pool.size} distinct signed deliveries, {pool.body_bytes} B body each "
        f"(topic {TOPIC}); SQLite files under {directory}",
        wrk=wrk,
    )


def print_suite(suite: Suite) -> None:
    flag = "--no-worker" if suite.no_worker_flag else "RMA_RUN_WORKER=false (no --no-worker flag)"
    print(f"[{suite.backend}] intake: rma serve, worker off via {flag}")
    print_load_table("deliveries/s", suite.results)
    noisy = noisy_cases(suite.results)
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
    print(
        f"(b)/(a) = {bare.server_cpu_per_request / inbox.server_cpu_per_request:.3f}   (c)/(a) = "
        f"{bare.server_cpu_per_request / duplicate.server_cpu_per_request:.3f}   "
        "(inverse server CPU per request; the server process only, not PostgreSQL)"
    )
    print(target_line(suite.backend, ratio))
    print_stored(suite, inbox, duplicate)
    print()


def target_line(backend: str, ratio: float) -> str:
    """``target: at least 0.4 of bare on SQLite: MET (0.452 by deliveries/s)``."""
    wanted = TARGET_RATIOS[backend]
    verdict = "MET" if ratio >= wanted else "NOT MET"
    return (
        f"target: at least {wanted} of bare on {BACKEND_NAMES[backend]}: {verdict} "
        f"({ratio:.3f} by deliveries/s)"
    )


def print_stored(suite: Suite, inbox: Result, duplicate: Result) -> None:
    """Rows stored during the measured inbox run against what wrk sent and completed."""
    stored = inbox.added()
    completed_2xx = inbox.run.requests - inbox.run.non_2xx_3xx
    wrapped = max(0, inbox.offset + inbox.pool_taken - suite.pool_size)
    in_flight = inbox.pool_taken - inbox.run.requests
    print(
        f"stored: {stored.deliveries} deliveries and {stored.jobs} jobs during (b), for "
        f"{completed_2xx} 2xx responses; {inbox.pool_taken} requests sent, {in_flight} of "
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
    if not completed_2xx <= stored.deliveries <= inbox.pool_taken:
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


def bench(options: Options) -> None:
    check_cpus()
    wrk = find_wrk()
    with tempfile.TemporaryDirectory(prefix="rma-webhook-bench-") as name:
        directory = Path(name)
        progress(f"signing {options.pool} deliveries")
        pool = write_pool(directory, options.pool)
        print_header(options, wrk, pool, directory)
        backends = ["sqlite"]
        if reason := postgres_skip_reason(options.sqlite_only, options.postgres_url):
            print(f"[postgres] skipped: {reason}\n")
        else:
            backends.append("postgres")
        for backend in backends:
            backend_directory = directory / backend
            backend_directory.mkdir()
            print_suite(bench_backend(backend, wrk, pool, options, backend_directory))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return exit_status(lambda: bench(options))


if __name__ == "__main__":
    sys.exit(main())
