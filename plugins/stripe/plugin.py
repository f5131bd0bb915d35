"""Registration of the Stripe plugin (entry point ``rma.plugins``: ``stripe``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import stripe
from sqlmodel import col, select

from core.database import Database
from core.entities import Connection
from core.enums import PaymentProviderName, Platform
from core.ports import PaymentProvider
from core.secrets import Vault
from core.usecases.connections import read_secrets
from plugins.stripe.provider import StripeProvider

DEFAULT_API_BASE = "https://api.stripe.com"


class FormBodyHTTPXClient(stripe.HTTPXClient):
    """stripe's httpx client, sending its already-encoded form body as ``content``.

    stripe passes the encoded string as ``data=``, which httpx deprecates for raw bodies.
    """

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")
        elif kwargs.get("data") == {}:
            kwargs.pop("data")
        return args, kwargs


@dataclass
class StripePlugin:
    """Builds a provider per merchant from its Stripe connection's sealed secret key."""

    name: str = "stripe"

    def payment_providers(
        self, vault: Vault, *, api_base: str = DEFAULT_API_BASE, timeout: float = 20.0
    ) -> dict[PaymentProviderName, Any]:
        async def for_merchant(
            database: Database, merchant_id: uuid.UUID
        ) -> PaymentProvider | None:
            async with database.read_session() as session:
                connection = (
                    await session.exec(
                        select(Connection)
                        .where(
                            Connection.merchant_id == merchant_id,
                            Connection.platform == Platform.STRIPE,
                            Connection.disabled_at == None,  # noqa: E711 (SQL IS NULL)
                        )
                        .order_by(col(Connection.created_at))
                    )
                ).first()
            if connection is None:
                return None
            secret_key = read_secrets(vault, connection).credentials.get("secret_key")
            if not secret_key:
                return None
            http = FormBodyHTTPXClient(timeout=timeout)
            client = stripe.StripeClient(
                secret_key,
                base_addresses={"api": api_base},
                max_network_retries=2,
                http_client=http,
            )
            return StripeProvider(client, http)

        return {PaymentProviderName.STRIPE: for_merchant}


plugin = StripePlugin()
