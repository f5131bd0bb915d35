"""In-process fakes of external services, for tests that must speak real HTTP."""

from testkit.fakes.shopify_server import (
    FakeShop,
    FakeShopify,
    FakeWebhook,
    ShopifyFault,
    ShopifyRequest,
    oauth_hmac,
    sign_webhook,
)
from testkit.fakes.stripe_server import (
    STRIPE_HTTPX_WARNING_FILTER,
    FakeAccount,
    FakeStripe,
    Fault,
    RecordedRequest,
    sign_payload,
)

__all__ = [
    "STRIPE_HTTPX_WARNING_FILTER",
    "FakeAccount",
    "FakeShop",
    "FakeShopify",
    "FakeStripe",
    "FakeWebhook",
    "Fault",
    "RecordedRequest",
    "ShopifyFault",
    "ShopifyRequest",
    "oauth_hmac",
    "sign_payload",
    "sign_webhook",
]
