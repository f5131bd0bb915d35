"""A fake WooCommerce store (REST API v3, key grant, webhooks) on 127.0.0.1, for tests.

One fake is one store; its address (``base_url``) is the store URL, so the real ``woocommerce``
package (3.0.0) talks to it unchanged::

    with FakeWooCommerce() as fake:
        ck, cs = fake.add_keys()
        order_id = fake.create_order(email="ann@example.com", lines=[{"sku": "MUG", "price": "9"}])
        api = woocommerce.API(url=fake.base_url, consumer_key=ck, consumer_secret=cs,
                              version="wc/v3", timeout=5)
        assert api.get(f"orders/{order_id}").json()["billing"]["email"] == "ann@example.com"
        assert fake.server_errors() == []

What it implements, and how closely it follows WooCommerce (facts: platforms.md §2):

* Authentication as ``WC_REST_Authentication``: OAuth 1.0a in the query string (what the
  package sends over http), signed HMAC-SHA256 or HMAC-SHA1 with ``consumer_secret + "&"`` over
  ``METHOD&urlencode(store url + path)&urlencode(sorted normalized params)``, normalized as the
  package does it. Query params are read as PHP does (a repeated name keeps its last value, but
  list params read every value of a repeated ``name[]``), so the package's duplicated params
  pass. Timestamps more than 15 minutes off the fake's clock are
  ``Invalid timestamp.``; a reused nonce is ``Invalid nonce``. HTTP Basic and
  ``consumer_key``/``consumer_secret`` query params are also accepted (as over https). Unknown
  or revoked key: ``Consumer key is invalid.``; bad signature: ``Invalid signature - provided
  signature does not match.`` (both 401 ``woocommerce_rest_authentication_error``). A ``read``
  key cannot write and a ``write`` key cannot read (401, WooCommerce's messages).
* ``GET /wp-json/wc/v3/orders``: ``page``, ``per_page`` (1..100, default 10), ``offset``,
  ``after``/``before`` (created) and ``modified_after``/``modified_before`` (ISO-8601; without an
  offset they are site time, or GMT with ``dates_are_gmt``; the bounds are exclusive),
  ``status`` (``any``, the default, hides ``trash``; a comma list or ``status[]``), ``include``,
  ``parent`` and ``parent_exclude`` (order ids as a comma list, ``parent[]`` or ``parent[0]``...;
  ``0`` means no parent; anything but ids is 400 ``rest_invalid_param``), ``search`` (email),
  ``order`` and ``orderby`` (``date``, ``id``, ``modified``). Every list has
  ``X-WP-Total``, ``X-WP-TotalPages`` and a ``Link`` header with ``prev``/``next`` (as WordPress;
  no ``last``). A page past the end is an empty list. ``GET``/``PUT /orders/<id>`` (``PUT``:
  ``status``, ``transaction_id``, ``customer_note``, ``meta_data``).
* ``POST /orders`` (a write key) as the v3 controller: ``status`` (default ``pending``),
  ``currency`` (default ``USD``), ``parent_id`` (not an order: 400 ``order_invalid_parent_id``
  ``Invalid parent ID``), ``customer_id``, ``customer_note``, ``billing``, ``shipping``,
  ``payment_method(_title)``, ``transaction_id``, ``meta_data``, ``line_items``,
  ``shipping_lines`` (``method_id`` required), ``fee_lines`` (``name`` required; ``total`` may be
  negative, capped so the order total stays >= 0) and ``set_paid`` (``payment_complete``: paid
  now, then ``processing``, or ``completed`` when no line has a product). A line's product is
  found by ``sku``, else ``product_id``, else ``variation_id`` (neither: 400
  ``woocommerce_rest_required_product_reference``); without ``total``/``subtotal`` both are the
  product's price x quantity. A product the store lacks is no error, as in WooCommerce: the
  line has ``product_id`` 0, ``sku`` null and 0.00 unless totals are posted. Totals are
  ``calculate_totals``'s (no taxes: ``total_tax`` 0.00). Schema problems (unknown status, a
  money value that is not a numeric string, quantity < 1: stricter than WooCommerce, which drops
  a line of 0 and reads ``"abc"`` as 0) are one 400 ``rest_invalid_param`` naming each param.
  Answers 201 with the order and ``Location``; ``created_via`` is ``rest-api``; queues
  ``order.created``. No stock is taken, and ``coupon_lines`` are refused (400).
* Orders are the sample's shape (platforms.md §2.9): money as strings, each ``date_*`` in site
  time and ``date_*_gmt``, whole seconds, ``parent_id`` (0 when none; ``_links.up`` otherwise),
  a line's ``price`` is its total per unit. The site timezone defaults to UTC+2 so that code
  mixing the two shows up. Taxes use one rate (id 1) when a line has tax.
* Refunds (``POST``/``GET /orders/<id>/refunds``, ``GET .../refunds/<id>``) as the v3
  controller: ``api_refund`` is true unless it is a JSON bool; ``api_restock`` defaults to true
  and raises the stock of the refunded quantities; ``amount`` wins over the line totals, and
  without it the amount is the sum of ``refund_total`` + ``refund_tax``; negative: 400
  ``woocommerce_rest_invalid_order_refund``; above what remains: 500
  ``woocommerce_rest_cannot_create_order_refund`` (``Invalid refund amount.``). With
  ``api_refund`` the "gateway" is called and recorded (``gateway_refunds()``); ``fail_gateway``
  makes it fail, and then the refund is deleted and the 500 carries the gateway's message. A
  full refund sets the order ``refunded``. No idempotency: each POST is a refund.
* ``GET /products`` (``include``, paged) and ``GET /products/<id>`` (categories, tags,
  stock); ``POST``/``GET /coupons`` (``code``,
  ``search``), ``GET /coupons/<id>``; codes are lower-cased and unique.
* Webhooks: ``GET``/``POST /webhooks``, ``GET``/``PUT``/``POST``/``DELETE /webhooks/<id>``
  (``force=true`` needed, as WooCommerce cannot trash webhooks). Creating or activating one
  records a ping (``pings()``: form body ``webhook_id=<id>``, no signature). Order events queue
  a delivery per active webhook of the topic (``order.created``, ``order.updated`` (also after
  a refund), ``order.deleted`` (trash; body ``{"id": n}``), ``order.restored``). As with Action
  Scheduler, a webhook is not queued again for an order it already has pending, and the body is
  built when the delivery runs (``pending_webhooks()`` builds without running;
  ``deliver_pending`` runs them). Bodies are ``wp_json_encode``-like (compact, ``\\/``,
  ``\\uXXXX``); headers are WooCommerce's, the signature keyed by ``html.unescape(secret)``.
  A delivery succeeds below 303; more than 5 consecutive failures disable the webhook.
* Key grant: ``GET /wc-auth/v1/authorize`` checks the five params (401 HTML page
  ``Error: ...`` as ``wp_die``); ``approve_connect`` plays the admin and returns the callback
  URL and the JSON payload to POST to it; ``connect_return_url``/``deny_connect`` give the
  ``return_url`` with ``success=1``/``0``.
* Faults (``inject``): ``500`` (WordPress's critical-error JSON), ``502`` (HTML),
  ``timeout`` (held, not executed), ``drop`` (closed unanswered, not executed),
  ``drop_after_execute``. ``requests()`` logs every request; ``server_errors()`` every
  exception inside the fake (a test should assert it is empty).

Not implemented: customers (any ``customer_id`` >= 0 is taken), variations, product writes,
batch endpoints, ``wp_safe_remote_request``'s refusal of loopback delivery URLs, and the key
grant's deletion of keys whose callback did not answer 200 (call ``revoke_keys``). The control
API is thread-safe and returns copies; ``orders()``/``order(id)`` show REST-created orders too.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import fnmatch
import hashlib
import hmac
import html
import itertools
import json
import math
import re
import secrets
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import httpx

from core.clock import SYSTEM_CLOCK, Clock
from testkit.fakes.http_server import FakeHandler, FakeServer, Outcome, Response, ServerErrors

JSON = dict[str, Any]

API_PREFIX = "/wp-json/wc/v3/"
AUTHORIZE_PATH = "/wc-auth/v1/authorize"
FAULT_KINDS = ("500", "502", "timeout", "drop", "drop_after_execute")
ORDER_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")
ORDER_STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "trash",
)
OAUTH_WINDOW = timedelta(minutes=15)
MAX_DELIVERY_FAILURES = 5
DEFAULT_TIMEZONE = timezone(timedelta(hours=2))
WC_VERSION = "9.1.0"
_CENT = Decimal("0.01")
_LOGGED_HEADERS = {"content-type", "user-agent", "accept", "authorization"}

_ids = itertools.count(1000)


def _next_id() -> int:
    return next(_ids)


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FakeWooWebhook:
    """One webhook delivery (or ping) the store made or would make: raw body and its headers."""

    topic: str
    """``order.updated`` etc.; ``""`` for a ping."""
    body: bytes
    headers: dict[str, str]
    webhook_id: int
    delivery_url: str
    resource_id: int | None = None

    @property
    def is_ping(self) -> bool:
        return self.topic == ""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WooRequest:
    """One HTTP request the fake received, whatever became of it."""

    method: str
    path: str
    query: dict[str, str]
    """Query params as PHP reads them (last value of a repeated name), without OAuth ones."""
    headers: dict[str, str]
    body: bytes
    consumer_key: str | None = None
    status: int | None = None
    fault: str | None = None
    delivered: bool = False
    """False when no response was written (timeout, drop, drop_after_execute)."""
    executed: bool = False
    at: float = 0.0


@dataclass
class WooFault:
    """A queued fault; returned by ``FakeWooCommerce.inject`` (``hits`` counts how often)."""

    kind: str
    endpoint: str | None
    method: str | None
    times: int | None
    delay: float
    hits: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else self.times - self.hits

    def matches(self, method: str, route: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.endpoint is None or fnmatch.fnmatchcase(route, self.endpoint)


@dataclass(frozen=True)
class GatewayRefund:
    """A refund the order's payment gateway was asked for (``api_refund``)."""

    order_id: int
    refund_id: int
    amount: str
    reason: str
    payment_method: str
    transaction_id: str
    ok: bool
    message: str | None = None


