"""A fake Shopify Admin API (GraphQL, OAuth, bulk files, webhooks) on 127.0.0.1, for tests.

The service sends every Admin and OAuth call to ``RMA_SHOPIFY_API_BASE`` instead of
``https://{shop}``, with Shopify's paths, so a test points that setting at ``fake.base_url``::

    with FakeShopify() as fake:
        shop = fake.add_shop("acme.myshopify.com")
        token = fake.issue_token(shop)
        order_gid = fake.create_order(shop, email="ann@example.com")
        body = httpx.post(
            fake.graphql_url(),
            headers={"X-Shopify-Access-Token": token},
            json={"query": "query($id: ID!) { order(id: $id) { name } }",
                  "variables": {"id": order_gid}},
        ).json()
        assert fake.server_errors() == []

What it implements, and how closely it follows Shopify (facts: platforms.md §1):

* ``POST /admin/api/{YYYY-MM}/graphql.json`` with ``X-Shopify-Access-Token``. The token alone
  names the shop. A missing, unknown, expired or revoked token gets Shopify's 401 body. Any
  ``YYYY-MM`` (or ``unstable``) is accepted and echoed in ``X-Shopify-API-Version``.
* OAuth: ``GET /admin/oauth/authorize`` answers a JSON description of the pending approval;
  ``approve_install`` plays the merchant and returns the callback URL with ``code``, ``host``,
  ``shop``, ``state``, ``timestamp`` and ``hmac`` (hex, computed like ShopifyAPI 12.7.0's
  ``Session.calculate_hmac``; see ``oauth_hmac``). ``POST /admin/oauth/access_token`` (form or
  JSON) exchanges a code once (codes live 10 minutes), with ``expiring=1`` for expiring offline
  tokens (1 h, with a 90-day refresh token) and ``grant_options[]=per-user`` for online tokens.
  ``grant_type=refresh_token`` rotates: the previous refresh token stays valid until the new one
  is used (Shopify's rule since 2026-08-28), then it is ``invalid_grant``. Bad client
  credentials get 401 ``invalid_client``. Expiry follows the fake's wall clock (``advance_time``).
* GraphQL documents are parsed with graphql-core and resolved by hand against a field table per
  type: variables, defaults, aliases, named and inline fragments, ``__typename``, ``@skip`` and
  ``@include``. Only selected fields come back. Shopify's validation errors (HTTP 200, no
  ``data``): ``undefinedField``, ``argumentNotAccepted``, ``missingRequiredArguments``,
  ``selectionMismatch``, syntax errors, connections without ``first``/``last`` or with more than
  250. Top-level fields check access scopes (``ACCESS_DENIED``); without ``read_all_orders``
  only orders created in the last 60 days are visible.
* Cost, a simplification of Shopify's: scalars and enums 0; an object 1; a connection (or a
  list of objects taking ``first``) 2 + n x (cost of one node); a plain list of objects
  1 + (cost of one element); ``pageInfo``, edges and ``userErrors`` are free; a mutation 10 +
  its selection. ``requestedQueryCost`` uses the ``first`` values, ``actualQueryCost`` what was
  returned; the bucket is charged the requested cost and refunded the difference. Each shop has
  a bucket (``maximumAvailable``, refilled at ``restoreRate`` points/s on ``time.monotonic``).
  Requested > 1000 is ``MAX_COST_EXCEEDED``; requested > currently available is ``THROTTLED``
  (HTTP 200, no data, ``actualQueryCost: null``). Every response has ``extensions.cost``.
* ``orders(first, after, query, sortKey: ID|CREATED_AT|UPDATED_AT|PROCESSED_AT, reverse)``:
  cursors are base64 of ``{"last_id", "last_value"}`` (the sort value and id), so paging stays
  stable when an order changes meanwhile (it moves to its new place; none is skipped). The
  search syntax supports ``updated_at``/``created_at``/``processed_at`` (``>``, ``>=``, ``<``,
  ``<=``, ``:``; quoted or not), ``id``, ``name``, ``email``, ``tag``, ``financial_status``,
  ``status`` and ``test``, joined by spaces or ``AND``; other terms are ignored. Timestamps have
  whole-second precision, as Shopify prints them. ``ordersCount`` caps at ``limit`` (default
  10,000, precision ``AT_LEAST``). Only forward paging (``first``/``after``) is supported.
* Mutations: ``refundCreate`` and ``inventoryAdjustQuantities`` need ``@idempotent(key:)`` from
  2026-04 (``BAD_REQUEST`` without it). The first result under a key is kept per shop and
  replayed for the same key and the same arguments; the same key with other arguments is a
  top-level ``IDEMPOTENCY_KEY_PARAMETER_MISMATCH`` error (the fake's own code name). Requests
  execute one at a time under a lock, so concurrent requests with one key never both run.
  ``refundCreate`` checks its input as Shopify does (userErrors, nothing refunded): each
  transaction's parent is a successful SALE/CAPTURE of the order with enough left and the same
  gateway, quantities within what is refundable; RETURN/CANCEL restocks (at ``locationId`` or
  the primary location). ``inventoryAdjustQuantities`` needs the ``changeFromQuantity`` key on
  every change from 2026-04 (``INVALID_INPUT`` when missing, ``CHANGE_FROM_QUANTITY_STALE`` when
  stale). ``storeCreditAccountCredit`` has no idempotency: each call credits again. Also
  ``webhookSubscriptionCreate`` (https URIs only, as Shopify), ``bulkOperationRunQuery``,
  ``returnCreate``/``returnApproveRequest``/``returnDeclineRequest``/``returnClose``/
  ``returnCancel``. As in the real schema, the ``StoreCreditAccountTransaction`` interface has
  no ``id``: select it in ``... on StoreCreditAccountCreditTransaction``.
* Draft orders (``read_draft_orders``/``write_draft_orders``, separate from the orders scopes as
  on Shopify): ``draftOrderCreate(input:)`` takes ``email``, ``note``, ``tags``,
  ``presentmentCurrencyCode``, ``customAttributes``, ``appliedDiscount`` (``value``,
  ``valueType`` FIXED_AMOUNT|PERCENTAGE, ``title``, ``description``; one per draft, none per
  line) and ``lineItems``: with ``variantId`` the variant's price and product title are used
  (``title``/``sku``/``originalUnitPrice`` ignored; ``priceOverride { amount }`` replaces the
  price); without it a custom line needs ``title`` and ``originalUnitPrice`` (or
  ``originalUnitPriceWithCurrency``), ``sku`` optional. userErrors (nothing created): no lines,
  quantity < 1, unknown variant, missing title or price, a negative price or discount, a
  percentage above 100, a fixed discount above the subtotal. Drafts are named ``#D1``, ``#D2``...
  per shop; subtotal = sum of the lines, total = subtotal - discount, no tax or shipping.
  ``draftOrderComplete(id, paymentPending, paymentGatewayId, sourceName)`` makes a real order
  with the shop's next order name (lines, discount spread over them, email, note, tags,
  ``customAttributes``, REST ``note_attributes``; custom lines have no variant), sends
  ``orders/create``, and is PAID (one ``manual`` SALE for the total) or, with
  ``paymentPending: true``, PENDING (no transaction); the draft goes OPEN -> COMPLETED and
  completing it again is a userError. ``draftOrder(id)`` and ``draftOrders(first, after, query,
  sortKey: ID|NUMBER|UPDATED_AT, reverse)`` page like ``orders``; their search supports
  ``status``, ``tag``, ``id``, ``name``, ``email``, ``created_at`` and ``updated_at``.
* Bulk queries run in a background thread (``complete_bulk_immediately`` runs them inline,
  ``hold_bulk_operations`` keeps them RUNNING until ``finish_bulk``) and write JSONL: one line
  per root object without its nested connections, then one line per nested node with
  ``__parentId``; plain lists stay inline. At most 5 connections, nested at most 2 deep. The
  file is streamed (chunked) from ``GET /bulk/{id}.jsonl``; ``url`` is null without objects.
* Webhooks the shop would send are recorded as ``FakeWebhook`` (REST bodies, Shopify's headers,
  HMAC keyed by the installed app's secret) whether or not anyone subscribed; ``uris`` lists
  the addresses subscribed at trigger time. Orders send ``orders/create`` (also when completed
  from a draft; drafts themselves send nothing), ``orders/updated`` (also after a refund or
  cancel) and ``orders/cancelled``; refunds ``refunds/create``; stock
  changes ``inventory_levels/update``; returns ``returns/request|approve|decline|close|cancel``;
  bulk queries ``bulk_operations/finish``; ``uninstall`` ``app/uninstalled``.
  ``deliver``/``redeliver`` POST them with httpx.
* Faults (``inject``): 500 (JSON), 502/503 (HTML pages, as from Shopify's edge), 429
  (``Retry-After: 1.0``), ``timeout`` (held, never executed), ``drop`` (closed unanswered, not
  executed), ``drop_after_execute`` and ``throttle``. ``requests()`` logs every request and
  ``server_errors()`` every exception inside the fake (a test should assert it is empty).

Data: lines with the same SKU share one variant and inventory item, stocked 10 at the primary
location; the variant's price is that of the first line naming the SKU (``add_variant`` makes
one up front, ``variant_gid`` finds it). Simplifications: amounts are decimals without exchange
rates (an order in another currency than the shop's shows the same amounts in ``shopMoney`` and
``presentmentMoney``); taxes are never included in prices; one fulfillment per delivered order;
no REST Admin API.

The server is a ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) in a background thread; the
control API is thread-safe and returns copies (dicts or frozen records) of the fake's objects.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import functools
import hashlib
import hmac
import itertools
import json
import operator
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import graphql
import httpx
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
)
from graphql.pyutils import Undefined
from graphql.utilities import value_from_ast_untyped

from core.clock import SYSTEM_CLOCK, Clock
from testkit.fakes.http_server import FakeHandler, FakeServer, Outcome, Response, ServerErrors

JSON = dict[str, Any]

DEFAULT_API_VERSION = "2026-07"
MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
CODE_TTL = timedelta(minutes=10)
ACCESS_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 7_776_000
ONLINE_TOKEN_TTL = 86_399
ORDER_HISTORY = timedelta(days=60)
ORDERS_COUNT_LIMIT = 10_000
BULK_CHUNK = 500
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"

FAULT_KINDS = ("500", "502", "503", "429", "timeout", "drop", "drop_after_execute", "throttle")
FAULT_ENDPOINTS = ("graphql", "oauth", "bulk", "any")

DEFAULT_SCOPES = (
    "read_all_orders",
    "read_customers",
    "read_draft_orders",
    "read_inventory",
    "read_locations",
    "read_orders",
    "read_returns",
    "read_store_credit_account_transactions",
    "write_draft_orders",
    "write_inventory",
    "write_orders",
    "write_returns",
    "write_store_credit_account_transactions",
)

WEBHOOK_TOPICS = {
    topic.upper().replace("/", "_"): topic
    for topic in (
        "app/uninstalled",
        "bulk_operations/finish",
        "customers/create",
        "customers/update",
        "inventory_levels/update",
        "order_transactions/create",
        "orders/cancelled",
        "orders/create",
        "orders/edited",
        "orders/fulfilled",
        "orders/paid",
        "orders/updated",
        "refunds/create",
        "returns/approve",
        "returns/cancel",
        "returns/close",
        "returns/decline",
        "returns/process",
        "returns/reopen",
        "returns/request",
        "returns/update",
        "reverse_deliveries/attach_deliverable",
        "reverse_fulfillment_orders/dispose",
    )
}
"""``WebhookSubscriptionTopic`` enum value -> topic as sent in ``X-Shopify-Topic``."""

COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")

ZERO_DECIMAL_CURRENCIES = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)

GATEWAY_NAMES = {
    "shopify_payments": "Shopify Payments",
    "gift_card": "Gift card",
    "paypal": "PayPal Express Checkout",
    "manual": "Manual",
    "bogus": "Bogus",
}

INVENTORY_REASONS = frozenset(
    [
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_canceled",
        "movement_created",
        "movement_received",
        "movement_updated",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    ]
)

_IDS = itertools.count(820_982_911_946_154_508, 7_919)
"""Object ids: large, increasing, unique across all fakes in the process (like Shopify's)."""


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeShop:
    """A shop on the fake. Pass it (or its domain) to the control API."""

    domain: str
    id: int
    gid: str
    primary_location_gid: str
    name: str
    currency: str


@dataclass(frozen=True, eq=False)
class FakeWebhook:
    """One webhook the shop sent (or would send): raw body bytes and Shopify's headers."""

    topic: str
    shop: str
    body: bytes
    headers: dict[str, str]
    event_id: str
    uris: tuple[str, ...] = ()
    """Addresses subscribed to the topic when it was triggered (empty: nobody listens)."""

    @property
    def webhook_id(self) -> str:
        return self.headers["X-Shopify-Webhook-Id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ShopifyRequest:
    """One HTTP request the fake received, whatever became of it."""

    method: str
    path: str
    shop: str | None
    operations: tuple[str, ...]
    """Top-level field names of the GraphQL operation (e.g. ``("orders",)``)."""
    variables: JSON
    headers: dict[str, str]
    status: int | None = None
    api_version: str | None = None
    operation_name: str | None = None
    idempotency_keys: tuple[str, ...] = ()
    fault: str | None = None
    delivered: bool = False
    """False when no response was written (timeout, drop, drop_after_execute)."""
    executed: bool = False
    at: float = 0.0


@dataclass
class ShopifyFault:
    """A queued fault; returned by ``FakeShopify.inject`` (``hits`` counts how often it fired)."""

    kind: str
    shop: str | None
    operation: str | None
    endpoint: str
    times: int | None
    delay: float
    hits: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else self.times - self.hits

    def matches(self, endpoint: str, shop: str | None, operations: Sequence[str]) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.endpoint not in ("any", endpoint):
            return False
        if self.shop is not None and self.shop != shop:
            return False
        return self.operation is None or self.operation in operations


def sign_webhook(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256`` for ``body``: base64 HMAC-SHA256 keyed by the app secret."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def oauth_hmac(params: Mapping[str, Any], secret: str) -> str:
    """The OAuth callback ``hmac``: hex HMAC-SHA256 over every other param, Shopify's way.

    Each param becomes ``k=v`` (``%`` -> ``%25`` in both, ``=`` -> ``%3D`` in keys, then
    ``&`` -> ``%26``; ``foo[]`` lists become ``foo=["1", "2"]``), sorted and joined by ``&`` -
    the same as ShopifyAPI 12.7.0's ``Session.calculate_hmac``.
    """
    pairs = []
    for key, value in params.items():
        if key == "hmac":
            continue
        if key.endswith("[]"):
            key = key.rstrip("[]")
            value = json.dumps([str(v) for v in value])
        key_text = str(key).replace("%", "%25").replace("=", "%3D")
        pairs.append(f"{key_text}={str(value).replace('%', '%25')}".replace("&", "%26"))
    message = "&".join(sorted(pairs))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------
# Values: ids, money, time
# --------------------------------------------------------------------------------------------

_GID = re.compile(r"gid://shopify/(?P<type>[A-Za-z]+)/(?P<id>\d+)(?:\?.*)?")


def _gid(typename: str, number: int) -> str:
    return f"gid://shopify/{typename}/{number}"


def _parse_gid(value: Any) -> tuple[str, int] | None:
    match = _GID.fullmatch(value) if isinstance(value, str) else None
    return (match["type"], int(match["id"])) if match else None


def _gid_number(value: Any, typename: str) -> int | None:
    parsed = _parse_gid(value)
    return parsed[1] if parsed is not None and parsed[0] == typename else None


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount


def _decimal_text(amount: Decimal) -> str:
    """Shopify's GraphQL ``Decimal``: "404.95", "19.0", "1200.0" (at least one decimal)."""
    text = format(amount.normalize(), "f")
    return text if "." in text else f"{text}.0"


def _rest_amount(amount: Decimal, currency: str) -> str:
    """REST money strings: "404.95", "0.00"; no decimals for zero-decimal currencies."""
    places = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    return f"{amount:.{places}f}"


def _round_money(amount: Decimal, currency: str) -> Decimal:
    exponent = Decimal(1) if currency in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    return amount.quantize(exponent)


def _iso(moment: datetime | None) -> str | None:
    """GraphQL ``DateTime``: ``2024-01-31T09:30:00Z``."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rest_time(moment: datetime | None) -> str | None:
    """REST timestamps carry an offset: ``2024-01-31T09:30:00+00:00``."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _json_value(value: Any) -> Any:
    """An internal value as it appears in a GraphQL response."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    return value


@functools.lru_cache(maxsize=512)
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _at_least(version: str, minimum: str) -> bool:
    """``version`` is ``minimum`` or later (``unstable`` is later than everything)."""
    return version == "unstable" or version >= minimum


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------------------------
# Internal records (what the shop holds; the GraphQL layer reads them through _SCHEMA)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Record:
    id: int
    typename: ClassVar[str] = "Node"

    @property
    def gid(self) -> str:
        return _gid(self.typename, self.id)


@dataclass(slots=True, eq=False)
class _Location(_Record):
    typename: ClassVar[str] = "Location"
    name: str
    is_active: bool = True


@dataclass(slots=True, eq=False)
class _Customer(_Record):
    typename: ClassVar[str] = "Customer"
    email: str | None
    first_name: str | None
    last_name: str | None

    @property
    def display_name(self) -> str:
        names = [n for n in (self.first_name, self.last_name) if n]
        return " ".join(names) or (self.email or "")


@dataclass(slots=True, eq=False)
class _InventoryItem(_Record):
    typename: ClassVar[str] = "InventoryItem"
    sku: str
    tracked: bool = True


@dataclass(slots=True, eq=False)
class _Product(_Record):
    typename: ClassVar[str] = "Product"
    title: str
    product_type: str
    tags: tuple[str, ...]


@dataclass(slots=True, eq=False)
class _Variant(_Record):
    typename: ClassVar[str] = "ProductVariant"
    sku: str
    title: str
    product: _Product
    inventory_item: _InventoryItem
    price: Decimal = Decimal(0)


@dataclass(slots=True, eq=False)
class _Line(_Record):
    typename: ClassVar[str] = "LineItem"
    variant: _Variant | None
    title: str
    quantity: int
    price: Decimal
    discount: Decimal
    tax: Decimal
    tax_rate: Decimal
    requires_shipping: bool
    currency: str
    refunded: int = 0
    custom_sku: str | None = None
    """The SKU of a custom line item (one without a variant, e.g. from a draft order)."""

    @property
    def sku(self) -> str | None:
        return self.variant.sku if self.variant is not None else self.custom_sku

    @property
    def refundable_quantity(self) -> int:
        return self.quantity - self.refunded

    @property
    def current_quantity(self) -> int:
        return self.quantity - self.refunded

    @property
    def unit_discounted(self) -> Decimal:
        return _round_money(self.price - self.discount / self.quantity, self.currency)

    def share(self, quantity: int) -> tuple[Decimal, Decimal]:
        """(subtotal, tax) of ``quantity`` units, discounts applied."""
        subtotal = _round_money(
            (self.price * self.quantity - self.discount) * quantity / self.quantity, self.currency
        )
        return subtotal, _round_money(self.tax * quantity / self.quantity, self.currency)


@dataclass(slots=True, eq=False)
class _Txn(_Record):
    typename: ClassVar[str] = "OrderTransaction"
    kind: str
    status: str
    gateway: str
    amount: Decimal
    currency: str
    processed_at: datetime
    parent_transaction: _Txn | None
    test: bool
    payment_id: str

    @property
    def formatted_gateway(self) -> str:
        return GATEWAY_NAMES.get(self.gateway, self.gateway.replace("_", " ").title())

    @property
    def receipt_json(self) -> str:
        return json.dumps({"gateway": self.gateway, "amount": str(self.amount)})

    @property
    def settled(self) -> bool:
        """A successful sale or capture: money a refund can go back against."""
        return self.status == "SUCCESS" and self.kind in ("SALE", "CAPTURE")


@dataclass(slots=True, eq=False)
class _FulfillmentLine(_Record):
    typename: ClassVar[str] = "FulfillmentLineItem"
    line_item: _Line
    quantity: int


@dataclass(slots=True, eq=False)
class _Fulfillment(_Record):
    typename: ClassVar[str] = "Fulfillment"
    status: str
    created_at: datetime
    delivered_at: datetime | None
    fulfillment_line_items: list[_FulfillmentLine]

    @property
    def display_status(self) -> str:
        return "DELIVERED" if self.delivered_at is not None else "FULFILLED"


@dataclass(slots=True, eq=False)
class _RefundLine(_Record):
    typename: ClassVar[str] = "RefundLineItem"
    line_item: _Line
    quantity: int
    restock_type: str
    location: _Location | None
    subtotal: Decimal
    tax: Decimal

    @property
    def currency(self) -> str:
        return self.line_item.currency

    @property
    def restocked(self) -> bool:
        return self.restock_type != "NO_RESTOCK"


@dataclass(slots=True, eq=False)
class _Refund(_Record):
    typename: ClassVar[str] = "Refund"
    order: _Order
    created_at: datetime
    note: str | None
    refund_line_items: list[_RefundLine]
    transactions: list[_Txn]
    shipping: Decimal
    return_: _Return | None = None

    @property
    def currency(self) -> str:
        return self.order.currency

    @property
    def updated_at(self) -> datetime:
        return self.created_at

    @property
    def total(self) -> Decimal:
        return sum((t.amount for t in self.transactions if t.status == "SUCCESS"), Decimal(0))


@dataclass(slots=True, eq=False)
class _ReturnLine(_Record):
    typename: ClassVar[str] = "ReturnLineItem"
    fulfillment_line_item: _FulfillmentLine
    quantity: int
    return_reason: str
    return_reason_note: str


@dataclass(slots=True, eq=False)
class _Return(_Record):
    typename: ClassVar[str] = "Return"
    order: _Order
    name: str
    status: str
    return_line_items: list[_ReturnLine]
    created_at: datetime
    closed_at: datetime | None = None
    decline: JSON | None = None

    @property
    def total_quantity(self) -> int:
        return sum(line.quantity for line in self.return_line_items)


@dataclass(slots=True, eq=False)
class _Order(_Record):
    typename: ClassVar[str] = "Order"
    name: str
    email: str | None
    customer: _Customer | None
    currency: str
    created_at: datetime
    processed_at: datetime
    updated_at: datetime
    line_items: list[_Line]
    shipping: Decimal
    transactions: list[_Txn]
    test: bool = False
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    shipping_address: JSON | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None
    custom_attributes: list[JSON] = field(default_factory=list)
    refunds: list[_Refund] = field(default_factory=list)
    returns: list[_Return] = field(default_factory=list)
    fulfillments: list[_Fulfillment] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((li.price * li.quantity - li.discount for li in self.line_items), Decimal(0))

    @property
    def total_tax(self) -> Decimal:
        return sum((li.tax for li in self.line_items), Decimal(0))

    @property
    def total_discounts(self) -> Decimal:
        return sum((li.discount for li in self.line_items), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping + self.total_tax

    def _sum(self, kinds: tuple[str, ...]) -> Decimal:
        return sum(
            (t.amount for t in self.transactions if t.status == "SUCCESS" and t.kind in kinds),
            Decimal(0),
        )

    @property
    def received(self) -> Decimal:
        return self._sum(("SALE", "CAPTURE"))

    @property
    def refunded(self) -> Decimal:
        return self._sum(("REFUND",))

    @property
    def shipping_refunded(self) -> Decimal:
        return sum((r.shipping for r in self.refunds), Decimal(0))

    @property
    def current_total(self) -> Decimal:
        removed = sum(
            (rl.subtotal + rl.tax for r in self.refunds for rl in r.refund_line_items), Decimal(0)
        )
        return self.total - removed - self.shipping_refunded

    @property
    def financial_status(self) -> str:
        received, refunded = self.received, self.refunded
        if received == 0:
            return "VOIDED" if self.cancelled_at is not None else "PENDING"
        if refunded == 0:
            return "PAID"
        return "REFUNDED" if refunded >= received else "PARTIALLY_REFUNDED"

    @property
    def fulfillment_status(self) -> str:
        return "FULFILLED" if self.fulfillments else "UNFULFILLED"

    def refundable(self, parent: _Txn) -> Decimal:
        """What is left to refund against a sale or capture."""
        spent = sum(
            (
                t.amount
                for t in self.transactions
                if t.parent_transaction is parent and t.kind == "REFUND" and t.status == "SUCCESS"
            ),
            Decimal(0),
        )
        return parent.amount - spent

    def find_line(self, gid: Any) -> _Line | None:
        number = _gid_number(gid, "LineItem")
        return next((li for li in self.line_items if li.id == number), None)

    def find_txn(self, gid: Any) -> _Txn | None:
        number = _gid_number(gid, "OrderTransaction")
        return next((t for t in self.transactions if t.id == number), None)

    def find_fulfillment_line(self, gid: Any) -> _FulfillmentLine | None:
        number = _gid_number(gid, "FulfillmentLineItem")
        lines = (fl for f in self.fulfillments for fl in f.fulfillment_line_items)
        return next((fl for fl in lines if fl.id == number), None)

    def returnable(self, fulfillment_line: _FulfillmentLine) -> int:
        taken = sum(
            rl.quantity
            for r in self.returns
            if r.status not in ("CANCELED", "DECLINED")
            for rl in r.return_line_items
            if rl.fulfillment_line_item is fulfillment_line
        )
        return max(0, min(fulfillment_line.quantity, fulfillment_line.line_item.quantity) - taken)


@dataclass(slots=True, eq=False)
class _DraftLine(_Record):
    typename: ClassVar[str] = "DraftOrderLineItem"
    variant: _Variant | None
    title: str
    quantity: int
    price: Decimal
    sku: str | None
    currency: str
    requires_shipping: bool = True

    @property
    def custom(self) -> bool:
        return self.variant is None

    @property
    def total(self) -> Decimal:
        return self.price * self.quantity


@dataclass(slots=True, eq=False)
class _DraftOrder(_Record):
    typename: ClassVar[str] = "DraftOrder"
    number: int
    email: str | None
    note: str | None
    tags: tuple[str, ...]
    currency: str
    """Presentment currency."""
    created_at: datetime
    updated_at: datetime
    line_items: list[_DraftLine]
    discount: JSON | None
    """``{"value", "valueType", "title", "description"}`` (value a Decimal) or None."""
    custom_attributes: list[JSON]
    invoice_token: str
    status: str = "OPEN"
    completed_at: datetime | None = None
    order: _Order | None = None

    @property
    def name(self) -> str:
        return f"#D{self.number}"

    @property
    def subtotal(self) -> Decimal:
        return sum((line.total for line in self.line_items), Decimal(0))

    @property
    def total_discounts(self) -> Decimal:
        return _discount_amount(self.discount, self.subtotal, self.currency)

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.total_discounts


def _discount_amount(discount: JSON | None, subtotal: Decimal, currency: str) -> Decimal:
    """What an applied discount takes off ``subtotal`` (a percentage is rounded to cents)."""
    if discount is None:
        return Decimal(0)
    value: Decimal = discount["value"]
    if discount["valueType"] == "PERCENTAGE":
        return _round_money(subtotal * value / 100, currency)
    return min(value, subtotal)


@dataclass(slots=True, eq=False)
class _Subscription(_Record):
    typename: ClassVar[str] = "WebhookSubscription"
    topic: str
    uri: str
    format: str
    api_version: str
    created_at: datetime

    @property
    def topic_path(self) -> str:
        return WEBHOOK_TOPICS[self.topic]


@dataclass(slots=True, eq=False)
class _BulkOperation(_Record):
    typename: ClassVar[str] = "BulkOperation"
    query: str
    created_at: datetime
    scopes: frozenset[str]
    status: str = "CREATED"
    type: str = "QUERY"
    completed_at: datetime | None = None
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    path: Path | None = None
    release: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.status in ("CREATED", "RUNNING")


@dataclass(slots=True, eq=False)
class _AdjustmentGroup(_Record):
    typename: ClassVar[str] = "InventoryAdjustmentGroup"
    reason: str
    reference_document_uri: str | None
    created_at: datetime
    changes: list[JSON]


@dataclass(slots=True, eq=False)
class _CreditAccount(_Record):
    typename: ClassVar[str] = "StoreCreditAccount"
    owner: _Customer
    currency: str
    balance: Decimal = Decimal(0)
    transactions: list[_CreditTxn] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _CreditTxn(_Record):
    account: _CreditAccount
    amount: Decimal
    balance_after: Decimal
    created_at: datetime
    event: str
    expires_at: datetime | None = None

    @property
    def typename(self) -> str:  # type: ignore[override]
        kind = "Credit" if self.amount > 0 else "Debit"
        return f"StoreCreditAccount{kind}Transaction"


@dataclass(slots=True)
class _Saved:
    """The first result of an ``@idempotent`` mutation, replayed for the same key."""

    fingerprint: str
    payload: JSON


class _Bucket:
    """Shopify's leaky bucket of query-cost points, refilled on the monotonic clock."""

    def __init__(self, maximum: float, restore_rate: float) -> None:
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self.available = float(maximum)
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self.stamp) * self.restore_rate)
        self.stamp = now

    def status(self) -> JSON:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": int(self.available),
            "restoreRate": self.restore_rate,
        }


