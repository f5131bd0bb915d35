"""The key grant's link, and the HTTPS rule for stores and the service's own address."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from core.errors import InvalidInput, NotConfigured
from plugins.woocommerce.connect import WooCommerceInstaller
from plugins.woocommerce.settings import WooCommerceSettings


def installer(env: str) -> WooCommerceInstaller:
    return WooCommerceInstaller(WooCommerceSettings(env=env))  # type: ignore[arg-type]


def test_the_link_asks_the_store_for_read_write_keys_sent_to_our_callback() -> None:
    store = installer("production").normalize_account("https://Shop.Example.com/store/")
    url = installer("production").authorize_url(store, "state-123", "https://rma.example.com/")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://shop.example.com/store/wc-auth/v1/authorize"
    )
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert query == {
        "app_name": "RMA returns",
        "scope": "read_write",
        "user_id": "state-123",
        "return_url": "https://rma.example.com/woocommerce/return",
        "callback_url": "https://rma.example.com/woocommerce/callback",
    }


def test_production_needs_https_except_on_loopback() -> None:
    production = installer("production")
    with pytest.raises(InvalidInput, match="https"):
        production.normalize_account("http://shop.example.com")
    assert production.normalize_account("http://127.0.0.1:8080") == "http://127.0.0.1:8080/"
    assert production.normalize_account("http://localhost/") == "http://localhost/"
    with pytest.raises(NotConfigured, match="RMA_PUBLIC_URL"):
        production.authorize_url("https://shop.example.com/", "s", "http://rma.example.com")
    production.authorize_url("https://shop.example.com/", "s", "http://127.0.0.1:8000")


def test_development_allows_plain_http() -> None:
    development = installer("development")
    assert development.normalize_account("http://shop.test") == "http://shop.test/"
    assert "callback_url=http" in development.authorize_url("http://shop.test/", "s", "http://x")
