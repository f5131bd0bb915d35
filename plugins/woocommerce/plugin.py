"""Registration of the WooCommerce plugin (entry point ``rma.plugins``: ``woocommerce``)."""

from __future__ import annotations

from typing import ClassVar

from core.enums import Platform
from core.plugins import Plugin
from core.ports.webhooks import WebhookSource
from plugins.woocommerce.webhooks import WooCommerceWebhookSource


class WooCommercePlugin(Plugin):
    name: ClassVar[str] = "woocommerce"
    platform: ClassVar[Platform] = Platform.WOOCOMMERCE

    def webhook_source(self) -> WebhookSource:
        return WooCommerceWebhookSource()


plugin = WooCommercePlugin()
