"""The WooCommerce plugin's own settings, from ``RMA_WOOCOMMERCE_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WooCommerceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RMA_WOOCOMMERCE_", extra="ignore", hide_input_in_errors=True
    )

    # Extra certificate authorities to trust (a PEM file), for a store with its own CA.
    ca_bundle: str | None = None
    # The woocommerce package waits 5 s by default: too short for a store under load.
    request_timeout: float = Field(default=30.0, gt=0)
    # The service's own RMA_ENV: in production, store and callback URLs must use HTTPS.
    env: Literal["development", "production"] = Field(
        default="development", validation_alias=AliasChoices("RMA_ENV", "env")
    )

    @property
    def verify(self) -> bool | str:
        return self.ca_bundle or True

    @property
    def production(self) -> bool:
        return self.env == "production"
