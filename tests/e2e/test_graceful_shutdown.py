"""``rma serve --workers 2`` under load, stopped with SIGTERM: no request is lost.

Lost means answered without being done, or done without being answered. Every request here
writes an order under its own id, so the database says which were done: exactly those answered
200. A request the server never took (the connection refused or closed before it was read) is
neither, and the client knows to send it again.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Order
from core.enums import ApiKeyRole
from core.usecases.merchants import create_api_key, create_merchant
from tests.e2e.test_serve import Server, serving

CLIENTS = 8
UPSERT = """mutation($input: UpsertOrderInput!) {
  upsertOrder(input: $input) { order { id } userErrors { code } } }"""


@dataclass
class Outcome:
    external_id: str
    started: float
    ended: float
    status: int | None  # None: the server never answered
    error: str = ""


async def _staff_key(url: str) -> str:
    database = Database(url)
    try:
        async with database.session() as session:
            merchant = await create_merchant(session, name="Busy shop", now=SYSTEM_CLOCK.now())
        async with database.session() as session:
            issued = await create_api_key(
                session, merchant_id=merchant.id, role=ApiKeyRole.AGENT, now=SYSTEM_CLOCK.now()
            )
        return issued.plaintext
    finally:
        await database.dispose()


async def _stored_ids(url: str) -> set[str]:
    database = Database(url)
    try:
        async with database.read_session() as session:
            return set((await session.exec(select(Order.external_id))).all())
    finally:
        await database.dispose()


def _order(external_id: str) -> dict[str, object]:
    return {
        "externalId": external_id,
        "orderNumber": f"#{external_id[:8]}",
        "currency": "USD",
        "placedAt": SYSTEM_CLOCK.now().isoformat(),
        "customer": {"email": f"{external_id[:8]}@example.com"},
        "lines": [{"externalId": "L1", "title": "Mug", "quantity": 1, "unitPriceMinor": 1200}],
    }


def _load(server: Server, key: str, outcomes: list[Outcome], stop: threading.Event) -> None:
    """One client sending orders one after another on a kept-alive connection, until the
    server refuses connections."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as http:
        while not stop.is_set():
            external_id = uuid.uuid4().hex
            started = time.monotonic()
            try:
                response = http.post(
                    "/graphql",
                    json={"query": UPSERT, "variables": {"input": _order(external_id)}},
                )
            except httpx.ConnectError:
                outcomes.append(Outcome(external_id, started, time.monotonic(), None, "refused"))
                return  # nobody listens any more
            except httpx.TransportError as error:
                outcomes.append(
                    Outcome(external_id, started, time.monotonic(), None, type(error).__name__)
                )
                continue
            outcomes.append(
                Outcome(
                    external_id,
                    started,
                    time.monotonic(),
                    response.status_code,
                    _problems(response),
                )
            )


def _problems(response: httpx.Response) -> str:
    """What went wrong in an answer, or nothing."""
    if response.status_code != 200:
        return response.text[:200]
    body = response.json()
    if body.get("errors"):
        return str(body["errors"])
    return str(body["data"]["upsertOrder"]["userErrors"] or "")


def test_sigterm_under_load_finishes_what_it_took_and_loses_nothing(tmp_path: Path) -> None:
    running = serving(tmp_path, "--workers", "2", "--no-worker")
    server = next(running)
    url = f"sqlite:///{tmp_path}/serve.db"
    outcomes: list[Outcome] = []
    stop = threading.Event()
    try:
        server.wait_until_up()
        key = asyncio.run(_staff_key(url))
        clients = [
            threading.Thread(target=_load, args=(server, key, outcomes, stop), daemon=True)
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while sum(outcome.status == 200 for outcome in outcomes) < 60:
            assert time.monotonic() < deadline, "the server never got going"
            time.sleep(0.02)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        returncode = server.process.wait(timeout=60)
        stop.set()
        for client in clients:
            client.join(timeout=30)
    finally:
        stop.set()
        running.close()

    assert returncode in (0, -signal.SIGTERM), server.output()
    assert "Traceback" not in server.output()
    answered = [outcome for outcome in outcomes if outcome.status is not None]
    assert {outcome.status for outcome in answered} == {200}
    assert [outcome.error for outcome in answered if outcome.error] == []
    # Requests in flight when the signal came were finished, not dropped.
    assert any(outcome.started < signalled < outcome.ended for outcome in answered)
    # Done exactly when answered: nothing half-way either side.
    stored = asyncio.run(_stored_ids(url))
    assert stored == {outcome.external_id for outcome in answered}
