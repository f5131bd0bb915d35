"""A store over HTTPS: HTTP Basic instead of OAuth 1.0a, and a certificate authority of its own
trusted only through RMA_WOOCOMMERCE_CA_BUNDLE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.ports.commerce import PlatformUnavailable
from plugins.woocommerce.client import WooCommerceClient
from plugins.woocommerce.platform import WooCommercePlatform
from plugins.woocommerce.settings import WooCommerceSettings
from testkit.fakes import FakeWooCommerce
from testkit.tls import LocalTls, local_tls

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(name="tls")
def tls_fixture(tmp_path: Path) -> LocalTls:
    return local_tls(tmp_path / "tls")


@pytest.fixture(name="store")
def store_fixture(tls: LocalTls) -> Iterator[FakeWooCommerce]:
    with FakeWooCommerce(tls=tls.server) as fake:
        yield fake
        assert fake.server_errors() == []


def platform(store: FakeWooCommerce, settings: WooCommerceSettings) -> WooCommercePlatform:
    key, secret = store.add_keys()
    client = WooCommerceClient(store.base_url, key, secret, timeout=5, verify=settings.verify)
    return WooCommercePlatform(client, {})


async def test_a_store_with_its_own_ca_is_trusted_through_the_bundle(
    store: FakeWooCommerce, tls: LocalTls
) -> None:
    reference = store.create_order(email="tls@example.com", lines=[{"sku": "KEY"}])
    settings = WooCommerceSettings(ca_bundle=str(tls.ca_bundle))

    order = await platform(store, settings).fetch_order(str(reference))

    assert store.base_url.startswith("https://")
    assert order is not None and order.customer.email == "tls@example.com"
    [request] = [r for r in store.requests() if r.path.endswith(f"/orders/{reference}")]
    assert request.headers["authorization"].startswith("Basic ")


async def test_without_the_bundle_the_certificate_is_refused(store: FakeWooCommerce) -> None:
    reference = store.create_order(email="tls@example.com", lines=[{"sku": "KEY"}])
    with pytest.raises(PlatformUnavailable, match="unreachable"):
        await platform(store, WooCommerceSettings()).fetch_order(str(reference))
    assert not [r for r in store.requests() if r.path.endswith(f"/orders/{reference}")]
