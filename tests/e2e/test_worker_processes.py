"""``rma worker`` and ``rma serve`` as real processes, working through what the queue holds.

On PostgreSQL (only when RMA_TEST_POSTGRES_URL is set; without it these tests do not exist):

- ``rma serve --no-worker`` stores signed Stripe deliveries and leaves every job queued; a separate
  ``rma worker`` process then refunds a resolution through a fake Stripe, and settles it when
  the refund's signed ``refund.updated`` webhook arrives;
- the same worker keeps working, without a restart, after every backend of its database is
  terminated under it.

On SQLite: ``rma serve`` alone (its in-process worker, the default) takes deliveries to a final
state, and stops cleanly on SIGTERM.

Every process runs with ``RMA_ENV=development`` and ``RMA_DATABASE_URL`` pointing at a throwaway
database; Stripe calls go to the fake or, where none is expected, to a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Job, Resolution, Rma, WebhookDelivery
from core.enums import (
    JobState,
    PaymentProviderName,
    ResolutionStatus,
    RmaStatus,
    WebhookState,
)
from core.migrate import upgrade_async
from core.outbox.kinds import EXECUTE_REFUND, EXPIRE_AUTHORIZATIONS, PROCESS_DELIVERY
from core.outbox.queue import enqueue
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY
from core.usecases.connections import connect_platform
from core.usecases.orders import CustomerInput, OrderInput, PaymentInput, upsert_order
from core.usecases.resolutions import resolve_rma
from plugins.stripe.webhooks import StripeWebhookSource
from testkit.fakes import FakeAccount, FakeStripe
from testkit.webhook_signing import stripe_event, stripe_headers
from tests import factories as f
from tests.conftest import POSTGRES_URL, PostgresServer, terminate_backends

RMA = Path(sys.executable).parent / "rma"
PROJECT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0
WITHIN = 30.0
# Where Stripe calls go when a test expects none: the discard port, where nothing listens.
NOWHERE = "http://127.0.0.1:9"
SECRET = "whsec_worker_processes"
FINAL = {WebhookState.PROCESSED, WebhookState.IGNORED, WebhookState.FAILED}

T = TypeVar("T")
# The PostgreSQL server is a parameter of the tests that need one. Without a server they are not
# collected at all: an empty parameter list would report them as skipped.
SERVERS = [POSTGRES_URL] if POSTGRES_URL else []


def on_postgres(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    test.__test__ = bool(SERVERS)  # type: ignore[attr-defined]
    parametrize = pytest.mark.parametrize("server_url", SERVERS, ids=["postgres"] * len(SERVERS))
    marked: Callable[..., Awaitable[None]] = parametrize(test)
    return marked


@pytest.fixture(autouse=True)
def no_rma_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, not from whatever RMA_ variables the shell has."""
    for name in list(os.environ):
        if name.startswith("RMA_"):
            monkeypatch.delenv(name)


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(database_url: str, *, stripe_api_base: str = NOWHERE) -> dict[str, str]:
    variables = {name: value for name, value in os.environ.items() if name[:4] != "RMA_"}
    variables.update(
        RMA_DATABASE_URL=database_url,
        RMA_ENV="development",
        RMA_STRIPE_API_BASE=stripe_api_base,
        PYTHONUNBUFFERED="1",
    )
    return variables


@dataclass
class Running:
    """A long-running ``rma`` process and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    async def stop(self, within: float = 20.0) -> int:
        """SIGTERM, then wait; SIGKILL if it does not stop in time. Returns the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"{self.name} ignored SIGTERM for {within} s:\n{self.output()}")


