"""The plugin seam: what a platform package exports, and the one registry built from them.

A plugin package (``plugins/stripe``, ``plugins/shopify``, a third party's) exports an instance
of a :class:`Plugin` subclass as ``plugin`` and names it under the ``rma.plugins`` entry point
group. It overrides only the factories for what its platform does. Its settings are its own
pydantic-settings class with an ``RMA_<NAME>_`` prefix. Nothing it builds touches the database:
factories receive settings, decrypted credentials and clients; core's use cases persist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic_settings import BaseSettings

from core.enums import PaymentProviderName, Platform
from core.ports.commerce import CommercePlatformFactory, CredentialRefresher
from core.ports.installs import AppInstaller
from core.ports.payments import PaymentProviderFactory
from core.ports.webhooks import AppWebhookSource, TopicHandler, WebhookSource

if TYPE_CHECKING:
    from core.clock import Clock
    from core.database import Database
    from core.jobs.worker import Handler
    from core.secrets import Vault
    from core.settings import Settings

PLUGIN_GROUP = "rma.plugins"


@dataclass(frozen=True, slots=True)
class RouteServices:
    """What a plugin's page may use, bound by the app factory: core's use cases run on this
    database; ``wake_worker`` tells the in-process worker that jobs were queued."""

    database: Database
    vault: Vault
    clock: Clock
    settings: Settings
    registry: Registry
    wake_worker: Callable[[], None]


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """A page or callback a plugin serves (an app install, an OAuth callback), mounted by the
    app factory. ``endpoint`` takes the web framework's request and the route services, and
    returns the framework's response."""

    path: str
    endpoint: Callable[[Any, RouteServices], Awaitable[Any]]
    methods: tuple[str, ...] = ("GET",)
    # The largest request body the route accepts: anyone may call it, so the app refuses
    # more (413) before the endpoint reads a byte.
    body_limit: int = 64 * 1024


class Plugin:
    """Base of every plugin; each factory's default says "this platform does not do that"."""

    name: ClassVar[str]
    platform: ClassVar[Platform]
    settings_class: ClassVar[type[BaseSettings] | None] = None

    def __init__(self, settings: BaseSettings | None = None) -> None:
        # Given for tests and embedding; otherwise read from the environment when first used.
        self._settings = settings

    @property
    def settings(self) -> BaseSettings | None:
        if self._settings is None and self.settings_class is not None:
            self._settings = self.settings_class()
        return self._settings

    def webhook_source(self) -> WebhookSource | None:
        return None

    def app_webhook_source(self) -> AppWebhookSource | None:
        """Verifies deliveries signed with the app's own secret, if the platform sends them."""
        return None

    def topic_handlers(self) -> Mapping[str, TopicHandler]:
        return {}

    def payment_provider(self) -> PaymentProviderFactory | None:
        return None

    def commerce_platform(self) -> CommercePlatformFactory | None:
        return None

    def credential_refresher(self) -> CredentialRefresher | None:
        """How this platform's expiring credentials are renewed, if they expire."""
        return None

    def app_installer(self) -> AppInstaller | None:
        """How a merchant installs this platform's app from the service, if it has one."""
        return None

    def job_handlers(self) -> Mapping[str, Handler]:
        return {}

    def routes(self) -> Sequence[HttpRoute]:
        return ()

    def secrets(self) -> Sequence[str]:
        """Values of its settings that must never be logged (an app's API secret)."""
        return ()


@dataclass(frozen=True)
class Registry:
    """Everything the installed plugins provide, by platform, provider and topic."""

    plugins: tuple[Plugin, ...] = ()
    webhook_sources: Mapping[Platform, WebhookSource] = field(default_factory=dict)
    app_webhook_sources: Mapping[Platform, AppWebhookSource] = field(default_factory=dict)
    topics: Mapping[Platform, Mapping[str, TopicHandler]] = field(default_factory=dict)
    payment_providers: Mapping[PaymentProviderName, PaymentProviderFactory] = field(
        default_factory=dict
    )
    commerce_platforms: Mapping[Platform, CommercePlatformFactory] = field(default_factory=dict)
    refreshers: Mapping[Platform, CredentialRefresher] = field(default_factory=dict)
    installers: Mapping[Platform, AppInstaller] = field(default_factory=dict)
    job_handlers: Mapping[str, Handler] = field(default_factory=dict)
    routes: tuple[HttpRoute, ...] = ()

    @classmethod
    def of(cls, plugins: Iterable[Plugin]) -> Registry:
        chosen = tuple(plugins)
        sources: dict[Platform, WebhookSource] = {}
        app_sources: dict[Platform, AppWebhookSource] = {}
        topics: dict[Platform, dict[str, TopicHandler]] = {}
        providers: dict[PaymentProviderName, PaymentProviderFactory] = {}
        platforms: dict[Platform, CommercePlatformFactory] = {}
        refreshers: dict[Platform, CredentialRefresher] = {}
        installers: dict[Platform, AppInstaller] = {}
        handlers: dict[str, Handler] = {}
        routes: list[HttpRoute] = []
        for plugin in chosen:
            source = plugin.webhook_source()
            if source is not None:
                sources[plugin.platform] = source
            app_source = plugin.app_webhook_source()
            if app_source is not None:
                app_sources[plugin.platform] = app_source
            topics.setdefault(plugin.platform, {}).update(plugin.topic_handlers())
            provider = plugin.payment_provider()
            if provider is not None:
                providers[provider.provider] = provider
            platform = plugin.commerce_platform()
            if platform is not None:
                platforms[platform.platform] = platform
            refresher = plugin.credential_refresher()
            if refresher is not None:
                refreshers[plugin.platform] = refresher
            installer = plugin.app_installer()
            if installer is not None:
                installers[plugin.platform] = installer
            handlers.update(plugin.job_handlers())
            routes.extend(plugin.routes())
        return cls(
            chosen,
            sources,
            app_sources,
            topics,
            providers,
            platforms,
            refreshers,
            installers,
            handlers,
            tuple(routes),
        )

    def secrets(self) -> list[str]:
        return [secret for plugin in self.plugins for secret in plugin.secrets()]


def installed_plugins() -> list[Plugin]:
    """The plugins installed under the ``rma.plugins`` entry point group, each loaded once."""
    found: list[Plugin] = []
    for entry in entry_points(group=PLUGIN_GROUP):
        plugin = entry.load()
        if not isinstance(plugin, Plugin):
            raise TypeError(f"entry point {entry.name!r} is not an rma Plugin: {plugin!r}")
        found.append(plugin)
    return found
