"""`rma sync` against the fake Shopify: a custom-app shop's orders read from the command line."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from testkit.fakes import FakeShopify
from tests.e2e.test_cli import query, rma


@pytest.fixture(scope="module", name="shop_database")
def shop_database_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A migrated database file with one merchant, made with the CLI; and its id."""
    database = tmp_path_factory.mktemp("sync") / "cli.db"
    assert rma(database, "db", "upgrade").returncode == 0
    created = rma(database, "merchant", "create", "--name", "Sync Traders")
    assert created.returncode == 0, created
    return database, created.last_line


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeShopify]:
    with FakeShopify(api_key="cli-app", api_secret="cli-app-secret") as server:
        yield server
        assert server.server_errors() == []


def test_rma_sync_reads_a_custom_app_shops_orders_with_progress(
    shop_database: tuple[Path, str], fake: FakeShopify
) -> None:
    database, merchant = shop_database
    shop = fake.add_shop("cli-shop.myshopify.com")
    for index in range(7):
        fake.create_order(shop, email=f"cli{index}@example.com")
    connected = rma(
        database,
        "connect",
        "shopify",
        "--merchant",
        merchant,
        "--shop",
        shop.domain,
        "--access-token",
        fake.issue_token(shop),
        "--webhook-secret",
        "custom-app-secret",
    )
    assert connected.returncode == 0, connected
    [(connection_id,)] = query(database, "SELECT id FROM connection WHERE account = ?", shop.domain)
    connection = str(uuid.UUID(str(connection_id)))  # SQLite keeps them as 32 hex digits

    synced = rma(database, "sync", "--connection", connection, RMA_SHOPIFY_API_BASE=fake.base_url)
    assert synced.returncode == 0, synced
    assert synced.last_line == "7 orders synced"
    assert query(database, 'SELECT count(*) FROM "order"') == [(7,)]
    again = rma(
        database, "sync", "--connection", connection, "--full", RMA_SHOPIFY_API_BASE=fake.base_url
    )
    assert again.returncode == 0, again
    assert query(database, 'SELECT count(*) FROM "order"') == [(7,)]


def test_rma_sync_refuses_an_unknown_connection_readably(
    shop_database: tuple[Path, str],
) -> None:
    database, _merchant = shop_database
    for connection in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        result = rma(database, "sync", "--connection", connection)
        assert result.returncode == 1
        assert len(result.error_lines) == 1, result
        assert "Traceback" not in result.stderr


def test_rma_connect_woocommerce_without_keys_prints_the_store_s_grant_link(
    shop_database: tuple[Path, str],
) -> None:
    database, merchant = shop_database
    started = rma(
        database,
        "connect",
        "woocommerce",
        "--merchant",
        merchant,
        "--store-url",
        "https://Store.Example.com/",
        RMA_PUBLIC_URL="https://rma.example.test",
    )
    assert started.returncode == 0, started
    assert started.last_line.startswith("https://store.example.com/wc-auth/v1/authorize?")
    assert "callback_url=https%3A%2F%2Frma.example.test%2Fwoocommerce%2Fcallback" in (
        started.last_line
    )
    assert query(database, "SELECT count(*) FROM pending_install") == [(1,)]

    half = rma(
        database,
        "connect",
        "woocommerce",
        "--merchant",
        merchant,
        "--store-url",
        "https://store.example.com",
        "--consumer-key",
        "ck_only",
    )
    assert half.returncode == 1 and "together" in half.stderr
    production = rma(
        database,
        "connect",
        "woocommerce",
        "--merchant",
        merchant,
        "--store-url",
        "http://store.example.com",
        RMA_ENV="production",
        RMA_SECRET_KEY="p" * 40,
        RMA_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    assert production.returncode == 1 and "https" in production.stderr
    assert query(database, "SELECT count(*) FROM pending_install") == [(1,)]
