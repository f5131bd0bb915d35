"""Configuration from ``RMA_``-prefixed environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "development-secret-key-change-me"  # noqa: S105 (refused in production)
# A valid Fernet key, public on purpose: it only protects development databases.
DEVELOPMENT_ENCRYPTION_KEY = "cm1hLWRldmVsb3BtZW50LWtleS1ub3Qtc2VjcmV0ISE="


class InsecureSettings(Exception):
    """Production was asked to start with a development or empty secret.

    Not a ``ValueError``: pydantic would wrap that in a ``ValidationError`` and hide this type.
    """


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RMA_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./rma.db"
    secret_key: str = DEVELOPMENT_SECRET_KEY
    # Comma-separated Fernet keys, newest first; older ones still decrypt during rotation.
    encryption_keys: str = DEVELOPMENT_ENCRYPTION_KEY
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # Seconds a SQLite connection waits for another process's write lock before giving up.
    sqlite_busy_timeout: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"
    # `rma serve` runs the job worker in-process unless this is off (`rma serve --no-worker`).
    run_worker: bool = True
    # Any Stripe-compatible server (a local fake in tests, a proxy): scheme and host, no /v1.
    stripe_api_base: str = "https://api.stripe.com"
    worker_concurrency: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if not self.secret_key.strip() or self.secret_key == DEVELOPMENT_SECRET_KEY:
            problems.append("RMA_SECRET_KEY")
        keys = [key.strip() for key in self.encryption_keys.split(",") if key.strip()]
        if not keys or DEVELOPMENT_ENCRYPTION_KEY in keys:
            problems.append("RMA_ENCRYPTION_KEYS")
        if len(self.secret_key) < 32 and "RMA_SECRET_KEY" not in problems:
            problems.append("RMA_SECRET_KEY (at least 32 characters)")
        if problems:
            raise InsecureSettings(
                "production refuses to start with development or empty secrets: "
                + ", ".join(problems)
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def async_database_url(self) -> str:
        """The URL with an async driver, whatever form the operator gave."""
        return async_url(self.database_url)


def async_url(url: str) -> str:
    """Name the async driver in a database URL (``postgresql://`` means asyncpg)."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url
