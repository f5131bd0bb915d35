"""The composition root's parts: the plugin registry, the services and the job worker.

``create_app`` and ``rma worker`` build these once; nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.clock import Clock
from core.database import Database
from core.jobs.builtin import CORE_HANDLERS, CORE_PERIODIC
from core.jobs.deliveries import delivery_processor
from core.jobs.worker import Handler, Worker
from core.outbox.kinds import PROCESS_DELIVERY
from core.plugins import Plugin, Registry, installed_plugins
from core.secrets import Vault
from core.services import Services
from core.settings import Settings
from graphql_api.metrics import record_job_outcome


def build_registry(plugins: Iterable[Plugin] | None = None) -> Registry:
    """The registry of the given plugins, or of every installed one."""
    return Registry.of(installed_plugins() if plugins is None else plugins)


def job_handlers(registry: Registry) -> dict[str, Handler]:
    handlers: dict[str, Handler] = dict(CORE_HANDLERS)
    handlers.update(registry.job_handlers)
    handlers[PROCESS_DELIVERY] = delivery_processor(registry.topics)
    return handlers


def build_services(settings: Settings, registry: Registry) -> Services:
    return Services(settings=settings, vault=Vault(settings.encryption_keys), registry=registry)


def build_worker(
    settings: Settings,
    database: Database,
    *,
    clock: Clock,
    registry: Registry | None = None,
    concurrency: int | None = None,
) -> Worker:
    chosen = registry or build_registry()
    return Worker(
        database,
        job_handlers(chosen),
        concurrency=concurrency or settings.worker_concurrency,
        periodic=CORE_PERIODIC,
        services=build_services(settings, chosen),
        clock=clock,
        on_outcome=record_job_outcome,
    )
