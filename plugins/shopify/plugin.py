"""Registration of the Shopify plugin (entry point ``rma.plugins``: ``shopify``)."""

from __future__ import annotations

from typing import ClassVar

from core.enums import Platform
from core.plugins import Plugin
from core.ports.webhooks import WebhookSource
from plugins.shopify.webhooks import ShopifyWebhookSource


class ShopifyPlugin(Plugin):
    name: ClassVar[str] = "shopify"
    platform: ClassVar[Platform] = Platform.SHOPIFY

    def webhook_source(self) -> WebhookSource:
        return ShopifyWebhookSource()


plugin = ShopifyPlugin()
