"""Filtered ``rmas`` pages over a million RMAs: p50/p95/p99 timed inside the server, and the plan
of each filter's query.

Seeds a throwaway database with ``support/seeder.py`` (PostgreSQL: 1,000,000 RMAs; SQLite:
100,000), starts the real API (``rma serve``, pinned to CPU 1), then asks for
``rmas(first: 50) { nodes { number status createdAt } pageInfo { ... } }`` pages (what a list
view shows; the GraphQL read path's own benchmark is graphql_reads.py) one at a time,
``--requests`` times per case:

(a) newest      no filter: the first page
(b) status      ``status: [REJECTED]`` (about one RMA in twenty)
(c) created     ``createdFrom``/``createdTo``: a 30-day window a year back
(d) e-mail      ``customerEmail``: one customer's RMAs
(e) next page   ``after:`` the end cursor of (a): the second page
(f) deep page   ``after:`` the end cursor of (c): the page a year back, no filter

The time of each request is the server's own: the ``Server-Timing: app;dur=MS`` header the API's
request middleware writes (``graphql_api/request_context.py``), from the request's arrival to its
answer's first bytes; the client's and the network's time are left out. The target is a p99
under 20 ms per case. Each case's answer is checked once (the filter holds, newest first) and
its SQL, captured from ``core.queries.rma_page`` itself, is shown with PostgreSQL's
``EXPLAIN (ANALYZE, BUFFERS)`` or SQLite's ``EXPLAIN QUERY PLAN``.

    .venv/bin/python benchmarks/rmas_scale.py
    .venv/bin/python benchmarks/rmas_scale.py --sqlite-only --sqlite-rmas 20000
    .venv/bin/python benchmarks/rmas_scale.py --reuse-postgres postgresql://postgres@127.0.0.1/rma_scale

``--reuse-postgres``/``--reuse-sqlite`` measure an already seeded database (its merchant with the
most RMAs; a fresh ADMIN key is issued for the run) instead of seeding one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import event
from support import BenchError
from support.cli import exit_status, positive
from support.cpu import SERVER_CPU, check_cpus
from support.databases import (
    add_postgres_url_option,
    empty_database,
    postgres_skip_reason,
    safe_url,
)
from support.report import percentile, print_banner, progress, quiet_logs, table
from support.seeder import seed_scale
from support.servers import pinned_server, rma_serve_command

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Customer, Rma
from core.enums import ApiKeyRole, RmaStatus
from core.queries import RmaFilter, rma_page
from core.usecases.merchants import create_api_key
from graphql_api.ids import decode_cursor

PAGE_SIZE = 50
TARGET_MS = 20.0
WARMUP_REQUESTS = 20
STATUS = RmaStatus.REJECTED
QUERY = """query Rmas($first: Int!, $filter: RmaFilter, $after: String) {
  rmas(first: $first, filter: $filter, after: $after) {
    nodes { number status createdAt }
    pageInfo { endCursor hasNextPage }
  }
}"""


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    graphql_filter: dict[str, Any]
    after: str | None
    core_filter: RmaFilter
    check: Callable[[list[dict[str, Any]]], None]


@dataclass
class Timed:
    case: Case
    server_ms: list[float]
    client_ms: list[float]

    def row(self) -> list[str]:
        p99 = percentile(self.server_ms, 0.99)
        return [
            f"({self.case.key}) {self.case.label}",
            f"{percentile(self.server_ms, 0.5):.2f}",
            f"{percentile(self.server_ms, 0.95):.2f}",
            f"{p99:.2f}",
            f"{max(self.server_ms):.2f}",
            f"{percentile(self.client_ms, 0.5):.2f}",
            str(len(self.server_ms)),
            "MET" if p99 < TARGET_MS else "NOT MET",
        ]


# The API -------------------------------------------------------------------------------------


class Client:
    def __init__(self, base: str, api_key: str) -> None:
        self.http = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=60.0,
        )

    def page(self, case_filter: dict[str, Any], after: str | None) -> tuple[Any, float, float]:
        """One page: its ``rmas``, the server's milliseconds and the client's."""
        body = {"query": QUERY, "variables": {"first": PAGE_SIZE, "filter": case_filter}}
        if after is not None:
            body["variables"]["after"] = after
        started = time.perf_counter()
        response = self.http.post("/graphql", json=body)
        client_ms = (time.perf_counter() - started) * 1000
        payload = response.json()
        if response.status_code != 200 or payload.get("errors"):
            raise BenchError(f"rmas answered {response.status_code}: {json.dumps(payload)[:500]}")
        timing = response.headers.get("server-timing", "")
        name, _, duration = timing.partition(";dur=")
        if name != "app" or not duration:
            raise BenchError(f"no Server-Timing app;dur= header in the answer: {timing!r}")
        return payload["data"]["rmas"], float(duration), client_ms


def newest_first(nodes: list[dict[str, Any]]) -> None:
    moments = [node["createdAt"] for node in nodes]
    if not nodes or [datetime.fromisoformat(m) for m in moments] != sorted(
        (datetime.fromisoformat(m) for m in moments), reverse=True
    ):
        raise BenchError("the page is empty or not newest first")


def build_cases(client: Client, email: str, now: datetime) -> list[Case]:
    """The cases; the cursors come from the API's own pages."""
    window_to = now - timedelta(days=365)
    window_from = window_to - timedelta(days=30)
    window = {"createdFrom": window_from.isoformat(), "createdTo": window_to.isoformat()}

    def in_window(nodes: list[dict[str, Any]]) -> None:
        newest_first(nodes)
        for node in nodes:
            if not window_from <= datetime.fromisoformat(node["createdAt"]) < window_to:
                raise BenchError(f"{node['number']} is outside the window")

    def with_status(nodes: list[dict[str, Any]]) -> None:
        newest_first(nodes)
        if any(node["status"] != STATUS.value for node in nodes):
            raise BenchError(f"a node is not {STATUS.value}")

    first_page, _, _ = client.page({}, None)
    window_page, _, _ = client.page(window, None)
    next_cursor = first_page["pageInfo"]["endCursor"]
    deep_cursor = window_page["pageInfo"]["endCursor"]
    return [
        Case("a", "newest", {}, None, RmaFilter(), newest_first),
        Case(
            "b",
            f"status {STATUS.value}",
            {"status": [STATUS.value]},
            None,
            RmaFilter(statuses=[STATUS]),
            with_status,
        ),
        Case(
            "c",
            "created, 30 days a year back",
            window,
            None,
            RmaFilter(created_from=window_from, created_to=window_to),
            in_window,
        ),
        Case(
            "d",
            "customer e-mail",
            {"customerEmail": email},
            None,
            RmaFilter(customer_email=email),
            newest_first,
        ),
        Case("e", "next page (after a)", {}, next_cursor, RmaFilter(), newest_first),
        Case("f", "deep page (after c)", {}, deep_cursor, RmaFilter(), newest_first),
    ]


