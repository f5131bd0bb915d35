"""Configuration from ``RMA_`` environment variables, and production's refusal of weak secrets."""

from __future__ import annotations

import base64
import os

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from core.settings import (
    DEVELOPMENT_ENCRYPTION_KEY,
    DEVELOPMENT_SECRET_KEY,
    InsecureSettings,
    Settings,
)

GOOD_SECRET = "s3cret-" + "x" * 33


def fresh_encryption_key() -> str:
    """Shaped like a Fernet key: 32 random bytes, url-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def no_rma_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the defaults, whatever RMA_ variables the shell has."""
    for name in list(os.environ):
        if name.startswith("RMA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Production with good secrets; tests weaken one of them."""
    monkeypatch.setenv("RMA_ENV", "production")
    monkeypatch.setenv("RMA_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("RMA_ENCRYPTION_KEYS", fresh_encryption_key())
    return monkeypatch


def refusal() -> str:
    """Load the settings, expecting production to refuse them; the refusal's message."""
    with pytest.raises(InsecureSettings) as raised:
        Settings()
    return str(raised.value)


def test_defaults_are_development_on_a_local_sqlite_file() -> None:
    settings = Settings()

    assert settings.env == "development"
    assert not settings.is_production
    url = sa.make_url(settings.database_url)
    assert url.get_backend_name() == "sqlite"
    assert url.database  # a file, not an in-memory database
    assert url.database != ":memory:"
    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
    assert settings.encryption_keys.get_secret_value() == DEVELOPMENT_ENCRYPTION_KEY


def test_development_accepts_the_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMA_ENV", "development")
    monkeypatch.setenv("RMA_SECRET_KEY", "")

    assert Settings().secret_key.get_secret_value() == ""


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMA_ENV", "staging")

    with pytest.raises(ValidationError, match="env"):
        Settings()


def test_production_with_default_secrets_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMA_ENV", "production")

    message = refusal()

    assert "RMA_SECRET_KEY" in message
    assert "RMA_ENCRYPTION_KEYS" in message


@pytest.mark.parametrize(
    ("secret", "named"),
    [
        pytest.param(DEVELOPMENT_SECRET_KEY, "RMA_SECRET_KEY", id="development secret"),
        pytest.param("", "RMA_SECRET_KEY", id="empty secret"),
        pytest.param(" " * 40, "RMA_SECRET_KEY", id="blank secret"),
        pytest.param("x" * 31, "RMA_SECRET_KEY (at least 32 characters)", id="short secret"),
    ],
)
def test_production_refuses_a_weak_secret_key(
    production: pytest.MonkeyPatch, secret: str, named: str
) -> None:
    production.setenv("RMA_SECRET_KEY", secret)

    message = refusal()

    assert named in message
    assert "RMA_ENCRYPTION_KEYS" not in message
    if secret.strip():
        assert secret not in message


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(DEVELOPMENT_ENCRYPTION_KEY, id="development key"),
        pytest.param(f"{fresh_encryption_key()},{DEVELOPMENT_ENCRYPTION_KEY}", id="rotating out"),
        pytest.param("", id="empty"),
        pytest.param(" , ", id="only separators"),
    ],
)
def test_production_refuses_weak_encryption_keys(production: pytest.MonkeyPatch, keys: str) -> None:
    production.setenv("RMA_ENCRYPTION_KEYS", keys)

    message = refusal()

    assert "RMA_ENCRYPTION_KEYS" in message
    assert "RMA_SECRET_KEY" not in message


def test_production_loads_with_good_secrets(production: pytest.MonkeyPatch) -> None:
    previous = fresh_encryption_key()
    production.setenv("RMA_ENCRYPTION_KEYS", f"{fresh_encryption_key()}, {previous}")

    settings = Settings()

    assert settings.is_production
    assert settings.secret_key.get_secret_value() == GOOD_SECRET


def test_production_accepts_a_secret_of_exactly_32_characters(
    production: pytest.MonkeyPatch,
) -> None:
    production.setenv("RMA_SECRET_KEY", "k" * 32)

    assert Settings().is_production


def test_production_refusal_is_an_insecure_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RMA_ENV", "production")

    with pytest.raises(InsecureSettings, match="RMA_SECRET_KEY"):
        Settings()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://rma:pw@db:5432/rma", "postgresql+asyncpg://rma:pw@db:5432/rma"),
        ("postgres://rma@db/rma", "postgresql+asyncpg://rma@db/rma"),
        ("postgresql+psycopg://rma@db/rma", "postgresql+asyncpg://rma@db/rma"),
        ("postgresql+asyncpg://rma@db/rma", "postgresql+asyncpg://rma@db/rma"),
        ("sqlite:///./rma.db", "sqlite+aiosqlite:///./rma.db"),
        ("sqlite:////var/lib/rma/rma.db", "sqlite+aiosqlite:////var/lib/rma/rma.db"),
        ("sqlite+aiosqlite:///./rma.db", "sqlite+aiosqlite:///./rma.db"),
    ],
)
def test_async_database_url_names_the_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    monkeypatch.setenv("RMA_DATABASE_URL", given)

    settings = Settings()

    assert settings.async_database_url == used
    assert settings.database_url == given
