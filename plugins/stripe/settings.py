"""The Stripe plugin's settings: ``RMA_STRIPE_``-prefixed environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StripeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RMA_STRIPE_", extra="ignore")

    # Any Stripe-compatible server (a local fake in tests, a proxy): scheme and host, no /v1.
    api_base: str = "https://api.stripe.com"
    timeout_seconds: float = Field(default=20.0, gt=0)
