"""Wiring of the job worker: the core's, the webhooks' and the plugins' handlers in one table."""

from __future__ import annotations

import uuid
from importlib.metadata import entry_points
from typing import Any

import structlog

from core.clock import Clock
from core.database import Database
from core.enums import PaymentProviderName
from core.jobs.builtin import CORE_HANDLERS, CORE_PERIODIC
from core.jobs.kinds import PROCESS_DELIVERY
from core.jobs.payments import ProviderLookup
from core.jobs.worker import Handler, Worker
from core.ports import PaymentProvider
from core.secrets import Vault
from core.settings import Settings
from webhooks.processing import delivery_processor
from webhooks.topics import builtin_topics

log = structlog.get_logger()
PLUGIN_GROUP = "rma.plugins"


def load_plugins() -> list[Any]:
    """Plugins installed under the ``rma.plugins`` entry point, each loaded once."""
    plugins = []
    for entry in entry_points(group=PLUGIN_GROUP):
        plugins.append(entry.load())
        log.info("plugin loaded", plugin=entry.name)
    return plugins


def job_handlers(plugins: list[Any]) -> dict[str, Handler]:
    topics = builtin_topics()
    handlers: dict[str, Handler] = dict(CORE_HANDLERS)
    for plugin in plugins:
        for platform, table in getattr(plugin, "webhook_topics", dict)().items():
            topics.setdefault(platform, {}).update(table)
        handlers.update(getattr(plugin, "job_handlers", dict)())
    handlers[PROCESS_DELIVERY] = delivery_processor(topics)
    return handlers


def payment_providers(plugins: list[Any], settings: Settings) -> ProviderLookup:
    """One lookup over every plugin's providers: (database, merchant, provider) -> port."""
    vault = Vault(settings.encryption_keys)
    factories: dict[PaymentProviderName, Any] = {}
    for plugin in plugins:
        if hasattr(plugin, "payment_providers"):
            factories.update(plugin.payment_providers(vault, api_base=settings.stripe_api_base))

    async def lookup(
        database: Database, merchant_id: uuid.UUID, provider: PaymentProviderName
    ) -> PaymentProvider | None:
        factory = factories.get(provider)
        return None if factory is None else await factory(database, merchant_id)

    return lookup


def build_worker(
    settings: Settings, database: Database, *, clock: Clock, concurrency: int | None = None
) -> Worker:
    plugins = load_plugins()
    return Worker(
        database,
        job_handlers(plugins),
        concurrency=concurrency or settings.worker_concurrency,
        periodic=CORE_PERIODIC,
        clock=clock,
        services={
            "vault": Vault(settings.encryption_keys),
            "settings": settings,
            "payment_providers": payment_providers(plugins, settings),
        },
    )
