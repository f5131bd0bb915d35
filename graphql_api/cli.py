"""The ``rma`` command line: migrate, seed, administer and serve.

Every command reads its configuration from the ``RMA_`` environment variables. Expected failures
print one readable line on standard error and exit with status 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from core.database import Database
from core.demo import DatabaseNotEmpty, DemoResult, seed_demo
from core.errors import DomainError
from core.migrate import upgrade
from core.settings import InsecureSettings, Settings
from core.usecases.merchants import create_api_key, create_merchant

T = TypeVar("T")

app = typer.Typer(help="RMA service: returns from request to refund.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
merchant_app = typer.Typer(help="Merchants.", no_args_is_help=True)
apikey_app = typer.Typer(help="Staff API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(merchant_app, name="merchant")
app.add_typer(apikey_app, name="apikey")

out = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    # The message may hold user input: print it as text, never as markup.
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def load_settings() -> Settings:
    try:
        return Settings()
    except InsecureSettings as error:
        raise fail(f"configuration: {error}") from None
    except ValidationError as error:
        # Name the variables and what is wrong, never their values: they may be secrets.
        problems = "; ".join(
            f"RMA_{'_'.join(str(part) for part in entry['loc']).upper()}: {entry['msg']}"
            for entry in error.errors()
        )
        raise fail(f"configuration: {problems}") from None


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
            merchant = await create_merchant(session, name=name, default_currency=currency)
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
            issued = await create_api_key(session, merchant_id=merchant, role=role, label=label)
        return issued.plaintext

    key = run_with_database(work)
    out.print(
        f"{role.upper()} key for merchant {merchant} (shown once, store it now):",
        markup=False,
        highlight=False,
    )
    print(key)


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
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from graphql_api.schema import schema_sdl

    sys.stdout.write(schema_sdl())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn (uvloop and httptools)."""
    import uvicorn

    load_settings()
    uvicorn.run(
        "graphql_api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        access_log=False,
    )


def main() -> None:
    app(prog_name="rma")


if __name__ == "__main__":
    main()
