"""Installing a platform's app from this service: the link the merchant approves on."""

from __future__ import annotations

from typing import Protocol

from core.enums import Platform


class AppInstaller(Protocol):
    platform: Platform

    def configured(self) -> bool:
        """Whether the app's credentials are set (without them no install can work)."""
        ...

    def normalize_account(self, account: str) -> str:
        """The account as the platform names it (``the-shop.myshopify.com``); raises
        ``InvalidInput`` for one that cannot be right."""
        ...

    def authorize_url(self, account: str, state: str, public_url: str) -> str:
        """The platform's page where the merchant approves the install, carrying ``state``."""
        ...
