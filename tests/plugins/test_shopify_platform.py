"""The Shopify platform client against the fake: paging, bulk files resumed, throttling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plugins.shopify.client import ShopifyGraphQL
from plugins.shopify.platform import ShopifyPlatform
from testkit.fakes import FakeShop, FakeShopify

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeShopify]:
    with FakeShopify(api_key="key", api_secret="secret") as server:
        yield server
        assert server.server_errors() == []


def platform(fake: FakeShopify, shop: FakeShop) -> ShopifyPlatform:
    client = ShopifyGraphQL(
        shop.domain, fake.issue_token(shop), base_url=fake.base_url, api_version="2026-07"
    )
    return ShopifyPlatform(client, {}, bulk_patience=30)


async def test_a_bulk_file_is_read_in_pages_and_resumed_by_another_process(
    fake: FakeShopify,
) -> None:
    shop = fake.add_shop("bulk-resume.myshopify.com")
    fake.create_orders_bulk(
        shop, 260, email="b@example.com", lines=[{"sku": "A"}, {"sku": "B", "quantity": 2}]
    )
    first = platform(fake, shop)
    started = await first.orders_changed_since(None, limit=100)
    assert started.orders == [] and started.has_more
    page = await first.orders_changed_since(started.next_cursor, limit=100)
    seen = [order.external_id for order in page.orders]
    assert len(seen) == 100 and all(len(order.lines) == 2 for order in page.orders)
    await first.close()  # the process dies here; the cursor was kept

    second = platform(fake, shop)
    cursor = page.next_cursor
    while True:
        page = await second.orders_changed_since(cursor, limit=100)
        seen += [order.external_id for order in page.orders]
        cursor = page.next_cursor
        if not page.has_more:
            break
    await second.close()
    assert len(seen) == len(set(seen)) == 260
    assert cursor is not None and "since" in cursor
    assert len(fake.bulk_operations(shop)) == 1


async def test_pages_wait_for_the_cost_bucket_instead_of_failing(fake: FakeShopify) -> None:
    shop = fake.add_shop("bucket.myshopify.com")
    for index in range(20):
        fake.create_order(shop, email=f"p{index}@example.com")
    fake.set_bucket(shop, maximum_available=1000, restore_rate=4000, currently_available=0)
    client = platform(fake, shop)
    cursor, count = None, 0
    while True:
        page = await client.orders_changed_since(cursor, limit=250)
        count += len(page.orders)
        cursor = page.next_cursor
        if not page.has_more:
            break
    await client.close()
    assert count == 20
