"""The two reference apps ``benchmarks/graphql_reads.py`` measures the GraphQL API against.

uvicorn serves them with ``--app-dir benchmarks/support/apps`` (``read_endpoints:bare_app``, and
``read_endpoints:create_handwritten_app --factory``). That folder holds only such apps, so
putting it first on the server's ``sys.path`` shadows no package.

- ``bare_app``: Starlette returning a fixed JSON body; the floor of the stack (uvicorn, uvloop,
  httptools, Starlette, JSON) with no database.
- ``create_handwritten_app``: what a hand-written endpoint for one RMA costs. It does the same
  work as the GraphQL ``rma(number:)`` field through the same data layer (the Bearer API key
  through ``LiveKeys``, then the merchant's RMA by number and its lines as plain rows from
  ``core.queries``, in one read session) and answers the same fields, on the database named by
  ``RMA_DATABASE_URL``. What it costs above ``bare_app`` is the data layer's cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core import queries
from core.database import Database
from core.entities import RmaLine
from core.settings import Settings
from core.usecases.live_keys import LiveKeys

BARE_BODY = {"status": "ok", "service": "rma", "bench": True}


async def bare(_request: Request) -> JSONResponse:
    return JSONResponse(BARE_BODY)


bare_app = Starlette(routes=[Route("/", bare), Route("/healthz", bare)])


def bearer(request: Request) -> str | None:
    scheme, _, credential = request.headers.get("authorization", "").strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


async def rma_by_number(request: Request) -> JSONResponse:
    """One RMA of the caller's merchant and its lines, by number; 401 or 404 otherwise."""
    database: Database = request.app.state.database
    keys: LiveKeys = request.app.state.keys
    key = bearer(request)
    grant = None if key is None else await keys.find(key)
    if grant is None:
        return JSONResponse({"error": "unauthenticated"}, status_code=401)
    async with database.read_session() as session:
        rma = await queries.rma_by_number(session, grant.merchant_id, request.path_params["number"])
        if rma is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        [lines] = await queries.grouped_by(
            session,
            RmaLine,
            "rma_id",
            grant.merchant_id,
            [rma.id],
            order_by=("position",),
            plain_rows=True,
        )
    body: dict[str, Any] = {
        "number": rma.number,
        "status": rma.status.value,
        "lines": [
            {
                "quantity": line.quantity,
                "reason": line.reason.value,
                "condition": line.condition.value,
                "receivedQuantity": line.received_quantity,
            }
            for line in lines
        ],
    }
    return JSONResponse(body)


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_handwritten_app() -> Starlette:
    """The hand-written endpoint over the configured database (same pool size as the API)."""
    database = Database.from_settings(Settings())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await database.dispose()

    app = Starlette(
        routes=[Route("/rma/{number}", rma_by_number), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.keys = LiveKeys(database)
    return app