class Processes:
    """Starts ``rma`` processes for one test and kills whatever the test leaves running."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Running] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Running:
        log = self.directory / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(RMA), *args],
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        running = Running(name, process, log)
        self.started.append(running)
        return running

    async def serve(self, env: dict[str, str], *flags: str) -> Running:
        """``rma serve`` on a free port, once it answers /healthz."""
        port = free_port()
        server = self.start("serve", ["serve", "--port", str(port), *flags], env)
        server.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not server.alive():
                    pytest.fail(
                        f"rma serve exited with {server.process.returncode}:\n{server.output()}"
                    )
                try:
                    await client.get(f"{server.url}/healthz")
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
                else:
                    return server
        pytest.fail(f"rma serve did not answer in {STARTUP_SECONDS} s:\n{server.output()}")

    def logs(self) -> str:
        return "\n".join(f"--- {each.name}\n{each.output()[-3000:]}" for each in self.started)

    def kill_all(self) -> None:
        for running in self.started:
            if running.alive():
                running.process.kill()
                running.process.wait(timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


async def rma(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a one-shot ``rma`` command; its standard output (it must succeed)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [str(RMA), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"rma {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


async def until(
    check: Callable[[], Awaitable[T | None]], *, what: str, logs: Processes, within: float = WITHIN
) -> T:
    """Poll ``check`` until it returns something truthy; fail with the processes' output."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within} s\n{logs.logs()}")
        await asyncio.sleep(0.1)


# --- the database --------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def pg(server_url: str) -> AsyncIterator[Database]:
    """A migrated throwaway PostgreSQL database, dropped (with its connections) afterwards."""
    server = PostgresServer(server_url)
    url = await server.create()
    try:
        await upgrade_async(url)
        database = Database(url, pool_size=4)
        try:
            yield database
        finally:
            await database.dispose()
    finally:
        await server.drop(url)


def plain_url(database: Database) -> str:
    """The URL as an operator writes it (the app picks the async driver itself)."""
    return database.url.replace("+asyncpg", "").replace("+aiosqlite", "")


async def stripe_connection(
    database: Database, merchant_id: uuid.UUID, account: str, secret_key: str, webhook_secret: str
) -> str:
    """Connect the merchant to Stripe; the webhook path."""
    async with database.session() as session:
        connection = await connect_platform(
            session,
            Vault(DEVELOPMENT_ENCRYPTION_KEY),
            StripeWebhookSource(),
            merchant_id=merchant_id,
            account=account,
            credentials={"secret_key": secret_key},
            webhook_secret=webhook_secret,
            now=SYSTEM_CLOCK.now(),
        )
    return f"/webhooks/stripe/{connection.id}"


async def delivery(database: Database, dedupe_key: str) -> WebhookDelivery | None:
    async with database.read_session() as session:
        found = await session.exec(
            select(WebhookDelivery).where(col(WebhookDelivery.dedupe_key) == dedupe_key)
        )
        return found.first()


async def final_delivery(database: Database, dedupe_key: str) -> WebhookDelivery | None:
    found = await delivery(database, dedupe_key)
    return found if found is not None and found.state in FINAL else None


async def all_finished(database: Database) -> list[Job] | None:
    found = await jobs(database, kind=PROCESS_DELIVERY)
    return found if found and all(job.state is not JobState.RUNNING for job in found) else None


async def jobs(database: Database, *, kind: str | None = None) -> list[Job]:
    async with database.read_session() as session:
        statement = select(Job)
        if kind is not None:
            statement = statement.where(col(Job.kind) == kind)
        return list((await session.exec(statement)).all())


async def post_event(
    client: httpx.AsyncClient, url: str, event_id: str, topic: str, data: dict[str, object]
) -> None:
    body = stripe_event(event_id, topic, data)
    response = await client.post(url, content=body, headers=stripe_headers(body, SECRET))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False}


# --- PostgreSQL: separate server and worker processes --------------------------------------------


async def stripe_paid_rma(
    database: Database, merchant_id: uuid.UUID, payment_intent: str, amount_minor: int
) -> Rma:
    """An inspected RMA of a one-line order paid with ``payment_intent``."""
    tag = uuid.uuid4().hex[:8]
    placed = f.NOW - timedelta(days=10)
    async with database.session() as session:
        order = await upsert_order(
            session,
            merchant_id,
            OrderInput(
                platform="storefront",
                external_id=f"ext-{tag}",
                order_number=f"#{tag}",
                currency="USD",
                placed_at=placed,
                delivered_at=placed + timedelta(days=2),
                customer=CustomerInput(email=f"{tag}@example.com"),
                lines=[f.line(quantity=1, unit_price_minor=amount_minor)],
                payments=[
                    PaymentInput(PaymentProviderName.STRIPE, payment_intent, amount_minor, "USD")
                ],
            ),
            now=SYSTEM_CLOCK.now(),
        )
    return await f.inspected_rma(database, merchant_id, order)


