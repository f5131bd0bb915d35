"""Ports: what the core needs from the outside world, as small typed protocols.

- ``payments``: a payment provider that refunds and credits balances (Stripe);
- ``commerce``: an order platform that orders come from and refunds go back to (Shopify,
  WooCommerce);
- ``webhooks``: a platform's webhook deliveries, verified, and their topics parsed into values.

Plugins implement them (``plugins/``) and register through ``rma.plugins`` entry points; core's
use cases apply the values they return. Errors say whether anything happened on the other side.
"""
