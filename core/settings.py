"""Configuration from ``RMA_``-prefixed environment variables."""

from __future__ import annotations

import re
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "development-secret-key-change-me"  # noqa: S105 (refused in production)
# A valid Fernet key, public on purpose: it only protects development databases.
DEVELOPMENT_ENCRYPTION_KEY = "cm1hLWRldmVsb3BtZW50LWtleS1ub3Qtc2VjcmV0ISE="


class InsecureSettings(Exception):
    """Production was asked to start with a development or empty secret.

    Not a ``ValueError``: pydantic would wrap that in a ``ValidationError`` and hide this type.
    """


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error never repeats the value (it may be a secret).
    model_config = SettingsConfigDict(env_prefix="RMA_", extra="ignore", hide_input_in_errors=True)

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./rma.db"
    # Secrets are SecretStr so that no repr, validation error or traceback can show them.
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)
    # Comma-separated Fernet keys, newest first; older ones still decrypt during rotation.
    encryption_keys: SecretStr = SecretStr(DEVELOPMENT_ENCRYPTION_KEY)
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # Seconds a SQLite connection waits for another process's write lock before giving up.
    sqlite_busy_timeout: float = Field(default=30.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JSON lines for log collectors, or readable lines for a terminal; by default JSON only in
    # production.
    log_format: Literal["json", "console"] | None = None
    # `rma serve` runs the job worker in-process unless this is off (`rma serve --no-worker`).
    run_worker: bool = True
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    # The address platforms reach this service at: OAuth callbacks and webhook addresses.
    public_url: str = "http://127.0.0.1:8000"
    # Browser origins allowed to call /graphql (comma-separated, e.g. a customer portal's
    # https://returns.example.com); none by default.
    cors_origins: str = ""
    # Addresses (or networks) of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed, comma-separated; none by default.
    trusted_proxies: str = ""
    # The Bearer token a scraper sends to /metrics; required in production, where /metrics
    # is refused without it.
    metrics_token: SecretStr | None = None

    @property
    def cors_origin_list(self) -> list[str]:
        return [
            origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()
        ]

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for origin in (part.strip().rstrip("/") for part in value.split(",")):
            if origin and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin (scheme://host[:port], no path, no wildcard)"
                )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("encryption_keys")
    @classmethod
    def _keys_are_fernet_keys(cls, value: SecretStr) -> SecretStr:
        for position, key in enumerate(split_keys(value), start=1):
            try:
                Fernet(key)
            except ValueError:
                # Say which one, never what it is.
                raise ValueError(
                    f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes)"
                ) from None
        return value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        """Keys are required everywhere; production also refuses development or weak secrets."""
        if self.env != "production":
            if not split_keys(self.encryption_keys):
                raise ValueError("RMA_ENCRYPTION_KEYS needs at least one Fernet key")
            return self
        problems = []
        secret_key = self.secret_key.get_secret_value()
        if not secret_key.strip() or secret_key == DEVELOPMENT_SECRET_KEY:
            problems.append("RMA_SECRET_KEY")
        keys = split_keys(self.encryption_keys)
        if not keys or DEVELOPMENT_ENCRYPTION_KEY in keys:
            problems.append("RMA_ENCRYPTION_KEYS")
        if len(secret_key) < 32 and "RMA_SECRET_KEY" not in problems:
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
    def json_logs(self) -> bool:
        return self.log_format == "json" if self.log_format else self.is_production

    def known_secrets(self) -> list[str]:
        """Values that must never appear in a log line."""
        return [self.secret_key.get_secret_value(), *split_keys(self.encryption_keys)]

    @property
    def async_database_url(self) -> str:
        """The URL with an async driver, whatever form the operator gave."""
        return async_url(self.database_url)


def split_keys(keys: SecretStr | str) -> list[str]:
    """The Fernet keys of a comma-separated setting, newest first."""
    text = keys.get_secret_value() if isinstance(keys, SecretStr) else keys
    return [key.strip() for key in text.split(",") if key.strip()]


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