async def resolution_of(database: Database, resolution_id: uuid.UUID) -> Resolution:
    async with database.read_session() as session:
        found = await session.get(Resolution, resolution_id)
    assert found is not None
    return found


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe(refund_mode="pending") as fake:
        yield fake
        assert fake.server_errors == []


@on_postgres
async def test_a_worker_process_refunds_through_stripe_and_settles_from_the_webhook(
    pg: Database, processes: Processes, fake_stripe: FakeStripe, tmp_path: Path
) -> None:
    account: FakeAccount = fake_stripe.add_account(webhook_secret=SECRET)
    payment_intent, _charge = fake_stripe.create_payment(account, 2500, "usd")
    shop = await f.merchant(pg)
    webhook_path = await stripe_connection(
        pg, shop.id, account.id, account.secret_key, account.webhook_secret
    )
    rma_row = await stripe_paid_rma(pg, shop.id, payment_intent, 2500)
    async with pg.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma_row.id, kind="REFUND", actor="staff", now=SYSTEM_CLOCK.now()
        )
    resolution_id = chosen.resolution.id
    env = environment(plain_url(pg), stripe_api_base=fake_stripe.base_url)

    # The server alone stores deliveries and runs nothing: the refund job and the delivery's
    # job stay queued, and Stripe hears nothing.
    server = await processes.serve(env, "--no-worker")
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        await post_event(client, webhook_path, "evt_unknown_1", "customer.created", {"id": "c"})
        await asyncio.sleep(1.5)
        [refund_job] = await jobs(pg, kind=EXECUTE_REFUND)
        waiting = await delivery(pg, "event:evt_unknown_1")
        assert refund_job.state is JobState.QUEUED, processes.logs()
        assert waiting is not None
        assert waiting.state is WebhookState.RECEIVED, processes.logs()
        assert fake_stripe.requests == []

        # The worker process refunds once; Stripe says "pending".
        worker = processes.start("worker", ["worker", "--concurrency", "2"], env)

        async def processing() -> Resolution | None:
            found = await resolution_of(pg, resolution_id)
            return found if found.status is ResolutionStatus.PROCESSING else None

        pending = await until(processing, what="the refund submitted to Stripe", logs=processes)
        [refund] = fake_stripe.refunds(account)
        assert pending.provider_reference == refund["id"]
        assert refund["metadata"].get("resolution_id") == str(resolution_id)
        ignored = await until(
            lambda: final_delivery(pg, "event:evt_unknown_1"),
            what="the unknown topic processed",
            logs=processes,
        )
        assert ignored.state is WebhookState.IGNORED

        # Stripe settles the refund and says so in a signed webhook.
        fake_stripe.settle_refund(refund["id"], "succeeded")
        event = fake_stripe.events(account, "refund.updated")[-1]
        response = await fake_stripe.send_event_async(
            f"{server.url}{webhook_path}", account.webhook_secret, event, client=client
        )
        assert response.status_code == 200, response.text

        settled = await until(
            lambda: final_delivery(pg, f"event:{event['id']}"),
            what="the refund.updated delivery processed",
            logs=processes,
        )
    resolution = await resolution_of(pg, resolution_id)
    async with pg.read_session() as session:
        moved = await session.get(Rma, rma_row.id)
    listed = await rma(["webhooks", "list"], env, tmp_path)
    dead = await rma(["jobs", "list", "--state", "DEAD"], env, tmp_path)
    worker_status = await worker.stop()
    server_status = await server.stop()

    assert settled.state is WebhookState.PROCESSED, settled.error
    assert resolution.status is ResolutionStatus.SUCCEEDED
    assert moved is not None
    assert moved.status is RmaStatus.RESOLVED
    assert len(fake_stripe.refunds(account)) == 1, "the money moved once"
    assert {line.split()[-1] for line in listed.splitlines() if line.strip()} == {
        "PROCESSED",
        "IGNORED",
    }, listed
    assert dead.strip() == ""
    assert worker_status == 0, worker.output()
    assert server_status in (0, -signal.SIGTERM), server.output()
    assert "Traceback" not in worker.output() + server.output()