def time_case(client: Client, case: Case, requests: int) -> Timed:
    rmas, _, _ = client.page(case.graphql_filter, case.after)
    case.check(rmas["nodes"])
    for _ in range(WARMUP_REQUESTS):
        client.page(case.graphql_filter, case.after)
    timed = Timed(case, [], [])
    for _ in range(requests):
        _, server_ms, client_ms = client.page(case.graphql_filter, case.after)
        timed.server_ms.append(server_ms)
        timed.client_ms.append(client_ms)
    return timed


# The database --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    merchant_id: uuid.UUID
    api_key: str
    rmas: int
    email: str
    seed_seconds: float | None


async def seed(url: str, rmas: int) -> Seeded:
    def report(done: int) -> None:
        if done % 100_000 == 0 or done == rmas:
            progress(f"seeded {done:,} of {rmas:,} RMAs")

    result = await seed_scale(url, rmas=rmas, progress=report)
    return Seeded(
        result.merchant_id,
        result.api_key,
        result.rmas,
        await busiest_email(url, result.merchant_id),
        result.seconds,
    )


async def reuse(url: str) -> Seeded:
    """The merchant with the most RMAs, and a fresh ADMIN key for it."""
    database = Database(url, pool_size=1)
    try:
        async with database.read_session() as session:
            found = (
                await session.exec(
                    sa.select(Rma.merchant_id, sa.func.count())
                    .group_by(Rma.merchant_id)
                    .order_by(sa.func.count().desc())
                    .limit(1)
                )
            ).first()
        if found is None:
            raise BenchError(f"{safe_url(url)} has no RMAs to measure")
        merchant_id, count = found
        async with database.session() as session:
            issued = await create_api_key(
                session,
                merchant_id=merchant_id,
                role=ApiKeyRole.ADMIN,
                label="rmas_scale benchmark",
                now=SYSTEM_CLOCK.now(),
            )
    finally:
        await database.dispose()
    return Seeded(
        merchant_id, issued.plaintext, int(count), await busiest_email(url, merchant_id), None
    )


async def busiest_email(url: str, merchant_id: uuid.UUID) -> str:
    """The e-mail of a customer with more than one RMA (the first one found)."""
    database = Database(url, pool_size=1)
    try:
        async with database.read_session() as session:
            customer_id = (
                await session.exec(
                    sa.select(Rma.customer_id)
                    .where(Rma.merchant_id == merchant_id)
                    .order_by(Rma.created_at.desc())
                    .limit(1)
                )
            ).one()
            customer = await session.get(Customer, customer_id)
    finally:
        await database.dispose()
    assert customer is not None
    return customer.email


