"""Health checks: ``rma serve`` as a real process, and the ASGI app on each database backend."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from starlette.types import ASGIApp

from core.migrate import alembic_config, upgrade
from core.settings import Settings
from graphql_api.app import create_app

RMA = Path(sys.executable).parent / "rma"
STARTUP_TIMEOUT = 15.0


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def no_rma_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, not from whatever RMA_ variables the shell has."""
    for name in list(os.environ):
        if name.startswith("RMA_"):
            monkeypatch.delenv(name)


# --- rma serve -----------------------------------------------------------------------------------


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"rma serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/healthz", timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.1)
            else:
                return
        pytest.fail(f"rma serve did not answer /healthz in {STARTUP_TIMEOUT} s:\n{self.output()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``rma serve`` on a free port over a migrated SQLite file; killed if a test leaves it up."""
    yield from serving(tmp_path)


def serving(tmp_path: Path, *arguments: str, **settings: str) -> Iterator[Server]:
    database = tmp_path / "serve.db"
    upgrade(f"sqlite:///{database}")
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if name[:4] != "RMA_"}
    environment.update(RMA_DATABASE_URL=f"sqlite:///{database}", RMA_ENV="development", **settings)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(RMA), "serve", "--host", "127.0.0.1", "--port", str(port), *arguments],
            cwd=tmp_path,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Server(process, f"http://127.0.0.1:{port}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_rma_serve_answers_health_checks_and_stops_cleanly_on_sigterm(server: Server) -> None:
    server.wait_until_up()

    healthz = httpx.get(f"{server.url}/healthz", timeout=5.0)
    readyz = httpx.get(f"{server.url}/readyz", timeout=5.0)
    server.process.send_signal(signal.SIGTERM)
    returncode = server.process.wait(timeout=15)

    assert healthz.status_code == 200
    assert healthz.json() == {"status": "ok"}
    assert readyz.status_code == 200, readyz.text
    assert readyz.json() == {"status": "ok", "database": "ok", "schemaRevision": head_revision()}
    # Uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert returncode in (0, -signal.SIGTERM), server.output()
    assert "Application shutdown complete" in server.output()
    assert "Traceback" not in server.output()


# --- the ASGI app --------------------------------------------------------------------------------


Message = dict[str, Any]


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Start and stop the app as a server would; ASGITransport alone never runs the lifespan."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    running = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), timeout=10)
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await asyncio.wait_for(outbox.get(), timeout=10)
        await asyncio.wait_for(running, timeout=10)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the app itself; the app's own shutdown closes its database engines."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://rma.test") as client,
    ):
        yield client


async def test_readyz_is_unavailable_on_an_unmigrated_database(tmp_path: Path) -> None:
    # No job worker: it would race the check for the empty file's first lock.
    settings = Settings(database_url=f"sqlite:///{tmp_path}/empty.db", run_worker=False)
    async with client_for(settings) as client:
        healthz = await client.get("/healthz")
        readyz = await client.get("/readyz")

    assert healthz.status_code == 200
    assert readyz.status_code == 503
    assert readyz.json() == {"status": "unavailable", "database": "not migrated"}
    assert "Traceback" not in readyz.text


async def test_readyz_is_unavailable_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    unreachable = f"sqlite:///{tmp_path}/no/such/directory/rma.db"
    async with client_for(Settings(database_url=unreachable)) as client:
        readyz = await client.get("/readyz")

    assert readyz.status_code == 503
    assert readyz.json() == {"status": "unavailable", "database": "unreachable"}
    assert "Traceback" not in readyz.text
    assert "no/such/directory" not in readyz.text


async def test_readyz_is_ok_on_a_migrated_database(database_url: str) -> None:
    async with client_for(Settings(database_url=database_url)) as client:
        readyz = await client.get("/readyz")

    assert readyz.status_code == 200, readyz.text
    assert readyz.json() == {"status": "ok", "database": "ok", "schemaRevision": head_revision()}


# --- Behind a reverse proxy -----------------------------------------------------------------------

SIGN_IN = (
    'mutation($n: String!) { startCustomerSession(merchantId: "x", orderNumber: $n,'
    ' email: "a@example.com") { userErrors { code } } }'
)


def failed_sign_ins_from_many_clients(server: Server, attempts: int) -> list[str]:
    """Failed sign-ins on distinct orders, each claiming another client in X-Forwarded-For."""
    codes = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for attempt in range(attempts):
            response = http.post(
                "/graphql",
                json={"query": SIGN_IN, "variables": {"n": f"#nope-{attempt}"}},
                headers={"X-Forwarded-For": f"203.0.113.{attempt % 250 + 1}"},
            )
            codes.append(response.json()["data"]["startCustomerSession"]["userErrors"][0]["code"])
    return codes


@pytest.mark.parametrize(
    ("trusted", "last"),
    [("", "RATE_LIMITED"), ("127.0.0.1", "INVALID_CREDENTIALS")],
    ids=["no proxy trusted", "the local proxy trusted"],
)
def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    tmp_path: Path, trusted: str, last: str
) -> None:
    settings = {"RMA_TRUSTED_PROXIES": trusted} if trusted else {}
    running = serving(tmp_path, **settings)
    server = next(running)
    try:
        server.wait_until_up()
        codes = failed_sign_ins_from_many_clients(server, 51)
    finally:
        running.close()
    # Untrusted, every request is 127.0.0.1's: its fifty failures use up its budget.
    assert codes[:50] == ["INVALID_CREDENTIALS"] * 50
    assert codes[50] == last


# --- Several server processes ---------------------------------------------------------------------


def test_several_server_processes_report_one_set_of_metrics(tmp_path: Path) -> None:
    """``rma serve --workers 2``: requests land on either process; every scrape adds up both
    (prometheus-client's multiprocess mode), and SIGTERM stops both cleanly."""
    running = serving(tmp_path, "--workers", "2", "--no-worker")
    server = next(running)
    try:
        server.wait_until_up()
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(20):
                answer = http.post(
                    "/graphql",
                    json={"query": "query Counted { __typename }", "operationName": "Counted"},
                )
                assert answer.status_code == 200
            counts = set()
            for _ in range(6):  # several scrapes, whichever process answers
                text = http.get("/metrics").text
                [line] = [
                    line
                    for line in text.splitlines()
                    if line.startswith('rma_graphql_request_seconds_count{operation="Counted"}')
                ]
                counts.add(float(line.rsplit(" ", 1)[1]))
        assert counts == {20.0}
        server.process.send_signal(signal.SIGTERM)
        returncode = server.process.wait(timeout=30)
        assert returncode in (0, -signal.SIGTERM), server.output()
        assert "Traceback" not in server.output()
    finally:
        running.close()


def test_a_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    database = tmp_path / "worker.db"
    upgrade(f"sqlite:///{database}")
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if name[:4] != "RMA_"}
    environment.update(RMA_DATABASE_URL=f"sqlite:///{database}", RMA_ENV="development")
    process = subprocess.Popen(
        [str(RMA), "worker", "--metrics-port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        text = None
        while time.monotonic() < deadline and text is None:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1.0).text
            except httpx.TransportError:
                assert process.poll() is None, "rma worker exited"
                time.sleep(0.1)
        assert text is not None and "# TYPE rma_jobs_finished_total counter" in text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