@on_postgres
async def test_a_worker_process_survives_the_loss_of_its_database_connections(
    pg: Database, server_url: str, processes: Processes
) -> None:
    shop = await f.merchant(pg)
    webhook_path = await stripe_connection(pg, shop.id, "acct_cut", "sk_test_cut", SECRET)
    env = environment(plain_url(pg))
    server = await processes.serve(env, "--no-worker")
    worker = processes.start("worker", ["worker", "--concurrency", "2"], env)
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        await post_event(client, webhook_path, "evt_before", "customer.created", {"id": "c1"})
        await until(
            lambda: final_delivery(pg, "event:evt_before"),
            what="a delivery processed before the cut",
            logs=processes,
        )

        # Cut every connection of the server and the worker (the test's own pool is closed first
        # so that only theirs are left), twice, a moment apart.
        await pg.dispose()
        database_name = sa.make_url(pg.url).database
        assert database_name is not None
        first_cut = await terminate_backends(server_url, database_name)
        await asyncio.sleep(0.5)
        await terminate_backends(server_url, database_name)
        assert first_cut >= 2, "the server and the worker should each have had a connection"

        async with pg.session() as session, session.begin():
            expiries = [
                enqueue(session, EXPIRE_AUTHORIZATIONS, {"after": "cut"}, now=SYSTEM_CLOCK.now())
                for _ in range(3)
            ]
        for number in range(3):
            await post_event(
                client, webhook_path, f"evt_after_{number}", "customer.created", {"id": "c2"}
            )

        async def expiries_done() -> bool:
            by_id = {job.id: job for job in await jobs(pg, kind=EXPIRE_AUTHORIZATIONS)}
            return all(by_id[job.id].state is JobState.DONE for job in expiries)

        await until(expiries_done, what="the jobs enqueued after the cut done", logs=processes)
        for number in range(3):
            after = await until(
                functools.partial(final_delivery, pg, f"event:evt_after_{number}"),
                what="the deliveries posted after the cut processed",
                logs=processes,
            )
            assert after.state is WebhookState.IGNORED
    assert worker.alive(), f"the worker exited:\n{worker.output()}"
    assert await worker.stop() == 0, worker.output()
    await server.stop()


# --- SQLite: one server process with its worker inside -------------------------------------------


async def test_rma_serve_on_sqlite_processes_deliveries_with_its_in_process_worker(
    processes: Processes, tmp_path: Path
) -> None:
    path = tmp_path / "serve.db"
    url = f"sqlite:///{path}"
    await upgrade_async(url)
    env = environment(url)
    merchant_id = (
        await rma(["merchant", "create", "--name", "Serve Shop"], env, tmp_path)
    ).split()[-1]
    webhook_path = (
        await rma(
            [
                "connect",
                "stripe",
                "--merchant",
                merchant_id,
                "--secret-key",
                "sk_test_serve",
                "--webhook-secret",
                SECRET,
            ],
            env,
            tmp_path,
        )
    ).split()[-1]
    server = await processes.serve(env)
    database = Database(url)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
            await post_event(
                client,
                webhook_path,
                "evt_charge",
                "charge.refunded",
                {"id": "ch_1", "object": "charge", "amount_refunded": 1200},
            )
            await post_event(client, webhook_path, "evt_customer", "customer.created", {"id": "c"})
        refunded = await until(
            lambda: final_delivery(database, "event:evt_charge"),
            what="charge.refunded processed in-process",
            logs=processes,
        )
        unknown = await until(
            lambda: final_delivery(database, "event:evt_customer"),
            what="the unknown topic processed in-process",
            logs=processes,
        )
        # The handler marks a delivery before the worker records its job as done: wait for both.
        finished = await until(
            lambda: all_finished(database),
            what="both processing jobs recorded as finished",
            logs=processes,
        )
        done = [job.state for job in finished]
    finally:
        await database.dispose()
    listed = await rma(["webhooks", "list"], env, tmp_path)
    status = await server.stop()

    assert refunded.state is WebhookState.PROCESSED
    assert unknown.state is WebhookState.IGNORED
    assert done == [JobState.DONE, JobState.DONE]
    assert sorted(line.split()[-1] for line in listed.splitlines() if line.strip()) == [
        "IGNORED",
        "PROCESSED",
    ], listed
    # Uvicorn shuts down gracefully (the worker drains inside the app's lifespan), then
    # re-raises the signal it caught.
    assert status in (0, -signal.SIGTERM), server.output()
    assert "worker stopped" in server.output()
    assert "Traceback" not in server.output()