@dataclass(eq=False)
class _ShopState:
    info: FakeShop
    bucket: _Bucket
    app_key: str
    locations: dict[int, _Location] = field(default_factory=dict)
    customers: dict[int, _Customer] = field(default_factory=dict)
    variants: dict[str, _Variant] = field(default_factory=dict)
    inventory: dict[tuple[int, int], int] = field(default_factory=dict)
    orders: dict[int, _Order] = field(default_factory=dict)
    refunds: dict[int, _Refund] = field(default_factory=dict)
    returns: dict[int, _Return] = field(default_factory=dict)
    subscriptions: dict[int, _Subscription] = field(default_factory=dict)
    bulk_operations: dict[int, _BulkOperation] = field(default_factory=dict)
    adjustments: list[_AdjustmentGroup] = field(default_factory=list)
    credit_accounts: dict[int, _CreditAccount] = field(default_factory=dict)
    draft_orders: dict[int, _DraftOrder] = field(default_factory=dict)
    idempotency: dict[str, _Saved] = field(default_factory=dict)
    throttled: int = 0
    next_order_number: int = 1001
    next_draft_number: int = 1
    order_version: int = 0
    sorted_cache: dict[str, tuple[int, list[tuple[Any, int]]]] = field(default_factory=dict)
    customers_by_email: dict[str, _Customer] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return self.info.domain

    @property
    def currency(self) -> str:
        return self.info.currency

    @property
    def primary_location(self) -> _Location:
        return next(iter(self.locations.values()))

    def location(self, gid: Any) -> _Location | None:
        number = _gid_number(gid, "Location")
        return self.locations.get(number) if number is not None else None

    def find_order(self, gid: Any) -> _Order | None:
        number = _gid_number(gid, "Order")
        return self.orders.get(number) if number is not None else None

    def find_variant(self, gid: Any) -> _Variant | None:
        number = _gid_number(gid, "ProductVariant")
        return next((v for v in self.variants.values() if v.id == number), None)

    def find_draft(self, gid: Any) -> _DraftOrder | None:
        number = _gid_number(gid, "DraftOrder")
        return self.draft_orders.get(number) if number is not None else None

    def find_item(self, gid: Any) -> _InventoryItem | None:
        number = _gid_number(gid, "InventoryItem")
        return next(
            (v.inventory_item for v in self.variants.values() if v.inventory_item.id == number),
            None,
        )

    def orders_changed(self) -> None:
        self.order_version += 1

    def sorted_orders(self, sort_key: str) -> list[tuple[Any, int]]:
        """``(sort value, id)`` of every order, ascending; cached until an order changes."""
        cached = self.sorted_cache.get(sort_key)
        if cached is not None and cached[0] == self.order_version:
            return cached[1]
        attribute = _ORDER_SORT_KEYS[sort_key]
        keys = sorted((getattr(o, attribute), o.id) for o in self.orders.values())
        self.sorted_cache[sort_key] = (self.order_version, keys)
        return keys


_ORDER_SORT_KEYS = {
    "ID": "id",
    "CREATED_AT": "created_at",
    "UPDATED_AT": "updated_at",
    "PROCESSED_AT": "processed_at",
}


@dataclass(frozen=True)
class _App:
    api_key: str
    api_secret: str


