"""Fill a database with returns at scale: one merchant, its customers, orders, order lines, RMAs
and RMA lines (``support/seeder.py``), with a progress bar; prints the merchant's ADMIN API key
last.

    .venv/bin/python benchmarks/seed_scale.py --rmas 1000000 \
        --database-url postgresql://postgres@127.0.0.1/rma_scale
    .venv/bin/python benchmarks/seed_scale.py --database-url sqlite:///scale.db --rmas 100000

The database is migrated first (and must exist); other merchants' rows are left alone. The rows
spread over the two years before now and are the same for the same ``--seed`` and moment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from support.cli import positive
from support.databases import safe_url
from support.report import progress, quiet_logs
from support.seeder import SeedResult, seed_scale


def seed_with_progress_bar(
    database_url: str, rmas: int, customers: int | None, seed: int
) -> SeedResult:
    """Seed, drawing a progress bar of the RMAs written on standard error (a line per tenth
    when standard error is not a terminal)."""
    if not sys.stderr.isatty():
        tenth = max(1, rmas // 10)

        def line(done: int) -> None:
            if done % tenth < 10_000 or done == rmas:
                progress(f"{done:,} of {rmas:,} RMAs")

        return asyncio.run(
            seed_scale(database_url, rmas=rmas, customers=customers, seed=seed, progress=line)
        )
    with Progress(
        TextColumn("seeding RMAs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("rmas", total=rmas)
        return asyncio.run(
            seed_scale(
                database_url,
                rmas=rmas,
                customers=customers,
                seed=seed,
                progress=lambda done: bar.update(task, completed=done),
            )
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True, help="an existing database")
    parser.add_argument("--rmas", type=positive, default=1_000_000, help="RMAs (1,000,000)")
    parser.add_argument("--customers", type=positive, help="customers (a fifth of --rmas)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    options = parser.parse_args(argv)
    quiet_logs()
    started = time.perf_counter()
    result = seed_with_progress_bar(
        options.database_url, options.rmas, options.customers, options.seed
    )
    rows = ", ".join(f"{table} {count:,}" for table, count in result.rows.items())
    print(f"database: {safe_url(options.database_url)}")
    print(f"merchant: {result.merchant_id}")
    print(f"rows:     {rows}")
    print(
        f"seeded {result.rmas:,} RMAs in {result.seconds:.1f} s "
        f"({time.perf_counter() - started:.1f} s with the migrations and the merchant)"
    )
    print("ADMIN API key (shown once):")
    print(result.api_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
