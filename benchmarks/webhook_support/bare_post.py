"""The reference app ``benchmarks/webhooks.py`` measures webhook intake against.

uvicorn serves it with ``--app-dir benchmarks/webhook_support`` (``bare_post:app``); it lives in
its own folder because ``--app-dir benchmarks`` would put ``benchmarks/webhooks.py`` ahead of the
project's ``webhooks`` package on ``sys.path``.

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