def sign_woo_webhook(body: bytes, secret: str) -> str:
    """``X-WC-Webhook-Signature``: base64 HMAC-SHA256 of the body, keyed by the decoded secret."""
    key = html.unescape(secret).encode()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def wp_json_encode(payload: Any) -> bytes:
    """JSON as ``wp_json_encode``: compact, ``/`` escaped as ``\\/``, non-ASCII as ``\\uXXXX``."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def oauth_signature(
    method: str,
    url: str,
    params: Mapping[str, Any],
    consumer_secret: str,
    algorithm: str = "sha256",
) -> str:
    """The OAuth 1.0a signature as the ``woocommerce`` package computes (and WooCommerce checks).

    ``url`` is without its query; ``params`` exclude ``oauth_signature``.
    """
    normalized = [(_oauth_quote(k), _oauth_quote(_php_value(v))) for k, v in _oauth_sorted(params)]
    query = "%26".join(f"{k}%3D{v}" for k, v in normalized)
    base = f"{method.upper()}&{quote(url, '')}&{query}"
    digest = hmac.new(f"{consumer_secret}&".encode(), base.encode(), algorithm).digest()
    return base64.b64encode(digest).decode()


def _oauth_sorted(params: Mapping[str, Any]) -> list[tuple[str, Any]]:
    bases = sorted({k.split("[")[0] for k in params})
    return [
        (k, v) for base in bases for k, v in params.items() if k == base or k.startswith(base + "[")
    ]


def _oauth_quote(text: str) -> str:
    return quote(unquote(str(text))).replace("%", "%25")


def _php_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        return str(int(value)) if value % 1 == 0 else str(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount


def _fmt(amount: Decimal) -> str:
    return str(amount.quantize(_CENT))


def _number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class _WooError(Exception):
    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data

    def payload(self) -> JSON:
        return {
            "code": self.code,
            "message": self.message,
            "data": {"status": self.status, **self.data},
        }


@dataclass
class _Keys:
    key_id: int
    consumer_key: str
    consumer_secret: str
    permissions: str
    description: str
    revoked: bool = False
    nonces: dict[str, datetime] = field(default_factory=dict)


@dataclass
class _Product:
    id: int
    name: str
    sku: str
    price: Decimal
    categories: list[int]
    tags: list[int]
    manage_stock: bool
    stock_quantity: int | None


@dataclass
class _Line:
    id: int
    name: str
    product_id: int
    variation_id: int
    quantity: int
    sku: str | None
    """``None`` (JSON ``null``) when the line has no product, as WooCommerce shows it."""
    subtotal: Decimal
    total: Decimal
    tax: Decimal
    subtotal_tax: Decimal


@dataclass
class _ShippingLine:
    id: int
    method_id: str
    method_title: str
    total: Decimal
    tax: Decimal = Decimal(0)


@dataclass
class _Fee:
    id: int
    name: str
    total: Decimal
    """Negative for a discount or credit."""


@dataclass
class _Refund:
    id: int
    created: datetime
    amount: Decimal
    reason: str
    refunded_payment: bool
    meta: list[JSON]
    lines: list[JSON]


@dataclass
class _Order:
    id: int
    order_key: str
    status: str
    currency: str
    created: datetime
    modified: datetime
    paid: datetime | None
    completed: datetime | None
    billing: JSON
    shipping: JSON
    payment_method: str
    payment_method_title: str
    transaction_id: str
    customer_note: str
    meta: list[JSON]
    lines: list[_Line]
    shipping_lines: list[_ShippingLine]
    tax_line_id: int
    fees: list[_Fee] = field(default_factory=list)
    parent_id: int = 0
    customer_id: int = 0
    created_via: str = "checkout"
    refunds: list[_Refund] = field(default_factory=list)
    status_before_trash: str = "pending"

    @property
    def cart_tax(self) -> Decimal:
        return sum((line.tax for line in self.lines), Decimal(0))

    @property
    def shipping_total(self) -> Decimal:
        return sum((s.total for s in self.shipping_lines), Decimal(0))

    @property
    def shipping_tax(self) -> Decimal:
        return sum((s.tax for s in self.shipping_lines), Decimal(0))

    @property
    def fee_total(self) -> Decimal:
        return sum((fee.total for fee in self.fees), Decimal(0))

    @property
    def total(self) -> Decimal:
        lines = sum((line.total for line in self.lines), Decimal(0))
        shipping = self.shipping_total + self.shipping_tax
        return lines + self.cart_tax + self.fee_total + shipping

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), Decimal(0))


@dataclass
class _Coupon:
    id: int
    code: str
    amount: Decimal
    discount_type: str
    description: str
    usage_limit: int | None
    usage_limit_per_user: int | None
    email_restrictions: list[str]
    individual_use: bool
    free_shipping: bool
    date_expires: datetime | None
    meta: list[JSON]
    created: datetime
    modified: datetime
    usage_count: int = 0
    used_by: list[str] = field(default_factory=list)


@dataclass
class _Webhook:
    id: int
    name: str
    status: str
    topic: str
    delivery_url: str
    secret: str
    created: datetime
    modified: datetime
    failure_count: int = 0


@dataclass
class _Pending:
    webhook_id: int
    order_id: int
    queued_at: datetime


GatewayHook = Callable[[GatewayRefund], None]
UrlTarget = Mapping[str, str] | Callable[[FakeWooWebhook], str | None] | None

_STATUS_TITLES = {"stripe": "Credit Card (Stripe)", "paypal": "PayPal", "cod": "Cash on delivery"}
_ADDRESS = {
    "first_name": "",
    "last_name": "",
    "company": "",
    "address_1": "",
    "address_2": "",
    "city": "",
    "state": "",
    "postcode": "",
    "country": "",
}


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class FakeWooCommerce:
    """A fake WooCommerce store. Use as a context manager or call ``start()``/``stop()``."""

    sign_webhook = staticmethod(sign_woo_webhook)

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        site_timezone: tzinfo = DEFAULT_TIMEZONE,
        allow_http_callback: bool = False,
        timeout_hold: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        latency: float = 0.0,
    ) -> None:
        self._lock = threading.RLock()
        # Seconds every REST answer takes besides the work, like a PHP store booting WordPress
        # for each request (a real store answers a page of orders in a fraction of a second to
        # a few seconds); 0 answers as fast as the fake can.
        self.latency = latency
        # HTTPS with this server context (see ``testkit.tls``): the package then sends Basic
        # auth instead of OAuth 1.0a, as against a real store over https.
        self._tls = tls
        self._host, self._port = host, port
        self._server: FakeServer | None = None
        self._stopping = threading.Event()
        self._clock = clock
        self._offset = timedelta(0)
        self.site_timezone = site_timezone
        """Site time for ``date_*`` fields and date params without ``dates_are_gmt``."""
        self.allow_http_callback = allow_http_callback
        self.timeout_hold = timeout_hold
        """Longest a ``"timeout"`` fault holds a request when the client never hangs up."""
        self._salt = secrets.token_bytes(16)
        self._keys: dict[str, _Keys] = {}
        self._products: dict[int, _Product] = {}
        self._products_by_sku: dict[str, int] = {}
        self._terms: dict[tuple[str, str], int] = {}
        self._term_names: dict[int, str] = {}
        self._orders: dict[int, _Order] = {}
        self._coupons: dict[int, _Coupon] = {}
        self._webhooks: dict[int, _Webhook] = {}
        self._pending: list[_Pending] = []
        self._sent: list[FakeWooWebhook] = []
        self._pings: list[FakeWooWebhook] = []
        self._gateway_refunds: list[GatewayRefund] = []
        self._gateway_failures: list[str] = []
        self._gateway_failure_sticky: str | None = None
        self._requests: list[WooRequest] = []
        self._faults: list[WooFault] = []
        self._server_errors = ServerErrors()
        self._grants: dict[str, JSON] = {}

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeWooCommerce:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = FakeServer(
            self._host,
            self._port,
            _Handler,
            respond=self._handle,
            errors=self._server_errors,
            stopping=self._stopping,
            name="fake-woocommerce",
            tls=self._tls,
        )
        self._server.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.stop()
        self._server = None

    def __enter__(self) -> FakeWooCommerce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeWooCommerce is not running; call start() first")
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` with ``tls``): the store URL
        (``X-WC-Webhook-Source`` adds ``/``)."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self._host}:{self.port}"

    def authorize_url(
        self,
        *,
        app_name: str,
        scope: str,
        user_id: str,
        return_url: str,
        callback_url: str,
    ) -> str:
        """The ``/wc-auth/v1/authorize`` address a service would send the merchant to."""
        query = urlencode(
            {
                "app_name": app_name,
                "scope": scope,
                "user_id": user_id,
                "return_url": return_url,
                "callback_url": callback_url,
            }
        )
        return f"{self.base_url}{AUTHORIZE_PATH}?{query}"

    # ---- clock -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The store's clock (UTC, whole seconds): the clock plus ``advance_time`` offsets."""
        with self._lock:
            return (self._clock.now().astimezone(UTC) + self._offset).replace(microsecond=0)

    def advance_time(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def set_clock_offset(self, seconds: float) -> None:
        """Put the store's clock ``seconds`` away from the real clock (e.g. a skewed server)."""
        with self._lock:
            self._offset = timedelta(seconds=seconds)

    def _local(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self.site_timezone).strftime("%Y-%m-%dT%H:%M:%S")

    @staticmethod
    def _gmt(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    # ---- keys --------------------------------------------------------------------------------

    def add_keys(
        self, permissions: str = "read_write", *, description: str = "fake"
    ) -> tuple[str, str]:
        """Create REST API keys; returns ``(consumer_key, consumer_secret)``."""
        if permissions not in ("read", "write", "read_write"):
            raise ValueError("permissions must be read, write or read_write")
        with self._lock:
            keys = _Keys(
                _next_id(),
                f"ck_{secrets.token_hex(20)}",
                f"cs_{secrets.token_hex(20)}",
                permissions,
                description,
            )
            self._keys[keys.consumer_key] = keys
            return keys.consumer_key, keys.consumer_secret

    def revoke_keys(self, consumer_key: str) -> None:
        with self._lock:
            self._keys[consumer_key].revoked = True

    # ---- products ----------------------------------------------------------------------------

    def add_product(
        self,
        *,
        name: str,
        sku: str = "",
        price: str = "10.00",
        categories: Iterable[str] = (),
        tags: Iterable[str] = (),
        manage_stock: bool = True,
        stock_quantity: int | None = 10,
    ) -> int:
        with self._lock:
            return self._add_product(
                name, sku, _money(price), categories, tags, manage_stock, stock_quantity
            )

    def _add_product(
        self,
        name: str,
        sku: str,
        price: Decimal,
        categories: Iterable[str],
        tags: Iterable[str],
        manage_stock: bool,
        stock_quantity: int | None,
    ) -> int:
        product = _Product(
            _next_id(),
            name,
            sku,
            price,
            [self._term("product_cat", c) for c in categories],
            [self._term("product_tag", t) for t in tags],
            manage_stock,
            stock_quantity if manage_stock else None,
        )
        self._products[product.id] = product
        if sku:
            self._products_by_sku[sku] = product.id
        return product.id

    def _term(self, taxonomy: str, name: str) -> int:
        key = (taxonomy, name)
        if key not in self._terms:
            self._terms[key] = _next_id()
            self._term_names[self._terms[key]] = name
        return self._terms[key]

    def product(self, product_id: int) -> JSON:
        with self._lock:
            return self._product_json(self._product(product_id))

    def stock_quantity(self, product_id: int) -> int | None:
        with self._lock:
            return self._product(product_id).stock_quantity

    def set_stock(self, product_id: int, quantity: int | None) -> None:
        with self._lock:
            product = self._product(product_id)
            product.manage_stock = quantity is not None
            product.stock_quantity = quantity

    def _product(self, product_id: int) -> _Product:
        if product_id not in self._products:
            raise KeyError(f"no product {product_id}")
        return self._products[product_id]

    # ---- orders ------------------------------------------------------------------------------

    def create_order(
        self,
        *,
        email: str,
        lines: Sequence[Mapping[str, Any]] | None = None,
        shipping: str = "5.00",
        shipping_tax: str = "0.00",
        currency: str = "USD",
        payment_method: str = "stripe",
        payment_method_title: str | None = None,
        transaction_id: str | None = None,
        meta: Sequence[Mapping[str, Any]] = (),
        status: str = "processing",
        created_at: datetime | None = None,
        billing: Mapping[str, Any] | None = None,
    ) -> int:
        """Create an order (and ``order.created``); returns its id.

        Each line: ``sku``, ``name``, ``quantity`` (1), ``price`` ("10.00"), ``subtotal``/``total``
        (default price x quantity), ``tax`` ("0.00"), ``categories``/``tags`` (names), ``stock``
        (10) or an existing ``product_id``. Lines with the same SKU share a product.
        """
        with self._lock:
            order = self._new_order(
                email=email,
                lines=lines,
                shipping=shipping,
                shipping_tax=shipping_tax,
                currency=currency,
                payment_method=payment_method,
                payment_method_title=payment_method_title,
                transaction_id=transaction_id,
                meta=meta,
                status=status,
                created_at=created_at,
                billing=billing,
            )
            self._event(order, "order.created")
            return order.id

    def create_orders_bulk(
        self,
        n: int,
        *,
        created_at: datetime | None = None,
        step_seconds: float = 1.0,
        **defaults: Any,
    ) -> list[int]:
        """``n`` orders (``defaults`` as ``create_order``; ``email`` defaults per order), created
        ``step_seconds`` apart, the last at ``created_at`` (default now). Returns their ids.
        """
        with self._lock:
            end = created_at or self.now()
            ids = []
            for i in range(n):
                at = end - timedelta(seconds=step_seconds * (n - 1 - i))
                args = {"email": f"customer{i}@example.com", **defaults, "created_at": at}
                ids.append(self.create_order(**args))
            return ids

    def _new_order(
        self,
        *,
        email: str,
        lines: Sequence[Mapping[str, Any]] | None,
        shipping: str,
        shipping_tax: str,
        currency: str,
        payment_method: str,
        payment_method_title: str | None,
        transaction_id: str | None,
        meta: Sequence[Mapping[str, Any]],
        status: str,
        created_at: datetime | None,
        billing: Mapping[str, Any] | None,
    ) -> _Order:
        if status not in ORDER_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        created = self._moment(created_at)
        order_lines = [self._new_line(spec) for spec in (lines or [{"sku": "SKU-1"}])]
        address = {**_ADDRESS, "first_name": "Test", "last_name": "Customer", "country": "US"}
        paid = created if status in ("processing", "completed", "on-hold", "refunded") else None
        if transaction_id is None and payment_method == "stripe":
            transaction_id = f"ch_{secrets.token_hex(12)}"
        order = _Order(
            id=_next_id(),
            order_key=f"wc_order_{secrets.token_hex(6)}",
            status=status,
            currency=currency,
            created=created,
            modified=created,
            paid=paid,
            completed=created if status == "completed" else None,
            billing={**address, "email": email, "phone": "", **(billing or {})},
            shipping=dict(address),
            payment_method=payment_method,
            payment_method_title=payment_method_title
            or _STATUS_TITLES.get(payment_method, payment_method),
            transaction_id=transaction_id or "",
            customer_note="",
            meta=[{"id": _next_id(), "key": m["key"], "value": m["value"]} for m in meta],
            lines=order_lines,
            shipping_lines=[],
            tax_line_id=0,
        )
        shipping_line = _ShippingLine(
            _next_id(), "flat_rate", "Flat Rate", _money(shipping), _money(shipping_tax)
        )
        order.shipping_lines.append(shipping_line)
        order.tax_line_id = shipping_line.id + 1
        self._orders[order.id] = order
        return order

    def _moment(self, at: datetime | None) -> datetime:
        if at is None:
            return self.now()
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(UTC).replace(microsecond=0)

    def _new_line(self, spec: Mapping[str, Any]) -> _Line:
        quantity = int(spec.get("quantity", 1))
        price = _money(spec.get("price", "10.00"))
        sku = str(spec.get("sku", ""))
        name = str(spec.get("name") or sku or "Product")
        product_id = spec.get("product_id")
        if product_id is None:
            product_id = self._products_by_sku.get(sku) if sku else None
        if product_id is None:
            product_id = self._add_product(
                name,
                sku,
                price,
                spec.get("categories", ()),
                spec.get("tags", ()),
                True,
                int(spec.get("stock", 10)),
            )
        else:
            product = self._product(int(product_id))
            for c in spec.get("categories", ()):
                if self._term("product_cat", c) not in product.categories:
                    product.categories.append(self._term("product_cat", c))
            for t in spec.get("tags", ()):
                if self._term("product_tag", t) not in product.tags:
                    product.tags.append(self._term("product_tag", t))
        subtotal = (
            _money(spec["subtotal"]) if spec.get("subtotal") is not None else price * quantity
        )
        total = _money(spec["total"]) if spec.get("total") is not None else subtotal
        tax = _money(spec.get("tax", "0.00"))
        return _Line(
            id=_next_id(),
            name=name,
            product_id=int(product_id),
            variation_id=int(spec.get("variation_id", 0)),
            quantity=quantity,
            sku=sku,
            subtotal=subtotal,
            total=total,
            tax=tax,
            subtotal_tax=_money(spec.get("subtotal_tax", tax)),
        )

    def update_order(self, order_id: int, **changes: Any) -> None:
        """Change an order as the shop would (``order.updated``; ``date_modified`` moves).

        Keys: ``status``, ``email``, ``billing``/``shipping`` (merged), ``transaction_id``,
        ``payment_method``, ``payment_method_title``, ``customer_note``, ``meta`` (list of
        ``{key, value}``, upserted by key), ``modified_at`` (instead of now).
        """
        with self._lock:
            order = self._order(order_id)
            self._apply_changes(order, changes)
            self._event(order, "order.updated")

    def _apply_changes(self, order: _Order, changes: Mapping[str, Any]) -> None:
        changes = dict(changes)
        modified = self._moment(changes.pop("modified_at", None))
        if "status" in changes:
            status = changes.pop("status")
            if status not in ORDER_STATUSES or status == "trash":
                raise ValueError(f"bad status {status!r} (use delete_order to trash)")
            order.status = status
            if status in ("processing", "completed") and order.paid is None:
                order.paid = modified
            if status == "completed" and order.completed is None:
                order.completed = modified
        if "email" in changes:
            order.billing["email"] = changes.pop("email")
        for name in ("billing", "shipping"):
            if name in changes:
                getattr(order, name).update(changes.pop(name))
        for name in ("transaction_id", "payment_method", "payment_method_title", "customer_note"):
            if name in changes:
                setattr(order, name, str(changes.pop(name)))
        if "meta" in changes:
            self._upsert_meta(order.meta, changes.pop("meta"))
        if changes:
            raise ValueError(f"unsupported order changes: {sorted(changes)}")
        order.modified = max(modified, order.modified)

    @staticmethod
    def _upsert_meta(meta: list[JSON], entries: Iterable[Mapping[str, Any]]) -> None:
        for entry in entries:
            found = next(
                (
                    m
                    for m in meta
                    if (entry.get("id") and m["id"] == entry.get("id")) or m["key"] == entry["key"]
                ),
                None,
            )
            if found is None:
                meta.append({"id": _next_id(), "key": entry["key"], "value": entry.get("value")})
            else:
                found["value"] = entry.get("value")

    def delete_order(self, order_id: int) -> None:
        """Trash the order (``order.deleted``)."""
        with self._lock:
            order = self._order(order_id)
            if order.status != "trash":
                order.status_before_trash = order.status
                order.status = "trash"
                order.modified = max(self.now(), order.modified)
                self._event(order, "order.deleted")

    def restore_order(self, order_id: int) -> None:
        """Untrash the order (``order.restored``)."""
        with self._lock:
            order = self._order(order_id)
            if order.status == "trash":
                order.status = order.status_before_trash
                order.modified = max(self.now(), order.modified)
                self._event(order, "order.restored")

    def order(self, order_id: int) -> JSON:
        """The order as ``GET /orders/<id>`` shows it."""
        with self._lock:
            return self._order_json(self._order(order_id))

    def orders(self) -> list[JSON]:
        with self._lock:
            return [self._order_json(o) for o in self._orders.values()]

    def _order(self, order_id: int) -> _Order:
        if order_id not in self._orders:
            raise KeyError(f"no order {order_id}")
        return self._orders[order_id]

    # ---- refunds and the gateway -------------------------------------------------------------

    def refunds(self, order_id: int) -> list[JSON]:
        with self._lock:
            order = self._order(order_id)
            return [self._refund_json(r) for r in reversed(order.refunds)]

    def gateway_refunds(self) -> list[GatewayRefund]:
        """Every call of the gateway's ``process_refund``, oldest first (failed ones too)."""
        with self._lock:
            return list(self._gateway_refunds)

    def fail_gateway(self, message: str | None, *, times: int | None = 1) -> None:
        """Make the next ``times`` gateway refunds fail with ``message`` (``None`` times: until
        ``fail_gateway(None)``, which clears every failure)."""
        with self._lock:
            if message is None:
                self._gateway_failures.clear()
                self._gateway_failure_sticky = None
            elif times is None:
                self._gateway_failure_sticky = message
            else:
                self._gateway_failures.extend([message] * times)

    # ---- coupons -----------------------------------------------------------------------------

    def coupon(self, code: str) -> JSON:
        with self._lock:
            return self._coupon_json(self._coupon_by_code(code))

    def coupons(self) -> list[JSON]:
        with self._lock:
            return [self._coupon_json(c) for c in self._coupons.values()]

    def use_coupon(self, code: str, *, email: str | None = None) -> None:
        """A customer uses the coupon at checkout (``usage_count`` + 1); raises past its limit."""
        with self._lock:
            coupon = self._coupon_by_code(code)
            if coupon.usage_limit is not None and coupon.usage_count >= coupon.usage_limit:
                raise ValueError(f"coupon {code!r} usage limit reached")
            if email and coupon.email_restrictions and email not in coupon.email_restrictions:
                raise ValueError(f"coupon {code!r} is not valid for {email}")
            coupon.usage_count += 1
            if email:
                coupon.used_by.append(email)
            coupon.modified = self.now()

    def _coupon_by_code(self, code: str) -> _Coupon:
        wanted = code.strip().lower()
        for coupon in self._coupons.values():
            if coupon.code == wanted:
                return coupon
        raise KeyError(f"no coupon {code!r}")

    # ---- webhooks ----------------------------------------------------------------------------

    def add_webhook(
        self,
        *,
        topic: str,
        delivery_url: str,
        secret: str | None = None,
        name: str = "",
        status: str = "active",
    ) -> int:
        """Create a webhook as the REST API does (with its ping when active); returns its id."""
        with self._lock:
            hook = self._new_webhook(
                {
                    "topic": topic,
                    "delivery_url": delivery_url,
                    "secret": secret,
                    "name": name,
                    "status": status,
                }
            )
            return hook.id

    def webhooks(self) -> list[JSON]:
        """The store's webhooks as the REST API shows them, plus ``secret`` and
        ``failure_count``."""
        with self._lock:
            return [
                {**self._webhook_json(h), "secret": h.secret, "failure_count": h.failure_count}
                for h in self._webhooks.values()
            ]

    def disable_webhook(self, webhook_id: int) -> None:
        """Disable it as WooCommerce does after too many failed deliveries."""
        with self._lock:
            hook = self._webhook(webhook_id)
            hook.status = "disabled"
            hook.failure_count = max(hook.failure_count, MAX_DELIVERY_FAILURES + 1)

    def pings(self) -> list[FakeWooWebhook]:
        with self._lock:
            return list(self._pings)

    def pending_webhooks(self) -> list[FakeWooWebhook]:
        """The queued deliveries, with bodies built now (as they would be if they ran now)."""
        with self._lock:
            return [w for w in (self._build(p) for p in self._pending) if w is not None]

    def deliver_pending(
        self, target: UrlTarget = None, *, client: httpx.Client | None = None
    ) -> list[tuple[FakeWooWebhook, int | None]]:
        """Run the queued deliveries (Action Scheduler's turn): build each body now, record it
        (``sent_webhooks()``) and POST it where ``target`` says: a mapping from delivery URL to
        the URL to use, or a callable of the webhook; ``None`` from either (or a URL missing
        from the mapping) records it unsent. ``target=None`` POSTs to the delivery URL itself.
        Returns ``(webhook, status)`` pairs (``None``: not sent or no answer). Failures count
        against the webhook as in WooCommerce.
        """
        with self._lock:
            pending, self._pending = self._pending, []
            built = [w for w in (self._build(p) for p in pending) if w is not None]
            self._sent.extend(built)
        results: list[tuple[FakeWooWebhook, int | None]] = []
        for webhook in built:
            if target is None:
                url: str | None = webhook.delivery_url
            elif callable(target):
                url = target(webhook)
            else:
                url = target.get(webhook.delivery_url)
            if url is None:
                results.append((webhook, None))
                continue
            status = self.deliver(webhook, url, client=client)
            results.append((webhook, status))
        return results

    def sent_webhooks(self, topic: str | None = None) -> list[FakeWooWebhook]:
        """Deliveries already run by ``deliver_pending``, oldest first."""
        with self._lock:
            return [w for w in self._sent if topic is None or w.topic == topic]

    def deliver(
        self,
        webhook: FakeWooWebhook,
        url: str,
        client: httpx.Client | None = None,
        *,
        timeout: float = 60.0,
    ) -> int:
        """POST the webhook (or ping) as recorded; returns the status (0: no answer). Counts
        success (below 303) or failure against the webhook as WooCommerce does."""
        try:
            if client is not None:
                status = client.post(url, content=webhook.body, headers=webhook.headers).status_code
            else:
                with httpx.Client(timeout=timeout, follow_redirects=False) as own:
                    response = own.post(url, content=webhook.body, headers=webhook.headers)
                    status = response.status_code
        except httpx.HTTPError:
            status = 0
        if not webhook.is_ping:
            self._count_delivery(webhook.webhook_id, 0 < status < 303)
        return status

    def _count_delivery(self, webhook_id: int, ok: bool) -> None:
        with self._lock:
            hook = self._webhooks.get(webhook_id)
            if hook is None:
                return
            if ok:
                hook.failure_count = 0
                return
            hook.failure_count += 1
            if hook.failure_count > MAX_DELIVERY_FAILURES:
                hook.status = "disabled"

    def _event(self, order: _Order, topic: str) -> None:
        for hook in self._webhooks.values():
            if hook.status != "active" or hook.topic != topic:
                continue
            if any(p.webhook_id == hook.id and p.order_id == order.id for p in self._pending):
                continue  # Action Scheduler: one pending delivery per webhook and resource
            self._pending.append(_Pending(hook.id, order.id, self.now()))

    def _build(self, pending: _Pending) -> FakeWooWebhook | None:
        hook = self._webhooks.get(pending.webhook_id)
        order = self._orders.get(pending.order_id)
        if hook is None or order is None:
            return None
        if hook.topic == "order.deleted":
            payload: JSON = {"id": order.id}
        else:
            payload = self._order_json(order)
        body = wp_json_encode(payload)
        resource, event = hook.topic.split(".", 1)
        stamp = str(int(self.now().timestamp()))
        delivery_id = hmac.new(self._salt, f"{hook.id}{stamp}".encode(), "md5").hexdigest()
        headers = {
            "User-Agent": f"WooCommerce/{WC_VERSION} Hookshot (WordPress/6.6)",
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": self.base_url + "/",
            "X-WC-Webhook-Topic": hook.topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": sign_woo_webhook(body, hook.secret),
            "X-WC-Webhook-ID": str(hook.id),
            "X-WC-Webhook-Delivery-ID": delivery_id,
        }
        return FakeWooWebhook(hook.topic, body, headers, hook.id, hook.delivery_url, order.id)

    def _ping(self, hook: _Webhook) -> None:
        headers = {
            "User-Agent": f"WooCommerce/{WC_VERSION} Hookshot (WordPress/6.6)",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        body = f"webhook_id={hook.id}".encode()
        self._pings.append(FakeWooWebhook("", body, headers, hook.id, hook.delivery_url))

    def _webhook(self, webhook_id: int) -> _Webhook:
        if webhook_id not in self._webhooks:
            raise KeyError(f"no webhook {webhook_id}")
        return self._webhooks[webhook_id]

    def _new_webhook(self, params: Mapping[str, Any]) -> _Webhook:
        missing = [p for p in ("topic", "delivery_url") if not params.get(p)]
        if missing:
            raise _WooError(
                400,
                "rest_missing_callback_param",
                f"Missing parameter(s): {', '.join(missing)}",
                params=missing,
            )
        topic = str(params["topic"])
        if topic not in ORDER_TOPICS and not re.fullmatch(
            r"(product|customer|coupon)\.(created|updated|deleted|restored)|action\..+", topic
        ):
            raise _WooError(
                400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic is invalid."
            )
        status = str(params.get("status") or "active")
        if status not in ("active", "paused", "disabled"):
            raise _WooError(400, "rest_invalid_param", "Invalid parameter(s): status")
        now = self.now()
        hook = _Webhook(
            id=_next_id(),
            name=str(params.get("name") or f"Webhook created on {self._local(now)}"),
            status=status,
            topic=topic,
            delivery_url=str(params["delivery_url"]),
            secret=str(params.get("secret") or secrets.token_urlsafe(36)),
            created=now,
            modified=now,
        )
        self._webhooks[hook.id] = hook
        if status == "active":
            self._ping(hook)
        return hook

    # ---- key grant (wc-auth) -----------------------------------------------------------------

    def approve_connect(self, authorize_url: str) -> tuple[str, JSON]:
        """Play the admin approving the app: create keys and return ``(callback_url, payload)``;
        the test POSTs the payload (JSON) to the callback itself. Raises on invalid params."""
        params = self._authorize_params(authorize_url)
        ck, cs = self.add_keys(params["scope"], description=f"{params['app_name']} - API")
        with self._lock:
            key_id = self._keys[ck].key_id
        payload = {
            "key_id": key_id,
            "user_id": params["user_id"],
            "consumer_key": ck,
            "consumer_secret": cs,
            "key_permissions": params["scope"],
        }
        return params["callback_url"], payload

    def connect_return_url(self, authorize_url: str, *, success: bool = True) -> str:
        """Where the merchant is sent at the end: ``return_url?success=1|0&user_id=...``."""
        params = self._authorize_params(authorize_url)
        query = urlencode({"success": "1" if success else "0", "user_id": params["user_id"]})
        sep = "&" if "?" in params["return_url"] else "?"
        return f"{params['return_url']}{sep}{query}"

    def deny_connect(self, authorize_url: str) -> str:
        """Play the admin denying the app; returns the ``return_url`` with ``success=0``."""
        return self.connect_return_url(authorize_url, success=False)

    def _authorize_params(self, authorize_url: str) -> dict[str, str]:
        query = dict(parse_qsl(urlsplit(authorize_url).query, keep_blank_values=True))
        error = self._authorize_error(query)
        if error is not None:
            raise ValueError(error)
        return query

    def _authorize_error(self, query: Mapping[str, str]) -> str | None:
        for name in ("app_name", "user_id", "return_url", "callback_url", "scope"):
            if not query.get(name):
                return f"Missing parameter {name}"
        if query["scope"] not in ("read", "write", "read_write"):
            return f"Invalid scope {query['scope']}"
        callback = urlsplit(query["callback_url"])
        if callback.scheme != "https" and not (
            self.allow_http_callback and callback.scheme == "http"
        ):
            return "The callback_url needs to be over SSL"
        return None

    # ---- requests, faults, errors ------------------------------------------------------------

    def requests(self) -> list[WooRequest]:
        """Every request received, oldest first (copies)."""
        with self._lock:
            return [
                dataclasses.replace(r, query=dict(r.query), headers=dict(r.headers))
                for r in self._requests
            ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def server_errors(self) -> list[str]:
        """Tracebacks of exceptions inside the fake itself (answered 500); should stay empty."""
        return self._server_errors.snapshot()

    def inject(
        self,
        kind: str | int,
        *,
        endpoint: str | None = None,
        method: str | None = None,
        times: int | None = 1,
        delay: float | None = None,
    ) -> WooFault:
        """Queue a fault for the next ``times`` matching requests (``None``: until cleared).

        ``endpoint`` is a glob over the route after ``/wp-json/wc/v3/`` (``"orders"``,
        ``"orders/*/refunds"``, ``"webhooks*"``) or ``"wc-auth/v1/authorize"``; ``None``
        matches every request. ``kind``: ``"500"``, ``"502"``, ``"timeout"`` (held without
        executing until the client gives up, or ``delay``/``timeout_hold`` s), ``"drop"``
        (closed unanswered, not executed) or ``"drop_after_execute"``.
        """
        text = str(kind)
        if text not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {FAULT_KINDS}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for unlimited)")
        with self._lock:
            fault = WooFault(
                text, endpoint, method, times, self.timeout_hold if delay is None else delay
            )
            self._faults.append(fault)
            return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ---- request pipeline --------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Outcome:
        if self.latency > 0:
            self._stopping.wait(self.latency)
        try:
            return self._dispatch(method, target, headers, body)
        except Exception as exc:
            self._server_errors.note(exc)
            payload = {"code": "fake_bug", "message": repr(exc), "data": {"status": 500}}
            return Outcome(Response(500, wp_json_encode(payload), _json_headers()))

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Outcome:
        split = urlsplit(target)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(pairs)  # PHP: the last value wins
        record = WooRequest(
            method=method,
            path=split.path,
            query={k: v for k, v in query.items() if not k.startswith("oauth_")},
            headers={k: v for k, v in headers.items() if k in _LOGGED_HEADERS},
            body=body,
            at=self.now().timestamp(),
        )
        with self._lock:
            self._requests.append(record)
        if split.path.startswith(API_PREFIX):
            route = split.path[len(API_PREFIX) :].strip("/")
        else:
            route = split.path.strip("/")
        with self._lock:
            fault = next((f for f in self._faults if f.matches(method, route)), None)
            if fault is not None:
                fault.hits += 1
                record.fault = fault.kind
        if fault is not None:
            if fault.kind == "timeout":
                return Outcome(hold=fault.delay)
            if fault.kind == "drop":
                return Outcome(drop=True)
            if fault.kind == "500":
                message = (
                    "<p>There has been a critical error on this website.</p><p><a "
                    'href="https://wordpress.org/documentation/article/faq-troubleshooting/">'
                    "Learn more about troubleshooting WordPress.</a></p>"
                )
                error = {"code": "internal_server_error", "message": message}
                return self._finish(record, 500, {**error, "data": {"status": 500}})
            if fault.kind == "502":
                page = b"<html><head><title>502 Bad Gateway</title></head><body><center>"
                page += b"<h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
                return self._finish(record, 502, page, {"Content-Type": "text/html"})
        if split.path == AUTHORIZE_PATH and method == "GET":
            status, page = self._authorize_page(query)
            with self._lock:
                record.executed = True
            if fault is not None and fault.kind == "drop_after_execute":
                return Outcome(drop=True)
            return self._finish(record, status, page, {"Content-Type": "text/html; charset=UTF-8"})
        if not split.path.startswith(API_PREFIX):
            return self._finish(record, 404, _NO_ROUTE)
        with self._lock:
            try:
                ck = self._authenticate(method, split.path, query, headers)
                record.consumer_key = ck
                params = {k: v for k, v in query.items() if not k.startswith("oauth_")}
                # PHP gathers every ``name[]`` value into a list (the signature above reads
                # them as the package sent them); list params read them as one comma list.
                for name in {k for k, _ in pairs if k.endswith("[]")}:
                    params[name] = ",".join(v for k, v in pairs if k == name)
                status, payload, extra = self._route(method, route, params, headers, body)
            except _WooError as error:
                status, payload, extra = error.status, error.payload(), {}
            record.executed = True
        if fault is not None and fault.kind == "drop_after_execute":
            with self._lock:
                record.status = status
            return Outcome(drop=True)
        return self._finish(record, status, payload, extra)

    def _finish(
        self,
        record: WooRequest,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> Outcome:
        all_headers = {**_json_headers(), **(headers or {})}
        body = payload if isinstance(payload, bytes) else wp_json_encode(payload)
        with self._lock:
            record.status, record.delivered = status, True
        return Outcome(Response(status, body, all_headers))

    def _authorize_page(self, query: Mapping[str, str]) -> tuple[int, bytes]:
        with self._lock:
            error = self._authorize_error(query)
        if error is not None:
            page = f"<html><body><h1>Access denied</h1><p>Error: {html.escape(error)}.</p>"
            return 401, (page + "</body></html>").encode()
        app = html.escape(query["app_name"])
        scope = html.escape(query["scope"])
        page = (
            f"<html><body><h1>Connect {app}</h1><p>{app} would like to connect to your store "
            f"with {scope} access.</p><a>Approve</a> <a>Deny</a></body></html>"
        )
        return 200, page.encode()

    # ---- authentication ----------------------------------------------------------------------

    def _authenticate(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except ValueError:
                decoded = ":"
            ck, _, cs = decoded.partition(":")
            keys = self._check_secret(ck, cs)
        elif "consumer_key" in query and "consumer_secret" in query:
            keys = self._check_secret(query["consumer_key"], query["consumer_secret"])
        elif "oauth_consumer_key" in query:
            keys = self._check_oauth(method, path, query)
        else:
            raise _WooError(
                401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."
            )
        writing = method in ("POST", "PUT", "PATCH", "DELETE")
        if writing and keys.permissions == "read":
            raise _AUTH_ERROR("The API key provided does not have write permissions.")
        if not writing and keys.permissions == "write":
            raise _AUTH_ERROR("The API key provided does not have read permissions.")
        return keys.consumer_key

    def _known_keys(self, ck: str) -> _Keys:
        keys = self._keys.get(ck)
        if keys is None or keys.revoked:
            raise _AUTH_ERROR("Consumer key is invalid.")
        return keys

    def _check_secret(self, ck: str, cs: str) -> _Keys:
        keys = self._known_keys(ck)
        if not hmac.compare_digest(keys.consumer_secret.encode(), cs.encode()):
            raise _AUTH_ERROR("Consumer secret is invalid.")
        return keys

    def _check_oauth(self, method: str, path: str, query: Mapping[str, str]) -> _Keys:
        names = (
            "oauth_consumer_key",
            "oauth_timestamp",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
        )
        missing = [n for n in names if not query.get(n)]
        if missing:
            raise _AUTH_ERROR(f"{', '.join(missing)} parameter is missing.")
        keys = self._known_keys(query["oauth_consumer_key"])
        params = {k: v for k, v in query.items() if k != "oauth_signature"}
        given = unquote(query["oauth_signature"].replace(" ", "+"))
        algorithm = {"HMAC-SHA256": "sha256", "HMAC-SHA1": "sha1"}.get(
            query["oauth_signature_method"]
        )
        if algorithm is None:
            raise _AUTH_ERROR("Invalid signature - signature method is invalid.")
        expected = oauth_signature(
            method, self.base_url + path, params, keys.consumer_secret, algorithm
        )
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise _AUTH_ERROR("Invalid signature - provided signature does not match.")
        now = self.now()
        try:
            stamp = datetime.fromtimestamp(int(query["oauth_timestamp"]), UTC)
        except (ValueError, OverflowError, OSError):
            raise _AUTH_ERROR("Invalid timestamp.") from None
        if abs(stamp - now) > OAUTH_WINDOW:
            raise _AUTH_ERROR("Invalid timestamp.")
        keys.nonces = {n: t for n, t in keys.nonces.items() if now - t <= OAUTH_WINDOW}
        nonce = query["oauth_nonce"]
        if nonce in keys.nonces:
            raise _AUTH_ERROR("Invalid nonce - nonce has already been used.")
        keys.nonces[nonce] = stamp
        return keys

    # ---- routes ------------------------------------------------------------------------------

    def _route(
        self,
        method: str,
        route: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        parts = route.split("/")
        data = _read_body(headers, body) if method in ("POST", "PUT", "PATCH") else {}
        params = {**query, **data}
        write = method in ("POST", "PUT", "PATCH")
        if parts == ["orders"] and method == "GET":
            return self._list_orders(route, query)
        if parts == ["orders"] and method == "POST":
            new_order = self._rest_create_order(params)
            location = f"{self.base_url}{API_PREFIX}orders/{new_order.id}"
            return 201, self._order_json(new_order), {"Location": location}
        if len(parts) >= 2 and parts[0] == "orders" and parts[1].isdigit():
            order = self._orders.get(int(parts[1]))
            if order is None:
                raise _WooError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            if len(parts) == 2 and method == "GET":
                return 200, self._order_json(order), {}
            if len(parts) == 2 and write:
                self._rest_update_order(order, data)
                return 200, self._order_json(order), {}
            if len(parts) == 3 and parts[2] == "refunds" and method == "GET":
                items = [self._refund_json(r) for r in reversed(order.refunds)]
                return self._page(route, query, items)
            if len(parts) == 3 and parts[2] == "refunds" and method == "POST":
                return 201, self._refund_json(self._create_refund(order, data)), {}
            if len(parts) == 4 and parts[2] == "refunds" and parts[3].isdigit():
                refund = next((r for r in order.refunds if r.id == int(parts[3])), None)
                if refund is None or method != "GET":
                    raise _WooError(404, "woocommerce_rest_invalid_id", "Invalid resource id.")
                return 200, self._refund_json(refund), {}
        if parts == ["products"] and method == "GET":
            wanted = {int(v) for v in _list_param(query, "include") if v.strip().isdigit()}
            products = [
                self._product_json(p)
                for p in sorted(self._products.values(), key=lambda p: p.id)
                if not wanted or p.id in wanted
            ]
            return self._page(route, query, products)
        if len(parts) == 2 and parts[0] == "products" and parts[1].isdigit() and method == "GET":
            product = self._products.get(int(parts[1]))
            if product is None:
                raise _WooError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            return 200, self._product_json(product), {}
        if parts == ["coupons"] and method == "GET":
            return self._list_coupons(route, query)
        if parts == ["coupons"] and method == "POST":
            return 201, self._coupon_json(self._create_coupon(params)), {}
        if len(parts) == 2 and parts[0] == "coupons" and parts[1].isdigit() and method == "GET":
            coupon = self._coupons.get(int(parts[1]))
            if coupon is None:
                raise _WooError(404, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.")
            return 200, self._coupon_json(coupon), {}
        if parts == ["webhooks"] and method == "GET":
            items = [self._webhook_json(h) for h in reversed(self._webhooks.values())]
            if query.get("status") and query["status"] != "all":
                items = [h for h in items if h["status"] == query["status"]]
            return self._page(route, query, items)
        if parts == ["webhooks"] and method == "POST":
            return 201, self._webhook_json(self._new_webhook(params)), {}
        if len(parts) == 2 and parts[0] == "webhooks" and parts[1].isdigit():
            hook = self._webhooks.get(int(parts[1]))
            if hook is None:
                raise _WooError(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            if method == "GET":
                return 200, self._webhook_json(hook), {}
            if write:
                self._rest_update_webhook(hook, data)
                return 200, self._webhook_json(hook), {}
            if method == "DELETE":
                if not _bool(params.get("force", False), "force"):
                    raise _WooError(
                        501,
                        "woocommerce_rest_trash_not_supported",
                        "Webhooks do not support trashing.",
                    )
                del self._webhooks[hook.id]
                self._pending = [p for p in self._pending if p.webhook_id != hook.id]
                return 200, self._webhook_json(hook), {}
        raise _WooError(404, "rest_no_route", _NO_ROUTE["message"])

    # ---- orders over REST --------------------------------------------------------------------

    def _list_orders(self, route: str, query: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        gmt = _bool(query.get("dates_are_gmt", False), "dates_are_gmt")
        bounds = {
            name: self._date_param(query, name, gmt)
            for name in ("after", "before", "modified_after", "modified_before")
        }
        statuses = _list_param(query, "status") or ["any"]
        for status in statuses:
            if status != "any" and status not in ORDER_STATUSES:
                raise _invalid("status")
        include = {int(i) for i in _list_param(query, "include") if i.isdigit()}
        parents = _id_list_param(query, "parent")
        parents_excluded = _id_list_param(query, "parent_exclude")
        search = query.get("search", "").lower()
        orders = []
        for order in self._orders.values():
            if "any" in statuses:
                if order.status == "trash" and "trash" not in statuses:
                    continue
            elif order.status not in statuses:
                continue
            if include and order.id not in include:
                continue
            if parents and order.parent_id not in parents:
                continue
            if order.parent_id in parents_excluded:
                continue
            if search and search not in order.billing.get("email", "").lower():
                continue
            if not _within(order.created, bounds["after"], bounds["before"]):
                continue
            if not _within(order.modified, bounds["modified_after"], bounds["modified_before"]):
                continue
            orders.append(order)
        orderby = query.get("orderby", "date")
        keys: dict[str, Callable[[_Order], Any]] = {
            "date": lambda o: (o.created, o.id),
            "id": lambda o: o.id,
            "modified": lambda o: (o.modified, o.id),
            "include": lambda o: o.id,
        }
        if orderby not in keys:
            raise _invalid("orderby")
        direction = query.get("order", "desc")
        if direction not in ("asc", "desc"):
            raise _invalid("order")
        orders.sort(key=keys[orderby], reverse=direction == "desc")
        return self._page(route, query, orders, self._order_json)

    def _date_param(self, query: Mapping[str, str], name: str, gmt: bool) -> datetime | None:
        value = query.get(name)
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(name) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC if gmt else self.site_timezone)
        return moment.astimezone(UTC)

    def _page(
        self,
        route: str,
        query: Mapping[str, str],
        items: Sequence[Any],
        render: Callable[[Any], Any] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = _int_param(query, "per_page", 10)
        page = _int_param(query, "page", 1)
        offset = _int_param(query, "offset", 0, minimum=0) if "offset" in query else None
        if not 1 <= per_page <= 100:
            raise _invalid("per_page", per_page="per_page must be between 1 (inclusive) and 100")
        if page < 1:
            raise _invalid("page")
        start = offset if offset is not None else (page - 1) * per_page
        chosen = items[start : start + per_page]
        total = len(items)
        pages = math.ceil(total / per_page) if total else 0
        base = f"{self.base_url}{API_PREFIX}{route}"
        links = []
        if page > 1 and total:
            links.append(f'<{base}?{urlencode({**query, "page": page - 1})}>; rel="prev"')
        if page < pages:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        body = [render(i) for i in chosen] if render else list(chosen)
        return 200, body, headers

    def _rest_update_order(self, order: _Order, data: Mapping[str, Any]) -> None:
        changes: dict[str, Any] = {}
        if "status" in data:
            if data["status"] not in ORDER_STATUSES or data["status"] == "trash":
                raise _invalid("status")
            changes["status"] = data["status"]
        for name in ("transaction_id", "customer_note"):
            if name in data:
                changes[name] = data[name]
        if "meta_data" in data:
            changes["meta"] = data["meta_data"]
        self._apply_changes(order, changes)
        self._event(order, "order.updated")

    def _rest_create_order(self, data: Mapping[str, Any]) -> _Order:
        """``POST /orders`` as the v3 controller's ``save_object``: WordPress checks the params
        against the schema, the order takes its props and items in schema order (the parent
        first), ``calculate_totals`` runs, then the status, then ``set_paid``."""
        problems = _order_problems(data)
        if problems:
            names = ", ".join(problems)
            raise _WooError(
                400, "rest_invalid_param", f"Invalid parameter(s): {names}", params=problems
            )
        parent_id = int(data.get("parent_id") or 0)
        if parent_id and parent_id not in self._orders:  # WC_Order::set_parent_id
            raise _WooError(400, "order_invalid_parent_id", "Invalid parent ID")
        if data.get("coupon_lines"):
            raise _WooError(400, "fake_not_implemented", "The fake does not apply coupon_lines.")
        kinds = ("line_items", "shipping_lines", "fee_lines")
        items = {kind: [i for i in data.get(kind) or [] if not _removes_item(i)] for kind in kinds}
        for item in itertools.chain(*items.values()):
            if item.get("id"):  # an item id means an update of one of this order's items
                raise _WooError(
                    400,
                    "woocommerce_rest_invalid_item_id",
                    "Order item ID provided is not associated with order.",
                )
        lines = [self._rest_line(item) for item in items["line_items"]]
        shipping_lines = [_rest_shipping_line(item) for item in items["shipping_lines"]]
        fees = [_rest_fee(item) for item in items["fee_lines"]]
        customer_id = int(data.get("customer_id") or 0)
        if customer_id < 0:
            raise _WooError(400, "woocommerce_rest_invalid_customer_id", "Customer ID is invalid.")
        now = self.now()
        billing = {**_ADDRESS, "email": "", "phone": ""}
        shipping = dict(_ADDRESS)
        for address, posted in ((billing, data.get("billing")), (shipping, data.get("shipping"))):
            address.update({k: str(v or "") for k, v in (posted or {}).items() if k in address})
        order = _Order(
            id=_next_id(),
            order_key=f"wc_order_{secrets.token_hex(6)}",
            status="pending",
            currency=str(data.get("currency") or "USD"),
            created=now,
            modified=now,
            paid=None,
            completed=None,
            billing=billing,
            shipping=shipping,
            payment_method=str(data.get("payment_method") or ""),
            payment_method_title=str(data.get("payment_method_title") or ""),
            transaction_id=str(data.get("transaction_id") or ""),
            customer_note=str(data.get("customer_note") or ""),
            meta=[],
            lines=lines,
            shipping_lines=shipping_lines,
            tax_line_id=_next_id(),
            fees=fees,
            parent_id=parent_id,
            customer_id=customer_id,
            created_via="rest-api",
        )
        self._upsert_meta(order.meta, data.get("meta_data") or [])
        _cap_negative_fees(order)
        # needs_processing(): a line whose product still exists (the fake's are all shipped)
        needs_processing = any(line.product_id in self._products for line in lines)
        _set_created_status(order, str(data.get("status") or "pending"), needs_processing, now)
        if _bool(data.get("set_paid", False), "set_paid") and order.status in _PAYABLE:
            # payment_complete(): paid now, then processing (or completed if nothing ships)
            order.paid = order.paid or now
            done = "processing" if needs_processing else "completed"
            _set_created_status(order, done, needs_processing, now)
        self._orders[order.id] = order
        self._event(order, "order.created")
        return order

    def _rest_line(self, item: Mapping[str, Any]) -> _Line:
        """``prepare_line_items``: the product comes from ``sku``, else ``product_id``, else
        ``variation_id``; a product the store does not have leaves a line without one (no
        error, as WooCommerce); the product's price x quantity is the total and subtotal
        unless they are posted."""
        sku = str(item.get("sku") or "")
        product_id = int(item.get("product_id") or 0)
        variation_id = int(item.get("variation_id") or 0)
        if sku:
            wanted = self._products_by_sku.get(sku, 0)
        elif product_id and not variation_id:
            wanted = product_id
        elif variation_id:
            wanted = variation_id  # the fake has no variations: only a simple product matches
        else:
            raise _WooError(
                400, "woocommerce_rest_required_product_reference", "Product ID or SKU is required."
            )
        product = self._products.get(wanted)
        quantity = int(item.get("quantity") or 1)
        total = _cents(product.price * quantity) if product else Decimal(0)
        subtotal = total
        if item.get("total") is not None:
            total = _cents(_money(item["total"]))
        if item.get("subtotal") is not None:
            subtotal = _cents(_money(item["subtotal"]))
        name = product.name if product else ""
        return _Line(
            id=_next_id(),
            name=str(item["name"]) if item.get("name") is not None else name,
            product_id=product.id if product else 0,
            variation_id=0,
            quantity=quantity,
            sku=product.sku if product else None,
            subtotal=subtotal,
            total=total,
            tax=Decimal(0),
            subtotal_tax=Decimal(0),
        )

    def _order_json(self, order: _Order) -> JSON:
        link = f"{self.base_url}{API_PREFIX}orders"
        lines = []
        for line in order.lines:
            # WooCommerce's ``price`` is the line total (after discounts) per unit.
            unit = line.total / line.quantity if line.quantity else Decimal(0)
            taxes = (
                [{"id": 1, "total": _fmt(line.tax), "subtotal": _fmt(line.subtotal_tax)}]
                if line.tax or line.subtotal_tax
                else []
            )
            lines.append(
                {
                    "id": line.id,
                    "name": line.name,
                    "product_id": line.product_id,
                    "variation_id": line.variation_id,
                    "quantity": line.quantity,
                    "tax_class": "",
                    "subtotal": _fmt(line.subtotal),
                    "subtotal_tax": _fmt(line.subtotal_tax),
                    "total": _fmt(line.total),
                    "total_tax": _fmt(line.tax),
                    "taxes": taxes,
                    "meta_data": [],
                    "sku": line.sku,
                    "price": _number(unit),
                }
            )
        discount = sum((line.subtotal - line.total for line in order.lines), Decimal(0))
        has_tax = any(line.tax for line in order.lines) or order.shipping_tax
        links: JSON = {"self": [{"href": f"{link}/{order.id}"}], "collection": [{"href": link}]}
        if order.customer_id:
            links["customer"] = [
                {"href": f"{self.base_url}{API_PREFIX}customers/{order.customer_id}"}
            ]
        if order.parent_id:
            links["up"] = [{"href": f"{link}/{order.parent_id}"}]
        tax_lines = (
            [
                {
                    "id": order.tax_line_id,
                    "rate_code": "US-STATE TAX",
                    "rate_id": 1,
                    "label": "State Tax",
                    "compound": False,
                    "tax_total": _fmt(order.cart_tax),
                    "shipping_tax_total": _fmt(order.shipping_tax),
                    "meta_data": [],
                }
            ]
            if has_tax
            else []
        )
        return {
            "id": order.id,
            "parent_id": order.parent_id,
            "number": str(order.id),
            "order_key": order.order_key,
            "created_via": order.created_via,
            "version": WC_VERSION,
            "status": order.status,
            "currency": order.currency,
            "date_created": self._local(order.created),
            "date_created_gmt": self._gmt(order.created),
            "date_modified": self._local(order.modified),
            "date_modified_gmt": self._gmt(order.modified),
            "discount_total": _fmt(discount),
            "discount_tax": "0.00",
            "shipping_total": _fmt(order.shipping_total),
            "shipping_tax": _fmt(order.shipping_tax),
            "cart_tax": _fmt(order.cart_tax),
            "total": _fmt(order.total),
            "total_tax": _fmt(order.cart_tax + order.shipping_tax),
            "prices_include_tax": False,
            "customer_id": order.customer_id,
            "customer_ip_address": "",
            "customer_user_agent": "",
            "customer_note": order.customer_note,
            "billing": dict(order.billing),
            "shipping": dict(order.shipping),
            "payment_method": order.payment_method,
            "payment_method_title": order.payment_method_title,
            "transaction_id": order.transaction_id,
            "date_paid": self._local(order.paid),
            "date_paid_gmt": self._gmt(order.paid),
            "date_completed": self._local(order.completed),
            "date_completed_gmt": self._gmt(order.completed),
            "cart_hash": "",
            "meta_data": copy.deepcopy(order.meta),
            "line_items": lines,
            "tax_lines": tax_lines,
            "shipping_lines": [
                {
                    "id": s.id,
                    "method_title": s.method_title,
                    "method_id": s.method_id,
                    "total": _fmt(s.total),
                    "total_tax": _fmt(s.tax),
                    "taxes": [],
                    "meta_data": [],
                }
                for s in order.shipping_lines
            ],
            "fee_lines": [
                {
                    "id": fee.id,
                    "name": fee.name,
                    "tax_class": "",
                    "tax_status": "taxable",
                    "total": _fmt(fee.total),
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": [],
                }
                for fee in order.fees
            ],
            "coupon_lines": [],
            "refunds": [
                {"id": r.id, "reason": r.reason, "total": _fmt(-r.amount)}
                for r in reversed(order.refunds)
            ],
            "_links": links,
        }

    # ---- refunds over REST -------------------------------------------------------------------

    def _create_refund(self, order: _Order, data: Mapping[str, Any]) -> _Refund:
        api_refund = data["api_refund"] if isinstance(data.get("api_refund"), bool) else True
        api_restock = _bool(data.get("api_restock", True), "api_restock")
        requested = data.get("line_items") or []
        if not isinstance(requested, list):
            raise _invalid("line_items")
        by_id = {line.id: line for line in order.lines}
        refund_lines: list[tuple[_Line, int, Decimal, Decimal]] = []
        computable = bool(requested)
        for item in requested:
            line = by_id.get(int(item.get("id", 0))) if isinstance(item, dict) else None
            if line is None:
                continue
            qty = int(item.get("quantity") or 0)
            try:
                total = _money(item["refund_total"])
            except (KeyError, ValueError):
                computable, total = False, Decimal(0)
            taxes = item.get("refund_tax") or []
            tax = sum((_money(t.get("refund_total", 0)) for t in taxes), Decimal(0))
            refund_lines.append((line, qty, total, tax))
        if data.get("amount") not in (None, ""):
            try:
                amount = _money(data["amount"])
            except ValueError:
                raise _invalid("amount") from None
        elif computable:
            amount = sum((t + x for _, _, t, x in refund_lines), Decimal(0))
        else:
            amount = Decimal(0)
        if amount < 0:
            raise _WooError(
                400,
                "woocommerce_rest_invalid_order_refund",
                "Refund amount must be greater than zero.",
            )
        remaining = order.total - order.refunded
        if amount.quantize(_CENT) > remaining.quantize(_CENT):
            raise _WooError(
                500, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount."
            )
        refund = _Refund(
            id=_next_id(),
            created=self.now(),
            amount=amount.quantize(_CENT),
            reason=str(data.get("reason") or ""),
            refunded_payment=False,
            meta=[],
            lines=[],
        )
        self._upsert_meta(refund.meta, data.get("meta_data") or [])
        for line, qty, total, tax in refund_lines:
            refund.lines.append(
                {
                    "id": _next_id(),
                    "name": line.name,
                    "product_id": line.product_id,
                    "variation_id": line.variation_id,
                    "quantity": -qty,
                    "tax_class": "",
                    "subtotal": _fmt(-total),
                    "subtotal_tax": _fmt(-tax),
                    "total": _fmt(-total),
                    "total_tax": _fmt(-tax),
                    "taxes": [{"id": 1, "total": _fmt(-tax), "subtotal": _fmt(-tax)}]
                    if tax
                    else [],
                    "meta_data": [
                        {"id": _next_id(), "key": "_refunded_item_id", "value": str(line.id)}
                    ],
                    "sku": line.sku,
                    "price": _number(-total / qty) if qty else 0,
                    "refund_total": _number(total),
                }
            )
        if api_refund:
            message = self._gateway_failure()
            if not order.payment_method:
                message = "The payment gateway for this order does not exist."
            call = GatewayRefund(
                order.id,
                refund.id,
                _fmt(amount),
                refund.reason,
                order.payment_method,
                order.transaction_id,
                message is None,
                message,
            )
            self._gateway_refunds.append(call)
            if message is not None:  # wc_create_refund deletes the refund
                raise _WooError(500, "woocommerce_rest_cannot_create_order_refund", message)
            refund.refunded_payment = True
            if order.payment_method.startswith("stripe"):
                self._upsert_meta(
                    order.meta,
                    [{"key": "_stripe_refund_id", "value": f"re_{secrets.token_hex(12)}"}],
                )
        if api_restock:
            for line, qty, _, _ in refund_lines:
                product = self._products.get(line.product_id)
                if product is not None and product.manage_stock and qty > 0:
                    product.stock_quantity = (product.stock_quantity or 0) + qty
        order.refunds.append(refund)
        if order.total - order.refunded <= 0 and order.status != "refunded":
            order.status = "refunded"
        order.modified = max(self.now(), order.modified)
        self._event(order, "order.updated")
        return refund

    def _gateway_failure(self) -> str | None:
        if self._gateway_failures:
            return self._gateway_failures.pop(0)
        return self._gateway_failure_sticky

    def _refund_json(self, refund: _Refund) -> JSON:
        return {
            "id": refund.id,
            "date_created": self._local(refund.created),
            "date_created_gmt": self._gmt(refund.created),
            "amount": _fmt(refund.amount),
            "reason": refund.reason,
            "refunded_by": 1,
            "refunded_payment": refund.refunded_payment,
            "meta_data": copy.deepcopy(refund.meta),
            "line_items": copy.deepcopy(refund.lines),
        }

    # ---- products, coupons, webhooks over REST -----------------------------------------------

    def _product_json(self, product: _Product) -> JSON:
        def terms(ids: list[int]) -> list[JSON]:
            names = [self._term_names[i] for i in ids]
            return [{"id": i, "name": n, "slug": _slug(n)} for i, n in zip(ids, names, strict=True)]

        in_stock = not product.manage_stock or (product.stock_quantity or 0) > 0
        return {
            "id": product.id,
            "name": product.name,
            "slug": _slug(product.name),
            "type": "simple",
            "status": "publish",
            "sku": product.sku,
            "price": _fmt(product.price),
            "regular_price": _fmt(product.price),
            "sale_price": "",
            "manage_stock": product.manage_stock,
            "stock_quantity": product.stock_quantity,
            "stock_status": "instock" if in_stock else "outofstock",
            "categories": terms(product.categories),
            "tags": terms(product.tags),
        }

    def _create_coupon(self, params: Mapping[str, Any]) -> _Coupon:
        code = str(params.get("code") or "").strip().lower()
        if not code:
            raise _WooError(400, "rest_missing_callback_param", "Missing parameter(s): code")
        if any(c.code == code for c in self._coupons.values()):
            raise _WooError(
                400,
                "woocommerce_rest_coupon_code_already_exists",
                "The coupon code already exists",
            )
        discount_type = str(params.get("discount_type") or "fixed_cart")
        if discount_type not in ("fixed_cart", "percent", "fixed_product"):
            raise _invalid("discount_type")
        try:
            amount = _money(params.get("amount") or "0")
        except ValueError:
            raise _invalid("amount") from None
        limit = params.get("usage_limit")
        per_user = params.get("usage_limit_per_user")
        expires = params.get("date_expires")
        now = self.now()
        coupon = _Coupon(
            id=_next_id(),
            code=code,
            amount=amount,
            discount_type=discount_type,
            description=str(params.get("description") or ""),
            usage_limit=int(limit) if limit not in (None, "") else None,
            usage_limit_per_user=int(per_user) if per_user not in (None, "") else None,
            email_restrictions=[str(e).lower() for e in params.get("email_restrictions") or []],
            individual_use=bool(params.get("individual_use", False)),
            free_shipping=bool(params.get("free_shipping", False)),
            date_expires=self._date_param({"d": expires}, "d", False) if expires else None,
            meta=[],
            created=now,
            modified=now,
        )
        self._upsert_meta(coupon.meta, params.get("meta_data") or [])
        self._coupons[coupon.id] = coupon
        return coupon

    def _list_coupons(
        self, route: str, query: Mapping[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        coupons = sorted(self._coupons.values(), key=lambda c: (c.created, c.id), reverse=True)
        if query.get("code"):
            coupons = [c for c in coupons if c.code == query["code"].strip().lower()]
        if query.get("search"):
            coupons = [c for c in coupons if query["search"].lower() in c.code]
        return self._page(route, query, coupons, self._coupon_json)

    def _coupon_json(self, coupon: _Coupon) -> JSON:
        return {
            "id": coupon.id,
            "code": coupon.code,
            "amount": _fmt(coupon.amount),
            "status": "publish",
            "date_created": self._local(coupon.created),
            "date_created_gmt": self._gmt(coupon.created),
            "date_modified": self._local(coupon.modified),
            "date_modified_gmt": self._gmt(coupon.modified),
            "discount_type": coupon.discount_type,
            "description": coupon.description,
            "date_expires": self._local(coupon.date_expires),
            "date_expires_gmt": self._gmt(coupon.date_expires),
            "usage_count": coupon.usage_count,
            "individual_use": coupon.individual_use,
            "product_ids": [],
            "excluded_product_ids": [],
            "usage_limit": coupon.usage_limit,
            "usage_limit_per_user": coupon.usage_limit_per_user,
            "limit_usage_to_x_items": None,
            "free_shipping": coupon.free_shipping,
            "product_categories": [],
            "excluded_product_categories": [],
            "exclude_sale_items": False,
            "minimum_amount": "0.00",
            "maximum_amount": "0.00",
            "email_restrictions": list(coupon.email_restrictions),
            "used_by": list(coupon.used_by),
            "meta_data": copy.deepcopy(coupon.meta),
        }

    def _rest_update_webhook(self, hook: _Webhook, data: Mapping[str, Any]) -> None:
        if "topic" in data and data["topic"] != hook.topic:
            probe = self._new_webhook({**data, "delivery_url": "x", "status": "paused"})
            del self._webhooks[probe.id]
            hook.topic = str(data["topic"])
        for name in ("name", "delivery_url", "secret"):
            if data.get(name):
                setattr(hook, name, str(data[name]))
        if "status" in data:
            status = str(data["status"])
            if status not in ("active", "paused", "disabled"):
                raise _invalid("status")
            if status == "active" and hook.status != "active":
                hook.failure_count = 0
                self._ping(hook)
            hook.status = status
        hook.modified = self.now()

    def _webhook_json(self, hook: _Webhook) -> JSON:
        resource, event = hook.topic.split(".", 1)
        return {
            "id": hook.id,
            "name": hook.name,
            "status": hook.status,
            "topic": hook.topic,
            "resource": resource,
            "event": event,
            "hooks": [f"woocommerce_{event}_{resource}"],
            "delivery_url": hook.delivery_url,
            "date_created": self._local(hook.created),
            "date_created_gmt": self._gmt(hook.created),
            "date_modified": self._local(hook.modified),
            "date_modified_gmt": self._gmt(hook.modified),
        }


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_NO_ROUTE = {
    "code": "rest_no_route",
    "message": "No route was found matching the URL and request method.",
    "data": {"status": 404},
}


def _AUTH_ERROR(message: str) -> _WooError:
    return _WooError(401, "woocommerce_rest_authentication_error", message)


def _invalid(name: str, **params: str) -> _WooError:
    detail = params or {name: f"Invalid parameter {name}."}
    return _WooError(400, "rest_invalid_param", f"Invalid parameter(s): {name}", params=detail)


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json; charset=UTF-8", "X-Robots-Tag": "noindex"}


def _read_body(headers: Mapping[str, str], body: bytes) -> JSON:
    if not body:
        return {}
    if "json" in headers.get("content-type", "") or body[:1] in (b"{", b"["):
        try:
            data = json.loads(body)
        except ValueError:
            raise _WooError(400, "rest_invalid_json", "Invalid JSON body passed.") from None
        if not isinstance(data, dict):
            raise _WooError(400, "rest_invalid_json", "Invalid JSON body passed.")
        return data
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise _invalid(name)


def _int_param(
    query: Mapping[str, str], name: str, default: int, minimum: int | None = None
) -> int:
    value = query.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise _invalid(name) from None
    if minimum is not None and number < minimum:
        raise _invalid(name)
    return number


def _list_param(query: Mapping[str, str], name: str) -> list[str]:
    values = [v for k, v in query.items() if k == name or k.startswith(name + "[")]
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]


def _id_list_param(query: Mapping[str, str], name: str) -> set[int]:
    """A list of ids (``wp_parse_id_list``); anything but whole numbers is invalid."""
    values = _list_param(query, name)
    if not all(v.isdigit() for v in values):
        raise _invalid(name)
    return {int(v) for v in values}


# ---- order creation: schema checks and items -----------------------------------------------

CREATABLE_STATUSES = tuple(s for s in ORDER_STATUSES if s != "trash")
# The statuses payment_complete() acts on (woocommerce_valid_order_statuses_for_payment_complete).
_PAYABLE = ("on-hold", "pending", "failed", "cancelled")
_ITEM_KEYS_NULL_REMOVES = ("product_id", "method_id", "method_title", "name", "code")
_AMOUNT = re.compile(r"\s*-?(\d+(\.\d*)?|\.\d+)\s*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _order_problems(data: Mapping[str, Any]) -> dict[str, str]:
    """What WordPress's schema check says of a create-order body: the first problem of each
    param, in schema order (an empty dict: all good). Only what the fake reads is checked.
    Stricter than WordPress on two points, by design: a line's quantity must be at least 1
    (WooCommerce drops a line of 0 and keeps a negative one) and a money string must be a
    number (WooCommerce reads ``"abc"`` as 0)."""
    problems: dict[str, str] = {}

    def check(name: str, problem: str | None) -> None:
        if problem is not None and name not in problems:
            problems[name] = problem

    def items(name: str) -> list[tuple[str, Any]]:
        value = data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            check(name, f"{name} is not of type array.")
            return []
        for i, item in enumerate(value):
            check(name, _type_problem(item, "object", f"{name}[{i}]"))
        return [(f"{name}[{i}]", item) for i, item in enumerate(value) if isinstance(item, dict)]

    check("parent_id", _type_problem(data.get("parent_id"), "integer", "parent_id"))
    status = data.get("status")
    if status is not None and status not in CREATABLE_STATUSES:
        check("status", f"status is not one of {', '.join(CREATABLE_STATUSES)}.")
    currency = data.get("currency")
    if currency is not None and not re.fullmatch("[A-Z]{3}", str(currency)):
        check("currency", "currency is not one of the store's currency codes.")
    check("customer_id", _type_problem(data.get("customer_id"), "integer", "customer_id"))
    check("customer_note", _type_problem(data.get("customer_note"), "string", "customer_note"))
    for name in ("billing", "shipping"):
        address = data.get(name)
        check(name, _type_problem(address, "object", name))
        for key, value in address.items() if isinstance(address, dict) else ():
            if key == "email" and value is None:
                continue
            check(name, _type_problem(value, "string", f"{name}[{key}]"))
            if key == "email" and isinstance(value, str) and value:
                check(name, None if _EMAIL.fullmatch(value) else "Invalid email address.")
    for name in ("payment_method", "payment_method_title", "transaction_id"):
        check(name, _type_problem(data.get(name), "string", name))
    for label, meta in items("meta_data"):
        check("meta_data", _type_problem(meta.get("key", 0), "string", f"{label}[key]"))
    for label, line in items("line_items"):
        for key in ("product_id", "variation_id"):
            check("line_items", _type_problem(line.get(key), "integer", f"{label}[{key}]"))
        quantity = line.get("quantity")
        problem = _type_problem(quantity, "integer", f"{label}[quantity]")
        if problem is None and quantity is not None and int(quantity) < 1:
            problem = f"{label}[quantity] must be greater than or equal to 1"
        check("line_items", problem)
        check("line_items", _type_problem(line.get("sku"), "string", f"{label}[sku]"))
        for key in ("subtotal", "total"):
            check("line_items", _amount_problem(line.get(key), f"{label}[{key}]"))
    for name in ("shipping_lines", "fee_lines"):
        for label, line in items(name):
            check(name, _amount_problem(line.get("total"), f"{label}[total]"))
    items("coupon_lines")
    if "set_paid" in data:
        try:
            _bool(data["set_paid"], "set_paid")
        except _WooError:
            check("set_paid", "set_paid is not of type boolean.")
    return problems


def _type_problem(value: Any, kind: str, label: str) -> str | None:
    """``None`` when ``value`` is absent or of the JSON-schema ``kind`` as WordPress reads it
    (an integer may come as a string of digits)."""
    if value is None:
        return None
    if kind == "integer":
        ok = not isinstance(value, bool) and (
            isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))
        )
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "object":
        ok = isinstance(value, dict)
    else:
        raise ValueError(kind)
    return None if ok else f"{label} is not of type {kind}."


def _amount_problem(value: Any, label: str) -> str | None:
    """Money in an item is a string (the schema's type), and here it must be a number."""
    problem = _type_problem(value, "string", label)
    if problem is None and value is not None and not _AMOUNT.fullmatch(value):
        return f"{label} is not a number."
    return problem


def _removes_item(item: Mapping[str, Any]) -> bool:
    """``item_is_null``: a resource key given as null removes the item (none, on create)."""
    return any(k in item and item[k] is None for k in _ITEM_KEYS_NULL_REMOVES)


def _rest_shipping_line(item: Mapping[str, Any]) -> _ShippingLine:
    if not item.get("method_id"):
        raise _WooError(
            400, "woocommerce_rest_invalid_shipping_item", "Shipping method ID is required."
        )
    total = _cents(_money(item["total"])) if item.get("total") is not None else Decimal(0)
    return _ShippingLine(
        _next_id(), str(item["method_id"]), str(item.get("method_title") or ""), total
    )


def _rest_fee(item: Mapping[str, Any]) -> _Fee:
    if not item.get("name"):
        raise _WooError(400, "woocommerce_rest_invalid_fee_item", "Fee name is required.")
    total = _cents(_money(item["total"])) if item.get("total") is not None else Decimal(0)
    return _Fee(_next_id(), str(item["name"]), total)


def _cap_negative_fees(order: _Order) -> None:
    """``calculate_totals``: a negative fee takes at most what the lines, the fees before it
    and shipping come to, so a credit never makes the order total negative."""
    cart = sum((line.total for line in order.lines), Decimal(0))
    fees = Decimal(0)
    for fee in order.fees:
        limit = -_cents(cart + fees + order.shipping_total)
        if fee.total < 0 and fee.total < limit < 0:
            fee.total = limit
        fees += fee.total


def _set_created_status(order: _Order, status: str, needs_processing: bool, now: datetime) -> None:
    """``WC_Order::set_status`` on a new order, with ``maybe_set_date_paid`` and
    ``maybe_set_date_completed``: processing (when something ships) or completed means paid."""
    if status == order.status:
        return
    order.status = status
    if order.paid is None and (
        status == "completed" or (status == "processing" and needs_processing)
    ):
        order.paid = now
    if status == "completed":
        order.completed = now


def _cents(amount: Decimal) -> Decimal:
    """Rounded to the store's 2 decimals as PHP's ``round`` does (halves away from zero)."""
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _within(moment: datetime, after: datetime | None, before: datetime | None) -> bool:
    return (after is None or moment > after) and (before is None or moment < before)


class _Handler(FakeHandler):
    server_version = "nginx"

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_OPTIONS(self) -> None:
        self._serve("OPTIONS")
