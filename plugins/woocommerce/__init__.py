"""WooCommerce: webhook verification today; connecting a store, sync and refunds come next."""

from plugins.woocommerce.plugin import plugin

__all__ = ["plugin"]
