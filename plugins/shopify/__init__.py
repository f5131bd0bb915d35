"""Shopify: webhook verification today; the app install, order sync and refunds come next."""

from plugins.shopify.plugin import plugin

__all__ = ["plugin"]
