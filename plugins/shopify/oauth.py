"""Installing the app: ``GET /shopify/install`` and ``GET /shopify/callback``.

ShopifyAPI does the parts it does well: the shop-domain check (``sanitize_shop_domain``), the
authorize URL (``create_permission_url``) and the callback's HMAC (``validate_params``: as
Shopify computes it, with a one-day replay window). The app's key and secret are set on a
subclass of ``shopify.Session`` made per call, never on the library's global class. What the
library does not check, this module does: the single-use ``state`` and the shop. The token
exchange is in ``tokens`` (the library cannot ask for expiring tokens).
"""

from __future__ import annotations

import html
from typing import Any

import shopify
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core.enums import Platform
from core.errors import InvalidInput
from core.plugins import RouteServices
from core.ports.commerce import PlatformRejected, PlatformUnavailable
from core.usecases.installs import InstallRefused, begin_install, claim_install, complete_install
from plugins.shopify.settings import SCOPES, ShopifySettings
from plugins.shopify.tokens import exchange_code
from plugins.shopify.webhooks import normalize_shop

log = structlog.get_logger()

CALLBACK_PATH = "/shopify/callback"


def _session_class(settings: ShopifySettings, secret: str) -> Any:
    return type("AppSession", (shopify.Session,), {"api_key": settings.api_key, "secret": secret})


class ShopifyInstaller:
    """The core's ``AppInstaller`` for Shopify (``connectShopify`` and ``/shopify/install``)."""

    platform = Platform.SHOPIFY

    def __init__(self, settings: ShopifySettings) -> None:
        self.settings = settings

    def configured(self) -> bool:
        return bool(self.settings.api_key and self.settings.app_secrets())

    def normalize_account(self, account: str) -> str:
        return normalize_shop(account)

    def authorize_url(self, account: str, state: str, public_url: str) -> str:
        session = _session_class(self.settings, self.settings.app_secrets()[0])(
            account, self.settings.api_version
        )
        url = str(
            session.create_permission_url(
                list(SCOPES), f"{public_url.rstrip('/')}{CALLBACK_PATH}", state=state
            )
        )
        # The library always names https://{shop}; a configured API base (a fake, a proxy)
        # takes its place with the same path.
        return url.replace(f"https://{account}", self.settings.base_for(account), 1)

    def callback_signed(self, params: dict[str, str]) -> bool:
        for secret in self.settings.app_secrets():
            try:
                if _session_class(self.settings, secret).validate_params(params):
                    return True
            except (ValueError, TypeError):
                return False  # a timestamp that is not a number
        return False


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>"
    )
    return HTMLResponse(
        document,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _refusal(status: int, message: str) -> HTMLResponse:
    return _page("Shopify install refused", f"<p>{html.escape(message)}</p>", status)


def install_route(installer: ShopifyInstaller):  # type: ignore[no-untyped-def]
    async def install(request: Request, services: RouteServices) -> Response:
        """A shop installs the app from Shopify's side: send it to approve the scopes."""
        if not installer.configured():
            return _refusal(503, "The Shopify app is not configured on this service.")
        params = dict(request.query_params)
        if "hmac" in params and not installer.callback_signed(params):
            # Shopify signs the launch of an app; a merchant typing the address sends none.
            return _refusal(401, "This link was not signed by Shopify, or it is too old.")
        try:
            shop = installer.normalize_account(params.get("shop", ""))
        except InvalidInput as error:
            return _refusal(400, error.message)
        try:
            async with services.database.session() as session:
                state = await begin_install(
                    session,
                    platform=Platform.SHOPIFY,
                    account=shop,
                    merchant_id=None,
                    now=services.clock.now(),
                )
        except InstallRefused as error:
            return _refusal(429, error.message)
        return RedirectResponse(
            installer.authorize_url(shop, state, services.settings.public_url), status_code=302
        )

    return install


def callback_route(installer: ShopifyInstaller):  # type: ignore[no-untyped-def]
    async def callback(request: Request, services: RouteServices) -> Response:
        """Shopify sends the merchant back with a code: check everything, then connect."""
        if not installer.configured():
            return _refusal(503, "The Shopify app is not configured on this service.")
        params = dict(request.query_params)
        if not installer.callback_signed(params):
            return _refusal(401, "This link was not signed by Shopify, or it is too old.")
        try:
            shop = installer.normalize_account(params.get("shop", ""))
        except InvalidInput as error:
            return _refusal(400, error.message)
        code = params.get("code", "")
        if not code or len(code) > 255:
            return _refusal(400, "The link carries no authorization code.")
        now = services.clock.now()
        try:
            async with services.database.session() as session:
                claimed = await claim_install(
                    session,
                    platform=Platform.SHOPIFY,
                    account=shop,
                    state=params.get("state", ""),
                    now=now,
                )
        except InstallRefused as error:
            return _refusal(403, error.message)
        try:
            credentials = await exchange_code(installer.settings, shop, code, now)
        except PlatformRejected as error:
            return _refusal(400, str(error))
        except PlatformUnavailable as error:
            return _refusal(502, f"{error}. Install again in a moment.")
        async with services.database.session() as session:
            done = await complete_install(
                session,
                services.vault,
                platform=Platform.SHOPIFY,
                account=shop,
                merchant_id=claimed.merchant_id,
                credentials=credentials,
                now=services.clock.now(),
            )
        services.wake_worker()
        log.info("shopify app installed", merchant_id=str(done.merchant_id))
        details = (
            f"<p>Merchant id: <code>{done.merchant_id}</code></p>"
            f"<p>Connection id: <code>{done.connection.id}</code></p>"
        )
        if done.admin_api_key is not None:
            details += (
                "<p>Your ADMIN API key, shown only this once; keep it safe:</p>"
                f"<p><code>{html.escape(done.admin_api_key)}</code></p>"
            )
        details += "<p>Your orders are syncing now.</p>"
        return _page(f"{shop} is connected", details)

    return callback
