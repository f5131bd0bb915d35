"""The WooCommerce plugin's own settings, from ``RMA_WOOCOMMERCE_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WooCommerceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RMA_WOOCOMMERCE_", extra="ignore", hide_input_in_errors=True
    )

    # Extra certificate authorities to trust (a PEM file), for a store with its own CA.
    ca_bundle: str | None = None
    # The woocommerce package waits 5 s by default: too short for a store under load.
    request_timeout: float = Field(default=30.0, gt=0)

    @property
    def verify(self) -> bool | str:
        return self.ca_bundle or True
