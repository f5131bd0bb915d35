"""The ``rma`` command line: migrate, seed, administer and serve.

Every command reads its configuration from the ``RMA_`` environment variables. Expected failures
print one readable line on standard error and exit with status 1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.demo import DatabaseNotEmpty, DemoResult, seed_demo
from core.enums import Platform
from core.errors import DomainError
from core.logs import configure_logging_for
from core.migrate import upgrade
from core.secrets import Vault
from core.settings import InsecureSettings, Settings
from core.usecases import connections, operations
from core.usecases.connections import connect_platform
from core.usecases.installs import begin_install
from core.usecases.merchants import (
    create_api_key,
    create_merchant,
    list_api_keys,
    revoke_api_key,
)
from graphql_api.composition import build_registry

T = TypeVar("T")

app = typer.Typer(help="RMA service: returns from request to refund.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
merchant_app = typer.Typer(help="Merchants.", no_args_is_help=True)
apikey_app = typer.Typer(help="Staff API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(merchant_app, name="merchant")
app.add_typer(apikey_app, name="apikey")
jobs_app = typer.Typer(help="The job queue.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Stored webhook deliveries.", no_args_is_help=True)
connect_app = typer.Typer(help="Connect a merchant to a platform.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(connect_app, name="connect")
connections_app = typer.Typer(help="Connections: list, stop and resume them.", no_args_is_help=True)
app.add_typer(connections_app, name="connections")

out = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    # The message may hold user input: print it as text, never as markup.
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def load_settings() -> Settings:
    """The settings from the environment, with logging configured from them (once per command)."""
    try:
        settings = Settings()
    except InsecureSettings as error:
        raise fail(f"configuration: {error}") from None
    except ValidationError as error:
        # Name the variables and what is wrong, never their values: they may be secrets.
        problems = "; ".join(_setting_problem(entry) for entry in error.errors())
        raise fail(f"configuration: {problems}") from None
    configure_logging_for(settings, plugin_secrets=build_registry().secrets())
    return settings


def _setting_problem(entry: Any) -> str:
    message = str(entry["msg"]).removeprefix("Value error, ")
    if not entry["loc"]:
        return message  # a check across settings names the variables itself
    return f"RMA_{'_'.join(str(part) for part in entry['loc']).upper()}: {message}"


def run_with_database(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database, turning expected failures into one line."""
    settings = load_settings()

    async def main() -> T:
        database = Database.from_settings(settings)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except DomainError as error:
        raise fail(f"{error.code}: {error.message}") from None
    except OSError as error:
        raise fail(f"database unreachable: {error}") from None


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (the latest by default)."""
    settings = load_settings()
    try:
        upgrade(settings.database_url, revision)
    except Exception as error:  # alembic and driver errors: report, don't dump a traceback
        raise fail(f"migration failed: {error}") from None
    out.print(f"database at revision {revision}")


@merchant_app.command("create")
def merchant_create(
    name: Annotated[str, typer.Option(help="The merchant's display name.")],
    currency: Annotated[str, typer.Option(help="Default ISO-4217 currency.")] = "USD",
) -> None:
    """Create a merchant with a default return policy; prints its id on the last line."""

    async def work(database: Database) -> str:
        async with database.session() as session:
            merchant = await create_merchant(
                session, name=name, default_currency=currency, now=SYSTEM_CLOCK.now()
            )
        return str(merchant.id)

    merchant_id = run_with_database(work)
    out.print(f"created merchant {name!r}", markup=False, highlight=False)
    print(merchant_id)


@apikey_app.command("create")
def apikey_create(
    merchant: Annotated[str, typer.Option(help="The merchant's id.")],
    role: Annotated[str, typer.Option(help="ADMIN, AGENT or READONLY: what the key may do.")],
    label: Annotated[str, typer.Option(help="A note to tell keys apart.")] = "",
) -> None:
    """Issue a staff API key. It is printed once; only its hash is stored."""

    async def work(database: Database) -> str:
        async with database.session() as session:
            issued = await create_api_key(
                session, merchant_id=merchant, role=role, label=label, now=SYSTEM_CLOCK.now()
            )
        return issued.plaintext

    key = run_with_database(work)
    out.print(
        f"{role.upper()} key for merchant {merchant} (shown once, store it now):",
        markup=False,
        highlight=False,
    )
    print(key)


@apikey_app.command("list")
def apikey_list(merchant: Annotated[str, typer.Option(help="The merchant's id.")]) -> None:
    """The merchant's keys: id, first characters, role, label, and when revoked."""

    async def work(database: Database) -> list[list[str]]:
        async with database.read_session() as session:
            keys = await list_api_keys(session, merchant)
        return [
            [
                str(key.id),
                key.prefix + "...",
                key.role.value,
                key.revoked_at.isoformat() if key.revoked_at else "live",
                key.label,
            ]
            for key in keys
        ]

    for row in run_with_database(work):
        print("\t".join(row))


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `rma apikey list`).")],
    merchant: Annotated[str, typer.Option(help="The merchant's id.")],
) -> None:
    """Revoke a staff API key: every API process refuses it from the moment this returns."""

    async def work(database: Database) -> None:
        async with database.session() as session:
            await revoke_api_key(
                session, merchant_id=merchant, key_id=key_id, now=SYSTEM_CLOCK.now()
            )

    run_with_database(work)
    out.print(f"revoked key {key_id}", markup=False, highlight=False)


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, max=100_000, help="Orders to create.")] = 1000,
    customers: Annotated[int, typer.Option(min=1, max=100_000, help="Customers.")] = 200,
    rmas: Annotated[int, typer.Option(min=0, max=10_000, help="Returns to walk through.")] = 140,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing (and succeed) when data exists.")
    ] = False,
) -> None:
    """Seed an empty database with a demo merchant, orders and RMAs in every status."""

    async def work(database: Database) -> DemoResult | None:
        with Progress(
            TextColumn("seeding demo data"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("demo", total=orders + rmas)
            try:
                return await seed_demo(
                    database,
                    customers=customers,
                    orders=orders,
                    rmas=rmas,
                    progress=lambda steps: progress.advance(task, steps),
                    now=SYSTEM_CLOCK.now(),
                )
            except DatabaseNotEmpty:
                if if_empty:
                    return None
                raise

    result = run_with_database(work)
    if result is None:
        out.print("demo data already present; create a key with `rma apikey create`")
        return
    out.print(f"demo merchant {result.merchant_id}: {result.orders} orders")
    for status, count in sorted(result.rmas_by_status.items()):
        out.print(f"  {status:<12} {count}")
    out.print("ADMIN API key (shown once):")
    print(result.api_key)


@app.command()
def sync(
    connection: Annotated[str, typer.Option(help="The connection's id (rma connections list).")],
    full: Annotated[
        bool, typer.Option("--full", help="Read every order again, not only the changes.")
    ] = False,
) -> None:
    """Read a connection's orders from its platform now, showing progress."""
    from core.entities import Job
    from core.jobs.sync import run_sync
    from core.jobs.worker import JobContext, PermanentJobError
    from core.outbox.kinds import SYNC_CONNECTION
    from core.ports.commerce import PlatformUnavailable
    from core.usecases.inputs import as_uuid
    from graphql_api.composition import build_services

    settings = load_settings()
    services = build_services(settings, build_registry())

    async def work(database: Database) -> tuple[int, list[str]] | None:
        connection_id = as_uuid(connection, "connection")
        context = JobContext(
            job=Job(kind=SYNC_CONNECTION, payload={"connectionId": str(connection_id)}),
            database=database,
            services=services,
            clock=SYSTEM_CLOCK,
        )
        with Progress(
            TextColumn("syncing orders"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("sync", total=None)
            try:
                outcome = await run_sync(
                    context,
                    connection_id,
                    full=full,
                    on_page=lambda applied: progress.advance(task, applied),
                )
            except PermanentJobError as error:
                raise fail(f"sync failed: {error}") from None
            except PlatformUnavailable as error:
                raise fail(f"the platform is unavailable, try again later: {error}") from None
        return None if outcome is None else (outcome.applied, outcome.refused)

    result = run_with_database(work)
    if result is None:
        raise fail("no enabled connection with that id")
    applied, refused = result
    out.print(f"{applied} orders synced")
    for problem in refused:
        err.print(Text(f"skipped {problem}"), highlight=False)


@app.command()
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from graphql_api.schema import schema_sdl

    sys.stdout.write(schema_sdl())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes.")] = 1,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Leave jobs to separate `rma worker` processes.")
    ] = False,
    graceful_timeout: Annotated[
        int,
        typer.Option(
            min=1,
            max=3600,
            help="On SIGTERM, seconds to let requests in flight finish before closing them.",
        ),
    ] = 30,
) -> None:
    """Serve the API with uvicorn (uvloop and httptools); runs jobs in-process too.

    SIGTERM stops taking connections, lets every request in flight finish (up to
    ``--graceful-timeout`` seconds), then stops each process.
    """
    import uvicorn

    if no_worker:
        # The app factory reads its settings from the environment in each server process.
        os.environ["RMA_RUN_WORKER"] = "false"
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each server process counts into files here; /metrics adds them up.
        from graphql_api.metrics import prepare_multiprocess

        prepare_multiprocess(tempfile.mkdtemp(prefix="rma-metrics-"))
    settings = load_settings()
    trusted = settings.trusted_proxies.strip()
    uvicorn.run(
        "graphql_api.app:serve_app",
        factory=True,
        log_config=None,  # uvicorn's lines go through our logging (scrubbed, budgeted)
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        # Only the proxies named are believed about the client's address and scheme.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        access_log=False,
        timeout_graceful_shutdown=graceful_timeout,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once.")] = 4,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve this worker's own metrics on this port."),
    ] = None,
) -> None:
    """Run jobs until SIGTERM or SIGINT; then finish or hand back the jobs in hand."""
    from graphql_api.app import keep_out_of_collections
    from graphql_api.composition import build_worker

    settings = load_settings()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        # Its jobs by kind and outcome (the queue's figures are the API's /metrics).
        start_http_server(metrics_port, addr="127.0.0.1")

    async def work(database: Database) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        runner = build_worker(settings, database, clock=SYSTEM_CLOCK, concurrency=concurrency)
        keep_out_of_collections()
        await runner.run(stop)

    run_with_database(work)


