"""The reference app ``benchmarks/webhook_intake.py`` measures webhook intake against.

uvicorn serves it with ``--app-dir benchmarks/support/apps`` (``bare_post:app``). That folder
holds only such apps, so putting it first on the server's ``sys.path`` shadows no package.

``app`` answers ``POST /webhooks/{platform}/{connection_id}`` the way the real intake answers a
new delivery: it reads the whole body, then returns ``{"received": true, "duplicate": false}``
with HTTP 200. No signature check, no database: the floor of the stack (uvicorn, uvloop,
httptools, Starlette, JSON) for the same requests the intake gets.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RECEIVED_BODY = {"received": True, "duplicate": False}


async def receive(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(RECEIVED_BODY)


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/webhooks/{platform}/{connection_id}", receive, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
