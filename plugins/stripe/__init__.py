"""Stripe: refunds and customer-balance credits through the merchant's own Stripe account."""

from plugins.stripe.plugin import plugin

__all__ = ["plugin"]
