"""The plugin seam: entry points, the registry, and each plugin's own settings."""

from __future__ import annotations

import pytest

from core.enums import PaymentProviderName, Platform
from core.plugins import Plugin, Registry, installed_plugins
from core.ports.payments import ProviderRejected
from plugins.stripe.plugin import StripePlugin
from plugins.stripe.settings import StripeSettings


def test_the_three_platforms_are_installed_through_entry_points() -> None:
    plugins = installed_plugins()
    assert sorted(plugin.name for plugin in plugins) == ["shopify", "stripe", "woocommerce"]
    assert all(isinstance(plugin, Plugin) for plugin in plugins)


def test_the_registry_indexes_what_each_plugin_provides() -> None:
    registry = Registry.of(installed_plugins())

    assert set(registry.webhook_sources) == {
        Platform.STRIPE,
        Platform.SHOPIFY,
        Platform.WOOCOMMERCE,
    }
    for platform, source in registry.webhook_sources.items():
        assert source.platform is platform
    assert set(registry.payment_providers) == {
        PaymentProviderName.STRIPE,
        PaymentProviderName.SHOPIFY_PAYMENTS,
        PaymentProviderName.WOOCOMMERCE,
    }
    assert "refund.updated" in registry.topics[Platform.STRIPE]
    assert {"orders/updated", "refunds/create", "app/uninstalled"} <= set(
        registry.topics[Platform.SHOPIFY]
    )
    assert set(registry.commerce_platforms) == {Platform.SHOPIFY, Platform.WOOCOMMERCE}
    assert "order.updated" in registry.topics[Platform.WOOCOMMERCE]
    assert set(registry.app_webhook_sources) == {Platform.SHOPIFY}
    assert set(registry.installers) == {Platform.SHOPIFY, Platform.WOOCOMMERCE}
    assert {route.path for route in registry.routes} == {
        "/shopify/install",
        "/shopify/callback",
        "/woocommerce/callback",
        "/woocommerce/return",
    }


def test_an_empty_registry_provides_nothing() -> None:
    registry = Registry.of([])
    assert not registry.webhook_sources
    assert not registry.payment_providers
    assert registry.routes == ()


def test_the_stripe_api_base_is_read_from_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMA_STRIPE_API_BASE", "http://127.0.0.1:9")
    assert StripeSettings().api_base == "http://127.0.0.1:9"
    assert StripePlugin().stripe_settings.api_base == "http://127.0.0.1:9"


def test_a_stripe_connection_without_a_key_is_refused_readably() -> None:
    factory = StripePlugin(StripeSettings(api_base="http://127.0.0.1:9")).payment_provider()
    with pytest.raises(ProviderRejected, match="no secret key"):
        factory.build({})
