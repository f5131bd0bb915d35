"""Registration of the Stripe plugin (entry point ``rma.plugins``: ``stripe``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import stripe

from core.enums import PaymentProviderName, Platform
from core.plugins import Plugin
from core.ports.payments import PaymentProvider, PaymentProviderFactory, ProviderRejected
from core.ports.webhooks import TopicHandler, WebhookSource
from plugins.stripe.provider import StripeProvider
from plugins.stripe.settings import StripeSettings
from plugins.stripe.webhooks import TOPICS, StripeWebhookSource


class FormBodyHTTPXClient(stripe.HTTPXClient):
    """stripe's httpx client, sending its already-encoded form body as ``content``.

    stripe passes the encoded string as ``data=``, which httpx deprecates for raw bodies.
    """

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")
        elif kwargs.get("data") == {}:
            kwargs.pop("data")
        return args, kwargs


class StripePlugin(Plugin):
    """Refunds and customer-balance credit through each merchant's own Stripe account."""

    name: ClassVar[str] = "stripe"
    platform: ClassVar[Platform] = Platform.STRIPE
    settings_class = StripeSettings

    @property
    def stripe_settings(self) -> StripeSettings:
        settings = self.settings
        assert isinstance(settings, StripeSettings)
        return settings

    def payment_provider(self) -> PaymentProviderFactory:
        settings = self.stripe_settings

        def build(credentials: Mapping[str, Any]) -> PaymentProvider:
            secret_key = credentials.get("secret_key")
            if not secret_key:
                raise ProviderRejected("the Stripe connection has no secret key")
            http = FormBodyHTTPXClient(timeout=settings.timeout_seconds)
            client = stripe.StripeClient(
                str(secret_key),
                base_addresses={"api": settings.api_base},
                max_network_retries=2,
                http_client=http,
            )
            return StripeProvider(client, http)

        return PaymentProviderFactory(
            provider=PaymentProviderName.STRIPE,
            platform=Platform.STRIPE,
            build=build,
            holds_customer_balances=True,
            # Stripe may forget an idempotency key after 24 hours.
            idempotency_keys_trusted_for=timedelta(hours=20),
        )

    def webhook_source(self) -> WebhookSource:
        return StripeWebhookSource()

    def topic_handlers(self) -> Mapping[str, TopicHandler]:
        return TOPICS


plugin = StripePlugin()
