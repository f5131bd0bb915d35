"""Registration of the Shopify plugin (entry point ``rma.plugins``: ``shopify``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from core.enums import PaymentProviderName, Platform
from core.plugins import HttpRoute, Plugin
from core.ports.commerce import (
    CommercePlatform,
    CommercePlatformFactory,
    CredentialRefresher,
    PlatformRejected,
)
from core.ports.installs import AppInstaller
from core.ports.payments import PaymentProvider, PaymentProviderFactory, ProviderRejected
from core.ports.webhooks import AppWebhookSource, TopicHandler, WebhookSource
from plugins.shopify.client import ShopifyGraphQL
from plugins.shopify.oauth import ShopifyInstaller, callback_route, install_route
from plugins.shopify.platform import SETTINGS_CHOICES, SETTINGS_DEFAULTS, ShopifyPlatform
from plugins.shopify.refunds import ShopifyRefunds
from plugins.shopify.settings import ShopifySettings
from plugins.shopify.tokens import ShopifyTokenRefresher
from plugins.shopify.topics import TOPICS
from plugins.shopify.webhooks import ShopifyAppWebhookSource, ShopifyWebhookSource


class ShopifyPlugin(Plugin):
    """The Shopify app: install, order sync, webhooks, refunds through Shopify, restock."""

    name: ClassVar[str] = "shopify"
    platform: ClassVar[Platform] = Platform.SHOPIFY
    settings_class = ShopifySettings

    @property
    def shopify_settings(self) -> ShopifySettings:
        settings = self.settings
        assert isinstance(settings, ShopifySettings)
        return settings

    def client(self, shop: str, credentials: Mapping[str, Any]) -> ShopifyGraphQL:
        token = credentials.get("access_token")
        if not token:
            raise ProviderRejected("the Shopify connection has no access token")
        settings = self.shopify_settings
        return ShopifyGraphQL(
            shop,
            str(token),
            base_url=settings.base_for(shop),
            api_version=settings.api_version,
            timeout=settings.request_timeout,
            max_attempts=settings.max_attempts,
        )

    def webhook_source(self) -> WebhookSource:
        return ShopifyWebhookSource()

    def app_webhook_source(self) -> AppWebhookSource:
        return ShopifyAppWebhookSource(lambda: self.shopify_settings.app_secrets())

    def topic_handlers(self) -> Mapping[str, TopicHandler]:
        return TOPICS

    def payment_provider(self) -> PaymentProviderFactory:
        def build(credentials: Mapping[str, Any]) -> PaymentProvider:
            shop = str(credentials.get("account") or credentials.get("shop") or "")
            return ShopifyRefunds(self.client(shop, credentials))

        # Shopify keeps @idempotent keys for a while only; past that, look before sending.
        return PaymentProviderFactory(
            provider=PaymentProviderName.SHOPIFY_PAYMENTS,
            platform=Platform.SHOPIFY,
            build=build,
            idempotency_keys_trusted_for=timedelta(hours=1),
        )

    def commerce_platform(self) -> CommercePlatformFactory:
        def build(
            account: str, credentials: Mapping[str, Any], settings: Mapping[str, Any]
        ) -> CommercePlatform:
            try:
                client = self.client(account, credentials)
            except ProviderRejected as error:
                raise PlatformRejected(str(error)) from error
            return ShopifyPlatform(
                client,
                settings,
                bulk_patience=self.shopify_settings.bulk_wait_seconds,
                timeout=self.shopify_settings.request_timeout,
            )

        return CommercePlatformFactory(
            platform=Platform.SHOPIFY,
            build=build,
            settings_defaults=SETTINGS_DEFAULTS,
            settings_choices=SETTINGS_CHOICES,
            places_exchanges=True,
        )

    def credential_refresher(self) -> CredentialRefresher:
        return ShopifyTokenRefresher(self.shopify_settings)

    def app_installer(self) -> AppInstaller:
        return ShopifyInstaller(self.shopify_settings)

    def routes(self) -> Sequence[HttpRoute]:
        installer = ShopifyInstaller(self.shopify_settings)
        return (
            HttpRoute("/shopify/install", install_route(installer)),
            HttpRoute("/shopify/callback", callback_route(installer)),
        )

    def secrets(self) -> Sequence[str]:
        return self.shopify_settings.app_secrets()


plugin = ShopifyPlugin()
