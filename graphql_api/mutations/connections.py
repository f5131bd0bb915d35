"""Root mutations: connecting platforms, syncing them, their settings (ADMIN only)."""

from __future__ import annotations

import strawberry

from core import entities
from core.enums import Platform
from core.errors import DomainError, InvalidInput, NotConfigured
from core.usecases.connections import update_connection_settings
from core.usecases.installs import begin_install
from core.usecases.owned_rows import get_owned
from core.usecases.platform_sync import request_sync
from graphql_api.context import Info
from graphql_api.errors import UserError, user_error
from graphql_api.ids import expect_id
from graphql_api.mutations.running import run_use_case
from graphql_api.permissions import Admin
from graphql_api.types.connections import (
    Connection,
    ConnectionPayload,
    ConnectionSettingInput,
    ConnectShopifyPayload,
    ConnectWooCommercePayload,
)


def settings_defaults(info: Info, platform: Platform) -> dict[str, object]:
    factory = info.context.registry.commerce_platforms.get(platform)
    return dict(factory.settings_defaults) if factory else {}


@strawberry.type
class ConnectionMutations:
    @strawberry.mutation(
        permission_classes=[Admin],
        description="The link where the merchant approves the Shopify app for this shop.",
    )
    async def connect_shopify(self, info: Info, shop: str) -> ConnectShopifyPayload:
        url, errors = await _start_install(info, Platform.SHOPIFY, "shop", shop)
        return ConnectShopifyPayload(install_url=url, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[Admin],
        description="The store's page where its admin grants this service REST API keys "
        "(read_write); the store then sends the keys back and the first sync starts.",
    )
    async def connect_woo_commerce(self, info: Info, store_url: str) -> ConnectWooCommercePayload:
        url, errors = await _start_install(info, Platform.WOOCOMMERCE, "storeUrl", store_url)
        return ConnectWooCommercePayload(authorize_url=url, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[Admin],
        description="Read the connection's orders again: what changed since the last sync, "
        "or all of them with full: true. A sync already queued or running is not doubled.",
    )
    async def sync_connection(
        self, info: Info, id: strawberry.ID, full: bool = False
    ) -> ConnectionPayload:
        try:
            connection_id = expect_id(id, "Connection")
            row = await run_use_case(
                info,
                lambda session: request_sync(
                    session,
                    connection_id,
                    merchant_id=info.context.merchant_id,
                    full=full,
                    now=info.context.clock.now(),
                ),
            )
        except DomainError as error:
            return ConnectionPayload(connection=None, user_errors=[user_error(error)])
        defaults = settings_defaults(info, row.platform)
        return ConnectionPayload(connection=Connection.from_row(row, defaults), user_errors=[])

    @strawberry.mutation(
        permission_classes=[Admin],
        description="Change some settings of a connection (the names its platform documents, "
        "e.g. restock_location_id for Shopify); an empty value restores the default.",
    )
    async def update_connection_settings(
        self, info: Info, id: strawberry.ID, settings: list[ConnectionSettingInput]
    ) -> ConnectionPayload:
        try:
            connection_id = expect_id(id, "Connection")
            if len(settings) > 20:
                raise InvalidInput("settings", "at most 20 settings at a time")
            changes = {setting.name: setting.value for setting in settings}
            async with info.context.database.read_session() as session:
                current = await get_owned(
                    session, entities.Connection, info.context.merchant_id, connection_id
                )
            defaults = settings_defaults(info, current.platform)
            factory = info.context.registry.commerce_platforms.get(current.platform)
            row = await run_use_case(
                info,
                lambda session: update_connection_settings(
                    session,
                    info.context.merchant_id,
                    connection_id,
                    changes,
                    allowed=defaults,
                    choices=factory.settings_choices if factory else None,
                ),
            )
        except DomainError as error:
            return ConnectionPayload(connection=None, user_errors=[user_error(error)])
        return ConnectionPayload(connection=Connection.from_row(row, defaults), user_errors=[])


_NAMES = {Platform.SHOPIFY: "Shopify", Platform.WOOCOMMERCE: "WooCommerce"}


async def _start_install(
    info: Info, platform: Platform, field: str, value: str
) -> tuple[str | None, list[UserError]]:
    """A single-use install of ``platform`` for the caller's merchant: the platform's page
    to approve it on, or why not."""
    installer = info.context.registry.installers.get(platform)
    try:
        if installer is None or not installer.configured():
            raise NotConfigured(f"the {_NAMES[platform]} app is not configured on this service")
        if len(value) > 255:
            raise InvalidInput(field, f"a {field} has at most 255 characters")
        account = installer.normalize_account(value)
        # Checked before anything is stored: a link that cannot work is not handed out.
        installer.authorize_url(account, "check", info.context.settings.public_url)
        state = await run_use_case(
            info,
            lambda session: begin_install(
                session,
                platform=platform,
                account=account,
                merchant_id=info.context.merchant_id,
                now=info.context.clock.now(),
            ),
        )
        return installer.authorize_url(account, state, info.context.settings.public_url), []
    except DomainError as error:
        return None, [user_error(error)]
