"""Connecting a store by WooCommerce's key grant (``/wc-auth/v1/authorize``).

The merchant approves on their store's page; the store then POSTs a new pair of REST keys to
``/woocommerce/callback`` and sends the merchant back to ``/woocommerce/return``. The grant
names the install only by the ``user_id`` we sent, so that is the single-use state: the
callback is accepted only for a connect request this service started, within the hour.

The callback must answer 200 quickly and must not call the store back (the store is waiting
on it, and deletes the keys if the callback fails): webhooks and the first sync run as jobs.
"""

from __future__ import annotations

import html
import ipaddress
import json
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from core.enums import Platform
from core.errors import DomainError, InvalidInput, NotConfigured
from core.plugins import RouteServices
from core.usecases.installs import InstallRefused, claim_install, complete_install
from plugins.woocommerce.settings import WooCommerceSettings
from plugins.woocommerce.webhooks import normalize_store_url

log = structlog.get_logger()

CALLBACK_PATH = "/woocommerce/callback"
RETURN_PATH = "/woocommerce/return"
APP_NAME = "RMA returns"
MAX_CALLBACK_BYTES = 16_384  # keys and ids: a few hundred bytes


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str, *, production: bool) -> bool:
    """HTTPS, or plain HTTP for a loopback host or outside production."""
    return urlsplit(url).scheme == "https" or is_loopback(url) or not production


class WooCommerceInstaller:
    """The core's ``AppInstaller`` for WooCommerce (``connectWooCommerce``)."""

    platform = Platform.WOOCOMMERCE

    def __init__(self, settings: WooCommerceSettings) -> None:
        self.settings = settings

    def configured(self) -> bool:
        return True  # the grant needs no app credentials: each store makes its own keys

    def normalize_account(self, account: str) -> str:
        store = normalize_store_url(account)
        if not require_https(store, production=self.settings.production):
            raise InvalidInput("storeUrl", "the store URL must use https://")
        return store

    def authorize_url(self, account: str, state: str, public_url: str) -> str:
        base = public_url.rstrip("/")
        if not require_https(base, production=self.settings.production):
            # WooCommerce posts keys only to an https callback.
            raise NotConfigured("RMA_PUBLIC_URL must use https:// to connect WooCommerce stores")
        query = urlencode(
            {
                "app_name": APP_NAME,
                "scope": "read_write",
                "user_id": state,
                "return_url": f"{base}{RETURN_PATH}",
                "callback_url": f"{base}{CALLBACK_PATH}",
            }
        )
        return f"{account}wc-auth/v1/authorize?{query}"


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _keys(body: bytes) -> tuple[str, str, str] | None:
    """``(state, consumer_key, consumer_secret)`` from the grant's JSON, or None."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    fields = [payload.get(name) for name in ("user_id", "consumer_key", "consumer_secret")]
    if not all(isinstance(value, str | int) and 0 < len(str(value)) <= 255 for value in fields):
        return None
    state, key, secret = (str(value) for value in fields)
    return state, key, secret


async def callback(request: Request, services: RouteServices) -> Response:
    """The store posts the keys its admin just approved: store them and start using them."""
    body = await request.body()
    if len(body) > MAX_CALLBACK_BYTES:
        return _refused(413, "the request is too large")
    keys = _keys(body)
    if keys is None:
        return _refused(400, "expected the key grant's JSON: user_id, consumer_key, ...")
    state, consumer_key, consumer_secret = keys
    try:
        permissions = json.loads(body).get("key_permissions")
    except (ValueError, AttributeError):
        permissions = None
    if permissions != "read_write":
        return _refused(400, "the keys must be read_write: refunds and webhooks are written")
    try:
        async with services.database.session() as session:
            claimed = await claim_install(
                session,
                platform=Platform.WOOCOMMERCE,
                account=None,
                state=state,
                now=services.clock.now(),
            )
    except InstallRefused as error:
        return _refused(403, error.message)
    if claimed.merchant_id is None:
        return _refused(403, "this connect request has no merchant; start it again")
    webhook_secret = secrets.token_urlsafe(32)
    try:
        async with services.database.session() as session:
            done = await complete_install(
                session,
                services.vault,
                platform=Platform.WOOCOMMERCE,
                account=claimed.account,
                merchant_id=claimed.merchant_id,
                credentials={
                    "consumer_key": consumer_key,
                    "consumer_secret": consumer_secret,
                    "webhook_secret": webhook_secret,
                },
                webhook_secret=webhook_secret,
                now=services.clock.now(),
            )
    except DomainError as error:
        return _refused(409, error.message)
    services.wake_worker()
    log.info("woocommerce store connected", connection_id=str(done.connection.id))
    return JSONResponse({"connected": True, "connection": str(done.connection.id)})


async def return_page(request: Request, services: RouteServices) -> Response:
    """Where the store sends the merchant afterwards, with ``success=1`` or ``0``."""
    if request.query_params.get("success") == "1":
        title, text = "Store connected", "Your orders are syncing now; see them in the service."
        status = 200
    else:
        title, text = "Connection refused", "The store did not grant access. Try again."
        status = 400
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(
        page,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