async def explain(url: str, merchant_id: uuid.UUID, case: Case) -> list[str]:
    """The plan of the statement ``rma_page`` runs for ``case``, captured as it runs."""
    database = Database(url, pool_size=1)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(database.read_engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with database.read_session() as session:
            after = decode_cursor(case.after)
            await rma_page(session, merchant_id, case.core_filter, first=PAGE_SIZE, after=after)
            statement, parameters = next((s, p) for s, p in captured if "FROM rma" in s)
            prefix = (
                "EXPLAIN (ANALYZE, BUFFERS) " if database.is_postgres else "EXPLAIN QUERY PLAN "
            )
            connection = await session.connection()
            result = await connection.exec_driver_sql(prefix + statement, parameters)
            rows = result.all()
    finally:
        await database.dispose()
    if database.is_postgres:
        return [str(row[0]) for row in rows]
    return [f"{'  ' * _depth(rows, row)}{row[-1]}" for row in rows]


def _depth(rows: Sequence[Any], row: Any) -> int:
    """How deep a SQLite plan row is (its parent chain)."""
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


# One backend ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    postgres_url: str
    sqlite_only: bool
    postgres_only: bool
    postgres_rmas: int
    sqlite_rmas: int
    requests: int
    reuse_postgres: str | None
    reuse_sqlite: str | None


def bench_backend(backend: str, options: Options, directory: Path) -> None:
    reused = options.reuse_postgres if backend == "postgres" else options.reuse_sqlite
    rmas = options.postgres_rmas if backend == "postgres" else options.sqlite_rmas
    with ExitStack() as stack:
        if reused:
            url = reused
            progress(f"{backend}: reusing {safe_url(url)}")
            seeded = asyncio.run(reuse(url))
        else:
            url = stack.enter_context(empty_database(backend, directory, options.postgres_url))
            progress(f"{backend}: seeding {rmas:,} RMAs")
            seeded = asyncio.run(seed(url, rmas))
        env = {**os.environ, "RMA_DATABASE_URL": url, "RMA_RUN_WORKER": "false"}
        progress(f"{backend}: starting rma serve on CPU {SERVER_CPU}")
        api = stack.enter_context(
            pinned_server(f"{backend}-api", rma_serve_command, env, directory)
        )
        client = Client(api.base, seeded.api_key)
        cases = build_cases(client, seeded.email, SYSTEM_CLOCK.now())
        results = []
        for case in cases:
            progress(f"{backend}: ({case.key}) {case.label}, {options.requests} requests")
            results.append(time_case(client, case, options.requests))
        plans = {case.key: asyncio.run(explain(url, seeded.merchant_id, case)) for case in cases}
    print_backend(backend, seeded, results, plans)


def print_backend(
    backend: str, seeded: Seeded, results: list[Timed], plans: dict[str, list[str]]
) -> None:
    seeded_line = (
        f"seeded in {seeded.seed_seconds:.1f} s" if seeded.seed_seconds is not None else "reused"
    )
    print(f"[{backend}] {seeded.rmas:,} RMAs ({seeded_line}); rmas(first: {PAGE_SIZE})")
    table(
        [
            "case",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "client p50 ms",
            "requests",
            f"p99 < {TARGET_MS:.0f} ms",
        ],
        [timed.row() for timed in results],
    )
    met = all(percentile(t.server_ms, 0.99) < TARGET_MS for t in results)
    print(
        f"target: every case's p99 under {TARGET_MS:.0f} ms (server time): "
        f"{'MET' if met else 'NOT MET'}"
    )
    print()
    for timed in results:
        kind = "EXPLAIN (ANALYZE, BUFFERS)" if backend == "postgres" else "EXPLAIN QUERY PLAN"
        print(f"({timed.case.key}) {timed.case.label}: {kind}")
        for line in plans[timed.case.key]:
            print(f"    {line}")
    print()


# Entry point ---------------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_postgres_url_option(parser)
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    parser.add_argument("--postgres-rmas", type=positive, default=1_000_000)
    parser.add_argument("--sqlite-rmas", type=positive, default=100_000)
    parser.add_argument("--requests", type=positive, default=300, help="per case (300)")
    parser.add_argument("--reuse-postgres", help="measure this seeded database instead")
    parser.add_argument("--reuse-sqlite", help="measure this seeded database instead")
    parsed = parser.parse_args(argv)
    return Options(
        parsed.postgres_url,
        parsed.sqlite_only,
        parsed.postgres_only,
        parsed.postgres_rmas,
        parsed.sqlite_rmas,
        parsed.requests,
        parsed.reuse_postgres,
        parsed.reuse_sqlite,
    )


def bench(options: Options) -> None:
    check_cpus()
    quiet_logs()
    print_banner(
        "Filtered rmas pages at scale: server time per request (Server-Timing) and plans.",
        f"{options.requests} requests per case, one at a time, after {WARMUP_REQUESTS} warm-up",
    )
    skip = postgres_skip_reason(options.sqlite_only, options.postgres_url)
    backends = ([] if options.postgres_only else ["sqlite"]) + ([] if skip else ["postgres"])
    if skip:
        print(f"PostgreSQL skipped: {skip}\n")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="rma-scale-bench-") as directory:
            bench_backend(backend, options, Path(directory))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return exit_status(lambda: bench(options))


if __name__ == "__main__":
    sys.exit(main())
