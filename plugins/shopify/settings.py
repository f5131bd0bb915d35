"""The Shopify app's own settings, from ``RMA_SHOPIFY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Every Admin API call names this version; payload field names are checked against it.
API_VERSION = "2026-07"

# What the app asks the merchant for: orders (all of them, not only the last 60 days),
# customers, returns, inventory, store credit, and draft orders (an exchange's replacement).
SCOPES = (
    "read_orders",
    "write_orders",
    "read_all_orders",
    "read_customers",
    "read_returns",
    "write_returns",
    "read_inventory",
    "write_inventory",
    "read_locations",
    "read_store_credit_accounts",
    "write_store_credit_account_transactions",
    "read_draft_orders",
    "write_draft_orders",
)


class ShopifySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RMA_SHOPIFY_", extra="ignore", hide_input_in_errors=True
    )

    # The app's client id and secret from the Partner Dashboard; empty disables the app.
    api_key: str = ""
    api_secret: SecretStr = SecretStr("")
    # The secret before a rotation: webhooks signed with it are still accepted for a while.
    api_secret_previous: SecretStr = SecretStr("")
    # Send every Admin API and OAuth call here instead of https://{shop} (a fake in tests, a
    # proxy); same paths and headers.
    api_base: str | None = None
    api_version: str = API_VERSION
    request_timeout: float = Field(default=20.0, gt=0)
    # How long a sync waits for a bulk operation before the job retries later.
    bulk_wait_seconds: float = Field(default=600.0, gt=0)
    # Retries of one call that was rate limited or hit a 5xx, before the job retries later.
    max_attempts: int = Field(default=5, ge=1, le=20)

    def app_secrets(self) -> list[str]:
        """Secrets that sign the app's webhooks and OAuth callbacks, newest first."""
        return [
            secret.get_secret_value()
            for secret in (self.api_secret, self.api_secret_previous)
            if secret.get_secret_value()
        ]

    def base_for(self, shop: str) -> str:
        return (self.api_base or f"https://{shop}").rstrip("/")