@dataclass
class _AccessToken:
    value: str
    shop: str
    kind: str  # admin | offline | online
    scopes: frozenset[str]
    app_key: str | None
    expires_at: datetime | None
    revoked: bool = False

    def valid(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


@dataclass
class _RefreshToken:
    value: str
    shop: str
    app_key: str
    scopes: frozenset[str]
    expires_at: datetime
    parent: str | None
    revoked: bool = False


@dataclass
class _Code:
    value: str
    app_key: str
    shop: str
    scope: str
    grant_options: tuple[str, ...]
    expires_at: datetime
    used: bool = False


# --------------------------------------------------------------------------------------------
# GraphQL engine: a field table per type, static checks and cost, then resolution
# --------------------------------------------------------------------------------------------

Resolver = Callable[[Any, JSON, "_Exec"], Any]


@dataclass(frozen=True)
class _Field:
    """One field of a GraphQL type on the fake.

    ``kind``: ``scalar`` (also enums and lists of scalars), ``object``, ``list`` (of objects),
    ``connection`` (paged, ``type`` is the node type) or ``items`` (a connection's ``nodes`` or
    ``edges``, whose count the connection's ``first`` multiplies). ``resolve(obj, args, ex)``
    defaults to the attribute (snake_case) or dict key of the parent object.
    """

    kind: str
    type: str = ""
    resolve: Resolver | None = None
    args: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()
    free: bool = False
    """Costs nothing itself (``pageInfo``, edges, ``userErrors``)."""
    mutation: bool = False
    idempotent: bool = False
    """Takes ``@idempotent(key:)``; mandatory from API version 2026-04."""
    scope: str | None = None
    """Access scope a top-level field needs (a ``write_`` scope includes its ``read_``)."""


_SCHEMA: dict[str, dict[str, _Field]] = {}
_ABSTRACT: dict[str, frozenset[str]] = {}
"""Interfaces -> the object types implementing them."""
_PAGING = ("first", "after", "last", "before", "reverse")
_DIRECTIVES = frozenset({"skip", "include", "idempotent"})
_SCALAR = _Field("scalar")
_OMIT = object()


def _scalars(names: str) -> dict[str, _Field]:
    return dict.fromkeys(names.split(), _SCALAR)


def _scalar(resolve: Resolver | None = None, *, args: Iterable[str] = ()) -> _Field:
    return _Field("scalar", resolve=resolve, args=frozenset(args))


def _object(
    type_: str,
    resolve: Resolver | None = None,
    *,
    args: Iterable[str] = (),
    required: Sequence[str] = (),
    free: bool = False,
    scope: str | None = None,
) -> _Field:
    return _Field(
        "object", type_, resolve, frozenset((*args, *required)), tuple(required), free, scope=scope
    )


def _mutation(
    payload: str,
    resolve: Resolver,
    *,
    required: Sequence[str],
    args: Sequence[str] = (),
    scope: str | None = None,
    idempotent: bool = False,
) -> _Field:
    return _Field(
        "object",
        payload,
        resolve,
        frozenset((*args, *required)),
        tuple(required),
        mutation=True,
        idempotent=idempotent,
        scope=scope,
    )


def _list(
    type_: str,
    resolve: Resolver | None = None,
    *,
    args: Iterable[str] = (),
    required: Sequence[str] = (),
    free: bool = False,
    scope: str | None = None,
) -> _Field:
    return _Field(
        "list", type_, resolve, frozenset((*args, *required)), tuple(required), free, scope=scope
    )


def _connection(
    type_: str,
    resolve: Resolver | None = None,
    *,
    args: Iterable[str] = (),
    required: Sequence[str] = (),
    scope: str | None = None,
) -> _Field:
    _define_connection(type_)
    return _Field(
        "connection",
        type_,
        resolve,
        frozenset((*_PAGING, *args, *required)),
        tuple(required),
        scope=scope,
    )


def _define_connection(node_type: str) -> None:
    connection, edge = f"{node_type}Connection", f"{node_type}Edge"
    if connection in _SCHEMA:
        return
    _SCHEMA[connection] = {
        "nodes": _Field("items", node_type, lambda page, a, ex: page.items),
        "edges": _Field("items", edge, lambda page, a, ex: page.edges(), free=True),
        "pageInfo": _object("PageInfo", lambda page, a, ex: page, free=True),
    }
    _SCHEMA[edge] = {
        "cursor": _scalar(lambda e, a, ex: e[0]),
        "node": _object(node_type, lambda e, a, ex: e[1]),
    }


class _GraphQLError(Exception):
    """A GraphQL error entry (``message``, ``extensions``) raised while checking or resolving."""

    def __init__(self, message: str, code: str | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: JSON = {"code": code, **extensions} if code else dict(extensions)

    def to_json(self, node: Any = None, path: Sequence[str | int] | None = None) -> JSON:
        error: JSON = {"message": self.message}
        if node is not None and node.loc is not None:
            token = node.loc.start_token
            error["locations"] = [{"line": token.line, "column": token.column}]
        if path:
            error["path"] = list(path)
        if self.extensions:
            error["extensions"] = self.extensions
        return error


@dataclass
class _Page:
    items: list[Any]
    cursors: list[str]
    has_next: bool = False
    has_prev: bool = False

    def edges(self) -> list[tuple[str, Any]]:
        return list(zip(self.cursors, self.items, strict=True))


def _cursor(last_id: Any, last_value: Any) -> str:
    return base64.b64encode(_compact({"last_id": last_id, "last_value": last_value})).decode()


def _read_cursor(cursor: Any) -> JSON:
    try:
        data = json.loads(base64.b64decode(str(cursor), validate=True))
    except ValueError:
        data = None
    if not isinstance(data, dict) or "last_id" not in data:
        raise _GraphQLError(f"Invalid cursor '{cursor}'.", "argumentLiteralsIncompatible")
    return data


def _item_id(item: Any) -> Any:
    if isinstance(item, dict):
        return item["id"] if "id" in item else item["_cursor"]
    return item.id


def _page_list(items: Iterable[Any], args: JSON) -> _Page:
    """Forward paging over an in-memory list (line items, returns, locations...)."""
    ordered = list(items)
    if args.get("reverse"):
        ordered.reverse()
    start = 0
    if args.get("after") is not None:
        last = _read_cursor(args["after"])["last_id"]
        ids = [_item_id(item) for item in ordered]
        start = ids.index(last) + 1 if last in ids else len(ordered)
    first = args.get("first")
    end = len(ordered) if first is None else start + first
    page = ordered[start:end]
    cursors = [_cursor(_item_id(i), _item_id(i)) for i in page]
    return _Page(page, cursors, end < len(ordered), start > 0)


def _strip_undefined(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_undefined(v) for k, v in value.items() if v is not Undefined}
    if isinstance(value, list):
        return [None if v is Undefined else _strip_undefined(v) for v in value]
    return value


def _arguments(node: Any, variables: JSON) -> JSON:
    """A field's or directive's arguments, variables substituted (absent ones left out)."""
    args: JSON = {}
    for argument in node.arguments or ():
        value = value_from_ast_untyped(argument.value, variables)
        if value is not Undefined:
            args[argument.name.value] = _strip_undefined(value)
    return args


def _attribute(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, _snake(name))


def _applies(condition: str, runtime: str) -> bool:
    return condition == runtime or runtime in _ABSTRACT.get(condition, ())


def _runtime_type(declared: str, obj: Any) -> str:
    return str(obj.typename) if declared in _ABSTRACT else declared


@dataclass(eq=False)
class _Exec:
    """One GraphQL execution: the shop, the caller's scopes and version, per-request caches."""

    fake: FakeShopify
    shop: _ShopState
    version: str
    scopes: frozenset[str]
    variables: JSON
    fragments: dict[str, FragmentDefinitionNode]
    now: datetime
    bulk: bool = False
    """Checking a bulk query: connections need no ``first``."""
    bulk_rows: list[JSON] | None = None
    """Running a bulk query: nested connection nodes become rows with ``__parentId``."""
    errors: list[JSON] = field(default_factory=list)
    _args: dict[int, JSON] = field(default_factory=dict)
    _subs: dict[tuple[int, ...], list[SelectionNode]] = field(default_factory=dict)
    _fields: dict[tuple[str, int], dict[str, list[FieldNode]]] = field(default_factory=dict)

    def arguments(self, node: FieldNode) -> JSON:
        args = self._args.get(id(node))
        if args is None:
            args = self._args[id(node)] = _arguments(node, self.variables)
        return args

    def subselections(self, nodes: Sequence[FieldNode]) -> list[SelectionNode]:
        key = tuple(id(n) for n in nodes)
        subs = self._subs.get(key)
        if subs is None:
            subs = [s for n in nodes if n.selection_set for s in n.selection_set.selections]
            self._subs[key] = subs
        return subs

    def collect(
        self, runtime: str, selections: Sequence[SelectionNode]
    ) -> dict[str, list[FieldNode]]:
        """Fields by response key for an object of type ``runtime`` (fragments applied)."""
        key = (runtime, id(selections))
        fields = self._fields.get(key)
        if fields is None:
            fields = self._fields[key] = {}
            self._collect_into(runtime, selections, fields)
        return fields

    def _collect_into(
        self, runtime: str, selections: Sequence[SelectionNode], out: dict[str, list[FieldNode]]
    ) -> None:
        for selection in selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                out.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or _applies(condition.name.value, runtime):
                    self._collect_into(runtime, selection.selection_set.selections, out)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                if _applies(fragment.type_condition.name.value, runtime):
                    self._collect_into(runtime, fragment.selection_set.selections, out)

    def included(self, node: Any) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name in ("skip", "include"):
                condition = bool(_arguments(directive, self.variables).get("if"))
                if condition == (name == "skip"):
                    return False
        return True

    def node_selections(self, node_type: str, nodes: Sequence[FieldNode]) -> list[SelectionNode]:
        """What a connection selects on each node, through ``nodes`` and ``edges { node }``."""
        key = (-1, *(id(n) for n in nodes))
        found = self._subs.get(key)
        if found is not None:
            return found
        found = []
        connection = self.collect(f"{node_type}Connection", self.subselections(nodes))
        for field_nodes in connection.values():
            name = field_nodes[0].name.value
            if name == "nodes":
                found.extend(self.subselections(field_nodes))
            elif name == "edges":
                edge = self.collect(f"{node_type}Edge", self.subselections(field_nodes))
                for edge_nodes in edge.values():
                    if edge_nodes[0].name.value == "node":
                        found.extend(self.subselections(edge_nodes))
        self._subs[key] = found
        return found

    def idempotency_key(self, node: FieldNode) -> str | None:
        for directive in node.directives or ():
            if directive.name.value == "idempotent":
                key = _arguments(directive, self.variables).get("key")
                return None if key is None else str(key)
        return None

    def has_scope(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        return scope.startswith("read_") and f"write_{scope[5:]}" in self.scopes

    def can_see(self, order: _Order) -> bool:
        """Without ``read_all_orders`` an app sees the last 60 days of orders only."""
        return "read_all_orders" in self.scopes or order.created_at >= self.now - ORDER_HISTORY

    def money(self, amount: Decimal, currency: str) -> JSON:
        return {"amount": amount, "currencyCode": currency}

    def bag(self, amount: Decimal, currency: str) -> JSON:
        return {
            "shopMoney": self.money(amount, self.shop.currency),
            "presentmentMoney": self.money(amount, currency),
        }


# ---- static checks and requested cost ------------------------------------------------------


def _analyze(
    ex: _Exec,
    type_name: str,
    selections: Sequence[SelectionNode],
    path: list[str],
    seen: frozenset[str] = frozenset(),
) -> int:
    """Check a selection set against ``_SCHEMA`` (errors go to ``ex.errors``); return its cost."""
    cost = 0
    for selection in selections:
        if isinstance(selection, FieldNode):
            cost += _analyze_field(ex, type_name, selection, path, seen)
            continue
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = condition.name.value if condition else type_name
            if _known_type(ex, target, selection, path):
                cost += _analyze(ex, target, selection.selection_set.selections, path, seen)
            continue
        assert isinstance(selection, FragmentSpreadNode)
        name = selection.name.value
        fragment = ex.fragments.get(name)
        if fragment is None:
            error = _GraphQLError(
                f"Fragment {name} was used, but not defined", "useAndDefineFragment"
            )
            ex.errors.append(error.to_json(selection, path))
        elif name in seen:
            error = _GraphQLError(f"Fragment {name} contains an infinite loop", "infiniteLoop")
            ex.errors.append(error.to_json(selection, path))
        elif _known_type(ex, fragment.type_condition.name.value, fragment, path):
            target = fragment.type_condition.name.value
            selections_ = fragment.selection_set.selections
            cost += _analyze(ex, target, selections_, [*path, f"fragment {name}"], seen | {name})
    return cost


def _known_type(ex: _Exec, name: str, node: Any, path: list[str]) -> bool:
    if name in _SCHEMA:
        return True
    message = f"No such type {name}, so it can't be a fragment condition"
    ex.errors.append(_GraphQLError(message, "undefinedType", typeName=name).to_json(node, path))
    return False


def _analyze_field(
    ex: _Exec, type_name: str, node: FieldNode, path: list[str], seen: frozenset[str]
) -> int:
    name = node.name.value
    here = [*path, name]
    if name == "__typename":
        return 0
    spec = _SCHEMA[type_name].get(name)
    if spec is None:
        ex.errors.append(
            _GraphQLError(
                f"Field '{name}' doesn't exist on type '{type_name}'",
                "undefinedField",
                typeName=type_name,
                fieldName=name,
            ).to_json(node, here)
        )
        return 0
    args = ex.arguments(node)
    if not _check_arguments(ex, spec, name, node, args, here):
        return 0
    selections = node.selection_set.selections if node.selection_set else ()
    if spec.kind == "scalar":
        if selections:
            message = f"Selections can't be made on scalars (field '{name}' has selections)"
            ex.errors.append(_GraphQLError(message, "selectionMismatch").to_json(node, here))
        return 0
    if not selections:
        message = (
            f"Field must have selections (field '{name}' returns {spec.type} but has no "
            f"selections. Did you mean '{name} {{ ... }}'?)"
        )
        ex.errors.append(_GraphQLError(message, "selectionMismatch").to_json(node, here))
        return 0
    inner_type = f"{spec.type}Connection" if spec.kind == "connection" else spec.type
    inner = _analyze(ex, inner_type, selections, here, seen)
    own = 10 if spec.mutation else 0 if spec.free else 1
    if spec.kind in ("object", "items"):
        return own + inner
    if spec.kind == "list":
        if spec.free:
            return inner
        count = _requested_count(args)
        return 1 + (1 + inner) if count is None else 2 + count * (1 + inner)
    return 2 + _page_size(ex, name, args, node, here) * inner


def _check_arguments(
    ex: _Exec, spec: _Field, name: str, node: FieldNode, args: JSON, path: list[str]
) -> bool:
    ok = True
    for argument in node.arguments or ():
        arg = argument.name.value
        if arg not in spec.args:
            message = f"Field '{name}' doesn't accept argument '{arg}'"
            error = _GraphQLError(
                message, "argumentNotAccepted", name=name, typeName="Field", argumentName=arg
            )
            ex.errors.append(error.to_json(argument, path))
            ok = False
    missing = [r for r in spec.required if args.get(r) is None]
    if missing:
        listed = ", ".join(missing)
        error = _GraphQLError(
            f"Field '{name}' is missing required arguments: {listed}",
            "missingRequiredArguments",
            className="Field",
            name=name,
            arguments=listed,
        )
        ex.errors.append(error.to_json(node, path))
        ok = False
    for directive in node.directives or ():
        if directive.name.value not in _DIRECTIVES:
            message = f"Directive @{directive.name.value} is not defined"
            ex.errors.append(_GraphQLError(message, "undefinedDirective").to_json(directive, path))
            ok = False
    if spec.idempotent:
        ok = _check_idempotent(ex, node, path) and ok
    return ok


def _check_idempotent(ex: _Exec, node: FieldNode, path: list[str]) -> bool:
    directive = next((d for d in node.directives or () if d.name.value == "idempotent"), None)
    if directive is None:
        if not _at_least(ex.version, "2026-04"):
            return True
        error = _GraphQLError(
            "The @idempotent directive is required for this mutation.", "BAD_REQUEST"
        )
        ex.errors.append(error.to_json(node, path))
        return False
    key = _arguments(directive, ex.variables).get("key")
    if not isinstance(key, str) or not key:
        error = _GraphQLError(
            "Directive 'idempotent' is missing required arguments: key", "missingRequiredArguments"
        )
        ex.errors.append(error.to_json(directive, path))
        return False
    return True


def _requested_count(args: JSON) -> int | None:
    first = args.get("first")
    if isinstance(first, int):
        return max(first, 0)
    ids = args.get("ids")
    return len(ids) if isinstance(ids, list) else None


def _page_size(ex: _Exec, name: str, args: JSON, node: FieldNode, path: list[str]) -> int:
    """The ``first`` of a connection, checked as Shopify does (0 when missing in a bulk query)."""
    if args.get("last") is not None or args.get("before") is not None:
        message = "FakeShopify pages forward only (first/after); last/before are not supported"
        ex.errors.append(_GraphQLError(message, "notSupportedByFake").to_json(node, path))
        return 0
    first = args.get("first")
    if first is None:
        if not ex.bulk:
            message = "you must provide one of first or last"
            ex.errors.append(_GraphQLError(message).to_json(node, path))
        return 0
    if not isinstance(first, int) or isinstance(first, bool) or first < 0:
        message = f"Argument 'first' on Field '{name}' has an invalid value ({first})."
        ex.errors.append(_GraphQLError(message, "argumentLiteralsIncompatible").to_json(node, path))
        return 0
    if first > MAX_PAGE_SIZE and not ex.bulk:
        message = f"The maximum page size of '{name}' is {MAX_PAGE_SIZE}; first is {first}."
        ex.errors.append(_GraphQLError(message, "MAX_PAGE_SIZE_EXCEEDED").to_json(node, path))
        return 0
    return first


# ---- resolution and actual cost -------------------------------------------------------------


def _resolve_object(
    ex: _Exec,
    type_name: str,
    obj: Any,
    selections: Sequence[SelectionNode],
    path: list[str | int],
    out: JSON | None = None,
) -> tuple[JSON | None, int]:
    """Project ``obj`` on ``selections``; returns the data and its actual cost."""
    if obj is None:
        return None, 0
    runtime = _runtime_type(type_name, obj)
    result: JSON = {} if out is None else out
    cost = 0
    for key, nodes in ex.collect(runtime, selections).items():
        name = nodes[0].name.value
        if name == "__typename":
            result[key] = runtime
            continue
        spec = _SCHEMA[runtime][name]
        try:
            value, field_cost = _resolve_field(ex, spec, obj, name, nodes, [*path, key])
        except _GraphQLError as exc:
            ex.errors.append(exc.to_json(nodes[0], [*path, key]))
            result[key] = None
            continue
        if value is not _OMIT:
            result[key] = value
            cost += field_cost
    return result, cost


def _resolve_field(
    ex: _Exec, spec: _Field, obj: Any, name: str, nodes: list[FieldNode], path: list[str | int]
) -> tuple[Any, int]:
    node = nodes[0]
    args = ex.arguments(node)
    if spec.scope is not None and not ex.has_scope(spec.scope):
        raise _GraphQLError(
            f"Access denied for {name} field. Required access: `{spec.scope}` access scope.",
            "ACCESS_DENIED",
            documentation="https://shopify.dev/api/usage/access-scopes",
            requiredAccess=f"`{spec.scope}` access scope.",
        )
    value = _call(ex, spec, obj, name, node, args)
    if spec.kind == "scalar":
        return _json_value(value), 0
    if spec.kind == "connection" and ex.bulk_rows is not None:
        _bulk_children(ex, spec.type, value, nodes, obj)
        return _OMIT, 0
    selections = ex.subselections(nodes)
    own = 10 if spec.mutation else 0 if spec.free else 1
    if spec.kind == "object":
        data, cost = _resolve_object(ex, spec.type, value, selections, path)
        return data, (own + cost if data is not None else 0)
    if spec.kind == "connection":
        page = value if isinstance(value, _Page) else _page_list(value, args)
        data, cost = _resolve_object(ex, f"{spec.type}Connection", page, selections, path)
        return data, 2 + cost
    if value is None:
        return None, 0
    items = list(value)
    if spec.kind == "list" and isinstance(args.get("first"), int):
        items = items[: args["first"]]
    results, costs = [], []
    for index, item in enumerate(items):
        data, cost = _resolve_object(ex, spec.type, item, selections, [*path, index])
        results.append(data)
        costs.append(cost if data is not None else -own)
    if spec.kind == "items" or spec.free:
        return results, sum(own + c for c in costs)
    if "first" in args:
        return results, 2 + sum(1 + c for c in costs)
    return results, 1 + max((1 + c for c in costs), default=0)


def _call(ex: _Exec, spec: _Field, obj: Any, name: str, node: FieldNode, args: JSON) -> Any:
    """Run a resolver; an ``@idempotent`` mutation replays its first result under a key."""
    if spec.resolve is None:
        return _attribute(obj, name)
    key = ex.idempotency_key(node) if spec.idempotent else None
    if key is None:
        return spec.resolve(obj, args, ex)
    fingerprint = _canonical([name, args])
    saved = ex.shop.idempotency.get(key)
    if saved is not None:
        if saved.fingerprint != fingerprint:
            raise _GraphQLError(
                "The idempotency key was already used with different parameters.",
                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
            )
        return saved.payload
    payload = spec.resolve(obj, args, ex)
    ex.shop.idempotency[key] = _Saved(fingerprint, payload)
    return payload


def _bulk_children(
    ex: _Exec, node_type: str, value: Any, nodes: list[FieldNode], parent: Any
) -> None:
    """A nested connection in a bulk query: one row per node, after its parent's row."""
    assert ex.bulk_rows is not None
    items = value.items if isinstance(value, _Page) else list(value or ())
    selections = ex.node_selections(node_type, nodes)
    parent_id = _item_id(parent) if isinstance(parent, dict) else parent.gid
    for item in items:
        row: JSON = {}
        ex.bulk_rows.append(row)
        _resolve_object(ex, node_type, item, selections, [], out=row)
        row["__parentId"] = parent_id


def _bulk_shape(
    ex: _Exec, type_name: str, selections: Sequence[SelectionNode], level: int
) -> tuple[int, int]:
    """(number of connections, deepest connection nesting) of a bulk query."""
    count, depth = 0, level
    for owner, node in _static_fields(ex, type_name, selections):
        spec = _SCHEMA.get(owner, {}).get(node.name.value)
        if spec is None or spec.kind == "scalar" or node.selection_set is None:
            continue
        inner = node.selection_set.selections
        if spec.kind == "connection":
            found, deepest = _bulk_shape(ex, f"{spec.type}Connection", inner, level + 1)
            count += 1
        else:
            found, deepest = _bulk_shape(ex, spec.type, inner, level)
        count += found
        depth = max(depth, deepest)
    return count, depth


def _static_fields(
    ex: _Exec, type_name: str, selections: Sequence[SelectionNode]
) -> Iterator[tuple[str, FieldNode]]:
    for selection in selections:
        if isinstance(selection, FieldNode):
            yield type_name, selection
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = condition.name.value if condition else type_name
            yield from _static_fields(ex, target, selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = ex.fragments.get(selection.name.value)
            if fragment is not None:
                target = fragment.type_condition.name.value
                yield from _static_fields(ex, target, fragment.selection_set.selections)


# --------------------------------------------------------------------------------------------
# Query resolvers
# --------------------------------------------------------------------------------------------


def _id(obj: Any, args: JSON, ex: _Exec) -> str:
    return str(obj["id"]) if isinstance(obj, dict) else str(obj.gid)


def _dict_key(key: str) -> _Field:
    """A scalar read from a dict under another key (REST-shaped data such as addresses)."""
    return _scalar(lambda obj, args, ex: obj.get(key))


def _bag(amount: Callable[[Any], Decimal]) -> _Field:
    return _object("MoneyBag", lambda o, a, ex: ex.bag(amount(o), o.currency))


def _user_error(path: list[str] | None, message: str, code: str | None = None) -> JSON:
    return {"field": path, "message": message, "code": code}


_NODE_TABLES = {
    "BulkOperation": "bulk_operations",
    "Customer": "customers",
    "DraftOrder": "draft_orders",
    "Location": "locations",
    "Order": "orders",
    "Refund": "refunds",
    "Return": "returns",
    "StoreCreditAccount": "credit_accounts",
    "WebhookSubscription": "subscriptions",
}


def _find_node(ex: _Exec, gid: Any) -> Any:
    parsed = _parse_gid(gid)
    if parsed is None:
        raise _GraphQLError(f"Invalid global id '{gid}'", "argumentLiteralsIncompatible")
    table = _NODE_TABLES.get(parsed[0])
    found = getattr(ex.shop, table).get(parsed[1]) if table else None
    if isinstance(found, _Order) and not ex.can_see(found):
        return None
    return found


def _q_order(root: Any, args: JSON, ex: _Exec) -> _Order | None:
    order = ex.shop.find_order(args.get("id"))
    return order if order is not None and ex.can_see(order) else None


def _q_location(root: Any, args: JSON, ex: _Exec) -> _Location | None:
    if args.get("id") is None:
        return ex.shop.primary_location
    return ex.shop.location(args["id"])


def _q_current_bulk(root: Any, args: JSON, ex: _Exec) -> _BulkOperation | None:
    wanted = args.get("type") or "QUERY"
    found = [op for op in ex.shop.bulk_operations.values() if op.type == wanted]
    return found[-1] if found else None


def _q_customer(root: Any, args: JSON, ex: _Exec) -> _Customer | None:
    number = _gid_number(args.get("id"), "Customer")
    return ex.shop.customers.get(number) if number is not None else None


def _q_return(root: Any, args: JSON, ex: _Exec) -> _Return | None:
    number = _gid_number(args.get("id"), "Return")
    found = ex.shop.returns.get(number) if number is not None else None
    return found if found is not None and ex.can_see(found.order) else None


def _q_inventory_item(root: Any, args: JSON, ex: _Exec) -> _InventoryItem | None:
    return ex.shop.find_item(args.get("id"))


def _inventory_level(item: _InventoryItem, args: JSON, ex: _Exec) -> JSON | None:
    location = ex.shop.location(args.get("locationId"))
    if location is None or (item.id, location.id) not in ex.shop.inventory:
        return None
    return {
        "id": f"gid://shopify/InventoryLevel/{location.id}?inventory_item_id={item.id}",
        "item": item,
        "location": location,
        "available": ex.shop.inventory[(item.id, location.id)],
    }


def _quantities(level: JSON, args: JSON, ex: _Exec) -> list[JSON]:
    names = args.get("names") or []
    return [
        {"name": n, "quantity": level["available"] if n in ("available", "on_hand") else 0}
        for n in names
    ]


def _q_returnable_fulfillments(root: Any, args: JSON, ex: _Exec) -> list[JSON]:
    order = _q_order(root, {"id": args.get("orderId")}, ex)
    if order is None:
        raise _GraphQLError("Order does not exist.", "NOT_FOUND")
    found = []
    for fulfillment in order.fulfillments:
        lines = [
            {"fulfillmentLineItem": line, "quantity": order.returnable(line), "_cursor": line.id}
            for line in fulfillment.fulfillment_line_items
            if order.returnable(line) > 0
        ]
        if lines:
            found.append(
                {
                    "id": _gid("ReturnableFulfillment", fulfillment.id),
                    "fulfillment": fulfillment,
                    "returnableFulfillmentLineItems": lines,
                }
            )
    return found


def _q_webhook_subscriptions(root: Any, args: JSON, ex: _Exec) -> list[_Subscription]:
    topics = args.get("topics")
    return [
        s
        for s in ex.shop.subscriptions.values()
        if (not topics or s.topic in topics) and args.get("uri") in (None, s.uri)
    ]


# ---- orders: sort, search, cursors ----------------------------------------------------------

_SEARCH_TERM = re.compile(
    r"""(?P<neg>-)?(?P<field>\w+):(?P<op><=|>=|<|>|=)?(?P<value>'[^']*'|"[^"]*"|\S+)|\S+"""
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_ORDER_STATUS: dict[str, Callable[[_Order], bool]] = {
    "open": lambda o: o.closed_at is None and o.cancelled_at is None,
    "closed": lambda o: o.closed_at is not None,
    "cancelled": lambda o: o.cancelled_at is not None,
    "any": lambda o: True,
}


_Test = Callable[[Any], bool]


def _order_term(name: str, op: str, value: str, typename: str = "Order") -> _Test | None:
    """One ``field:value`` search term; None for terms the fake ignores."""
    compare = _COMPARE[op]
    if name in ("updated_at", "created_at", "processed_at"):
        try:
            moment = _parse_time(value)
        except ValueError:
            return None
        if op == "=" and "T" not in value:
            return lambda o: getattr(o, name).date() == moment.date()
        return lambda o: compare(getattr(o, name), moment)
    if name == "id":
        number = _gid_number(value, typename) or (int(value) if value.isdigit() else None)
        return None if number is None else lambda o: compare(o.id, number)
    if name == "name":
        return lambda o: o.name.lstrip("#") == value.lstrip("#")
    if name == "email":
        return lambda o: (o.email or "").lower() == value.lower()
    if name == "tag":
        return lambda o: value in o.tags
    if name == "financial_status":
        return lambda o: o.financial_status == value.upper()
    if name == "status":
        return _ORDER_STATUS.get(value.lower())
    if name == "test":
        return lambda o: o.test == (value.lower() == "true")
    return None


def _search_tests(query: Any, term: Callable[[str, str, str], _Test | None]) -> list[_Test]:
    """The tests of a search ``query``, each ``field:value`` term made by ``term``."""
    tests: list[_Test] = []
    for match in _SEARCH_TERM.finditer(str(query or "")):
        if match["field"] is None:
            continue  # AND, OR and free text
        found = term(match["field"], match["op"] or "=", match["value"].strip("'\""))
        if found is not None:
            tests.append(_negated(found) if match["neg"] else found)
    return tests


def _order_filter(query: Any, ex: _Exec) -> _Test:
    tests = [ex.can_see, *_search_tests(query, _order_term)]
    return lambda order: all(test(order) for test in tests)


def _negated(term: _Test) -> _Test:
    return lambda order: not term(order)


def _cursor_value(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def _order_cursor_key(cursor: Any, sort_key: str) -> tuple[Any, int]:
    return _sorted_cursor_key(cursor, numeric=sort_key == "ID")


def _sorted_cursor_key(cursor: Any, *, numeric: bool) -> tuple[Any, int]:
    """``(sort value, id)`` from a cursor of a sorted connection (an int or a timestamp)."""
    data = _read_cursor(cursor)
    try:
        last_id = int(data["last_id"])
        value: Any = data.get("last_value")
        return (int(value) if numeric else _parse_time(value)), last_id
    except (TypeError, ValueError):
        raise _GraphQLError(
            "Invalid cursor for current pagination sort.", "argumentLiteralsIncompatible"
        ) from None


def _walk(
    keys: list[tuple[Any, int]], start: tuple[Any, int] | None, reverse: bool
) -> Iterator[tuple[Any, int]]:
    if not reverse:
        index = bisect.bisect_right(keys, start) if start is not None else 0
        return itertools.islice(keys, index, None)
    index = bisect.bisect_left(keys, start) if start is not None else len(keys)
    return (keys[i] for i in range(index - 1, -1, -1))


def _order_sort_key(args: JSON) -> str:
    sort_key = str(args.get("sortKey") or "ID")
    if sort_key not in _ORDER_SORT_KEYS:
        raise _GraphQLError(
            f"Argument 'sortKey' on Field 'orders' has an invalid value ({sort_key}). "
            "Expected type 'OrderSortKeys'.",
            "argumentLiteralsIncompatible",
        )
    return sort_key


def _iter_orders(ex: _Exec, args: JSON) -> Iterator[_Order]:
    """Orders matching ``query`` in sort order, after the ``after`` cursor."""
    sort_key = _order_sort_key(args)
    matches = _order_filter(args.get("query"), ex)
    keys = ex.shop.sorted_orders(sort_key)
    after = args.get("after")
    start = _order_cursor_key(after, sort_key) if after is not None else None
    for _, number in _walk(keys, start, bool(args.get("reverse"))):
        order = ex.shop.orders[number]
        if matches(order):
            yield order


def _q_orders(root: Any, args: JSON, ex: _Exec) -> _Page:
    first = int(args.get("first") or 0)
    picked = list(itertools.islice(_iter_orders(ex, args), first + 1))
    attribute = _ORDER_SORT_KEYS[_order_sort_key(args)]
    page = picked[:first]
    cursors = [_cursor(o.id, _cursor_value(getattr(o, attribute))) for o in page]
    return _Page(page, cursors, len(picked) > first, args.get("after") is not None)


def _q_orders_count(root: Any, args: JSON, ex: _Exec) -> JSON:
    matches = _order_filter(args.get("query"), ex)
    limit = args.get("limit", ORDERS_COUNT_LIMIT)
    count = 0
    for order in ex.shop.orders.values():
        if matches(order):
            count += 1
            if limit is not None and count > limit:
                return {"count": limit, "precision": "AT_LEAST"}
    return {"count": count, "precision": "EXACT"}


# ---- draft orders: sort, search, cursors ----------------------------------------------------

_DRAFT_SORT_KEYS = {"ID": "id", "NUMBER": "number", "UPDATED_AT": "updated_at"}


def _draft_term(name: str, op: str, value: str) -> _Test | None:
    """One ``field:value`` term of a ``draftOrders`` search; None for ignored ones."""
    if name == "status":
        wanted = value.upper()
        return lambda d: d.status == wanted
    if name in ("id", "created_at", "updated_at", "name", "email", "tag"):
        return _order_term(name, op, value, "DraftOrder")
    return None


def _draft_sort_attribute(args: JSON) -> str:
    sort_key = str(args.get("sortKey") or "ID")
    if sort_key not in _DRAFT_SORT_KEYS:
        raise _GraphQLError(
            f"Argument 'sortKey' on Field 'draftOrders' has an invalid value ({sort_key}). "
            "Expected type 'DraftOrderSortKeys'.",
            "argumentLiteralsIncompatible",
        )
    return _DRAFT_SORT_KEYS[sort_key]


def _iter_draft_orders(ex: _Exec, args: JSON) -> Iterator[_DraftOrder]:
    """Draft orders matching ``query`` in sort order, after the ``after`` cursor."""
    attribute = _draft_sort_attribute(args)
    tests = _search_tests(args.get("query"), _draft_term)
    drafts = ex.shop.draft_orders
    keys = sorted((getattr(d, attribute), d.id) for d in drafts.values())
    after = args.get("after")
    numeric = attribute != "updated_at"
    start = _sorted_cursor_key(after, numeric=numeric) if after is not None else None
    for _, number in _walk(keys, start, bool(args.get("reverse"))):
        draft = drafts[number]
        if all(test(draft) for test in tests):
            yield draft


def _q_draft_orders(root: Any, args: JSON, ex: _Exec) -> _Page:
    first = int(args.get("first") or 0)
    picked = list(itertools.islice(_iter_draft_orders(ex, args), first + 1))
    attribute = _draft_sort_attribute(args)
    page = picked[:first]
    cursors = [_cursor(d.id, _cursor_value(getattr(d, attribute))) for d in page]
    return _Page(page, cursors, len(picked) > first, args.get("after") is not None)


def _q_draft_order(root: Any, args: JSON, ex: _Exec) -> _DraftOrder | None:
    return ex.shop.find_draft(args.get("id"))


# --------------------------------------------------------------------------------------------
# Mutation resolvers (validation here; changes go through FakeShopify, which records webhooks)
# --------------------------------------------------------------------------------------------


@dataclass
class _RefundPlan:
    note: str | None
    lines: list[tuple[_Line, int, str, _Location | None]]
    transactions: list[tuple[_Txn, Decimal]]
    shipping: Decimal


def _plan_refund(shop: _ShopState, order: _Order, spec: JSON) -> tuple[_RefundPlan, list[JSON]]:
    """Check a ``RefundInput`` against the order; userErrors mean no refund."""
    errors: list[JSON] = []
    lines = _plan_refund_lines(shop, order, spec.get("refundLineItems") or [], errors)
    transactions = _plan_refund_money(order, spec.get("transactions") or [], errors)
    shipping = Decimal(0)
    requested = spec.get("shipping") or {}
    left = order.shipping - order.shipping_refunded
    if requested.get("fullRefund"):
        shipping = left
    elif requested.get("amount") is not None:
        try:
            shipping = _amount(requested["amount"])
        except ValueError:
            shipping = Decimal(-1)
        if not 0 <= shipping <= left:
            message = f"Shipping refund amount must be between 0 and {_decimal_text(left)}"
            errors.append(_user_error(["shipping", "amount"], message))
    return _RefundPlan(spec.get("note"), lines, transactions, shipping), errors


def _plan_refund_lines(
    shop: _ShopState, order: _Order, items: list[JSON], errors: list[JSON]
) -> list[tuple[_Line, int, str, _Location | None]]:
    planned = []
    wanted: dict[int, int] = {}
    for index, item in enumerate(items):
        where = ["refundLineItems", str(index)]
        line = order.find_line(item.get("lineItemId"))
        if line is None:
            errors.append(_user_error([*where, "lineItemId"], "Line item does not exist"))
            continue
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            errors.append(_user_error([*where, "quantity"], "Quantity must be greater than 0"))
            continue
        wanted[line.id] = wanted.get(line.id, 0) + quantity
        if wanted[line.id] > line.refundable_quantity:
            message = (
                "Quantity cannot refund more items than were purchased "
                f"(refundable: {line.refundable_quantity})"
            )
            errors.append(_user_error([*where, "quantity"], message))
            continue
        restock = str(item.get("restockType") or "NO_RESTOCK")
        if restock not in ("NO_RESTOCK", "CANCEL", "RETURN"):
            errors.append(_user_error([*where, "restockType"], "Restock type is invalid"))
            continue
        location = shop.location(item["locationId"]) if item.get("locationId") else None
        if item.get("locationId") and location is None:
            errors.append(_user_error([*where, "locationId"], "Location does not exist"))
            continue
        if location is None and restock != "NO_RESTOCK":
            location = shop.primary_location
        planned.append((line, quantity, restock, location))
    return planned


def _plan_refund_money(
    order: _Order, items: list[JSON], errors: list[JSON]
) -> list[tuple[_Txn, Decimal]]:
    planned = []
    taken: dict[int, Decimal] = {}
    for index, item in enumerate(items):
        where = ["transactions", str(index)]
        if str(item.get("kind") or "REFUND") != "REFUND":
            errors.append(_user_error([*where, "kind"], "Kind must be REFUND"))
            continue
        if item.get("orderId") not in (None, order.gid):
            errors.append(_user_error([*where, "orderId"], "Transaction order must be the order"))
            continue
        parent = order.find_txn(item.get("parentId"))
        if parent is None or not parent.settled:
            message = "Parent transaction must be a successful sale or capture of the order"
            errors.append(_user_error([*where, "parentId"], message))
            continue
        try:
            amount = _amount(item.get("amount"))
        except ValueError:
            errors.append(_user_error([*where, "amount"], "Amount is invalid"))
            continue
        if amount <= 0:
            errors.append(_user_error([*where, "amount"], "Amount must be greater than 0"))
            continue
        taken[parent.id] = taken.get(parent.id, Decimal(0)) + amount
        if taken[parent.id] > order.refundable(parent):
            message = "Amount cannot be greater than the refundable amount"
            errors.append(_user_error([*where, "amount"], message))
            continue
        if item.get("gateway") != parent.gateway:
            message = f"Gateway must match the parent transaction's gateway ({parent.gateway})"
            errors.append(_user_error([*where, "gateway"], message))
            continue
        planned.append((parent, amount))
    return planned


def _m_refund_create(root: Any, args: JSON, ex: _Exec) -> JSON:
    spec = args.get("input") or {}
    order = _q_order(root, {"id": spec.get("orderId")}, ex)
    if order is None:
        error = _user_error(["orderId"], "Order does not exist")
        return {"refund": None, "order": None, "userErrors": [error]}
    plan, errors = _plan_refund(ex.shop, order, spec)
    if errors:
        return {"refund": None, "order": None, "userErrors": errors}
    refund = ex.fake._apply_refund(ex.shop, order, plan)
    return {"refund": refund, "order": order, "userErrors": []}


def _m_inventory_adjust(root: Any, args: JSON, ex: _Exec) -> JSON:
    spec = args.get("input") or {}
    errors: list[JSON] = []
    if spec.get("name") != "available":
        message = "The quantity name must be 'available'."
        errors.append(_user_error(["input", "name"], message, "INVALID_QUANTITY_NAME"))
    if spec.get("reason") not in INVENTORY_REASONS:
        message = "The specified reason is invalid."
        errors.append(_user_error(["input", "reason"], message, "INVALID_REASON"))
    planned: list[tuple[_InventoryItem, _Location, int]] = []
    levels = dict(ex.shop.inventory)
    needs_compare = _at_least(ex.version, "2026-04")
    for index, change in enumerate(spec.get("changes") or []):
        where = ["input", "changes", str(index)]
        item = ex.shop.find_item(change.get("inventoryItemId"))
        location = ex.shop.location(change.get("locationId"))
        delta = change.get("delta")
        if item is None:
            message = "The specified inventory item could not be found."
            errors.append(
                _user_error([*where, "inventoryItemId"], message, "INVALID_INVENTORY_ITEM")
            )
        if location is None:
            message = "The specified location could not be found."
            errors.append(_user_error([*where, "locationId"], message, "INVALID_LOCATION"))
        if not isinstance(delta, int) or isinstance(delta, bool):
            errors.append(
                _user_error([*where, "delta"], "Delta must be an integer.", "INVALID_INPUT")
            )
        if needs_compare and "changeFromQuantity" not in change:
            message = "changeFromQuantity must be given (null is allowed) from API version 2026-04."
            errors.append(_user_error([*where, "changeFromQuantity"], message, "INVALID_INPUT"))
        if item is None or location is None or not isinstance(delta, int):
            continue
        current = levels.get((item.id, location.id), 0)
        expected = change.get("changeFromQuantity")
        if expected is not None and expected != current:
            message = f"The changeFromQuantity is stale: the quantity is {current}, not {expected}."
            errors.append(
                _user_error([*where, "changeFromQuantity"], message, "CHANGE_FROM_QUANTITY_STALE")
            )
            continue
        levels[(item.id, location.id)] = current + delta
        planned.append((item, location, delta))
    if errors:
        return {"inventoryAdjustmentGroup": None, "userErrors": errors}
    group = ex.fake._adjust_inventory(
        ex.shop, spec["reason"], spec.get("referenceDocumentUri"), planned
    )
    return {"inventoryAdjustmentGroup": group, "userErrors": []}


def _webhook_uri_problem(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "Address can't be blank"
    if uri.startswith(("pubsub://", "arn:aws:events:")):
        return None
    split = urlsplit(uri)
    if split.scheme != "https":
        return f"Address protocol {split.scheme}:// is not supported"
    return None if split.hostname else "Address is invalid"


def _m_webhook_create(root: Any, args: JSON, ex: _Exec) -> JSON:
    topic = args.get("topic")
    if topic not in WEBHOOK_TOPICS:
        raise _GraphQLError(
            f"Argument 'topic' on Field 'webhookSubscriptionCreate' has an invalid value "
            f"({topic}). Expected type 'WebhookSubscriptionTopic!'.",
            "argumentLiteralsIncompatible",
        )
    spec = args.get("webhookSubscription") or {}
    uri = spec.get("uri")
    problem = _webhook_uri_problem(uri)
    if problem is None and any(
        s.topic == topic and s.uri == uri for s in ex.shop.subscriptions.values()
    ):
        problem = "Address for this topic has already been taken"
    if problem is not None:
        error = _user_error(["webhookSubscription", "uri"], problem)
        return {"webhookSubscription": None, "userErrors": [error]}
    subscription = _Subscription(
        next(_IDS), str(topic), str(uri), str(spec.get("format") or "JSON"), ex.version, ex.now
    )
    ex.shop.subscriptions[subscription.id] = subscription
    return {"webhookSubscription": subscription, "userErrors": []}


def _m_webhook_delete(root: Any, args: JSON, ex: _Exec) -> JSON:
    number = _gid_number(args.get("id"), "WebhookSubscription")
    if number is None or ex.shop.subscriptions.pop(number, None) is None:
        error = _user_error(["id"], "Webhook subscription does not exist")
        return {"deletedWebhookSubscriptionId": None, "userErrors": [error]}
    return {"deletedWebhookSubscriptionId": args["id"], "userErrors": []}


def _credit_account(
    shop: _ShopState, target: Any, currency: str
) -> tuple[_CreditAccount | _Customer | None, JSON | None]:
    """The account to credit, or its owner when the account is still to be made."""
    parsed = _parse_gid(target)
    if parsed is not None and parsed[0] == "Customer" and parsed[1] in shop.customers:
        owner = shop.customers[parsed[1]]
        accounts = shop.credit_accounts.values()
        found = next((a for a in accounts if a.owner is owner and a.currency == currency), None)
        return found or owner, None
    if parsed is not None and parsed[0] == "StoreCreditAccount":
        account = shop.credit_accounts.get(parsed[1])
        if account is not None and account.currency != currency:
            message = "The currency provided does not match the currency of the account."
            return None, _user_error(
                ["creditInput", "creditAmount"], message, "MISMATCHING_CURRENCY"
            )
        if account is not None:
            return account, None
    return None, _user_error(["id"], "Store credit account does not exist.", "ACCOUNT_NOT_FOUND")


def _m_store_credit(root: Any, args: JSON, ex: _Exec) -> JSON:
    spec = args.get("creditInput") or {}
    money = spec.get("creditAmount") or {}
    currency = str(money.get("currencyCode") or "")
    failed: JSON | None = None
    try:
        amount = _amount(money.get("amount"))
    except ValueError:
        amount = Decimal(0)
    expires_at = _parse_time(spec["expiresAt"]) if spec.get("expiresAt") else None
    if amount <= 0:
        message = "A positive amount must be used to credit a store credit account."
        failed = _user_error(
            ["creditInput", "creditAmount", "amount"], message, "NEGATIVE_OR_ZERO_AMOUNT"
        )
    elif expires_at is not None and expires_at <= ex.now:
        message = "The expiry date must be in the future."
        failed = _user_error(["creditInput", "expiresAt"], message, "EXPIRES_AT_IN_PAST")
    target, problem = _credit_account(ex.shop, args.get("id"), currency)
    failed = failed or problem
    if failed is not None or target is None:
        return {"storeCreditAccountTransaction": None, "userErrors": [failed]}
    if isinstance(target, _Customer):
        target = ex.fake._open_credit_account(ex.shop, target, currency)
    txn = ex.fake._store_credit(ex.shop, target, amount, "ADJUSTMENT", expires_at)
    return {"storeCreditAccountTransaction": txn, "userErrors": []}


def _m_return_create(root: Any, args: JSON, ex: _Exec) -> JSON:
    spec = args.get("returnInput") or {}
    order = _q_order(root, {"id": spec.get("orderId")}, ex)
    if order is None:
        error = _user_error(["returnInput", "orderId"], "Order does not exist.", "NOT_FOUND")
        return {"return": None, "userErrors": [error]}
    errors: list[JSON] = []
    lines: list[tuple[_FulfillmentLine, int, str, str]] = []
    wanted: dict[int, int] = {}
    for index, item in enumerate(spec.get("returnLineItems") or []):
        where = ["returnInput", "returnLineItems", str(index)]
        line = order.find_fulfillment_line(item.get("fulfillmentLineItemId"))
        quantity = item.get("quantity")
        if line is None:
            message = "Fulfillment line item does not exist."
            errors.append(_user_error([*where, "fulfillmentLineItemId"], message, "NOT_FOUND"))
            continue
        if not isinstance(quantity, int) or quantity < 1:
            message = "Quantity must be greater than 0."
            errors.append(_user_error([*where, "quantity"], message, "GREATER_THAN"))
            continue
        wanted[line.id] = wanted.get(line.id, 0) + quantity
        if wanted[line.id] > order.returnable(line):
            message = "Quantity is greater than the returnable quantity."
            errors.append(_user_error([*where, "quantity"], message, "INVALID"))
            continue
        reason = str(item.get("returnReason") or "UNKNOWN")
        lines.append((line, quantity, reason, str(item.get("returnReasonNote") or "")))
    if not lines and not errors:
        message = "Return must have at least one line item."
        errors.append(_user_error(["returnInput", "returnLineItems"], message, "BLANK"))
    if errors:
        return {"return": None, "userErrors": errors}
    created = ex.fake._open_return(ex.shop, order, lines, "OPEN")
    return {"return": created, "userErrors": []}


def _return_transition(target: str, *, in_input: bool) -> Resolver:
    """A return mutation moving a return to ``target`` (``id`` at top level or in ``input``)."""

    def resolve(root: Any, args: JSON, ex: _Exec) -> JSON:
        spec = (args.get("input") or {}) if in_input else args
        where = ["input", "id"] if in_input else ["id"]
        found = _q_return(root, {"id": spec.get("id")}, ex)
        if found is None:
            error = _user_error(where, "Return does not exist.", "NOT_FOUND")
            return {"return": None, "userErrors": [error]}
        decline = None
        if target == "DECLINED":
            decline = {"reason": spec.get("declineReason"), "note": spec.get("declineNote")}
        problem = ex.fake._move_return(ex.shop, found, target, decline)
        if problem is not None:
            error = _user_error(where, problem, "INVALID_STATE")
            return {"return": None, "userErrors": [error]}
        return {"return": found, "userErrors": []}

    return resolve


_DISCOUNT_TYPES = ("FIXED_AMOUNT", "PERCENTAGE")


def _plan_draft_line(
    shop: _ShopState, currency: str, index: int, item: JSON, errors: list[JSON]
) -> _DraftLine | None:
    """A ``DraftOrderLineItemInput`` checked: a variant's line takes the variant's price and
    title (``title``, ``sku`` and ``originalUnitPrice`` are ignored, as on Shopify) unless
    ``priceOverride`` is given; a custom line needs ``title`` and ``originalUnitPrice``
    (or ``originalUnitPriceWithCurrency``)."""
    where = ["lineItems", str(index)]
    found = len(errors)
    quantity = item.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        message = "Quantity must be greater than or equal to 1"
        errors.append(_user_error([*where, "quantity"], message))
    variant = None
    sku: str | None
    if item.get("variantId") is not None:
        variant = shop.find_variant(item["variantId"])
        if variant is None:
            message = f"Product variant {item['variantId']} does not exist"
            errors.append(_user_error([*where, "variantId"], message))
            return None
        title, sku = variant.product.title, variant.sku
        price_field = "priceOverride"
        raw_price: Any = (item.get("priceOverride") or {}).get("amount", variant.price)
    else:
        title, sku = str(item.get("title") or ""), item.get("sku") or None
        if not title:
            errors.append(_user_error([*where, "title"], "Title can't be blank"))
        with_currency = item.get("originalUnitPriceWithCurrency") or {}
        price_field = "originalUnitPriceWithCurrency" if with_currency else "originalUnitPrice"
        raw_price = with_currency.get("amount", item.get("originalUnitPrice"))
        if raw_price is None:
            errors.append(_user_error([*where, price_field], "Price can't be blank"))
            return None
    try:
        price = _amount(raw_price)
    except ValueError:
        price = Decimal(-1)
    if price < 0:
        message = "Price must be greater than or equal to 0"
        errors.append(_user_error([*where, price_field], message))
    if len(errors) > found or not isinstance(quantity, int):
        return None
    requires_shipping = variant is not None or item.get("requiresShipping") is not False
    return _DraftLine(next(_IDS), variant, title, quantity, price, sku, currency, requires_shipping)


def _plan_discount(raw: JSON | None, subtotal: Decimal, errors: list[JSON]) -> JSON | None:
    """A ``DraftOrderAppliedDiscountInput`` checked against the subtotal."""
    if raw is None:
        return None
    value_type = raw.get("valueType")
    if value_type not in _DISCOUNT_TYPES:
        raise _GraphQLError(
            f"Argument 'valueType' on InputObject 'DraftOrderAppliedDiscountInput' has an "
            f"invalid value ({value_type}). Expected type 'DraftOrderAppliedDiscountType!'.",
            "argumentLiteralsIncompatible",
        )
    where = ["appliedDiscount", "value"]
    try:
        value = _amount(raw.get("value"))
    except ValueError:
        errors.append(_user_error(where, "Value is invalid"))
        return None
    if value < 0:
        errors.append(_user_error(where, "Value must be greater than or equal to 0"))
    elif value_type == "PERCENTAGE" and value > 100:
        errors.append(_user_error(where, "Value must be less than or equal to 100"))
    elif value_type == "FIXED_AMOUNT" and value > subtotal:
        message = (
            f"Discount amount ({_decimal_text(value)}) cannot be greater than the subtotal "
            f"({_decimal_text(subtotal)})"
        )
        errors.append(_user_error(where, message))
    return {
        "value": value,
        "valueType": value_type,
        "title": raw.get("title"),
        "description": raw.get("description"),
    }


def _allocate(amount: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """``amount`` split in proportion to ``weights`` (rounded; the last takes the rest)."""
    total = sum(weights, Decimal(0))
    if not weights or amount == 0 or total == 0:
        return [Decimal(0)] * len(weights)
    shares = [_round_money(amount * w / total, currency) for w in weights[:-1]]
    return [*shares, amount - sum(shares, Decimal(0))]


def _m_draft_order_create(root: Any, args: JSON, ex: _Exec) -> JSON:
    spec = args.get("input") or {}
    currency = str(spec.get("presentmentCurrencyCode") or ex.shop.currency).upper()
    errors: list[JSON] = []
    items = spec.get("lineItems") or []
    if not items:
        errors.append(_user_error(["lineItems"], "Add at least 1 product"))
    planned = [_plan_draft_line(ex.shop, currency, i, item, errors) for i, item in enumerate(items)]
    lines = [line for line in planned if line is not None]
    subtotal = sum((line.total for line in lines), Decimal(0))
    discount = _plan_discount(spec.get("appliedDiscount"), subtotal, errors)
    if errors:
        return {"draftOrder": None, "userErrors": errors}
    tags = spec.get("tags") or []
    if isinstance(tags, str):
        tags = tags.split(",")
    draft = _DraftOrder(
        next(_IDS),
        ex.shop.next_draft_number,
        spec.get("email"),
        spec.get("note"),
        tuple(str(t).strip() for t in tags if str(t).strip()),
        currency,
        ex.now,
        ex.now,
        lines,
        discount,
        [
            {"key": str(a.get("key")), "value": a.get("value")}
            for a in spec.get("customAttributes") or []
        ],
        secrets.token_hex(16),
    )
    ex.shop.next_draft_number += 1
    ex.shop.draft_orders[draft.id] = draft
    return {"draftOrder": draft, "userErrors": []}


def _m_draft_order_complete(root: Any, args: JSON, ex: _Exec) -> JSON:
    draft = ex.shop.find_draft(args.get("id"))
    if draft is None:
        error = _user_error(["id"], "Draft order does not exist")
        return {"draftOrder": None, "userErrors": [error]}
    if draft.status == "COMPLETED":
        error = _user_error(["id"], "This draft order has already been completed")
        return {"draftOrder": None, "userErrors": [error]}
    ex.fake._complete_draft(ex.shop, draft, pending=bool(args.get("paymentPending")))
    return {"draftOrder": draft, "userErrors": []}


def _m_bulk_run(root: Any, args: JSON, ex: _Exec) -> JSON:
    return ex.fake._start_bulk(ex, args)


# --------------------------------------------------------------------------------------------
# The schema: every type the fake serves, with its fields (2026-07 names)
# --------------------------------------------------------------------------------------------

_ID = _scalar(_id)
_USER_ERRORS = {
    "UserError": "field message",
    "InventoryAdjustQuantitiesUserError": "field message code",
    "BulkOperationUserError": "field message code",
    "StoreCreditAccountCreditUserError": "field message code",
    "ReturnUserError": "field message code",
}
_PAYLOADS: dict[str, tuple[str, str]] = {
    # payload type: (object field and its type, user error type)
    "RefundCreatePayload": ("refund:Refund order:Order", "UserError"),
    "InventoryAdjustQuantitiesPayload": (
        "inventoryAdjustmentGroup:InventoryAdjustmentGroup",
        "InventoryAdjustQuantitiesUserError",
    ),
    "WebhookSubscriptionCreatePayload": ("webhookSubscription:WebhookSubscription", "UserError"),
    "WebhookSubscriptionDeletePayload": ("", "UserError"),
    "BulkOperationRunQueryPayload": ("bulkOperation:BulkOperation", "BulkOperationUserError"),
    "StoreCreditAccountCreditPayload": (
        "storeCreditAccountTransaction:StoreCreditAccountCreditTransaction",
        "StoreCreditAccountCreditUserError",
    ),
    "ReturnCreatePayload": ("return:Return", "ReturnUserError"),
    "ReturnApproveRequestPayload": ("return:Return", "ReturnUserError"),
    "ReturnDeclineRequestPayload": ("return:Return", "ReturnUserError"),
    "ReturnClosePayload": ("return:Return", "ReturnUserError"),
    "ReturnCancelPayload": ("return:Return", "ReturnUserError"),
    "DraftOrderCreatePayload": ("draftOrder:DraftOrder", "UserError"),
    "DraftOrderCompletePayload": ("draftOrder:DraftOrder", "UserError"),
}

_CREDIT_TXN_FIELDS = {
    "account": _object("StoreCreditAccount"),
    "amount": _object("MoneyV2", lambda t, a, ex: ex.money(t.amount, t.account.currency)),
    "balanceAfterTransaction": _object(
        "MoneyV2", lambda t, a, ex: ex.money(t.balance_after, t.account.currency)
    ),
    "createdAt": _SCALAR,
    "event": _SCALAR,
    "origin": _object("OrderTransaction", lambda t, a, ex: None),
}

_SCHEMA.update(
    {
        "QueryRoot": {
            "shop": _object("Shop", lambda r, a, ex: ex.shop),
            "location": _object("Location", _q_location, args=("id",), scope="read_locations"),
            "locations": _connection(
                "Location",
                lambda r, a, ex: list(ex.shop.locations.values()),
                args=("query", "sortKey", "includeInactive"),
                scope="read_locations",
            ),
            "orders": _connection(
                "Order", _q_orders, args=("query", "sortKey", "savedSearchId"), scope="read_orders"
            ),
            "ordersCount": _object(
                "Count", _q_orders_count, args=("query", "limit"), scope="read_orders"
            ),
            "order": _object("Order", _q_order, required=("id",), scope="read_orders"),
            "node": _object("Node", lambda r, a, ex: _find_node(ex, a["id"]), required=("id",)),
            "nodes": _list(
                "Node", lambda r, a, ex: [_find_node(ex, i) for i in a["ids"]], required=("ids",)
            ),
            "customer": _object("Customer", _q_customer, required=("id",), scope="read_customers"),
            "inventoryItem": _object(
                "InventoryItem", _q_inventory_item, required=("id",), scope="read_inventory"
            ),
            "return": _object("Return", _q_return, required=("id",), scope="read_returns"),
            "returnableFulfillments": _connection(
                "ReturnableFulfillment",
                _q_returnable_fulfillments,
                required=("orderId",),
                scope="read_returns",
            ),
            "webhookSubscriptions": _connection(
                "WebhookSubscription",
                _q_webhook_subscriptions,
                args=("topics", "uri", "format", "query", "sortKey"),
            ),
            "currentBulkOperation": _object("BulkOperation", _q_current_bulk, args=("type",)),
            "draftOrder": _object(
                "DraftOrder", _q_draft_order, required=("id",), scope="read_draft_orders"
            ),
            "draftOrders": _connection(
                "DraftOrder",
                _q_draft_orders,
                args=("query", "sortKey", "savedSearchId"),
                scope="read_draft_orders",
            ),
        },
        "Mutation": {
            "refundCreate": _mutation(
                "RefundCreatePayload",
                _m_refund_create,
                required=("input",),
                scope="write_orders",
                idempotent=True,
            ),
            "inventoryAdjustQuantities": _mutation(
                "InventoryAdjustQuantitiesPayload",
                _m_inventory_adjust,
                required=("input",),
                scope="write_inventory",
                idempotent=True,
            ),
            "webhookSubscriptionCreate": _mutation(
                "WebhookSubscriptionCreatePayload",
                _m_webhook_create,
                required=("topic", "webhookSubscription"),
            ),
            "webhookSubscriptionDelete": _mutation(
                "WebhookSubscriptionDeletePayload",
                _m_webhook_delete,
                required=("id",),
            ),
            "bulkOperationRunQuery": _mutation(
                "BulkOperationRunQueryPayload",
                _m_bulk_run,
                args=("query", "groupObjects"),
                required=("query",),
            ),
            "storeCreditAccountCredit": _mutation(
                "StoreCreditAccountCreditPayload",
                _m_store_credit,
                required=("id", "creditInput"),
                scope="write_store_credit_account_transactions",
            ),
            "returnCreate": _mutation(
                "ReturnCreatePayload",
                _m_return_create,
                required=("returnInput",),
                scope="write_returns",
            ),
            "returnApproveRequest": _mutation(
                "ReturnApproveRequestPayload",
                _return_transition("OPEN", in_input=True),
                required=("input",),
                scope="write_returns",
            ),
            "returnDeclineRequest": _mutation(
                "ReturnDeclineRequestPayload",
                _return_transition("DECLINED", in_input=True),
                required=("input",),
                scope="write_returns",
            ),
            "returnClose": _mutation(
                "ReturnClosePayload",
                _return_transition("CLOSED", in_input=False),
                required=("id",),
                scope="write_returns",
            ),
            "returnCancel": _mutation(
                "ReturnCancelPayload",
                _return_transition("CANCELED", in_input=False),
                args=("id", "notifyCustomer"),
                required=("id",),
                scope="write_returns",
            ),
            "draftOrderCreate": _mutation(
                "DraftOrderCreatePayload",
                _m_draft_order_create,
                required=("input",),
                scope="write_draft_orders",
            ),
            "draftOrderComplete": _mutation(
                "DraftOrderCompletePayload",
                _m_draft_order_complete,
                args=("paymentPending", "paymentGatewayId", "sourceName"),
                required=("id",),
                scope="write_draft_orders",
            ),
        },
        "PageInfo": {
            "hasNextPage": _scalar(lambda p, a, ex: p.has_next),
            "hasPreviousPage": _scalar(lambda p, a, ex: p.has_prev),
            "startCursor": _scalar(lambda p, a, ex: p.cursors[0] if p.cursors else None),
            "endCursor": _scalar(lambda p, a, ex: p.cursors[-1] if p.cursors else None),
        },
        "Count": _scalars("count precision"),
        "MoneyBag": {"shopMoney": _object("MoneyV2"), "presentmentMoney": _object("MoneyV2")},
        "MoneyV2": _scalars("amount currencyCode"),
        "Node": {"id": _ID},
        "Shop": {
            "id": _scalar(lambda s, a, ex: s.info.gid),
            "name": _scalar(lambda s, a, ex: s.info.name),
            "email": _scalar(lambda s, a, ex: f"owner@{s.domain}"),
            "myshopifyDomain": _scalar(lambda s, a, ex: s.domain),
            "currencyCode": _scalar(lambda s, a, ex: s.currency),
        },
        "Location": {"id": _ID, **_scalars("name isActive")},
        "Customer": {
            "id": _ID,
            **_scalars("email firstName lastName displayName"),
            "storeCreditAccounts": _connection(
                "StoreCreditAccount",
                lambda c, a, ex: [x for x in ex.shop.credit_accounts.values() if x.owner is c],
                args=("query",),
            ),
        },
        "MailingAddress": {
            **{
                name: _dict_key(_snake(name))
                for name in [
                    "address1",
                    "address2",
                    "city",
                    "province",
                    "provinceCode",
                    "zip",
                    "country",
                    "firstName",
                    "lastName",
                    "name",
                    "phone",
                    "company",
                ]
            },
            "countryCodeV2": _dict_key("country_code"),
        },
        "Order": {
            "id": _ID,
            **_scalars(
                "name email createdAt processedAt updatedAt cancelledAt closedAt test note "
                "cancelReason"
            ),
            "closed": _scalar(lambda o, a, ex: o.closed_at is not None),
            "currencyCode": _scalar(lambda o, a, ex: ex.shop.currency),
            "presentmentCurrencyCode": _scalar(lambda o, a, ex: o.currency),
            "displayFinancialStatus": _scalar(lambda o, a, ex: o.financial_status),
            "displayFulfillmentStatus": _scalar(lambda o, a, ex: o.fulfillment_status),
            "tags": _scalar(lambda o, a, ex: list(o.tags)),
            "customer": _object("Customer"),
            "shippingAddress": _object("MailingAddress"),
            "totalPriceSet": _bag(lambda o: o.total),
            "subtotalPriceSet": _bag(lambda o: o.subtotal),
            "totalShippingPriceSet": _bag(lambda o: o.shipping),
            "totalTaxSet": _bag(lambda o: o.total_tax),
            "totalDiscountsSet": _bag(lambda o: o.total_discounts),
            "totalRefundedSet": _bag(lambda o: o.refunded),
            "totalReceivedSet": _bag(lambda o: o.received),
            "netPaymentSet": _bag(lambda o: o.received - o.refunded),
            "currentTotalPriceSet": _bag(lambda o: o.current_total),
            "lineItems": _connection("LineItem"),
            "fulfillments": _list("Fulfillment", args=("first",)),
            "transactions": _list(
                "OrderTransaction", args=("first", "capturable", "manuallyResolvable")
            ),
            "refunds": _list("Refund", args=("first",)),
            "returns": _connection("Return", args=("query",)),
            "customAttributes": _list("Attribute"),
        },
        "LineItem": {
            "id": _ID,
            **_scalars("title quantity currentQuantity refundableQuantity requiresShipping sku"),
            "name": _scalar(lambda li, a, ex: li.title),
            "originalUnitPriceSet": _bag(lambda li: li.price),
            "discountedUnitPriceSet": _bag(lambda li: li.unit_discounted),
            "totalDiscountSet": _bag(lambda li: li.discount),
            "originalTotalSet": _bag(lambda li: li.price * li.quantity),
            "discountedTotalSet": _bag(lambda li: li.price * li.quantity - li.discount),
            "taxLines": _list(
                "TaxLine",
                lambda li, a, ex: (
                    [
                        {
                            "title": "Tax",
                            "rate": float(li.tax_rate),
                            "priceSet": ex.bag(li.tax, li.currency),
                            "ratePercentage": float(li.tax_rate * 100),
                        }
                    ]
                    if li.tax
                    else []
                ),
                args=("first",),
            ),
            "product": _object(
                "Product", lambda li, a, ex: li.variant.product if li.variant else None
            ),
            "variant": _object("ProductVariant"),
        },
        "TaxLine": {**_scalars("title rate ratePercentage"), "priceSet": _object("MoneyBag")},
        "Product": {"id": _ID, **_scalars("title productType tags")},
        "ProductVariant": {
            "id": _ID,
            **_scalars("sku title price"),
            "product": _object("Product"),
            "inventoryItem": _object("InventoryItem"),
        },
        "InventoryItem": {
            "id": _ID,
            **_scalars("sku tracked"),
            "inventoryLevel": _object("InventoryLevel", _inventory_level, required=("locationId",)),
        },
        "InventoryLevel": {
            "id": _ID,
            "item": _object("InventoryItem"),
            "location": _object("Location"),
            "quantities": _list("InventoryQuantity", _quantities, required=("names",), free=True),
        },
        "InventoryQuantity": _scalars("name quantity"),
        "Fulfillment": {
            "id": _ID,
            **_scalars("status createdAt deliveredAt displayStatus"),
            "fulfillmentLineItems": _connection("FulfillmentLineItem"),
        },
        "FulfillmentLineItem": {
            "id": _ID,
            "quantity": _SCALAR,
            "lineItem": _object("LineItem"),
        },
        "OrderTransaction": {
            "id": _ID,
            **_scalars(
                "kind status gateway formattedGateway processedAt test paymentId receiptJson"
            ),
            "createdAt": _scalar(lambda t, a, ex: t.processed_at),
            "errorCode": _scalar(lambda t, a, ex: None),
            "amountSet": _bag(lambda t: t.amount),
            "parentTransaction": _object("OrderTransaction"),
        },
        "Refund": {
            "id": _ID,
            **_scalars("createdAt updatedAt note"),
            "totalRefundedSet": _bag(lambda r: r.total),
            "refundLineItems": _connection("RefundLineItem"),
            "transactions": _connection("OrderTransaction"),
            "order": _object("Order"),
            "return": _object("Return", lambda r, a, ex: r.return_),
        },
        "RefundLineItem": {
            "id": _ID,
            **_scalars("quantity restockType restocked"),
            "lineItem": _object("LineItem"),
            "location": _object("Location"),
            "subtotalSet": _bag(lambda rl: rl.subtotal),
            "totalTaxSet": _bag(lambda rl: rl.tax),
        },
        "Return": {
            "id": _ID,
            **_scalars("name status createdAt closedAt totalQuantity"),
            "order": _object("Order"),
            "decline": _object("ReturnDecline"),
            "returnLineItems": _connection("ReturnLineItem"),
        },
        "ReturnDecline": _scalars("reason note"),
        "ReturnLineItem": {
            "id": _ID,
            **_scalars("quantity returnReason returnReasonNote"),
            "fulfillmentLineItem": _object("FulfillmentLineItem"),
        },
        "ReturnableFulfillment": {
            "id": _ID,
            "fulfillment": _object("Fulfillment"),
            "returnableFulfillmentLineItems": _connection("ReturnableFulfillmentLineItem"),
        },
        "ReturnableFulfillmentLineItem": {
            "quantity": _SCALAR,
            "fulfillmentLineItem": _object("FulfillmentLineItem"),
        },
        "WebhookSubscription": {"id": _ID, **_scalars("topic uri format createdAt")},
        "BulkOperation": {
            "id": _ID,
            **_scalars("status errorCode createdAt completedAt query type"),
            "objectCount": _scalar(lambda b, a, ex: str(b.object_count)),
            "rootObjectCount": _scalar(lambda b, a, ex: str(b.root_object_count)),
            "fileSize": _scalar(lambda b, a, ex: None if b.file_size is None else str(b.file_size)),
            "url": _scalar(lambda b, a, ex: ex.fake._bulk_url(b)),
            "partialDataUrl": _scalar(lambda b, a, ex: None),
        },
        "InventoryAdjustmentGroup": {
            "id": _ID,
            **_scalars("reason referenceDocumentUri createdAt"),
            "changes": _list(
                "InventoryChange", args=("inventoryItemIds", "locationIds", "quantityNames")
            ),
        },
        "InventoryChange": {
            **_scalars("name delta quantityAfterChange ledgerDocumentUri"),
            "item": _object("InventoryItem"),
            "location": _object("Location"),
        },
        "StoreCreditAccount": {
            "id": _ID,
            "balance": _object("MoneyV2", lambda c, a, ex: ex.money(c.balance, c.currency)),
            "owner": _object("Customer"),
            "transactions": _connection("StoreCreditAccountTransaction", args=("query",)),
        },
        "StoreCreditAccountTransaction": _CREDIT_TXN_FIELDS,
        "StoreCreditAccountCreditTransaction": {
            "id": _ID,
            **_CREDIT_TXN_FIELDS,
            "expiresAt": _SCALAR,
            "remainingAmount": _object(
                "MoneyV2", lambda t, a, ex: ex.money(t.amount, t.account.currency)
            ),
        },
        "StoreCreditAccountDebitTransaction": {"id": _ID, **_CREDIT_TXN_FIELDS},
        "Attribute": _scalars("key value"),
        "DraftOrder": {
            "id": _ID,
            **_scalars("name status email createdAt updatedAt completedAt"),
            "note2": _scalar(lambda d, a, ex: d.note),
            "tags": _scalar(lambda d, a, ex: list(d.tags)),
            "invoiceUrl": _scalar(
                lambda d, a, ex: (
                    f"https://{ex.shop.domain}/{ex.shop.info.id}/invoices/{d.invoice_token}"
                )
            ),
            "currencyCode": _scalar(lambda d, a, ex: ex.shop.currency),
            "presentmentCurrencyCode": _scalar(lambda d, a, ex: d.currency),
            "subtotalPriceSet": _bag(lambda d: d.subtotal),
            "totalDiscountsSet": _bag(lambda d: d.total_discounts),
            "totalPriceSet": _bag(lambda d: d.total),
            "appliedDiscount": _object(
                "DraftOrderAppliedDiscount",
                lambda d, a, ex: (
                    None
                    if d.discount is None
                    else {**d.discount, "amount": d.total_discounts, "currency": d.currency}
                ),
            ),
            "customAttributes": _list("Attribute"),
            "lineItems": _connection("DraftOrderLineItem"),
            "order": _object("Order"),
        },
        "DraftOrderAppliedDiscount": {
            **_scalars("title description valueType"),
            "value": _scalar(lambda x, a, ex: float(x["value"])),
            "amountSet": _object("MoneyBag", lambda x, a, ex: ex.bag(x["amount"], x["currency"])),
            "amountV2": _object("MoneyV2", lambda x, a, ex: ex.money(x["amount"], x["currency"])),
        },
        "DraftOrderLineItem": {
            "id": _ID,
            **_scalars("title quantity sku custom requiresShipping"),
            "name": _scalar(lambda li, a, ex: li.title),
            "variant": _object("ProductVariant"),
            "product": _object(
                "Product", lambda li, a, ex: li.variant.product if li.variant else None
            ),
            "originalUnitPriceSet": _bag(lambda li: li.price),
            "originalTotalSet": _bag(lambda li: li.total),
        },
    }
)
for _name, _fields in _USER_ERRORS.items():
    _SCHEMA[_name] = _scalars(_fields)
for _name, (_objects, _errors) in _PAYLOADS.items():
    _SCHEMA[_name] = {
        **{k: _object(t) for k, _, t in (o.partition(":") for o in _objects.split())},
        "userErrors": _list(_errors, free=True),
    }
_SCHEMA["WebhookSubscriptionDeletePayload"]["deletedWebhookSubscriptionId"] = _SCALAR
_ABSTRACT["StoreCreditAccountTransaction"] = frozenset(
    {"StoreCreditAccountCreditTransaction", "StoreCreditAccountDebitTransaction"}
)
_ABSTRACT["Node"] = frozenset(
    name for name, fields in _SCHEMA.items() if "id" in fields and name != "Node"
)


# --------------------------------------------------------------------------------------------
# REST representations (webhook bodies and the control API's getters)
# --------------------------------------------------------------------------------------------


def _rest_bag(amount: Decimal, shop_currency: str, currency: str) -> JSON:
    return {
        "shop_money": {
            "amount": _rest_amount(amount, shop_currency),
            "currency_code": shop_currency,
        },
        "presentment_money": {"amount": _rest_amount(amount, currency), "currency_code": currency},
    }


def _rest_money(name: str, amount: Decimal, shop_currency: str, currency: str) -> JSON:
    return {
        name: _rest_amount(amount, currency),
        f"{name}_set": _rest_bag(amount, shop_currency, currency),
    }


def _rest_customer(customer: _Customer | None) -> JSON | None:
    if customer is None:
        return None
    return {
        "id": customer.id,
        "admin_graphql_api_id": customer.gid,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "phone": None,
    }


def _rest_line(line: _Line, shop_currency: str, fulfilled: bool) -> JSON:
    cur = line.currency
    tax_lines = []
    if line.tax:
        tax_lines.append(
            {
                "title": "Tax",
                "rate": float(line.tax_rate),
                **_rest_money("price", line.tax, shop_currency, cur),
            }
        )
    return {
        "id": line.id,
        "admin_graphql_api_id": line.gid,
        "product_id": line.variant.product.id if line.variant else None,
        "variant_id": line.variant.id if line.variant else None,
        "sku": line.sku,
        "title": line.title,
        "name": line.title,
        "quantity": line.quantity,
        "current_quantity": line.current_quantity,
        "fulfillable_quantity": 0 if fulfilled else line.current_quantity,
        "fulfillment_status": "fulfilled" if fulfilled else None,
        "requires_shipping": line.requires_shipping,
        "taxable": bool(line.tax),
        "gift_card": False,
        **_rest_money("price", line.price, shop_currency, cur),
        **_rest_money("total_discount", line.discount, shop_currency, cur),
        "tax_lines": tax_lines,
        "discount_allocations": [],
        "duties": [],
        "properties": [],
    }


def _rest_transaction(order: _Order, txn: _Txn) -> JSON:
    return {
        "id": txn.id,
        "admin_graphql_api_id": txn.gid,
        "order_id": order.id,
        "kind": txn.kind.lower(),
        "gateway": txn.gateway,
        "status": txn.status.lower(),
        "amount": _rest_amount(txn.amount, txn.currency),
        "currency": txn.currency,
        "parent_id": txn.parent_transaction.id if txn.parent_transaction else None,
        "payment_id": txn.payment_id,
        "created_at": _rest_time(txn.processed_at),
        "processed_at": _rest_time(txn.processed_at),
        "test": txn.test,
        "message": None,
        "error_code": None,
        "authorization": None,
        "location_id": None,
        "user_id": None,
        "device_id": None,
        "source_name": "external",
        "receipt": {},
    }


def _rest_refund(refund: _Refund, shop_currency: str) -> JSON:
    order, cur = refund.order, refund.currency
    fulfilled = bool(order.fulfillments)
    return {
        "id": refund.id,
        "admin_graphql_api_id": refund.gid,
        "order_id": order.id,
        "created_at": _rest_time(refund.created_at),
        "processed_at": _rest_time(refund.created_at),
        "note": refund.note,
        "user_id": None,
        "restock": any(rl.restocked for rl in refund.refund_line_items),
        "return": (
            None
            if refund.return_ is None
            else {"id": refund.return_.id, "admin_graphql_api_id": refund.return_.gid}
        ),
        "refund_line_items": [
            {
                "id": rl.id,
                "line_item_id": rl.line_item.id,
                "quantity": rl.quantity,
                "restock_type": rl.restock_type.lower(),
                "location_id": rl.location.id if rl.location else None,
                "subtotal": float(rl.subtotal),
                "subtotal_set": _rest_bag(rl.subtotal, shop_currency, cur),
                "total_tax": float(rl.tax),
                "total_tax_set": _rest_bag(rl.tax, shop_currency, cur),
                "line_item": _rest_line(rl.line_item, shop_currency, fulfilled),
            }
            for rl in refund.refund_line_items
        ],
        "transactions": [_rest_transaction(order, t) for t in refund.transactions],
        "refund_shipping_lines": (
            [{"subtotal_amount_set": _rest_bag(refund.shipping, shop_currency, cur)}]
            if refund.shipping
            else []
        ),
        "order_adjustments": [],
        "duties": [],
        "total_duties_set": _rest_bag(Decimal(0), shop_currency, cur),
    }


def _rest_order(order: _Order, shop_currency: str) -> JSON:
    cur = order.currency
    fulfilled = bool(order.fulfillments)
    gateways = list(dict.fromkeys(t.gateway for t in order.transactions if t.settled))
    digits = re.sub(r"\D", "", order.name)
    return {
        "id": order.id,
        "admin_graphql_api_id": order.gid,
        "name": order.name,
        "order_number": int(digits) if digits else None,
        "email": order.email,
        "contact_email": order.email,
        "created_at": _rest_time(order.created_at),
        "updated_at": _rest_time(order.updated_at),
        "processed_at": _rest_time(order.processed_at),
        "cancelled_at": _rest_time(order.cancelled_at),
        "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
        "closed_at": _rest_time(order.closed_at),
        "currency": shop_currency,
        "presentment_currency": cur,
        "financial_status": order.financial_status.lower(),
        "fulfillment_status": "fulfilled" if fulfilled else None,
        "test": order.test,
        "tags": ", ".join(order.tags),
        "note": order.note,
        "note_attributes": [
            {"name": a["key"], "value": a["value"]} for a in order.custom_attributes
        ],
        "taxes_included": False,
        **_rest_money("total_price", order.total, shop_currency, cur),
        **_rest_money("subtotal_price", order.subtotal, shop_currency, cur),
        **_rest_money("total_tax", order.total_tax, shop_currency, cur),
        **_rest_money("total_discounts", order.total_discounts, shop_currency, cur),
        **_rest_money("current_total_price", order.current_total, shop_currency, cur),
        "total_shipping_price_set": _rest_bag(order.shipping, shop_currency, cur),
        "total_outstanding": _rest_amount(max(order.total - order.received, Decimal(0)), cur),
        "payment_gateway_names": gateways,
        "customer": _rest_customer(order.customer),
        "shipping_address": dict(order.shipping_address) if order.shipping_address else None,
        "line_items": [_rest_line(li, shop_currency, fulfilled) for li in order.line_items],
        "shipping_lines": (
            [
                {
                    "id": order.id + 1,
                    "title": "Standard",
                    "code": "Standard",
                    **_rest_money("price", order.shipping, shop_currency, cur),
                }
            ]
            if order.shipping
            else []
        ),
        "fulfillments": [
            {
                "id": f.id,
                "admin_graphql_api_id": f.gid,
                "order_id": order.id,
                "status": f.status.lower(),
                "shipment_status": "delivered" if f.delivered_at else None,
                "created_at": _rest_time(f.created_at),
                "line_items": [
                    _rest_line(fl.line_item, shop_currency, True) for fl in f.fulfillment_line_items
                ],
            }
            for f in order.fulfillments
        ],
        "refunds": [_rest_refund(r, shop_currency) for r in order.refunds],
    }


def _rest_return(found: _Return) -> JSON:
    return {
        "id": found.id,
        "admin_graphql_api_id": found.gid,
        "name": found.name,
        "status": found.status.lower(),
        "order": {"id": found.order.id, "admin_graphql_api_id": found.order.gid},
        "total_return_line_items": len(found.return_line_items),
        "return_line_items": [],
        "decline": found.decline,
    }


def _rest_shop(shop: _ShopState, created_at: datetime) -> JSON:
    return {
        "id": shop.info.id,
        "name": shop.info.name,
        "email": f"owner@{shop.domain}",
        "domain": shop.domain,
        "myshopify_domain": shop.domain,
        "currency": shop.currency,
        "country_code": "US",
        "iana_timezone": "UTC",
        "plan_name": "basic",
        "created_at": _rest_time(created_at),
        "updated_at": _rest_time(created_at),
    }


# ---- control API inputs ---------------------------------------------------------------------


@dataclass(frozen=True)
class _LineSpec:
    sku: str
    title: str
    quantity: int
    price: Decimal
    discount: Decimal
    tax: Decimal
    product_type: str
    tags: tuple[str, ...]
    requires_shipping: bool
    custom: bool = False
    """A custom line item: no variant (the SKU, if any, stays on the line)."""

    @property
    def tax_rate(self) -> Decimal:
        base = self.price * self.quantity - self.discount
        return (self.tax / base).quantize(Decimal("0.0001")) if base > 0 else Decimal(0)


_LINE_KEYS = frozenset(
    [
        "sku",
        "title",
        "quantity",
        "price",
        "discount",
        "tax",
        "product_type",
        "tags",
        "requires_shipping",
    ]
)


def _line_spec(raw: Mapping[str, Any]) -> _LineSpec:
    unknown = set(raw) - _LINE_KEYS
    if unknown:
        raise TypeError(f"unknown line keys {sorted(unknown)}; use {sorted(_LINE_KEYS)}")
    quantity = int(raw.get("quantity", 1))
    if quantity < 1:
        raise ValueError("a line needs a quantity of at least 1")
    sku = str(raw.get("sku") or "SKU-1")
    return _LineSpec(
        sku=sku,
        title=str(raw.get("title") or f"Product {sku}"),
        quantity=quantity,
        price=_amount(raw.get("price", "10.00")),
        discount=_amount(raw.get("discount", "0.00")),
        tax=_amount(raw.get("tax", "0.00")),
        product_type=str(raw.get("product_type") or ""),
        tags=tuple(raw.get("tags") or ()),
        requires_shipping=bool(raw.get("requires_shipping", True)),
    )


# --------------------------------------------------------------------------------------------
# HTTP plumbing shared by the handlers
# --------------------------------------------------------------------------------------------

_GRAPHQL_PATH = re.compile(r"/admin/api/(?P<version>\d{4}-\d{2}|unstable)/graphql\.json")
_BULK_PATH = re.compile(r"/bulk/(?P<id>\d+)\.jsonl")
_LOGGED_HEADERS = ("accept", "content-type", "user-agent", "x-shopify-access-token")
_HTML_ERRORS = {502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class _GraphQLRequest:
    query: str
    variables: JSON
    operation_name: str | None
    operation: OperationDefinitionNode | None = None
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    error: JSON | None = None

    @property
    def root_fields(self) -> list[FieldNode]:
        if self.operation is None:
            return []
        return [s for s in self.operation.selection_set.selections if isinstance(s, FieldNode)]

    def idempotency_keys(self) -> tuple[str, ...]:
        keys = []
        for node in self.root_fields:
            for directive in node.directives or ():
                if directive.name.value == "idempotent":
                    keys.append(str(_arguments(directive, self.variables).get("key")))
        return tuple(keys)


def _read_graphql_request(headers: Mapping[str, str], body: bytes) -> _GraphQLRequest | None:
    """The POST body as a GraphQL request (None when it is not one)."""
    try:
        if "application/graphql" in headers.get("content-type", ""):
            payload: Any = {"query": body.decode()}
        else:
            payload = json.loads(body or b"null")
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None
    variables = payload.get("variables") or {}
    if not isinstance(variables, dict):
        return None
    request = _GraphQLRequest(payload["query"], variables, payload.get("operationName") or None)
    try:
        document = graphql.parse(request.query)
    except graphql.GraphQLError as exc:
        locations = [{"line": loc.line, "column": loc.column} for loc in exc.locations or ()]
        request.error = {"message": exc.message, "locations": locations}
        return request
    _choose_operation(request, document)
    return request


def _choose_operation(request: _GraphQLRequest, document: DocumentNode) -> None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    request.fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    name = request.operation_name
    if name is not None:
        request.operation = next((o for o in operations if o.name and o.name.value == name), None)
        if request.operation is None:
            request.error = {"message": f'No operation named "{name}"'}
    elif len(operations) == 1:
        request.operation = operations[0]
    else:
        request.error = {"message": "An operation name is required"}


def _coerce_variables(operation: OperationDefinitionNode, given: JSON) -> tuple[JSON, list[JSON]]:
    values: JSON = {}
    errors: list[JSON] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name in given:
            values[name] = given[name]
        elif definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
        if values.get(name) is None and isinstance(definition.type, NonNullTypeNode):
            type_text = graphql.print_ast(definition.type)
            error = _GraphQLError(
                f"Variable ${name} of type {type_text} was provided invalid value",
                "INVALID_VARIABLE",
                value=None,
                problems=[{"path": [], "explanation": "Expected value to not be null"}],
            )
            errors.append(error.to_json(definition))
    return values, errors


def _form_or_json(headers: Mapping[str, str], body: bytes) -> JSON:
    text = body.decode("utf-8", "replace")
    if "json" in headers.get("content-type", ""):
        try:
            payload = json.loads(text or "{}")
        except ValueError:
            return {}
        return payload if isinstance(payload, dict) else {}
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _file_chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------

ShopRef = FakeShop | str


class FakeShopify:
    """A fake Shopify Admin API server. Use as a context manager or call ``start()``/``stop()``."""

    sign_webhook = staticmethod(sign_webhook)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        complete_bulk_immediately: bool = False,
        hold_bulk_operations: bool = False,
        webhook_api_version: str = DEFAULT_API_VERSION,
        timeout_hold: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self._server: FakeServer | None = None
        self._stopping = threading.Event()
        self._clock = clock
        self._offset = timedelta(0)
        self._apps: dict[str, _App] = {}
        self._shops: dict[str, _ShopState] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._codes: dict[str, _Code] = {}
        self._webhooks: list[FakeWebhook] = []
        self._requests: list[ShopifyRequest] = []
        self._faults: list[ShopifyFault] = []
        self._server_errors = ServerErrors()
        self._bulk_dir: Path | None = None
        self.complete_bulk_immediately = complete_bulk_immediately
        """Run bulk queries inside ``bulkOperationRunQuery`` (done before the response)."""
        self.hold_bulk_operations = hold_bulk_operations
        """Keep new bulk queries RUNNING until ``finish_bulk`` (ignored when immediate)."""
        self.webhook_api_version = webhook_api_version
        """``X-Shopify-API-Version`` of webhooks nobody subscribed to through the API."""
        self.timeout_hold = timeout_hold
        """Longest a ``"timeout"`` fault holds a request when the client never hangs up."""
        self._app_key = api_key or f"fake_client_{secrets.token_hex(8)}"
        self.add_app(self._app_key, api_secret or f"shpss_{secrets.token_hex(16)}")

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeShopify:
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
            name="fake-shopify",
        )
        self._server.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._stopping.set()
        with self._lock:
            operations = [op for s in self._shops.values() for op in s.bulk_operations.values()]
        for operation in operations:
            operation.release.set()
        for operation in operations:
            if operation.thread is not None:
                operation.thread.join(5)
        server.stop()
        self._server = None
        if self._bulk_dir is not None:
            shutil.rmtree(self._bulk_dir, ignore_errors=True)
            self._bulk_dir = None

    def __enter__(self) -> FakeShopify:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeShopify is not running; call start() first")
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``RMA_SHOPIFY_API_BASE``."""
        return f"http://{self._host}:{self.port}"

    def graphql_url(self, version: str = DEFAULT_API_VERSION) -> str:
        return f"{self.base_url}/admin/api/{version}/graphql.json"

    # ---- clock -------------------------------------------------------------------------------

    def _now_precise(self) -> datetime:
        return self._clock.now().astimezone(UTC) + self._offset

    def now(self) -> datetime:
        """The fake's wall clock (UTC, whole seconds): the clock plus ``advance_time`` offsets."""
        return self._now_precise().replace(microsecond=0)

    def advance_time(self, seconds: float) -> None:
        """Move the fake's wall clock (token and code expiry, timestamps). Not the cost bucket."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    # ---- apps, shops, tokens -----------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """Client id of the app registered by the constructor."""
        return self._app_key

    @property
    def api_secret(self) -> str:
        """Client secret of that app: it signs OAuth callbacks and webhooks."""
        return self._apps[self._app_key].api_secret

    def add_app(self, api_key: str, api_secret: str) -> None:
        """Register an app (client id + secret) that may install on shops."""
        with self._lock:
            self._apps[api_key] = _App(api_key, api_secret)

    def add_shop(
        self,
        domain: str = "x.myshopify.com",
        *,
        currency: str = "USD",
        maximum_available: float = 2000,
        restore_rate: float = 100,
        primary_location_name: str = "Main",
        name: str | None = None,
    ) -> FakeShop:
        """A shop with a primary location and a cost bucket (Shopify's standard plan sizes)."""
        domain = domain.lower()
        with self._lock:
            if domain in self._shops:
                raise ValueError(f"shop {domain} already exists")
            location = _Location(next(_IDS), primary_location_name)
            shop_id = next(_IDS)
            info = FakeShop(
                domain=domain,
                id=shop_id,
                gid=_gid("Shop", shop_id),
                primary_location_gid=location.gid,
                name=name or domain.split(".")[0],
                currency=currency.upper(),
            )
            state = _ShopState(info, _Bucket(maximum_available, restore_rate), self._app_key)
            state.locations[location.id] = location
            self._shops[domain] = state
            return info

    def shops(self) -> list[FakeShop]:
        with self._lock:
            return [s.info for s in self._shops.values()]

    def shop(self, domain: str) -> FakeShop:
        with self._lock:
            return self._state(domain).info

    def add_location(self, shop: ShopRef, name: str) -> str:
        """Another location (stocks nothing until something is restocked or adjusted there)."""
        with self._lock:
            location = _Location(next(_IDS), name)
            self._state(shop).locations[location.id] = location
            return location.gid

    def add_customer(
        self,
        shop: ShopRef,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> str:
        with self._lock:
            return self._customer(self._state(shop), email, first_name, last_name).gid

    def issue_token(
        self, shop: ShopRef, *, expiring: bool = False, scopes: Iterable[str] = DEFAULT_SCOPES
    ) -> str:
        """An Admin API token as a custom app gets it (no OAuth); ``expiring``: 1 hour."""
        with self._lock:
            state = self._state(shop)
            ttl = ACCESS_TOKEN_TTL if expiring else None
            return self._new_access(state.domain, "admin", frozenset(scopes), None, ttl).value

    def revoke_tokens(self, shop: ShopRef) -> None:
        """Revoke every access and refresh token of the shop (what uninstalling does)."""
        with self._lock:
            domain = self._state(shop).domain
            for token in self._tokens.values():
                if token.shop == domain:
                    token.revoked = True
            for refresh in self._refresh_tokens.values():
                if refresh.shop == domain:
                    refresh.revoked = True

    def uninstall(self, shop: ShopRef) -> FakeWebhook:
        """The merchant uninstalls the app: tokens revoked, ``app/uninstalled`` sent, the
        app's webhook subscriptions dropped."""
        with self._lock:
            state = self._state(shop)
            self.revoke_tokens(state.domain)
            webhook = self._emit(state, "app/uninstalled", _rest_shop(state, self.now()))
            state.subscriptions.clear()
            return webhook

    def expire_access_tokens(self, shop: ShopRef) -> int:
        """Expire the shop's expiring access tokens now (non-expiring ones stay valid; use
        ``revoke_tokens`` for those). Returns how many expired."""
        with self._lock:
            domain, now = self._state(shop).domain, self.now()
            expired = 0
            for token in self._tokens.values():
                if token.shop == domain and token.expires_at is not None and token.valid(now):
                    token.expires_at = now
                    expired += 1
            return expired

    def tokens(self, shop: ShopRef) -> list[JSON]:
        """The shop's access and refresh tokens, oldest first, with their state."""
        with self._lock:
            domain, now = self._state(shop).domain, self.now()
            found: list[JSON] = [
                {
                    "type": "access",
                    "token": t.value,
                    "kind": t.kind,
                    "scopes": sorted(t.scopes),
                    "expires_at": t.expires_at,
                    "revoked": t.revoked,
                    "valid": t.valid(now),
                }
                for t in self._tokens.values()
                if t.shop == domain
            ]
            found += [
                {
                    "type": "refresh",
                    "token": r.value,
                    "kind": "refresh",
                    "scopes": sorted(r.scopes),
                    "expires_at": r.expires_at,
                    "revoked": r.revoked,
                    "valid": not r.revoked and now < r.expires_at,
                }
                for r in self._refresh_tokens.values()
                if r.shop == domain
            ]
            return found

    def approve_install(self, authorize_url: str, shop: ShopRef) -> str:
        """Play the merchant approving an install: the callback URL Shopify redirects to."""
        query = parse_qs(urlsplit(authorize_url).query, keep_blank_values=True)
        client_id = (query.get("client_id") or [""])[0]
        redirect_uri = (query.get("redirect_uri") or [""])[0]
        with self._lock:
            app = self._apps.get(client_id)
            if app is None:
                raise ValueError(f"client_id {client_id!r} is not a registered app")
            if not redirect_uri:
                raise ValueError("the authorize URL has no redirect_uri")
            state = self._state(shop)
            now = self.now()
            code = _Code(
                secrets.token_hex(16),
                app.api_key,
                state.domain,
                (query.get("scope") or [""])[0],
                tuple(query.get("grant_options[]") or ()),
                now + CODE_TTL,
            )
            self._codes[code.value] = code
            host = f"admin.shopify.com/store/{state.domain.split('.')[0]}"
            params = {
                "code": code.value,
                "host": base64.b64encode(host.encode()).decode().rstrip("="),
                "shop": state.domain,
                "timestamp": str(int(now.timestamp())),
            }
            if "state" in query:
                params["state"] = query["state"][0]
            params["hmac"] = oauth_hmac(params, app.api_secret)
        separator = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{separator}{urlencode(params)}"

    # ---- orders ------------------------------------------------------------------------------

    def create_order(
        self,
        shop: ShopRef,
        *,
        name: str | None = None,
        email: str | None = None,
        customer: tuple[str, str] | None = None,
        currency: str | None = None,
        lines: Sequence[Mapping[str, Any]] | None = None,
        shipping: str | Decimal = "5.00",
        transactions: Sequence[Mapping[str, Any]] | None = None,
        delivered_at: datetime | None = None,
        created_at: datetime | None = None,
        shipping_address: Mapping[str, Any] | None = None,
        test: bool = False,
        tags: Sequence[str] = (),
        note: str | None = None,
    ) -> str:
        """An order as a checkout makes it; returns its GID and records ``orders/create``.

        ``name`` defaults to the next ``#1001``-style number. ``lines``: dicts with ``sku``,
        ``title``, ``quantity``, ``price`` (unit), ``discount`` and ``tax`` (whole line),
        ``product_type``, ``tags``, ``requires_shipping``. ``transactions`` default to one
        ``shopify_payments`` SALE for the total (each: ``gateway``, ``amount``, ``kind``,
        ``status``). An ``email`` or ``customer=(first, last)`` attaches a customer.
        ``delivered_at`` adds a delivered fulfillment of every line.
        """
        specs = [_line_spec(raw) for raw in (lines or [{}])]
        with self._lock:
            state = self._state(shop)
            order = self._build_order(
                state,
                name=name,
                email=email,
                names=customer,
                currency=(currency or state.currency).upper(),
                specs=specs,
                shipping=_amount(shipping),
                transactions=transactions,
                delivered_at=delivered_at,
                created_at=_parse_time(created_at) if created_at else self.now(),
                shipping_address=shipping_address,
                test=test,
                tags=tuple(tags),
                note=note,
            )
            self._emit(state, "orders/create", _rest_order(order, state.currency))
            return order.gid

    def create_orders_bulk(self, shop: ShopRef, n: int, **defaults: Any) -> list[str]:
        """``n`` orders fast (benchmarks): ``create_order``'s arguments shared by all, names
        numbered, ``created_at`` one second apart up to now; no webhooks are recorded."""
        specs = [_line_spec(raw) for raw in (defaults.pop("lines", None) or [{}])]
        created = defaults.pop("created_at", None)
        with self._lock:
            state = self._state(shop)
            now = self.now()
            currency = (defaults.pop("currency", None) or state.currency).upper()
            shipping = _amount(defaults.pop("shipping", "5.00"))
            gids = []
            for index in range(n):
                at = _parse_time(created) if created else now - timedelta(seconds=n - 1 - index)
                order = self._build_order(
                    state,
                    name=None,
                    email=defaults.get("email"),
                    names=defaults.get("customer"),
                    currency=currency,
                    specs=specs,
                    shipping=shipping,
                    transactions=defaults.get("transactions"),
                    delivered_at=defaults.get("delivered_at"),
                    created_at=at,
                    shipping_address=defaults.get("shipping_address"),
                    test=bool(defaults.get("test", False)),
                    tags=tuple(defaults.get("tags", ())),
                    note=defaults.get("note"),
                )
                gids.append(order.gid)
            return gids

    _UPDATABLE = frozenset(
        [
            "email",
            "tags",
            "note",
            "shipping_address",
            "delivered_at",
            "closed",
            "processed_at",
            "test",
        ]
    )

    def update_order(self, shop: ShopRef, gid: str, **changes: Any) -> None:
        """The merchant edits an order: bumps ``updatedAt``, records ``orders/updated``.

        ``changes``: ``email``, ``tags``, ``note``, ``shipping_address``, ``processed_at``,
        ``test``, ``closed`` (bool) and ``delivered_at`` (adds the delivered fulfillment).
        """
        unknown = set(changes) - self._UPDATABLE
        if unknown:
            raise TypeError(f"cannot update {sorted(unknown)}; use {sorted(self._UPDATABLE)}")
        with self._lock:
            state = self._state(shop)
            order = self._order(state, gid)
            now = self.now()
            for key, value in changes.items():
                self._change_order(order, key, value, now)
            self._touch(state, order)

    def cancel_order(self, shop: ShopRef, gid: str, *, reason: str = "customer") -> None:
        """The merchant cancels: ``cancelledAt``/``closedAt`` set, ``orders/cancelled`` sent."""
        with self._lock:
            state = self._state(shop)
            order = self._order(state, gid)
            order.cancelled_at = order.closed_at = self.now()
            order.cancel_reason = reason.upper()
            order.updated_at = self.now()
            state.orders_changed()
            self._emit(state, "orders/cancelled", _rest_order(order, state.currency))
            self._emit(state, "orders/updated", _rest_order(order, state.currency))

    def refund_in_admin(
        self,
        shop: ShopRef,
        order_gid: str,
        *,
        amount: str | Decimal | None = None,
        lines: Sequence[tuple[str, int]] = (),
        restock: bool = False,
        shipping: str | Decimal | None = None,
        note: str | None = None,
    ) -> JSON:
        """A refund made by the merchant in the Shopify admin; returns it (REST shape).

        ``amount`` defaults to the refunded lines (with tax) plus ``shipping``, or to all that
        is left when neither is given. The money goes back against the order's sales last
        first. ``restock`` puts the lines back at the primary location. Records
        ``refunds/create`` and ``orders/updated``.
        """
        with self._lock:
            state = self._state(shop)
            order = self._order(state, order_gid)
            items = [
                {
                    "lineItemId": gid,
                    "quantity": quantity,
                    "restockType": "RETURN" if restock else "NO_RESTOCK",
                }
                for gid, quantity in lines
            ]
            money = self._admin_refund_amount(order, items, amount, shipping)
            spec: JSON = {
                "note": note,
                "refundLineItems": items,
                "transactions": self._spread_refund(order, money),
            }
            if shipping is not None:
                spec["shipping"] = {"amount": str(shipping)}
            plan, errors = _plan_refund(state, order, spec)
            if errors:
                raise ValueError("; ".join(e["message"] for e in errors))
            refund = self._apply_refund(state, order, plan)
            return _rest_refund(refund, state.currency)

    def order(self, shop: ShopRef, gid: str) -> JSON:
        """The order in its REST shape (as in ``orders/*`` webhooks)."""
        with self._lock:
            state = self._state(shop)
            return _rest_order(self._order(state, gid), state.currency)

    def order_gids(self, shop: ShopRef) -> list[str]:
        with self._lock:
            return [o.gid for o in self._state(shop).orders.values()]

    def line_items(self, shop: ShopRef, order_gid: str) -> list[JSON]:
        """The order's lines with their variant and inventory item GIDs and quantities."""
        with self._lock:
            order = self._order(self._state(shop), order_gid)
            return [
                {
                    "id": li.gid,
                    "sku": li.sku,
                    "quantity": li.quantity,
                    "current_quantity": li.current_quantity,
                    "refundable_quantity": li.refundable_quantity,
                    "variant_id": li.variant.gid if li.variant else None,
                    "inventory_item_id": li.variant.inventory_item.gid if li.variant else None,
                    "fulfillment_line_item_ids": [
                        fl.gid
                        for f in order.fulfillments
                        for fl in f.fulfillment_line_items
                        if fl.line_item is li
                    ],
                }
                for li in order.line_items
            ]

    def transactions(self, shop: ShopRef, order_gid: str) -> list[JSON]:
        """The order's transactions (REST shape), oldest first."""
        with self._lock:
            order = self._order(self._state(shop), order_gid)
            return [_rest_transaction(order, t) for t in order.transactions]

    def refunds(self, shop: ShopRef, order_gid: str) -> list[JSON]:
        """The order's refunds (REST shape), oldest first."""
        with self._lock:
            state = self._state(shop)
            order = self._order(state, order_gid)
            return [_rest_refund(r, state.currency) for r in order.refunds]

    # ---- inventory ---------------------------------------------------------------------------

    def inventory_level(self, shop: ShopRef, inventory_item_gid: str, location_gid: str) -> int:
        """``available`` of an item at a location (0 where it is not stocked)."""
        with self._lock:
            state = self._state(shop)
            item, location = self._item_and_location(state, inventory_item_gid, location_gid)
            return state.inventory.get((item.id, location.id), 0)

    def set_inventory_level(
        self, shop: ShopRef, inventory_item_gid: str, location_gid: str, available: int
    ) -> None:
        """The merchant sets stock by hand (makes a client's ``changeFromQuantity`` stale)."""
        with self._lock:
            state = self._state(shop)
            item, location = self._item_and_location(state, inventory_item_gid, location_gid)
            state.inventory[(item.id, location.id)] = available

    def inventory_adjustments(self, shop: ShopRef) -> list[JSON]:
        """Adjustment groups made through ``inventoryAdjustQuantities``, oldest first."""
        with self._lock:
            return [
                {
                    "id": g.gid,
                    "reason": g.reason,
                    "reference_document_uri": g.reference_document_uri,
                    "created_at": g.created_at,
                    "changes": [
                        {
                            "name": c["name"],
                            "delta": c["delta"],
                            "quantity_after_change": c["quantityAfterChange"],
                            "inventory_item_id": c["item"].gid,
                            "location_id": c["location"].gid,
                        }
                        for c in g.changes
                    ],
                }
                for g in self._state(shop).adjustments
            ]

    # ---- webhook subscriptions, store credit, returns ----------------------------------------

    def webhook_subscriptions(self, shop: ShopRef) -> list[JSON]:
        with self._lock:
            return [
                {
                    "id": s.gid,
                    "topic": s.topic,
                    "uri": s.uri,
                    "format": s.format,
                    "api_version": s.api_version,
                }
                for s in self._state(shop).subscriptions.values()
            ]

    def store_credit_transactions(self, shop: ShopRef, customer_gid: str) -> list[JSON]:
        """The customer's store credit transactions in every currency, oldest first."""
        with self._lock:
            state = self._state(shop)
            customer = self._customer_of(state, customer_gid)
            return [
                {
                    "id": t.gid,
                    "account_id": a.gid,
                    "amount": _decimal_text(t.amount),
                    "currency": a.currency,
                    "balance_after": _decimal_text(t.balance_after),
                    "event": t.event,
                    "created_at": t.created_at,
                    "expires_at": t.expires_at,
                }
                for a in state.credit_accounts.values()
                if a.owner is customer
                for t in a.transactions
            ]

    def spend_store_credit(
        self, shop: ShopRef, customer_gid: str, amount: str | Decimal, currency: str
    ) -> JSON:
        """A checkout pays with store credit: a debit transaction. Returns it."""
        spent = _amount(amount)
        with self._lock:
            state = self._state(shop)
            customer = self._customer_of(state, customer_gid)
            account = next(
                (
                    a
                    for a in state.credit_accounts.values()
                    if a.owner is customer and a.currency == currency.upper()
                ),
                None,
            )
            if account is None or spent <= 0 or account.balance < spent:
                raise ValueError(f"cannot spend {amount} {currency} of store credit")
            txn = self._store_credit(state, account, -spent, "ORDER_PAYMENT", None)
            return {
                "id": txn.gid,
                "amount": _decimal_text(txn.amount),
                "currency": account.currency,
                "balance_after": _decimal_text(txn.balance_after),
            }

    def returns(self, shop: ShopRef, order_gid: str) -> list[JSON]:
        with self._lock:
            order = self._order(self._state(shop), order_gid)
            return [
                {
                    "id": r.gid,
                    "name": r.name,
                    "status": r.status,
                    "order_id": order.gid,
                    "decline": r.decline,
                    "lines": [
                        {
                            "id": rl.gid,
                            "fulfillment_line_item_id": rl.fulfillment_line_item.gid,
                            "line_item_id": rl.fulfillment_line_item.line_item.gid,
                            "quantity": rl.quantity,
                            "return_reason": rl.return_reason,
                        }
                        for rl in r.return_line_items
                    ],
                }
                for r in order.returns
            ]

    def request_return(
        self, shop: ShopRef, order_gid: str, lines: Sequence[tuple[str, int]] | None = None
    ) -> str:
        """The customer requests a return (status REQUESTED, ``returns/request``).

        ``lines``: ``(fulfillment line item GID, quantity)``; default: all that is returnable.
        """
        with self._lock:
            state = self._state(shop)
            order = self._order(state, order_gid)
            chosen: list[tuple[_FulfillmentLine, int, str, str]] = []
            if lines is None:
                for fulfillment in order.fulfillments:
                    for line in fulfillment.fulfillment_line_items:
                        if order.returnable(line) > 0:
                            chosen.append((line, order.returnable(line), "UNKNOWN", ""))
            for gid, quantity in lines or ():
                found = order.find_fulfillment_line(gid)
                if found is None or not 0 < quantity <= order.returnable(found):
                    raise ValueError(f"cannot return {quantity} of {gid}")
                chosen.append((found, quantity, "UNKNOWN", ""))
            if not chosen:
                raise ValueError("nothing on this order can be returned (is it delivered?)")
            return self._open_return(state, order, chosen, "REQUESTED").gid

    def close_return_in_admin(self, shop: ShopRef, return_gid: str) -> None:
        """The merchant closes a return in the admin (``returns/close``)."""
        self._move_return_in_admin(shop, return_gid, "CLOSED")

    def cancel_return_in_admin(self, shop: ShopRef, return_gid: str) -> None:
        """The merchant cancels a return in the admin (``returns/cancel``)."""
        self._move_return_in_admin(shop, return_gid, "CANCELED")

    # ---- draft orders and product variants ---------------------------------------------------

    def add_variant(
        self,
        shop: ShopRef,
        sku: str,
        *,
        price: str | Decimal = "10.00",
        title: str | None = None,
        product_type: str = "",
        tags: Sequence[str] = (),
    ) -> str:
        """A product variant for ``sku`` (stocked 10 at the primary location, as when an order
        line first names the SKU); returns its GID. ``title`` is the product's."""
        spec = _line_spec(
            {"sku": sku, "title": title, "price": price, "product_type": product_type, "tags": tags}
        )
        with self._lock:
            state = self._state(shop)
            if spec.sku in state.variants:
                raise ValueError(f"a variant with SKU {spec.sku!r} exists; use variant_gid()")
            return self._variant(state, spec).gid

    def variant_gid(self, shop: ShopRef, sku: str) -> str:
        """The GID of the product variant with ``sku`` (made by ``add_variant`` or by an order
        line with that SKU)."""
        with self._lock:
            state = self._state(shop)
            variant = state.variants.get(sku)
            if variant is None:
                raise KeyError(f"no variant with SKU {sku!r} on {state.domain}")
            return variant.gid

    def draft_orders(self, shop: ShopRef) -> list[JSON]:
        """The shop's draft orders, oldest first (amounts as decimal strings)."""
        with self._lock:
            return [
                {
                    "id": d.gid,
                    "name": d.name,
                    "status": d.status,
                    "email": d.email,
                    "note": d.note,
                    "tags": list(d.tags),
                    "currency": d.currency,
                    "created_at": d.created_at,
                    "updated_at": d.updated_at,
                    "completed_at": d.completed_at,
                    "subtotal": _decimal_text(d.subtotal),
                    "total_discounts": _decimal_text(d.total_discounts),
                    "total": _decimal_text(d.total),
                    "applied_discount": (
                        None
                        if d.discount is None
                        else {
                            "value": _decimal_text(d.discount["value"]),
                            "value_type": d.discount["valueType"],
                            "title": d.discount["title"],
                            "description": d.discount["description"],
                        }
                    ),
                    "custom_attributes": [dict(a) for a in d.custom_attributes],
                    "line_items": [
                        {
                            "id": li.gid,
                            "title": li.title,
                            "quantity": li.quantity,
                            "sku": li.sku,
                            "price": _decimal_text(li.price),
                            "variant_id": li.variant.gid if li.variant else None,
                            "custom": li.custom,
                        }
                        for li in d.line_items
                    ],
                    "order_id": d.order.gid if d.order else None,
                }
                for d in self._state(shop).draft_orders.values()
            ]

    # ---- bulk operations ---------------------------------------------------------------------

    def finish_bulk(self, shop: ShopRef, timeout: float = 10.0) -> JSON:
        """Let the shop's latest bulk query run to the end (held or not); returns its state."""
        with self._lock:
            operations = list(self._state(shop).bulk_operations.values())
        if not operations:
            raise ValueError("the shop has no bulk operation")
        operation = operations[-1]
        operation.release.set()
        if operation.thread is not None:
            operation.thread.join(timeout)
        with self._lock:
            return self._bulk_snapshot(operation)

    def bulk_operations(self, shop: ShopRef) -> list[JSON]:
        with self._lock:
            return [self._bulk_snapshot(op) for op in self._state(shop).bulk_operations.values()]

    # ---- cost bucket -------------------------------------------------------------------------

    def set_bucket(
        self,
        shop: ShopRef,
        maximum_available: float | None = None,
        restore_rate: float | None = None,
        currently_available: float | None = None,
    ) -> None:
        with self._lock:
            bucket = self._state(shop).bucket
            bucket.refill()
            if maximum_available is not None:
                bucket.maximum = float(maximum_available)
                bucket.available = min(bucket.available, bucket.maximum)
            if restore_rate is not None:
                bucket.restore_rate = float(restore_rate)
            if currently_available is not None:
                bucket.available = min(float(currently_available), bucket.maximum)

    def bucket(self, shop: ShopRef) -> JSON:
        """The ``throttleStatus`` the shop's next response would start from."""
        with self._lock:
            bucket = self._state(shop).bucket
            bucket.refill()
            return bucket.status()

    def throttled_count(self, shop: ShopRef) -> int:
        with self._lock:
            return self._state(shop).throttled

    # ---- requests, faults, errors ------------------------------------------------------------

    def requests(self) -> list[ShopifyRequest]:
        """Every request received, oldest first (copies)."""
        with self._lock:
            return [
                dataclasses.replace(
                    r, variables=json.loads(json.dumps(r.variables)), headers=dict(r.headers)
                )
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
        shop: ShopRef | None = None,
        operation: str | None = None,
        times: int | None = 1,
        endpoint: str = "graphql",
        delay: float | None = None,
    ) -> ShopifyFault:
        """Queue a fault for the next ``times`` matching requests (``None``: until cleared).

        ``kind``: ``"500"``, ``"502"``, ``"503"`` (the latter two as HTML pages), ``"429"``
        (``Retry-After: 1.0``), ``"timeout"`` (held without executing until the client gives
        up, or ``delay``/``timeout_hold`` seconds), ``"drop"`` (closed unanswered, not
        executed), ``"drop_after_execute"`` (executed, then closed unanswered) or
        ``"throttle"`` (a THROTTLED answer even with points available).

        Matching: ``endpoint`` (``graphql``, ``oauth``, ``bulk`` or ``any``), ``shop`` (the
        token's shop) and ``operation`` (a top-level field name such as ``"refundCreate"``).
        """
        text = str(kind)
        if text not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {FAULT_KINDS}")
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {FAULT_ENDPOINTS}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for unlimited)")
        with self._lock:
            domain = self._state(shop).domain if shop is not None else None
            fault = ShopifyFault(
                text,
                domain,
                operation,
                endpoint,
                times,
                self.timeout_hold if delay is None else delay,
            )
            self._faults.append(fault)
            return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[ShopifyFault]:
        with self._lock:
            return [f for f in self._faults if f.remaining is None or f.remaining > 0]

    # ---- webhooks ----------------------------------------------------------------------------

    def webhooks(self, shop: ShopRef | None = None, topic: str | None = None) -> list[FakeWebhook]:
        """Webhooks recorded (oldest first), for one shop and/or topic."""
        with self._lock:
            domain = self._state(shop).domain if shop is not None else None
            return [
                dataclasses.replace(w, headers=dict(w.headers))
                for w in self._webhooks
                if (domain is None or w.shop == domain) and (topic is None or w.topic == topic)
            ]

    def clear_webhooks(self) -> None:
        with self._lock:
            self._webhooks.clear()

    def deliver(
        self,
        webhook: FakeWebhook,
        url: str,
        *,
        secret: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 5.0,
    ) -> int:
        """POST the webhook as recorded (same ids); ``secret`` re-signs it. Returns the status.

        ``timeout`` defaults to Shopify's 5 s for the whole request.
        """
        headers = dict(webhook.headers)
        if secret is not None:
            headers["X-Shopify-Hmac-Sha256"] = sign_webhook(webhook.body, secret)
        if client is not None:
            return client.post(url, content=webhook.body, headers=headers).status_code
        with httpx.Client(timeout=timeout) as own:
            return own.post(url, content=webhook.body, headers=headers).status_code

    def redelivery(self, webhook: FakeWebhook) -> FakeWebhook:
        """Another delivery of the same event: same body and event id, new webhook id."""
        headers = {
            **webhook.headers,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": webhook.headers.get("X-Shopify-Triggered-At", ""),
        }
        return dataclasses.replace(webhook, headers=headers)

    def redeliver(
        self,
        webhook: FakeWebhook,
        url: str,
        *,
        secret: str | None = None,
        client: httpx.Client | None = None,
    ) -> int:
        return self.deliver(self.redelivery(webhook), url, secret=secret, client=client)

    def compliance_webhook(
        self, shop: ShopRef, topic: str, payload: Mapping[str, Any] | None = None
    ) -> FakeWebhook:
        """A mandatory compliance webhook (``customers/data_request``, ``customers/redact``,
        ``shop/redact``); ``payload`` is laid over a minimal body with ``shop_id``/``shop_domain``.
        """
        if topic not in COMPLIANCE_TOPICS:
            raise ValueError(f"{topic!r} is not a compliance topic; use one of {COMPLIANCE_TOPICS}")
        with self._lock:
            state = self._state(shop)
            body: JSON = {"shop_id": state.info.id, "shop_domain": state.domain}
            customer = {"id": None, "email": None, "phone": None}
            if topic == "customers/data_request":
                body |= {
                    "orders_requested": [],
                    "customer": customer,
                    "data_request": {"id": next(_IDS)},
                }
            elif topic == "customers/redact":
                body |= {"customer": customer, "orders_to_redact": []}
            body |= dict(payload or {})
            return self._emit(state, topic, body, subscribed=False)

    # ---- internals: lookups ------------------------------------------------------------------

    def _state(self, shop: ShopRef | None) -> _ShopState:
        domain = shop.domain if isinstance(shop, FakeShop) else str(shop).lower()
        state = self._shops.get(domain)
        if state is None:
            raise KeyError(f"unknown shop {shop!r}; use add_shop() first")
        return state

    def _order(self, state: _ShopState, gid: str) -> _Order:
        order = state.find_order(gid)
        if order is None:
            raise KeyError(f"no order {gid!r} on {state.domain}")
        return order

    def _customer_of(self, state: _ShopState, gid: str) -> _Customer:
        number = _gid_number(gid, "Customer")
        if number is None or number not in state.customers:
            raise KeyError(f"no customer {gid!r} on {state.domain}")
        return state.customers[number]

    def _item_and_location(
        self, state: _ShopState, item_gid: str, location_gid: str
    ) -> tuple[_InventoryItem, _Location]:
        item, location = state.find_item(item_gid), state.location(location_gid)
        if item is None or location is None:
            raise KeyError(f"unknown inventory item {item_gid!r} or location {location_gid!r}")
        return item, location

    def _customer(
        self, state: _ShopState, email: str | None, first: str | None, last: str | None
    ) -> _Customer:
        existing = state.customers_by_email.get(email.lower()) if email else None
        if existing is not None:
            existing.first_name = existing.first_name or first
            existing.last_name = existing.last_name or last
            return existing
        customer = _Customer(next(_IDS), email, first, last)
        state.customers[customer.id] = customer
        if email:
            state.customers_by_email[email.lower()] = customer
        return customer

    # ---- internals: changes (called with the lock held) --------------------------------------

    def _variant(self, state: _ShopState, spec: _LineSpec) -> _Variant:
        variant = state.variants.get(spec.sku)
        if variant is None:
            item = _InventoryItem(next(_IDS), spec.sku)
            product = _Product(next(_IDS), spec.title, spec.product_type, spec.tags)
            variant = _Variant(next(_IDS), spec.sku, "Default Title", product, item, spec.price)
            state.variants[spec.sku] = variant
            state.inventory[(item.id, state.primary_location.id)] = 10
        return variant

    def _build_order(
        self,
        state: _ShopState,
        *,
        name: str | None,
        email: str | None,
        names: tuple[str, str] | None,
        currency: str,
        specs: list[_LineSpec],
        shipping: Decimal,
        transactions: Sequence[Mapping[str, Any]] | None,
        delivered_at: datetime | None,
        created_at: datetime,
        shipping_address: Mapping[str, Any] | None,
        test: bool,
        tags: tuple[str, ...],
        note: str | None,
    ) -> _Order:
        if name is None:
            name = f"#{state.next_order_number}"
            state.next_order_number += 1
        customer = None
        if email is not None or names is not None:
            first, last = names if names is not None else (None, None)
            customer = self._customer(state, email, first, last)
        lines = [
            _Line(
                next(_IDS),
                None if spec.custom else self._variant(state, spec),
                spec.title,
                spec.quantity,
                spec.price,
                spec.discount,
                spec.tax,
                spec.tax_rate,
                spec.requires_shipping,
                currency,
                custom_sku=(spec.sku or None) if spec.custom else None,
            )
            for spec in specs
        ]
        order = _Order(
            next(_IDS),
            name,
            email,
            customer,
            currency,
            created_at,
            created_at,
            created_at,
            lines,
            shipping,
            [],
            test=test,
            tags=tags,
            note=note,
            shipping_address=dict(shipping_address) if shipping_address else None,
        )
        for raw in transactions if transactions is not None else [{}]:
            self._add_payment(order, raw)
        if delivered_at is not None:
            self._deliver(order, _parse_time(delivered_at))
        state.orders[order.id] = order
        state.orders_changed()
        return order

    def _complete_draft(self, state: _ShopState, draft: _DraftOrder, *, pending: bool) -> _Order:
        """Turn a draft into an order (``orders/create``): paid through the ``manual`` gateway,
        or PENDING without a transaction. The draft's discount is spread over the lines."""
        weights = [line.total for line in draft.line_items]
        shares = _allocate(draft.total_discounts, weights, draft.currency)
        specs = [
            _LineSpec(
                sku=line.sku or "",
                title=line.title,
                quantity=line.quantity,
                price=line.price,
                discount=share,
                tax=Decimal(0),
                product_type="",
                tags=(),
                requires_shipping=line.requires_shipping,
                custom=line.variant is None,
            )
            for line, share in zip(draft.line_items, shares, strict=True)
        ]
        now = self.now()
        order = self._build_order(
            state,
            name=None,
            email=draft.email,
            names=None,
            currency=draft.currency,
            specs=specs,
            shipping=Decimal(0),
            transactions=[] if pending else [{"gateway": "manual"}],
            delivered_at=None,
            created_at=now,
            shipping_address=None,
            test=False,
            tags=draft.tags,
            note=draft.note,
        )
        order.custom_attributes = [dict(a) for a in draft.custom_attributes]
        draft.status, draft.order = "COMPLETED", order
        draft.completed_at = draft.updated_at = now
        self._emit(state, "orders/create", _rest_order(order, state.currency))
        return order

    def _add_payment(self, order: _Order, raw: Mapping[str, Any]) -> None:
        kind = str(raw.get("kind", "SALE")).upper()
        parent = None
        if kind == "CAPTURE":
            parent = next((t for t in order.transactions if t.kind == "AUTHORIZATION"), None)
        number = len(order.transactions) + 1
        order.transactions.append(
            _Txn(
                next(_IDS),
                kind,
                str(raw.get("status", "SUCCESS")).upper(),
                str(raw.get("gateway", "shopify_payments")),
                _amount(raw["amount"]) if raw.get("amount") is not None else order.total,
                order.currency,
                order.created_at,
                parent,
                order.test,
                f"c{order.id % 10**11}.{number}",
            )
        )

    def _deliver(self, order: _Order, delivered_at: datetime) -> None:
        shipped = max(order.created_at, delivered_at - timedelta(days=2))
        lines = [_FulfillmentLine(next(_IDS), li, li.quantity) for li in order.line_items]
        order.fulfillments.append(
            _Fulfillment(next(_IDS), "SUCCESS", min(shipped, delivered_at), delivered_at, lines)
        )

    def _change_order(self, order: _Order, key: str, value: Any, now: datetime) -> None:
        if key == "delivered_at":
            if not order.fulfillments and value is not None:
                self._deliver(order, _parse_time(value))
        elif key == "closed":
            order.closed_at = now if value else None
        elif key == "tags":
            order.tags = tuple(value)
        elif key == "processed_at":
            order.processed_at = _parse_time(value)
        elif key == "shipping_address":
            order.shipping_address = dict(value) if value else None
        else:
            setattr(order, key, value)

    def _touch(self, state: _ShopState, order: _Order) -> None:
        order.updated_at = self.now()
        state.orders_changed()
        self._emit(state, "orders/updated", _rest_order(order, state.currency))

    def _admin_refund_amount(
        self,
        order: _Order,
        items: list[JSON],
        amount: str | Decimal | None,
        shipping: str | Decimal | None,
    ) -> Decimal:
        if amount is not None:
            return _amount(amount)
        if not items and shipping is None:
            return order.received - order.refunded
        total = _amount(shipping) if shipping is not None else Decimal(0)
        for item in items:
            line = order.find_line(item["lineItemId"])
            if line is None:
                raise ValueError(f"no line item {item['lineItemId']!r} on {order.name}")
            total += sum(line.share(item["quantity"]), Decimal(0))
        return total

    def _spread_refund(self, order: _Order, amount: Decimal) -> list[JSON]:
        """Refund transactions against the order's sales and captures, last one first."""
        left, spread = amount, []
        for parent in reversed([t for t in order.transactions if t.settled]):
            share = min(left, order.refundable(parent))
            if share > 0:
                spread.append(
                    {"parentId": parent.gid, "amount": str(share), "gateway": parent.gateway}
                )
                left -= share
        if left > 0:
            raise ValueError(f"{amount} is more than the order's sales can refund")
        return spread

    def _apply_refund(self, state: _ShopState, order: _Order, plan: _RefundPlan) -> _Refund:
        now = self.now()
        refund_id = next(_IDS)
        transactions = []
        for parent, amount in plan.transactions:
            number = len(order.transactions) + 1
            txn = _Txn(
                next(_IDS),
                "REFUND",
                "SUCCESS",
                parent.gateway,
                amount,
                order.currency,
                now,
                parent,
                order.test,
                f"c{order.id % 10**11}.{number}",
            )
            order.transactions.append(txn)
            transactions.append(txn)
        lines = []
        for line, quantity, restock, location in plan.lines:
            line.refunded += quantity
            if restock != "NO_RESTOCK" and location is not None and line.variant is not None:
                self._restock(state, line.variant.inventory_item, location, quantity)
            subtotal, tax = line.share(quantity)
            lines.append(_RefundLine(next(_IDS), line, quantity, restock, location, subtotal, tax))
        refund = _Refund(refund_id, order, now, plan.note, lines, transactions, plan.shipping)
        order.refunds.append(refund)
        state.refunds[refund.id] = refund
        self._emit(state, "refunds/create", _rest_refund(refund, state.currency))
        self._touch(state, order)
        return refund

    def _restock(
        self, state: _ShopState, item: _InventoryItem, location: _Location, delta: int
    ) -> int:
        key = (item.id, location.id)
        state.inventory[key] = state.inventory.get(key, 0) + delta
        self._emit(
            state,
            "inventory_levels/update",
            {
                "inventory_item_id": item.id,
                "location_id": location.id,
                "available": state.inventory[key],
                "updated_at": _rest_time(self.now()),
                "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location.id}"
                f"?inventory_item_id={item.id}",
            },
        )
        return state.inventory[key]

    def _adjust_inventory(
        self,
        state: _ShopState,
        reason: str,
        reference: str | None,
        changes: list[tuple[_InventoryItem, _Location, int]],
    ) -> _AdjustmentGroup:
        made = [
            {
                "name": "available",
                "delta": delta,
                "quantityAfterChange": self._restock(state, item, location, delta),
                "ledgerDocumentUri": None,
                "item": item,
                "location": location,
            }
            for item, location, delta in changes
        ]
        group = _AdjustmentGroup(next(_IDS), reason, reference, self.now(), made)
        state.adjustments.append(group)
        return group

    def _open_credit_account(
        self, state: _ShopState, owner: _Customer, currency: str
    ) -> _CreditAccount:
        account = _CreditAccount(next(_IDS), owner, currency)
        state.credit_accounts[account.id] = account
        return account

    def _store_credit(
        self,
        state: _ShopState,
        account: _CreditAccount,
        amount: Decimal,
        event: str,
        expires_at: datetime | None,
    ) -> _CreditTxn:
        account.balance += amount
        txn = _CreditTxn(
            next(_IDS), account, amount, account.balance, self.now(), event, expires_at
        )
        account.transactions.append(txn)
        return txn

    def _open_return(
        self,
        state: _ShopState,
        order: _Order,
        lines: list[tuple[_FulfillmentLine, int, str, str]],
        status: str,
    ) -> _Return:
        made = _Return(
            next(_IDS),
            order,
            f"{order.name}-R{len(order.returns) + 1}",
            status,
            [_ReturnLine(next(_IDS), line, qty, reason, note) for line, qty, reason, note in lines],
            self.now(),
        )
        order.returns.append(made)
        state.returns[made.id] = made
        topic = "returns/request" if status == "REQUESTED" else "returns/approve"
        self._emit(state, topic, _rest_return(made))
        return made

    def _move_return(
        self, state: _ShopState, found: _Return, target: str, decline: JSON | None = None
    ) -> str | None:
        """Move a return along ``_RETURN_MOVES``; returns a problem, or None when done."""
        topic = _RETURN_MOVES.get(found.status, {}).get(target)
        if topic is None:
            return f"Return is {found.status.lower()} and cannot become {target.lower()}."
        found.status = target
        found.closed_at = self.now() if target == "CLOSED" else None
        if decline is not None:
            found.decline = decline
        self._emit(state, topic, _rest_return(found))
        return None

    def _move_return_in_admin(self, shop: ShopRef, return_gid: str, target: str) -> None:
        with self._lock:
            state = self._state(shop)
            number = _gid_number(return_gid, "Return")
            found = state.returns.get(number) if number is not None else None
            if found is None:
                raise KeyError(f"no return {return_gid!r} on {state.domain}")
            problem = self._move_return(state, found, target)
            if problem is not None:
                raise ValueError(problem)

    # ---- internals: webhooks -----------------------------------------------------------------

    def _emit(
        self, state: _ShopState, topic: str, payload: JSON, *, subscribed: bool = True
    ) -> FakeWebhook:
        """Record the webhook Shopify would send for ``topic`` now."""
        body = _compact(payload)
        subscriptions = [
            s for s in state.subscriptions.values() if subscribed and s.topic_path == topic
        ]
        version = subscriptions[0].api_version if subscriptions else self.webhook_api_version
        event_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign_webhook(body, self._apps[state.app_key].api_secret),
            "X-Shopify-Shop-Domain": state.domain,
            "X-Shopify-API-Version": version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": self._now_precise().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        webhook = FakeWebhook(
            topic, state.domain, body, headers, event_id, tuple(s.uri for s in subscriptions)
        )
        self._webhooks.append(webhook)
        return webhook

    # ---- internals: tokens and OAuth ---------------------------------------------------------

    def _new_access(
        self,
        shop: str,
        kind: str,
        scopes: frozenset[str],
        app_key: str | None,
        ttl: int | None,
    ) -> _AccessToken:
        prefix = {"admin": "shpat", "offline": "shpca", "online": "shpua"}[kind]
        expires_at = None if ttl is None else self.now() + timedelta(seconds=ttl)
        token = _AccessToken(
            f"{prefix}_{secrets.token_hex(16)}", shop, kind, scopes, app_key, expires_at
        )
        self._tokens[token.value] = token
        return token

    def _new_refresh(
        self, shop: str, app_key: str, scopes: frozenset[str], parent: str | None
    ) -> _RefreshToken:
        expires_at = self.now() + timedelta(seconds=REFRESH_TOKEN_TTL)
        refresh = _RefreshToken(
            f"shprt_{secrets.token_hex(16)}", shop, app_key, scopes, expires_at, parent
        )
        self._refresh_tokens[refresh.value] = refresh
        return refresh

    def _authenticate(self, token: str | None) -> tuple[_ShopState, frozenset[str]] | None:
        found = self._tokens.get(token or "")
        if found is None or not found.valid(self.now()):
            return None
        return self._shops[found.shop], found.scopes

    def _authorize(self, query: dict[str, list[str]]) -> tuple[int, JSON]:
        client_id = (query.get("client_id") or [""])[0]
        if client_id not in self._apps:
            return 400, {
                "error": "invalid_request",
                "error_description": f"The client_id {client_id!r} is not valid.",
            }
        if not query.get("redirect_uri"):
            return 400, {"error": "invalid_request", "error_description": "redirect_uri is missing"}
        return 200, {
            "pending_approval": {
                "client_id": client_id,
                "scope": (query.get("scope") or [""])[0],
                "redirect_uri": query["redirect_uri"][0],
                "state": query["state"][0] if query.get("state") else None,
                "grant_options": query.get("grant_options[]", []),
            },
            "next": "FakeShopify.approve_install(authorize_url, shop) plays the merchant",
        }

    def _access_token(self, params: JSON) -> tuple[int, JSON]:
        app = self._apps.get(str(params.get("client_id") or ""))
        secret = str(params.get("client_secret") or "")
        if app is None or not hmac.compare_digest(app.api_secret.encode(), secret.encode()):
            return 401, {
                "error": "invalid_client",
                "error_description": "Client authentication failed due to unknown client, no "
                "client authentication included, or unsupported authentication method.",
            }
        if params.get("grant_type") == "refresh_token":
            return self._refresh(app, str(params.get("refresh_token") or ""))
        code = self._codes.get(str(params.get("code") or ""))
        if (
            code is None
            or code.used
            or code.app_key != app.api_key
            or self.now() >= code.expires_at
        ):
            return 400, {
                "error": "invalid_request",
                "error_description": "The authorization code was not found or was already used",
            }
        code.used = True
        state = self._shops[code.shop]
        state.app_key = app.api_key
        scopes = frozenset(s.strip() for s in code.scope.split(",") if s.strip())
        scope_text = ",".join(sorted(scopes))
        if "per-user" in code.grant_options:
            token = self._new_access(code.shop, "online", scopes, app.api_key, ONLINE_TOKEN_TTL)
            return 200, {
                "access_token": token.value,
                "scope": scope_text,
                "expires_in": ONLINE_TOKEN_TTL,
                "associated_user_scope": scope_text,
                "associated_user": {
                    "id": 902541635,
                    "first_name": "Fake",
                    "last_name": "Staff",
                    "email": f"staff@{code.shop}",
                    "account_owner": True,
                    "locale": "en",
                    "collaborator": False,
                    "email_verified": True,
                },
            }
        if str(params.get("expiring", "")).lower() not in ("1", "true"):
            token = self._new_access(code.shop, "offline", scopes, app.api_key, None)
            return 200, {"access_token": token.value, "scope": scope_text}
        return 200, self._expiring_pair(code.shop, app.api_key, scopes, parent=None)

    def _expiring_pair(
        self, shop: str, app_key: str, scopes: frozenset[str], parent: str | None
    ) -> JSON:
        token = self._new_access(shop, "offline", scopes, app_key, ACCESS_TOKEN_TTL)
        refresh = self._new_refresh(shop, app_key, scopes, parent)
        return {
            "access_token": token.value,
            "scope": ",".join(sorted(scopes)),
            "expires_in": ACCESS_TOKEN_TTL,
            "refresh_token": refresh.value,
            "refresh_token_expires_in": REFRESH_TOKEN_TTL,
        }

    def _refresh(self, app: _App, value: str) -> tuple[int, JSON]:
        """Rotate: a new pair; the previous refresh token dies once the new one is used."""
        refresh = self._refresh_tokens.get(value)
        if (
            refresh is None
            or refresh.revoked
            or refresh.app_key != app.api_key
            or self.now() >= refresh.expires_at
        ):
            return 400, {
                "error": "invalid_grant",
                "error_description": "The refresh token is invalid, expired or already used up.",
            }
        if refresh.parent is not None and refresh.parent in self._refresh_tokens:
            self._refresh_tokens[refresh.parent].revoked = True
        return 200, self._expiring_pair(refresh.shop, app.api_key, refresh.scopes, refresh.value)

    # ---- internals: bulk operations ----------------------------------------------------------

    def _start_bulk(self, ex: _Exec, args: JSON) -> JSON:
        state = ex.shop
        running = next((op for op in state.bulk_operations.values() if op.running), None)
        if running is not None:
            message = (
                "A bulk query operation for this app and shop is already in progress: "
                f"{running.gid}."
            )
            error = _user_error(None, message, "OPERATION_IN_PROGRESS")
            return {"bulkOperation": None, "userErrors": [error]}
        query = str(args.get("query") or "")
        problem = self._check_bulk_query(ex, query)
        if problem is not None:
            return {
                "bulkOperation": None,
                "userErrors": [_user_error(["query"], problem, "INVALID")],
            }
        operation = _BulkOperation(next(_IDS), query, ex.now, ex.scopes)
        state.bulk_operations[operation.id] = operation
        created = dataclasses.replace(operation)
        if self.hold_bulk_operations:
            operation.status = "RUNNING"  # until finish_bulk, whatever the thread's timing
        if self.complete_bulk_immediately:
            self._run_bulk(state, operation)
        else:
            operation.thread = threading.Thread(
                target=self._run_bulk,
                args=(state, operation),
                name="fake-shopify-bulk",
                daemon=True,
            )
            operation.thread.start()
        return {"bulkOperation": created, "userErrors": []}

    def _bulk_exec(
        self, state: _ShopState, scopes: frozenset[str], query: str, **kwargs: Any
    ) -> tuple[_Exec, FieldNode]:
        """Parse a bulk query: the execution context and its one top-level connection field."""
        request = _GraphQLRequest(query, {}, None)
        _choose_operation(request, graphql.parse(query))
        if request.operation is None or request.operation.operation != OperationType.QUERY:
            raise _GraphQLError("Bulk queries must contain exactly one query operation.")
        ex = _Exec(
            self, state, DEFAULT_API_VERSION, scopes, {}, request.fragments, self.now(), **kwargs
        )
        fields = request.root_fields
        spec = _SCHEMA["QueryRoot"].get(fields[0].name.value) if len(fields) == 1 else None
        if spec is None or spec.kind != "connection":
            raise _GraphQLError("Bulk queries must contain at least one connection.")
        return ex, fields[0]

    def _check_bulk_query(self, outer: _Exec, query: str) -> str | None:
        try:
            ex, root = self._bulk_exec(outer.shop, outer.scopes, query, bulk=True)
        except graphql.GraphQLError as exc:
            return f"Invalid bulk query: {exc.message}"
        except _GraphQLError as exc:
            return exc.message
        _analyze(ex, "QueryRoot", [root], ["query"])
        if ex.errors:
            return f"Invalid bulk query: {ex.errors[0]['message']}"
        connections, depth = _bulk_shape(ex, "QueryRoot", [root], 0)
        if connections > 5:
            return "Bulk queries cannot contain more than 5 connections."
        if depth > 2:
            return "Bulk queries cannot contain connections with a nesting depth greater than 2."
        return None

    def _run_bulk(self, state: _ShopState, operation: _BulkOperation) -> None:
        try:
            with self._lock:
                operation.status = "RUNNING"
            if self.hold_bulk_operations and not self.complete_bulk_immediately:
                operation.release.wait()
            if self._stopping.is_set() and not self.complete_bulk_immediately:
                with self._lock:
                    operation.status = "CANCELED"
                return
            with self._lock:
                ex, root = self._bulk_exec(state, operation.scopes, operation.query)
                spec = _SCHEMA["QueryRoot"][root.name.value]
                args = ex.arguments(root)
                if root.name.value == "orders":
                    roots: list[Any] = list(_iter_orders(ex, args))
                elif root.name.value == "draftOrders":
                    roots = list(_iter_draft_orders(ex, args))
                else:
                    value = spec.resolve(state, args, ex) if spec.resolve else []
                    roots = value.items if isinstance(value, _Page) else list(value)
            path = self._bulk_path(operation)
            objects = 0
            with path.open("wb") as out:
                for start in range(0, len(roots), BULK_CHUNK):
                    with self._lock:
                        rows = self._bulk_rows(
                            state, operation, spec.type, roots[start : start + BULK_CHUNK]
                        )
                    out.write(b"".join(_compact(row) + b"\n" for row in rows))
                    objects += len(rows)
            with self._lock:
                operation.status = "COMPLETED"
                operation.completed_at = self.now()
                operation.object_count = objects
                operation.root_object_count = len(roots)
                operation.file_size = path.stat().st_size
                operation.path = path
                self._emit(state, "bulk_operations/finish", self._bulk_finish_body(operation))
        except Exception as exc:
            self._server_errors.note(exc)
            with self._lock:
                operation.status = "FAILED"
                operation.error_code = "INTERNAL_SERVER_ERROR"
                operation.completed_at = self.now()
                self._emit(state, "bulk_operations/finish", self._bulk_finish_body(operation))

    def _bulk_rows(
        self, state: _ShopState, operation: _BulkOperation, node_type: str, chunk: list[Any]
    ) -> list[JSON]:
        rows: list[JSON] = []
        ex, root = self._bulk_exec(state, operation.scopes, operation.query, bulk_rows=rows)
        selections = ex.node_selections(node_type, [root])
        for obj in chunk:
            row: JSON = {}
            rows.append(row)
            _resolve_object(ex, node_type, obj, selections, [], out=row)
        if ex.errors:
            raise RuntimeError(f"bulk query failed: {ex.errors[0]['message']}")
        return rows

    def _bulk_path(self, operation: _BulkOperation) -> Path:
        with self._lock:
            if self._bulk_dir is None:
                self._bulk_dir = Path(tempfile.mkdtemp(prefix="fake-shopify-bulk-"))
            return self._bulk_dir / f"{operation.id}.jsonl"

    def _bulk_url(self, operation: _BulkOperation) -> str | None:
        if operation.status != "COMPLETED" or operation.object_count == 0 or not self.running:
            return None
        return f"{self.base_url}/bulk/{operation.id}.jsonl"

    def _bulk_finish_body(self, operation: _BulkOperation) -> JSON:
        return {
            "admin_graphql_api_id": operation.gid,
            "completed_at": _rest_time(operation.completed_at),
            "created_at": _rest_time(operation.created_at),
            "error_code": operation.error_code.lower() if operation.error_code else None,
            "status": operation.status.lower(),
            "type": operation.type.lower(),
        }

    def _bulk_snapshot(self, operation: _BulkOperation) -> JSON:
        return {
            "id": operation.gid,
            "status": operation.status,
            "error_code": operation.error_code,
            "object_count": operation.object_count,
            "root_object_count": operation.root_object_count,
            "file_size": operation.file_size,
            "url": self._bulk_url(operation),
            "created_at": operation.created_at,
            "completed_at": operation.completed_at,
            "query": operation.query,
        }

    # ---- request pipeline --------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Outcome:
        try:
            return self._dispatch(method, target, headers, body)
        except Exception as exc:
            self._server_errors.note(exc)
            payload = _compact({"errors": f"FakeShopify bug: {exc!r}"})
            return Outcome(Response(500, payload, {"Content-Type": "application/json"}))

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Outcome:
        split = urlsplit(target)
        record = ShopifyRequest(
            method=method,
            path=split.path,
            shop=None,
            operations=(),
            variables={},
            headers={k: v for k, v in headers.items() if k in _LOGGED_HEADERS},
            at=self._now_precise().timestamp(),
        )
        with self._lock:
            self._requests.append(record)
        graphql_path = _GRAPHQL_PATH.fullmatch(split.path)
        if graphql_path and method == "POST":
            return self._serve_graphql(record, graphql_path["version"], headers, body)
        if split.path == "/admin/oauth/authorize" and method == "GET":
            query = parse_qs(split.query, keep_blank_values=True)
            return self._serve_oauth(record, lambda: self._authorize(query))
        if split.path == "/admin/oauth/access_token" and method == "POST":
            params = _form_or_json(headers, body)
            return self._serve_oauth(record, lambda: self._access_token(params))
        bulk_path = _BULK_PATH.fullmatch(split.path)
        if bulk_path and method == "GET":
            return self._serve_bulk(record, int(bulk_path["id"]))
        return self._finish(record, 404, {"errors": "Not Found"})

    def _finish(
        self,
        record: ShopifyRequest,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> Outcome:
        all_headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Request-Id": str(uuid.uuid4()),
            **(headers or {}),
        }
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        with self._lock:
            record.status, record.delivered = status, True
        return Outcome(Response(status, body, all_headers))

    def _take_fault(
        self, endpoint: str, shop: str | None, operations: Sequence[str]
    ) -> ShopifyFault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(endpoint, shop, operations)), None)
            if fault is not None:
                fault.hits += 1
            return fault

    def _fault_outcome(self, record: ShopifyRequest, fault: ShopifyFault) -> Outcome | None:
        """The answer of a fault that stops a request before it executes (None: carry on)."""
        with self._lock:
            record.fault = fault.kind
        if fault.kind == "timeout":
            return Outcome(hold=fault.delay)
        if fault.kind == "drop":
            return Outcome(drop=True)
        if fault.kind == "429":
            message = (
                "Exceeded 2 calls per second for api client. "
                "Reduce request rates to resume uninterrupted service."
            )
            return self._finish(record, 429, {"errors": message}, {"Retry-After": "1.0"})
        if fault.kind == "500":
            message = "Internal error. Looks like something went wrong on our end."
            return self._finish(record, 500, {"errors": message})
        if fault.kind in ("502", "503"):
            status = int(fault.kind)
            page = f"<html><body><h1>{status} {_HTML_ERRORS[status]}</h1></body></html>"
            headers = {"Content-Type": "text/html; charset=utf-8"}
            return self._finish(record, status, page.encode(), headers)
        return None

    def _serve_graphql(
        self, record: ShopifyRequest, version: str, headers: dict[str, str], body: bytes
    ) -> Outcome:
        with self._lock:
            record.api_version = version
            auth = self._authenticate(headers.get("x-shopify-access-token"))
            record.shop = auth[0].domain if auth is not None else None
        request = _read_graphql_request(headers, body)
        if request is not None:
            with self._lock:
                record.variables = json.loads(json.dumps(request.variables))
                record.operation_name = request.operation_name
                record.operations = tuple(f.name.value for f in request.root_fields)
                record.idempotency_keys = request.idempotency_keys()
        fault = self._take_fault("graphql", record.shop, record.operations)
        stop = self._fault_outcome(record, fault) if fault is not None else None
        if stop is not None:
            return stop
        if auth is None:
            return self._finish(record, 401, {"errors": INVALID_TOKEN})
        if request is None:
            message = {"query": "Required parameter missing or invalid"}
            return self._finish(record, 400, {"errors": message})
        throttle = fault is not None and fault.kind == "throttle"
        with self._lock:
            status, payload, executed = self._graphql(auth[0], auth[1], version, request, throttle)
            record.executed = executed
        if fault is not None and fault.kind == "drop_after_execute":
            with self._lock:
                record.status = status
            return Outcome(drop=True)
        return self._finish(record, status, payload, {"X-Shopify-API-Version": version})

    def _serve_oauth(
        self, record: ShopifyRequest, handler: Callable[[], tuple[int, JSON]]
    ) -> Outcome:
        fault = self._take_fault("oauth", None, ())
        stop = self._fault_outcome(record, fault) if fault is not None else None
        if stop is not None:
            return stop
        with self._lock:
            status, payload = handler()
            record.executed = True
        if fault is not None and fault.kind == "drop_after_execute":
            with self._lock:
                record.status = status
            return Outcome(drop=True)
        return self._finish(record, status, payload, {"Cache-Control": "no-store"})

    def _serve_bulk(self, record: ShopifyRequest, number: int) -> Outcome:
        fault = self._take_fault("bulk", None, ())
        stop = self._fault_outcome(record, fault) if fault is not None else None
        if stop is not None:
            return stop
        with self._lock:
            found = next(
                (
                    s.bulk_operations[number]
                    for s in self._shops.values()
                    if number in s.bulk_operations
                ),
                None,
            )
            path = found.path if found is not None and found.status == "COMPLETED" else None
            if path is None or not path.exists():
                return self._finish(record, 404, {"errors": "Not Found"})
            record.status, record.delivered, record.executed = 200, True, True
        headers = {"Content-Type": "application/jsonl", "X-Request-Id": str(uuid.uuid4())}
        return Outcome(Response(200, b"", headers), stream=_file_chunks(path))

    def _graphql(
        self,
        state: _ShopState,
        scopes: frozenset[str],
        version: str,
        request: _GraphQLRequest,
        throttle: bool,
    ) -> tuple[int, JSON, bool]:
        """Check, cost, charge and run one GraphQL request: (status, body, executed)."""
        bucket = state.bucket
        bucket.refill()

        def answer(body: JSON, requested: int, actual: int | None) -> JSON:
            cost = {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": bucket.status(),
            }
            return {**body, "extensions": {"cost": cost}}

        if request.error is not None or request.operation is None:
            return 200, answer({"errors": [request.error]}, 0, None), False
        operation = request.operation
        variables, errors = _coerce_variables(operation, request.variables)
        if errors:
            return 200, answer({"errors": errors}, 0, None), False
        if operation.operation == OperationType.SUBSCRIPTION:
            error = _GraphQLError("Subscriptions are not supported", "BAD_REQUEST")
            return 200, answer({"errors": [error.to_json(operation)]}, 0, None), False
        root = "Mutation" if operation.operation == OperationType.MUTATION else "QueryRoot"
        ex = _Exec(self, state, version, scopes, variables, request.fragments, self.now())
        label = operation.operation.value
        if operation.name is not None:
            label = f"{label} {operation.name.value}"
        selections = operation.selection_set.selections
        requested = _analyze(ex, root, selections, [label])
        if ex.errors:
            return 200, answer({"errors": ex.errors}, requested, None), False
        if requested > MAX_QUERY_COST:
            return 200, answer({"errors": [_max_cost_error(requested)]}, requested, None), False
        if throttle or requested > bucket.available:
            state.throttled += 1
            throttled = {
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
            }
            return 200, answer({"errors": [throttled]}, requested, None), False
        bucket.available -= requested
        data, actual = _resolve_object(ex, root, state, selections, [])
        actual = min(actual, requested)
        bucket.available = min(bucket.maximum, bucket.available + requested - actual)
        body: JSON = {"data": data}
        if ex.errors:
            body = {"errors": ex.errors, **body}
        return 200, answer(body, requested, actual), True


def _max_cost_error(requested: int) -> JSON:
    return {
        "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
        f"({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for "
        "more information on how the\ncost of a query is calculated.\n\nTo query larger amounts "
        "of data with fewer limits, bulk operations should be used instead.\nSee "
        "https://shopify.dev/api/usage/bulk-operations/queries for usage details.\n",
        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST},
    }


_RETURN_MOVES: dict[str, dict[str, str]] = {
    "REQUESTED": {
        "OPEN": "returns/approve",
        "DECLINED": "returns/decline",
        "CANCELED": "returns/cancel",
    },
    "OPEN": {"CLOSED": "returns/close", "CANCELED": "returns/cancel"},
    "CLOSED": {"OPEN": "returns/reopen"},
}
"""Return status -> the statuses it may move to, with the webhook each move sends."""


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _Handler(FakeHandler):
    server_version = "FakeShopify/1.0"
