"""Registration of the WooCommerce plugin (entry point ``rma.plugins``: ``woocommerce``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from core.enums import PaymentProviderName, Platform
from core.plugins import HttpRoute, Plugin
from core.ports.commerce import CommercePlatform, CommercePlatformFactory, PlatformRejected
from core.ports.installs import AppInstaller
from core.ports.payments import PaymentProvider, PaymentProviderFactory, ProviderRejected
from core.ports.webhooks import TopicHandler, WebhookSource
from plugins.woocommerce.client import WooCommerceClient
from plugins.woocommerce.connect import (
    CALLBACK_PATH,
    MAX_CALLBACK_BYTES,
    RETURN_PATH,
    WooCommerceInstaller,
    callback,
    return_page,
)
from plugins.woocommerce.gateway import WooCommerceGatewayRefunds
from plugins.woocommerce.platform import SETTINGS_CHOICES, SETTINGS_DEFAULTS, WooCommercePlatform
from plugins.woocommerce.settings import WooCommerceSettings
from plugins.woocommerce.topics import TOPICS
from plugins.woocommerce.webhooks import WooCommerceWebhookSource


class WooCommercePlugin(Plugin):
    """A WooCommerce store: connected by key grant, webhooks registered and verified, orders
    synced."""

    name: ClassVar[str] = "woocommerce"
    platform: ClassVar[Platform] = Platform.WOOCOMMERCE
    settings_class = WooCommerceSettings

    @property
    def woocommerce_settings(self) -> WooCommerceSettings:
        settings = self.settings
        assert isinstance(settings, WooCommerceSettings)
        return settings

    def webhook_source(self) -> WebhookSource:
        return WooCommerceWebhookSource()

    def topic_handlers(self) -> Mapping[str, TopicHandler]:
        return TOPICS

    def app_installer(self) -> AppInstaller:
        return WooCommerceInstaller(self.woocommerce_settings)

    def routes(self) -> Sequence[HttpRoute]:
        return (
            HttpRoute(CALLBACK_PATH, callback, methods=("POST",), body_limit=MAX_CALLBACK_BYTES),
            HttpRoute(RETURN_PATH, return_page),
        )

    def payment_provider(self) -> PaymentProviderFactory:
        settings = self.woocommerce_settings

        def build(credentials: Mapping[str, Any]) -> PaymentProvider:
            key, secret = credentials.get("consumer_key"), credentials.get("consumer_secret")
            if not key or not secret:
                raise ProviderRejected("the WooCommerce connection has no API keys")
            client = WooCommerceClient(
                str(credentials.get("account") or ""),
                str(key),
                str(secret),
                timeout=settings.request_timeout,
                verify=settings.verify,
            )
            return WooCommerceGatewayRefunds(client)

        # WooCommerce has no idempotency keys at all: every attempt looks first.
        return PaymentProviderFactory(
            provider=PaymentProviderName.WOOCOMMERCE,
            platform=Platform.WOOCOMMERCE,
            build=build,
            idempotency_keys_trusted_for=timedelta(0),
        )

    def commerce_platform(self) -> CommercePlatformFactory:
        settings = self.woocommerce_settings

        def build(
            account: str, credentials: Mapping[str, Any], connection_settings: Mapping[str, Any]
        ) -> CommercePlatform:
            key, secret = credentials.get("consumer_key"), credentials.get("consumer_secret")
            if not key or not secret:
                raise PlatformRejected("the WooCommerce connection has no API keys")
            client = WooCommerceClient(
                account,
                str(key),
                str(secret),
                timeout=settings.request_timeout,
                verify=settings.verify,
            )
            secret = credentials.get("webhook_secret")
            return WooCommercePlatform(
                client, connection_settings, webhook_secret=str(secret) if secret else None
            )

        return CommercePlatformFactory(
            platform=Platform.WOOCOMMERCE,
            build=build,
            settings_defaults=SETTINGS_DEFAULTS,
            settings_choices=SETTINGS_CHOICES,
            records_refunds=True,
            restocks_with_refund=True,
            customers_by_email=True,
            places_exchanges=True,
        )


plugin = WooCommercePlugin()
