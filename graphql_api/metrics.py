"""Prometheus metrics at ``/metrics``.

Counted in the process: GraphQL request latency by operation name, errors by code, and the
jobs a worker finished. With ``rma serve --workers N`` every process writes its figures to
``PROMETHEUS_MULTIPROC_DIR`` and a scrape adds them up (prometheus-client's multiprocess
mode). Read from the database at each scrape, so every process tells the same: the job queue
and its lag by kind, jobs by state, webhook deliveries by platform and outcome, resolutions by
provider and status, and each connection's sync lag.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from strawberry.extensions import SchemaExtension

from core.database import Database
from core.usecases.figures import Figures, operational_figures

REQUESTS = Histogram(
    "rma_graphql_request_seconds",
    "GraphQL requests by operation name, in seconds.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter(
    "rma_graphql_errors_total",
    "GraphQL errors and mutation userErrors, by code.",
    ["code"],
)
JOBS = Counter(
    "rma_jobs_finished_total",
    "Jobs this process's workers finished, by kind and outcome (DONE, DEAD, RETRIED).",
    ["kind", "outcome"],
)

# Operation names come from clients: only plain names, and only so many, become labels.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_OPERATIONS = 200
_seen_operations: set[str] = set()


def operation_label(name: str | None) -> str:
    if not name or not _NAME.fullmatch(name):
        return "anonymous"
    if name not in _seen_operations:
        if len(_seen_operations) >= _MAX_OPERATIONS:
            return "other"
        _seen_operations.add(name)
    return name


def count_error(code: str) -> None:
    ERRORS.labels(code=code).inc()


def record_job_outcome(kind: str, outcome: str) -> None:
    JOBS.labels(kind=kind, outcome=outcome).inc()


class RequestTimer(SchemaExtension):
    """Times each GraphQL operation under its (bounded) name."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        name = getattr(self.execution_context, "operation_name", None)
        REQUESTS.labels(operation=operation_label(name)).observe(time.perf_counter() - started)


class _FiguresCollector:
    """The database's figures as gauges, for one scrape."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self.figures
        due = GaugeMetricFamily("rma_jobs_due", "Queued jobs due now, by kind.", labels=["kind"])
        lag = GaugeMetricFamily(
            "rma_jobs_lag_seconds",
            "How long the oldest due job has waited past its time, by kind.",
            labels=["kind"],
        )
        for entry in figures.queue:
            due.add_metric([entry.kind], entry.due)
            lag.add_metric([entry.kind], entry.lag_seconds)
        jobs = GaugeMetricFamily(
            "rma_jobs", "Jobs in the table by kind and state.", labels=["kind", "state"]
        )
        for kind, state, count in figures.jobs:
            jobs.add_metric([kind, state], count)
        deliveries = GaugeMetricFamily(
            "rma_webhook_deliveries",
            "Webhook deliveries kept, by platform and outcome.",
            labels=["platform", "state"],
        )
        for platform, state, count in figures.deliveries:
            deliveries.add_metric([platform, state], count)
        resolutions = GaugeMetricFamily(
            "rma_resolutions",
            "Resolutions by kind (refund, store credit), provider and status.",
            labels=["kind", "provider", "status"],
        )
        for kind, provider, status, count in figures.resolutions:
            resolutions.add_metric([kind, provider, status], count)
        sync = GaugeMetricFamily(
            "rma_connection_sync_lag_seconds",
            "Seconds since each enabled connection's last sync (-1: never synced).",
            labels=["connection", "platform"],
        )
        for connection, platform, seconds in figures.sync_lag:
            sync.add_metric([connection, platform], seconds)
        yield from (due, lag, jobs, deliveries, resolutions, sync)


def _process_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def allowed(request: Request, token: str | None, *, production: bool) -> bool:
    """In production only with ``Authorization: Bearer $RMA_METRICS_TOKEN`` (never when it is
    unset); elsewhere to anyone who can reach the port."""
    if not production:
        return True
    if not token:
        return False
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def metrics(request: Request) -> Response:
    settings = request.app.state.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not allowed(request, token, production=settings.is_production):
        return PlainTextResponse("metrics need the metrics token", status_code=401)
    database: Database = request.app.state.database
    async with database.read_session() as session:
        figures = await operational_figures(session, now=request.app.state.clock.now())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FiguresCollector(figures))
    body = _process_metrics() + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def prepare_multiprocess(path: str) -> None:
    """Point prometheus-client's multiprocess mode at ``path``, emptied, for the server
    processes started after this (before any of them imports this module's metrics)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
