"""Where a GraphQL read's CPU goes: this project's code, or the framework and drivers under it.

``benchmarks/graphql_reads.py`` measures requests per second; this script explains them. It
seeds a demo database (``rma db upgrade`` then ``rma demo``), builds the real app in this
process (``create_app``, the in-process worker off) and calls it as an ASGI server would, with
no sockets and no client in the process, with the same requests as the benchmark's cases:
``(e) floor`` (``{ __typename }``
with an API key), ``(c) rma`` and ``(d) rmas``. For each it prints the CPU per request (this
process, all threads) and, from cProfile over the same requests, how the CPU spent inside the
app splits by owner (the time each function spends in itself, summed by where the function
lives):

- ``project``: ``core/``, ``graphql_api/``, ``webhooks/``, ``plugins/``;
- ``strawberry``, ``graphql-core``, ``sqlalchemy`` (with SQLModel), ``starlette``;
- ``driver``: aiosqlite, sqlite3 or asyncpg; ``asyncio``: the event loop;
- ``other``: the standard library and other packages (uuid, json, base64, enum...).

cProfile slows everything it watches by about the same factor, so the shares matter; the CPU
per request is measured on a separate run without it. Garbage collection is counted against
whichever function allocated when it ran.

Run it from the project root:

    .venv/bin/python benchmarks/graphql_profile.py
    .venv/bin/python benchmarks/graphql_profile.py --requests 300 --postgres-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql_reads import FLOOR_QUERY, PAGE_SIZE, RMA_QUERY, RMAS_QUERY, seed
from support import PROJECT, BenchError
from support.cli import exit_status, positive
from support.databases import empty_database
from support.report import progress

OWNERS = ("project", "strawberry", "graphql-core", "sqlalchemy", "starlette", "driver", "asyncio")
PROJECT_DIRS = tuple(
    str(PROJECT / name) + os.sep for name in ("core", "graphql_api", "webhooks", "plugins")
)
PACKAGES = {
    f"{os.sep}strawberry{os.sep}": "strawberry",
    f"{os.sep}graphql{os.sep}": "graphql-core",
    f"{os.sep}sqlalchemy{os.sep}": "sqlalchemy",
    f"{os.sep}sqlmodel{os.sep}": "sqlalchemy",
    f"{os.sep}starlette{os.sep}": "starlette",
    f"{os.sep}aiosqlite{os.sep}": "driver",
    f"{os.sep}asyncpg{os.sep}": "driver",
    f"{os.sep}asyncio{os.sep}": "asyncio",
}


def owner(filename: str, function: str) -> str:
    if filename.startswith(PROJECT_DIRS):
        return "project"
    for fragment, name in PACKAGES.items():
        if fragment in filename:
            return name
    if filename == "~" and ("sqlite3" in function or "asyncpg" in function):
        return "driver"
    if filename == "~" and ("epoll" in function or "_asyncio" in function):
        return "asyncio"
    return "other"


@dataclass(frozen=True)
class Profiled:
    label: str
    cpu_ms: float
    shares: dict[str, float]


class Asgi:
    """Calls the app as an ASGI server would, with no client in this process to profile."""

    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self.headers = [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {api_key}".encode()),
        ]

    async def post(self, body: dict[str, Any]) -> tuple[int, Any]:
        encoded = json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [*self.headers, (b"content-length", str(len(encoded)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        messages = [{"type": "http.request", "body": encoded, "more_body": False}]
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never leaves
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, json.loads(b"".join(chunks))


async def profile_cases(url: str, api_key: str, requests: int) -> list[Profiled]:
    os.environ["RMA_DATABASE_URL"] = url
    os.environ["RMA_RUN_WORKER"] = "false"
    from core.settings import Settings
    from graphql_api.app import create_app, keep_out_of_collections

    client = Asgi(create_app(Settings()), api_key)
    keep_out_of_collections()  # as the app's startup does under a server
    _status, page = await client.post({"query": RMAS_QUERY, "variables": {"first": PAGE_SIZE}})
    nodes = page["data"]["rmas"]["nodes"]
    number = max(nodes, key=lambda node: len(node["lines"]))["number"]
    cases = {
        "(e) floor": {"query": FLOOR_QUERY},
        "(c) rma": {"query": RMA_QUERY, "variables": {"number": number}},
        "(d) rmas": {"query": RMAS_QUERY, "variables": {"first": PAGE_SIZE}},
    }
    results = []
    for label, body in cases.items():
        count = max(requests // 10, 10) if "rmas" in label else requests
        for _ in range(20):  # warm the parser, validation and statement caches
            await client.post(body)
        started = time.process_time()
        for _ in range(count):
            await client.post(body)
        cpu_ms = 1000 * (time.process_time() - started) / count
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(count):
            status, answer = await client.post(body)
        profiler.disable()
        if status != 200 or "errors" in answer:
            raise BenchError(f"{label}: HTTP {status}: {json.dumps(answer)[:300]}")
        results.append(Profiled(label, cpu_ms, split(profiler)))
    return results


def split(profiler: cProfile.Profile) -> dict[str, float]:
    """Each owner's share of the CPU spent inside the app."""
    totals: dict[str, float] = defaultdict(float)
    stats: Any = pstats.Stats(profiler).stats
    for (filename, _line, function), (
        _calls,
        _primitive,
        own,
        _cumulative,
        _callers,
    ) in stats.items():
        totals[owner(filename, function)] += own
    # Waiting in epoll is idle time, not CPU (the loop waits for the driver's thread).
    inside = sum(totals.values()) or 1.0
    return {name: totals[name] / inside for name in (*OWNERS, "other")}


def print_table(backend: str, results: Sequence[Profiled]) -> None:
    print(f"[{backend}] CPU per request, and where the app's CPU goes (cProfile, own time)")
    header = ["case", "CPU ms/req", *OWNERS, "other"]
    rows = [
        [
            r.label,
            f"{r.cpu_ms:.2f}",
            *(f"{100 * r.shares[name]:.0f}%" for name in (*OWNERS, "other")),
        ]
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))
    print()


@dataclass(frozen=True)
class Options:
    requests: int
    postgres_url: str | None


def bench(options: Options) -> None:
    backends = ["sqlite"] + (["postgres"] if options.postgres_url else [])
    for backend in backends:
        with (
            tempfile.TemporaryDirectory(prefix="rma-graphql-profile-") as directory,
            empty_database(backend, Path(directory), options.postgres_url) as url,
        ):
            progress(f"{backend}: rma db upgrade && rma demo")
            api_key, _seconds = seed(url)
            progress(f"{backend}: profiling")
            print_table(backend, asyncio.run(profile_cases(url, api_key, options.requests)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=positive, default=300, help="requests per case (300)")
    parser.add_argument("--postgres-url", default=None, help="also profile on PostgreSQL")
    parsed = parser.parse_args(argv)
    return exit_status(lambda: bench(Options(parsed.requests, parsed.postgres_url)))


if __name__ == "__main__":
    sys.exit(main())
