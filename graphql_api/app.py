"""The application factory: the one place that wires settings, database and routes together."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from core.clock import Clock, SystemClock
from core.database import Database
from core.logs import configure_logging_for
from core.migrate import current_revision
from core.plugins import HttpRoute, Registry, RouteServices
from core.secrets import Vault
from core.settings import Settings
from graphql_api.auth import CustomerTokens, FailureLimiter
from graphql_api.composition import build_registry, build_worker
from graphql_api.metrics import metrics
from graphql_api.request_context import RequestContext
from graphql_api.schema import build_schema
from graphql_api.view import GRAPHQL_BODY_LIMIT, BodyLimit, GraphQLView
from webhooks.intake import WEBHOOK_BODY_LIMIT, WebhookIntake

log = structlog.get_logger()


async def healthz(_request: Request) -> JSONResponse:
    """The process is up (no dependencies checked)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready for traffic: the database answers and is migrated."""
    database: Database = request.app.state.database
    try:
        await database.ping()
        revision = await current_revision(database.read_engine)
    except Exception as error:  # readiness reports any failure instead of raising it
        log.warning("readiness check failed", error=type(error).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if revision is None:
        return JSONResponse({"status": "unavailable", "database": "not migrated"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "schemaRevision": revision})


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    registry: Registry | None = None,
) -> ASGIApp:
    """Build the ASGI app; nothing is connected until the first request.

    ``clock`` is the one source of "now" for the API, the webhooks and the in-process worker;
    ``registry`` the plugins it uses (every installed one by default).
    """
    chosen = settings or Settings()
    owned = database is None
    db = database or Database.from_settings(chosen)
    time = clock or SystemClock()
    plugins = registry or build_registry()
    worker = build_worker(chosen, db, clock=time, registry=plugins) if chosen.run_worker else None
    graphql = GraphQLView(
        build_schema(production=chosen.is_production),
        settings=chosen,
        database=db,
        tokens=CustomerTokens(chosen.secret_key.get_secret_value()),
        limiter=FailureLimiter(db, time, chosen.secret_key.get_secret_value().encode()),
        clock=time,
        on_write=worker.wake if worker else None,
        registry=plugins,
    )
    vault = Vault(chosen.encryption_keys)
    intake = WebhookIntake(
        db,
        vault,
        plugins.webhook_sources,
        app_sources=plugins.app_webhook_sources,
        clock=time,
        on_enqueued=worker.wake if worker else None,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        keep_out_of_collections()
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop)) if worker else None
        try:
            yield
        finally:
            stop.set()
            if running is not None:
                await running
            await intake.inbox.close()
            if owned:
                await db.dispose()

    app = Starlette(
        routes=[
            _graphql_route(graphql, chosen.cors_origin_list),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *intake.routes(),
            *plugin_routes(
                plugins,
                RouteServices(
                    database=db,
                    vault=vault,
                    clock=time,
                    settings=chosen,
                    registry=plugins,
                    wake_worker=worker.wake if worker else _nothing,
                ),
            ),
        ],
        lifespan=lifespan,
    )
    app.state.settings = chosen
    app.state.database = db
    app.state.clock = time
    limits = {route.path: route.body_limit for route in plugins.routes}
    limited = BodyLimit(
        app, {**limits, "/graphql": GRAPHQL_BODY_LIMIT, "/webhooks": WEBHOOK_BODY_LIMIT}
    )
    return RequestContext(limited)


def keep_out_of_collections() -> None:
    """Move what the process built to serve (schema, metadata, plugins: all of it lives as long
    as the process) out of the garbage collector's sight. A page of 50 RMAs allocates enough to
    set off full collections, which then scan far less: 19 to 14 ms of CPU per page here."""
    gc.collect()
    gc.freeze()


def _nothing() -> None:
    return None


def _graphql_route(graphql: ASGIApp, origins: list[str]) -> Route:
    """``/graphql``, answering browsers' preflights for the allowed origins only (a Bearer
    header, no cookies: nothing is sent with credentials)."""
    if not origins:
        return Route("/graphql", graphql, methods=["GET", "POST"])
    browsers = CORSMiddleware(
        graphql,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "content-type"],
        max_age=600,
    )
    return Route("/graphql", browsers, methods=["GET", "POST", "OPTIONS"])


def plugin_routes(registry: Registry, services: RouteServices) -> list[Route]:
    """The plugins' pages, each given the services it may use; an unexpected failure is a
    plain 503 page that names nothing (the log has the details)."""

    def bind(route: HttpRoute) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await route.endpoint(request, services)
            except Exception:
                log.exception("plugin page failed", path=route.path)
                return PlainTextResponse("Something went wrong; try again.", status_code=503)
            return response

        return Route(route.path, endpoint, methods=list(route.methods))

    return [bind(route) for route in registry.routes]


def serve_app() -> ASGIApp:
    """The app as ``rma serve`` runs it: settings from the environment, logging configured."""
    settings = Settings()
    registry = build_registry()
    configure_logging_for(settings, plugin_secrets=registry.secrets())
    return create_app(settings, registry=registry)
