"""How fast WooCommerce orders arrive: a paged sync against a bare paging loop, and a backfill.

The real plugin (``plugins/woocommerce``) and the real sync job (``core.jobs.sync.run_sync``)
against the fake WooCommerce store (``testkit/fakes``), which runs in a child process, so that
the memory measured here is the service's alone. Every order has two lines (two SKUs, so two
products). The store is served over HTTPS with a throwaway CA (``testkit.tls``, trusted as
``RMA_WOOCOMMERCE_CA_BUNDLE`` would), as in production: the ``woocommerce`` package then sends
HTTP Basic auth, and opens a connection (TLS handshake included) for every request. ``--http``
serves it over plain HTTP instead, where the package signs every request with OAuth 1.0a; its
nonce has only 10^8 values and the store refuses one seen in the last 15 minutes, so a run of
about a thousand requests fails on a reused nonce (401, the sync stops) about once in 200.

1. **Paged sync against the bare loop.** A store with ``--paged-orders`` orders. The ceiling
   is a bare loop with the same ``WooCommerceClient``: it reads ``orders`` by pages of 100
   (``order=asc``, ``orderby=id``, ``status=any``, as the platform asks) until
   ``X-WP-TotalPages``, and does nothing with them. Then a full sync of the same store into
   SQLite (a temporary directory) through ``run_sync``, which reads the next page while it
   writes the current one. Besides the orders, the platform reads ``products?include=`` for a
   page's products it has not seen yet (their categories): a real cost the ceiling does not
   pay, here once per sync since the orders share their two products. Printed: orders per
   second of each, and their ratio (target at least 0.8). It runs twice: against the fake at
   its own speed (a few milliseconds a page: the ceiling is then the fake, and the ratio
   measures how fast the service writes orders, not whether it keeps up with a store), and
   with every request taking ``--store-latency`` seconds more (0.3 by default), as a real
   store's PHP does, where the question is whether the service keeps up with the store.
2. **Backfill.** A store with ``--backfill-orders`` orders (100,000 by default): a full sync
   into a fresh SQLite database. Printed: orders per second end to end, and the peak growth of
   this process's resident memory during the sync (sampled every 50 ms from
   ``/proc/self/status``; target: flat, under 150 MB). The fake filters and sorts the whole
   store for every page, as a database without the right index would, so its share of a page
   grows with the store (about 60 ms a page at 100,000 orders).

Run from the project root (the defaults take about a quarter of an hour on two CPUs, nearly
all of it the backfill; the second line, half a minute)::

    .venv/bin/python benchmarks/woocommerce_sync.py
    .venv/bin/python benchmarks/woocommerce_sync.py --backfill-orders 5000 --paged-orders 500
    .venv/bin/python benchmarks/woocommerce_sync.py --http --backfill-orders 0
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import PROJECT
from support.memory import RssSampler

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job
from core.jobs.sync import SyncOutcome, run_sync
from core.jobs.worker import JobContext
from core.migrate import upgrade
from core.outbox.kinds import SYNC_CONNECTION
from core.secrets import Vault
from core.services import Services
from core.settings import DEVELOPMENT_ENCRYPTION_KEY, Settings
from core.usecases.connections import connect_platform
from core.usecases.merchants import create_merchant
from graphql_api.composition import build_registry
from plugins.woocommerce.client import WooCommerceClient
from plugins.woocommerce.platform import PER_PAGE
from plugins.woocommerce.plugin import WooCommercePlugin
from plugins.woocommerce.settings import WooCommerceSettings
from plugins.woocommerce.webhooks import WooCommerceWebhookSource, normalize_store_url

# The fake is in ``testkit``, which is not installed: the child imports it from the project.
sys.path.insert(0, str(PROJECT))

REQUEST_TIMEOUT = 30.0


def serve_fake(
    orders: int, lines: int, tls_directory: str | None, latency: float, ready: Any, stop: Any
) -> None:  # pragma: no cover (a child process)
    from testkit.fakes import FakeWooCommerce
    from testkit.tls import local_tls

    # An SSL context cannot be pickled: the child makes the CA, the parent trusts its file.
    tls = local_tls(Path(tls_directory)) if tls_directory else None
    with FakeWooCommerce(tls=None if tls is None else tls.server, latency=latency) as fake:
        consumer_key, consumer_secret = fake.add_keys()
        specs = [{"sku": f"SKU-{i}", "price": "19.99", "tax": "1.60"} for i in range(lines)]
        fake.create_orders_bulk(orders, lines=specs)
        ca_bundle = None if tls is None else str(tls.ca_bundle)
        ready.send((fake.base_url, consumer_key, consumer_secret, ca_bundle))
        stop.recv()
        ready.send(fake.server_errors())


@dataclass(frozen=True)
class Store:
    base_url: str
    consumer_key: str
    consumer_secret: str
    ca_bundle: str | None  # the CA to trust (HTTPS), or None (HTTP)

    @property
    def verify(self) -> bool | str:
        return self.ca_bundle or True


class FakeProcess:
    """The fake store in a child process; entering it waits until its orders are made."""

    def __init__(
        self, orders: int, tls_directory: str | None, lines: int = 2, latency: float = 0.0
    ) -> None:
        self.parent, child = multiprocessing.Pipe()
        self.stop_parent, self.stop_child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(
            target=serve_fake,
            args=(orders, lines, tls_directory, latency, child, self.stop_child),
        )

    def __enter__(self) -> Store:
        self.process.start()
        return Store(*self.parent.recv())

    def server_errors(self) -> list[str]:
        self.stop_parent.send("stop")
        errors: list[str] = self.parent.recv()
        return errors

    def __exit__(self, *exc: object) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(10)


async def bare_loop(store: Store) -> tuple[int, float]:
    """The ceiling: every order page read with the plugin's client, and nothing done with it.
    How many orders, in how many seconds."""
    client = WooCommerceClient(
        store.base_url,
        store.consumer_key,
        store.consumer_secret,
        timeout=REQUEST_TIMEOUT,
        verify=store.verify,
    )
    read = 0
    page = 1
    started = time.monotonic()
    while True:
        params = {
            "page": page,
            "per_page": PER_PAGE,
            "order": "asc",
            "orderby": "id",
            "status": "any",
        }
        response = await client.get("orders", params)
        if response.status_code != 200:
            raise RuntimeError(f"the fake answered HTTP {response.status_code}: {response.text}")
        read += len(response.json())
        if page >= int(response.headers.get("X-WP-TotalPages", "1") or 1):
            break
        page += 1
    return read, time.monotonic() - started


async def full_sync(url: str, store: Store) -> tuple[SyncOutcome, float, RssSampler]:
    """A full sync of the store into the (migrated) database at ``url``, as the job runs it:
    its outcome, seconds, and the memory it took."""
    database = Database(url)
    settings = Settings(database_url=url)
    plugin = WooCommercePlugin(
        WooCommerceSettings(request_timeout=REQUEST_TIMEOUT, ca_bundle=store.ca_bundle)
    )
    registry = build_registry([plugin])
    services = Services(settings, Vault(DEVELOPMENT_ENCRYPTION_KEY), registry)
    try:
        async with database.session() as session:
            merchant = await create_merchant(session, name="Bench", now=SYSTEM_CLOCK.now())
        async with database.session() as session:
            connection = await connect_platform(
                session,
                services.vault,
                WooCommerceWebhookSource(),
                merchant_id=merchant.id,
                account=normalize_store_url(store.base_url),
                credentials={
                    "consumer_key": store.consumer_key,
                    "consumer_secret": store.consumer_secret,
                },
                webhook_secret="bench-webhook-secret",  # noqa: S106 (no webhooks here)
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
    finally:
        await database.dispose()
    if outcome is None or outcome.refused:
        raise RuntimeError(f"the sync did not apply every order: {outcome}")
    return outcome, elapsed, memory


def check_fake(fake: FakeProcess) -> None:
    errors = fake.server_errors()
    if errors:
        raise RuntimeError(f"the fake failed {len(errors)} time(s); first:\n{errors[0]}")


async def paged(orders: int, url: str, tls_directory: str | None, latency: float) -> None:
    fake = FakeProcess(orders, tls_directory, latency=latency)
    with fake as store:
        bare, bare_elapsed = await bare_loop(store)
        outcome, elapsed, _memory = await full_sync(url, store)
        check_fake(fake)
    ceiling = bare / bare_elapsed
    rate = outcome.applied / elapsed
    print(
        f"paged sync, store answering in {latency * 1000:.0f} ms + its work: "
        f"{outcome.applied} orders in {elapsed:.1f} s = {rate:.1f} orders/s"
    )
    print(
        f"  bare paging loop: {bare} orders in {bare_elapsed:.1f} s = {ceiling:.1f} orders/s; "
        f"ratio {rate / ceiling:.2f} (target >= 0.8)"
    )


async def backfill(orders: int, url: str, tls_directory: str | None) -> None:
    fake = FakeProcess(orders, tls_directory)
    with fake as store:
        outcome, elapsed, memory = await full_sync(url, store)
        check_fake(fake)
    print(
        f"backfill: {outcome.applied} orders in {elapsed:.1f} s = "
        f"{outcome.applied / elapsed:.0f} orders/s into SQLite; peak memory growth "
        f"{memory.growth_mb:.0f} MB (target < 150 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paged-orders", type=int, default=2_000)
    parser.add_argument("--backfill-orders", type=int, default=100_000)
    parser.add_argument(
        "--store-latency",
        type=float,
        default=0.3,
        help="seconds a request takes at the store for the second paged run (a PHP store "
        "needs a fraction of a second to a few seconds for a page of 100 orders)",
    )
    parser.add_argument(
        "--http", action="store_true", help="plain HTTP (OAuth 1.0a) instead of HTTPS (Basic)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tls_directory = None if args.http else f"{directory}/tls"
        print(f"store over {'HTTP, OAuth 1.0a' if args.http else 'HTTPS, Basic auth'}")
        if args.paged_orders:
            for run, latency in enumerate((0.0, args.store_latency)):
                url = f"sqlite+aiosqlite:///{directory}/paged-{run}.db"
                upgrade(url)  # outside the event loop, as Alembic's env wants
                asyncio.run(paged(args.paged_orders, url, tls_directory, latency))
        if args.backfill_orders:
            url = f"sqlite+aiosqlite:///{directory}/backfill.db"
            upgrade(url)
            asyncio.run(backfill(args.backfill_orders, url, tls_directory))


if __name__ == "__main__":
    main()