@jobs_app.command("list")
def jobs_list(
    state: Annotated[str | None, typer.Option(help="QUEUED, RUNNING, DONE or DEAD.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """The newest jobs: id, state, kind, attempts, when due, last error."""

    async def work(database: Database) -> list[str]:
        async with database.read_session() as session:
            jobs = await operations.list_jobs(session, state=state, limit=limit)
        return [
            f"{job.id}  {job.state.value:<7} {job.kind:<32} attempts={job.attempts}/"
            f"{job.max_attempts} run_at={job.run_at:%Y-%m-%d %H:%M:%S}"
            + (f"  error={job.last_error[:120]!r}" if job.last_error else "")
            for job in jobs
        ]

    for line in run_with_database(work):
        print(line)


@jobs_app.command("retry")
def jobs_retry(job_id: Annotated[str, typer.Argument(help="The job's id.")]) -> None:
    """Queue a dead job again, now, with a fresh set of attempts."""

    async def work(database: Database) -> str:
        async with database.session() as session:
            job = await operations.retry_job(session, job_id, now=SYSTEM_CLOCK.now())
        return f"job {job.id} queued again"

    print(run_with_database(work))


@webhooks_app.command("list")
def webhooks_list(limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """The newest deliveries: id, platform, dedupe key, topic, state."""

    async def work(database: Database) -> list[str]:
        async with database.read_session() as session:
            deliveries = await operations.list_deliveries(session, limit=limit)
        return [
            f"{d.id}  {d.platform.value:<11} {d.dedupe_key[:60]:<60} {d.topic:<24} {d.state.value}"
            for d in deliveries
        ]

    for line in run_with_database(work):
        print(line)


@webhooks_app.command("replay")
def webhooks_replay(delivery_id: Annotated[str, typer.Argument(help="The delivery's id.")]) -> None:
    """Process a stored delivery again."""

    async def work(database: Database) -> str:
        async with database.session() as session:
            job = await operations.replay_delivery(session, delivery_id, now=SYSTEM_CLOCK.now())
        return f"delivery {delivery_id} queued for processing (job {job.id})"

    print(run_with_database(work))


@connections_app.command("list")
def connections_list(
    merchant: Annotated[str | None, typer.Option(help="Only this merchant's.")] = None,
) -> None:
    """Every connection: id, merchant, platform, account, and whether it is disabled."""

    async def work(database: Database) -> list[str]:
        async with database.read_session() as session:
            found = await connections.list_connections(session, merchant_id=merchant)
        return [
            f"{c.id}  {c.merchant_id}  {c.platform.value:<11} {c.account:<40} "
            + (f"disabled since {c.disabled_at:%Y-%m-%d %H:%M}" if c.disabled_at else "enabled")
            for c in found
        ]

    for line in run_with_database(work):
        print(line)


def _set_enabled(connection_id: str, *, enabled: bool) -> None:
    async def work(database: Database) -> str:
        async with database.session() as session:
            connection = await connections.set_connection_enabled(
                session, connection_id, enabled=enabled, now=SYSTEM_CLOCK.now()
            )
        state = "enabled" if enabled else "disabled: its webhooks are refused from now on"
        return f"connection {connection.id} {state}"

    print(run_with_database(work))


@connections_app.command("disable")
def connections_disable(
    connection_id: Annotated[str, typer.Argument(help="The connection's id.")],
) -> None:
    """Stop a connection at once, in every process: webhooks refused, provider unused."""
    _set_enabled(connection_id, enabled=False)


@connections_app.command("enable")
def connections_enable(
    connection_id: Annotated[str, typer.Argument(help="The connection's id.")],
) -> None:
    """Resume a disabled connection; its deliveries are accepted from the next one on."""
    _set_enabled(connection_id, enabled=True)


def _connect(
    platform: Platform,
    merchant: str,
    account: str,
    credentials: dict[str, str],
    webhook_secret: str,
) -> None:
    settings = load_settings()
    source = build_registry().webhook_sources.get(platform)
    if source is None:
        raise fail(f"no installed plugin connects {platform.value}")

    async def work(database: Database) -> str:
        async with database.session() as session:
            connection = await connect_platform(
                session,
                Vault(settings.encryption_keys),
                source,
                merchant_id=merchant,
                account=account,
                credentials=credentials,
                webhook_secret=webhook_secret,
                now=SYSTEM_CLOCK.now(),
            )
        return f"/webhooks/{platform.value}/{connection.id}"

    path = run_with_database(work)
    out.print(
        f"{platform.value} connected; point the platform's webhooks at (your base URL +):",
        markup=False,
        highlight=False,
    )
    print(path)


@connect_app.command("stripe")
def connect_stripe(
    merchant: Annotated[str, typer.Option(help="The merchant's id.")],
    secret_key: Annotated[str, typer.Option(help="The Stripe secret key (sk_...).")],
    webhook_secret: Annotated[str, typer.Option(help="The endpoint's signing secret (whsec_...).")],
    account: Annotated[str, typer.Option(help="The Stripe account id, if known.")] = "default",
) -> None:
    """Connect Stripe; secrets are stored encrypted. Prints the webhook URL path."""
    _connect(Platform.STRIPE, merchant, account, {"secret_key": secret_key}, webhook_secret)


@connect_app.command("shopify")
def connect_shopify(
    merchant: Annotated[str, typer.Option(help="The merchant's id.")],
    shop: Annotated[str, typer.Option(help="the-shop.myshopify.com")],
    access_token: Annotated[str, typer.Option(help="The Admin API access token.")],
    webhook_secret: Annotated[str, typer.Option(help="The app's client secret.")],
) -> None:
    """Connect a Shopify shop; secrets are stored encrypted. Prints the webhook URL path."""
    _connect(Platform.SHOPIFY, merchant, shop, {"access_token": access_token}, webhook_secret)


@connect_app.command("woocommerce")
def connect_woocommerce(
    merchant: Annotated[str, typer.Option(help="The merchant's id.")],
    store_url: Annotated[str, typer.Option(help="https://shop.example.com/")],
    consumer_key: Annotated[
        str | None, typer.Option(help="REST API consumer key (ck_...), made by hand.")
    ] = None,
    consumer_secret: Annotated[
        str | None, typer.Option(help="REST API consumer secret (cs_...), made by hand.")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="The secret of the webhooks you made by hand.")
    ] = None,
) -> None:
    """Connect a WooCommerce store. With only --store-url: prints the store's page where its
    admin grants keys (the service then registers webhooks and syncs). With keys made by hand:
    stores them encrypted and prints the webhook URL path."""
    given = [consumer_key, consumer_secret, webhook_secret]
    if any(given) and not all(given):
        raise fail("give --consumer-key, --consumer-secret and --webhook-secret together")
    if consumer_key and consumer_secret and webhook_secret:
        _connect(
            Platform.WOOCOMMERCE,
            merchant,
            store_url,
            {"consumer_key": consumer_key, "consumer_secret": consumer_secret},
            webhook_secret,
        )
        return
    settings = load_settings()
    installer = build_registry().installers.get(Platform.WOOCOMMERCE)
    if installer is None:
        raise fail("no installed plugin connects woocommerce")

    async def work(database: Database) -> str:
        account = installer.normalize_account(store_url)
        installer.authorize_url(account, "check", settings.public_url)
        async with database.session() as session:
            state = await begin_install(
                session,
                platform=Platform.WOOCOMMERCE,
                account=account,
                merchant_id=merchant,
                now=SYSTEM_CLOCK.now(),
            )
        return installer.authorize_url(account, state, settings.public_url)

    url = run_with_database(work)
    out.print(
        "Open this link as the store's admin and approve (it works once, for an hour):",
        markup=False,
        highlight=False,
    )
    print(url)


def main() -> None:
    app(prog_name="rma")


if __name__ == "__main__":
    main()
