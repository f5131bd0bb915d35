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
from testkit.fakes.woocommerce_server import (
    FakeWooCommerce,
    FakeWooWebhook,
    GatewayRefund,
    WooFault,
    WooRequest,
    oauth_signature,
    sign_woo_webhook,
    wp_json_encode,
)

__all__ = [
    "STRIPE_HTTPX_WARNING_FILTER",
    "FakeAccount",
    "FakeShop",
    "FakeShopify",
    "FakeStripe",
    "FakeWebhook",
    "FakeWooCommerce",
    "FakeWooWebhook",
    "Fault",
    "GatewayRefund",
    "RecordedRequest",
    "ShopifyFault",
    "ShopifyRequest",
    "WooFault",
    "WooRequest",
    "oauth_hmac",
    "oauth_signature",
    "sign_payload",
    "sign_webhook",
    "sign_woo_webhook",
    "wp_json_encode",
]
