"""What the GraphQL layer costs: requests per second and latency of five HTTP cases under wrk.

The cases, each served by uvicorn (uvloop, httptools, one worker, access log off) over the same
freshly seeded demo database (``rma db upgrade`` then ``rma demo``):

(a) bare     Starlette returning a fixed JSON body: the floor of the HTTP stack.
(b) hand     A hand-written Starlette endpoint, ``GET /rma/{number}``, on the same data layer as
             the API: the API key through ``LiveKeys``, then the RMA by number and its lines as
             plain rows in one read session (``benchmarks/support/apps/read_endpoints.py``).
(c) rma      The real API (``rma serve``): ``rma(number:)`` with the same fields as (b),
             ``number status lines { quantity reason condition receivedQuantity }``.
(e) floor    The real API answering ``{ __typename }`` with the same API key: middleware,
             sign-in, strawberry and graphql-core with no data. No GraphQL read can beat it.
(d) rmas     The real API: ``rmas(first: 50)`` with ``lines { quantity reason }`` and
             ``order { orderNumber }``.

Servers run on CPU 1 and wrk (1 thread, ``--connections`` connections) on CPU 0, on 127.0.0.1
only. Every case is checked once with httpx (HTTP 200 and the expected JSON) before it is
loaded, then warmed up for a second, then measured for ``--duration`` seconds. The script
prints requests/s, p50 and p99 latency, the server's CPU use and wrk's error counts per case,
then issue 16's targets (each case's requests/s as a share of (a)'s: (b) 0.25, (c) 0.10,
(d) 0.025) with whether each is met, and how (c) and (d) compare with the floor (e).

What the profiles showed (``benchmarks/graphql_profile.py`` splits each case's CPU by owner):

- Before: signing in was a query (2.3 ms of CPU a request); every SQLite statement went
  through aiosqlite's thread (0.4 ms of CPU each, and a request made a dozen with its BEGINs
  and ROLLBACKs); pages read ORM instances (15 ms of a page of 50, 5 ms as plain rows); every
  batch rebuilt its statement and SQLAlchemy derived its cache key again; each node's lines
  and order were a task of their own; full garbage collections scanned the whole schema.
- After: a remembered key, reads on the event loop's thread, plain rows, statements built once
  per shape, what the query selects read ahead in the root field's one session, the startup
  heap frozen, orjson. ``(e) floor`` is then 0.095 of bare: the framework alone (uvicorn,
  Starlette, strawberry, graphql-core; our code is 9% of its CPU) is under (c)'s target of
  0.10, so no ``rma(number:)`` on this stack can meet it. In ``(c)`` and ``(d)`` strawberry and
  graphql-core take a third of the CPU, SQLAlchemy's session and result machinery a fifth, our
  code about a tenth; the rest is the standard library under them (UUIDs, enums, datetimes).

Run it from the project root (as root: it installs wrk with apt when it is missing):

    .venv/bin/python benchmarks/graphql_reads.py
    .venv/bin/python benchmarks/graphql_reads.py --duration 5 --connections 64
    .venv/bin/python benchmarks/graphql_reads.py --postgres-url postgresql://postgres@127.0.0.1/postgres

SQLite only by default; with ``--postgres-url`` the cases also run on a throwaway PostgreSQL
database created on that server and dropped at the end, even after a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from support import BenchError
from support.cli import exit_status, positive
from support.cpu import NOISY_PERCENT, SERVER_CPU, check_cpus
from support.databases import empty_database
from support.report import noisy_cases, print_banner, print_load_table, progress
from support.rma_command import run_rma
from support.servers import Server, pinned_server, rma_serve_command, uvicorn_command
from support.wrk import (
    WARMUP_SECONDS,
    Measurement,
    parse_wrk,
    run_wrk,
    under_load,
    wrk_run_line,
)

APPS_DIR = Path(__file__).resolve().parent / "support" / "apps"
SEED_TIMEOUT_SECONDS = 600.0
APT_TIMEOUT_SECONDS = 600.0
PAGE_SIZE = 50
# Issue 16: each case's requests/s as a share of the bare endpoint's, measured in the same run.
TARGETS = {"b": 0.25, "c": 0.10, "d": 0.025}
# What the bare app answers (``BARE_BODY`` in support/apps/read_endpoints.py).
BARE_BODY = {"status": "ok", "service": "rma", "bench": True}

RMA_QUERY = """query Rma($number: String!) {
  rma(number: $number) { number status lines { quantity reason condition receivedQuantity } }
}"""
FLOOR_QUERY = "{ __typename }"
RMAS_QUERY = """query Rmas($first: Int!) {
  rmas(first: $first) { nodes { number lines { quantity reason } order { orderNumber } } }
}"""


# Tools ----------------------------------------------------------------------------------------


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


# Databases ------------------------------------------------------------------------------------


def seed(database_url: str) -> tuple[str, float]:
    """Migrate and seed the demo data; the ADMIN API key and the seconds ``rma demo`` took."""
    run_rma(["db", "upgrade"], database_url, timeout=SEED_TIMEOUT_SECONDS)
    started = time.perf_counter()
    output = run_rma(["demo"], database_url, timeout=SEED_TIMEOUT_SECONDS)
    seconds = time.perf_counter() - started
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines or not lines[-1].startswith("rma_sk_"):
        raise BenchError(f"rma demo did not print an API key last: {lines[-1:]}")
    return lines[-1], seconds


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
            "e",
            "floor",
            f"{api.base}/graphql",
            "POST",
            post,
            graphql_body(FLOOR_QUERY, {}),
            expect_equal("GraphQL floor", {"data": {"__typename": "Query"}}),
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


def measure(wrk: str, case: Case, directory: Path, duration: int, connections: int) -> Measurement:
    """Check the case once, warm it up, then load it for ``duration`` seconds."""
    check_case(case)
    script = write_wrk_script(case, directory)

    def load(seconds: int) -> str:
        return run_wrk(
            wrk,
            case.url,
            script,
            seconds=seconds,
            connections=connections,
            what=f"case ({case.key})",
        )

    load(WARMUP_SECONDS)
    output, cpu = under_load(case.server, lambda: load(duration))
    return Measurement(case.key, case.label, parse_wrk(output), cpu)


# One backend ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    duration: int
    connections: int
    postgres_url: str | None


def bench_backend(
    backend: str, wrk: str, options: Options, directory: Path
) -> tuple[Suite, list[Measurement]]:
    """Seed a fresh database, start the three servers, check and load the four cases."""
    with empty_database(backend, directory, options.postgres_url) as url, ExitStack() as stack:
        progress(f"{backend}: rma db upgrade && rma demo")
        api_key, demo_seconds = seed(url)
        env = {**os.environ, "RMA_DATABASE_URL": url}
        progress(f"{backend}: starting servers on CPU {SERVER_CPU}")
        bare = stack.enter_context(
            pinned_server(
                f"{backend}-bare",
                lambda p: uvicorn_command("read_endpoints:bare_app", p, app_dir=APPS_DIR),
                env,
                directory,
            )
        )
        hand = stack.enter_context(
            pinned_server(
                f"{backend}-hand",
                lambda p: uvicorn_command(
                    "read_endpoints:create_handwritten_app", p, app_dir=APPS_DIR, factory=True
                ),
                env,
                directory,
            )
        )
        api = stack.enter_context(
            pinned_server(f"{backend}-api", rma_serve_command, env, directory)
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
    print_banner(
        "GraphQL benchmark: the API against a bare endpoint and a hand-written one.",
        wrk_run_line(options.connections, options.duration),
        wrk=wrk,
    )


def print_suite(suite: Suite, results: Sequence[Measurement]) -> None:
    print(
        f"[{suite.backend}] demo seeded in {suite.demo_seconds:.1f} s; "
        f"RMA {suite.number}; rmas page of {PAGE_SIZE}"
    )
    print_load_table("requests/s", results)
    noisy = noisy_cases(results)
    if noisy:
        print(
            f"warning: other processes used over {NOISY_PERCENT:.0f}% of a benchmark CPU during "
            f"{', '.join(noisy)}; requests/s there is understated, CPU ms/req is steadier"
        )
    by_key = {r.key: r for r in results}
    bare = by_key["a"]
    for key, target in TARGETS.items():
        case = by_key[key]
        by_rate = case.run.per_second / bare.run.per_second
        by_cpu = bare.server_cpu_per_request / case.server_cpu_per_request
        verdict = "MET" if by_rate >= target else "NOT MET"
        print(
            f"target: ({key}) {case.label} at least {target} of bare: {verdict} "
            f"({by_rate:.3f} by requests/s, {by_cpu:.3f} by server CPU per request)"
        )
    floor = by_key["e"]
    print(
        f"(e) floor, the framework alone (auth, middleware, strawberry, graphql-core, no "
        f"data): {floor.run.per_second / bare.run.per_second:.3f} of bare; (c) is "
        f"{by_key['c'].run.per_second / floor.run.per_second:.2f} and (d) "
        f"{by_key['d'].run.per_second / floor.run.per_second:.3f} of the floor"
    )
    print(f"non-2xx/3xx responses under load: {sum(r.run.non_2xx_3xx for r in results)}")
    print()


# Entry point ----------------------------------------------------------------------------------


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


def bench(options: Options) -> None:
    check_cpus()
    wrk = ensure_wrk()
    print_header(options, wrk)
    backends = ["sqlite"] + (["postgres"] if options.postgres_url else [])
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="rma-graphql-bench-") as directory:
            suite, results = bench_backend(backend, wrk, options, Path(directory))
        print_suite(suite, results)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return exit_status(lambda: bench(options))


if __name__ == "__main__":
    sys.exit(main())
