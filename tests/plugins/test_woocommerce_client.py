"""The client over the woocommerce package, against the fake store over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from woocommerce.oauth import OAuth

from core.ports.commerce import PlatformRejected
from plugins.woocommerce.client import WooCommerceClient
from testkit.fakes import FakeWooCommerce

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(name="store")
def store_fixture() -> Iterator[FakeWooCommerce]:
    with FakeWooCommerce() as fake:
        yield fake
        assert fake.server_errors() == []


async def test_a_reused_oauth_nonce_is_sent_again_with_a_new_one(
    store: FakeWooCommerce, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package's nonce has 8 random digits: make it collide on the second request.
    nonces = iter(["11111111", "11111111", "22222222"])
    monkeypatch.setattr(OAuth, "generate_nonce", staticmethod(lambda: next(nonces)))
    key, secret = store.add_keys()
    client = WooCommerceClient(store.base_url, key, secret, timeout=5)

    assert (await client.get("orders")).status_code == 200
    assert (await client.get("orders")).status_code == 200

    statuses = [request.status for request in store.requests()]
    assert statuses == [200, 401, 200]


async def test_revoked_keys_are_not_retried(store: FakeWooCommerce) -> None:
    key, secret = store.add_keys()
    store.revoke_keys(key)
    client = WooCommerceClient(store.base_url, key, secret, timeout=5)
    with pytest.raises(PlatformRejected, match="refused the API keys"):
        await client.get("orders")
    assert len(store.requests()) == 1
