"""How fast Shopify orders arrive: paged syncs against the cost budget, and a bulk backfill.

The real plugin (``plugins/shopify``) and the real sync job (``core.jobs.commerce.run_sync``)
against the fake Shopify Admin API (``testkit/fakes``), which charges queries the way Shopify
does and runs in a child process, so that the memory measured here is the service's alone.

1. **Paged sync against the cost ceiling.** A shop with ``--paged-orders`` orders and a small
   bucket (``--restore-rate`` points a second, 1,000 at most): Shopify's budget, not the
   machine, is meant to be the limit. An incremental sync reads them all by pages. The ceiling
   is what the budget allows: restore rate divided by the points one order actually cost (the
   sum of ``actualQueryCost`` over the pages, per order). Printed: orders per second, the
   ceiling, and their ratio (target at least 0.8), plus how many answers said THROTTLED.
2. **Bulk backfill.** A shop with ``--bulk-orders`` orders (100,000 by default, two lines
   each): a first sync, which asks for a bulk operation and streams its JSONL file into the
   database (SQLite in a temporary directory). Printed: orders per second end to end, and the
   peak growth of this process's resident memory during the sync (sampled every 50 ms from
   ``/proc/self/status``; target: flat, under 150 MB).

Run from the project root (the defaults take a few minutes on two CPUs)::

    .venv/bin/python benchmarks/shopify_sync.py
    .venv/bin/python benchmarks/shopify_sync.py --bulk-orders 20000 --paged-orders 300
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
import uuid
from typing import Any

from support import PROJECT
from support.memory import RssSampler

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.jobs.sync import run_sync
from core.jobs.worker import JobContext
from core.migrate import upgrade
from core.outbox.kinds import SYNC_CONNECTION
from core.secrets import Vault
from core.services import Services
from core.settings import DEVELOPMENT_ENCRYPTION_KEY, Settings
from core.usecases.connections import connect_platform
from core.usecases.merchants import create_merchant
from graphql_api.composition import build_registry
from plugins.shopify.client import ShopifyGraphQL
from plugins.shopify.platform import ShopifyPlatform
from plugins.shopify.plugin import ShopifyPlugin
from plugins.shopify.settings import ShopifySettings
from plugins.shopify.webhooks import ShopifyWebhookSource

# The fake is in ``testkit``, which is not installed: the child imports it from the project.
sys.path.insert(0, str(PROJECT))


def serve_fake(
    orders: int, restore_rate: float, lines: int, ready: Any, stop: Any
) -> None:  # pragma: no cover (a child process)
    from testkit.fakes import FakeShopify

    with FakeShopify(api_key="bench", api_secret="bench-secret") as fake:  # noqa: S106
        shop = fake.add_shop(
            "bench-shop.myshopify.com", maximum_available=1000, restore_rate=restore_rate
        )
        specs = [{"sku": f"SKU-{i}", "price": "19.99", "tax": "1.60"} for i in range(lines)]
        fake.create_orders_bulk(shop, orders, email="buyer@example.com", lines=specs)
        ready.send((fake.base_url, fake.issue_token(shop), shop.domain))
        stop.recv()
        ready.send(fake.throttled_count(shop))


class FakeProcess:
    def __init__(self, orders: int, restore_rate: float, lines: int = 2) -> None:
        self.parent, child = multiprocessing.Pipe()
        self.stop_parent, self.stop_child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(
            target=serve_fake, args=(orders, restore_rate, lines, child, self.stop_child)
        )

    def __enter__(self) -> tuple[str, str, str]:
        self.process.start()
        base_url, token, domain = self.parent.recv()
        return base_url, token, domain

    def throttled(self) -> int:
        self.stop_parent.send("stop")
        count: int = self.parent.recv()
        return count

    def __exit__(self, *exc: object) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(10)


async def paged(orders: int, restore_rate: float) -> None:
    fake = FakeProcess(orders, restore_rate)
    with fake as (base_url, token, domain):
        client = ShopifyGraphQL(domain, token, base_url=base_url, api_version="2026-07")
        spent = 0.0
        original = client._note_cost

        def note(body: dict[str, Any], now: float) -> None:
            nonlocal spent
            spent += float(
                ((body.get("extensions") or {}).get("cost") or {}).get("actualQueryCost") or 0
            )
            original(body, now)

        client._note_cost = note  # type: ignore[method-assign]
        platform = ShopifyPlatform(client, {})
        cursor: str | None = '{"since": "2000-01-01T00:00:00Z"}'  # by pages, not bulk
        read = 0
        started = time.monotonic()
        while True:
            page = await platform.orders_changed_since(cursor, limit=250)
            read += len(page.orders)
            cursor = page.next_cursor
            if not page.has_more:
                break
        elapsed = time.monotonic() - started
        await platform.close()
        throttled = fake.throttled()
    per_order = spent / max(read, 1)
    ceiling = restore_rate / per_order
    rate = read / elapsed
    print(f"paged sync: {read} orders in {elapsed:.1f} s = {rate:.1f} orders/s")
    print(
        f"  cost {per_order:.1f} points/order, restore {restore_rate:.0f} points/s: "
        f"ceiling {ceiling:.1f} orders/s; ratio {rate / ceiling:.2f} (target >= 0.8); "
        f"THROTTLED answers {throttled}"
    )


async def bulk(orders: int, url: str) -> None:
    with FakeProcess(orders, restore_rate=1000) as (base_url, token, domain):
        database = Database(url)
        settings = Settings(database_url=url)
        plugin = ShopifyPlugin(ShopifySettings(api_base=base_url, bulk_wait_seconds=3600))
        registry = build_registry([plugin])
        services = Services(settings, Vault(DEVELOPMENT_ENCRYPTION_KEY), registry)
        async with database.session() as session:
            merchant = await create_merchant(session, name="Bench", now=SYSTEM_CLOCK.now())
        async with database.session() as session:
            connection = await connect_platform(
                session,
                services.vault,
                ShopifyWebhookSource(),
                merchant_id=merchant.id,
                account=domain,
                credentials={"access_token": token},
                webhook_secret="bench-webhook-secret",  # noqa: S106 (the fake's)
                now=SYSTEM_CLOCK.now(),
            )
        context = JobContext(
            job=Job(kind=SYNC_CONNECTION, payload={}, id=uuid.uuid4()),
            database=database,
            services=services,
            clock=SYSTEM_CLOCK,
        )
        with RssSampler() as memory:
            started = time.monotonic()
            outcome = await run_sync(context, connection.id, full=True)
            elapsed = time.monotonic() - started
        await database.dispose()
    assert outcome is not None and not outcome.refused, outcome
    print(
        f"bulk backfill: {outcome.applied} orders in {elapsed:.1f} s = "
        f"{outcome.applied / elapsed:.0f} orders/s into SQLite; peak memory growth "
        f"{memory.growth_mb:.0f} MB (target < 150 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paged-orders", type=int, default=600)
    parser.add_argument("--restore-rate", type=float, default=2000.0)
    parser.add_argument("--bulk-orders", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(paged(args.paged_orders, args.restore_rate))
    if args.bulk_orders:
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite+aiosqlite:///{directory}/bench.db"
            upgrade(url)  # outside the event loop, as Alembic's env wants
            asyncio.run(bulk(args.bulk_orders, url))


if __name__ == "__main__":
    main()
