"""A fake Stripe API (v1) served over real HTTP on 127.0.0.1, for tests.

The real ``stripe`` package talks to it unchanged::

    with FakeStripe() as fake:
        account = fake.add_account()
        pi, ch = fake.create_payment(account, 5000, "usd")
        http = stripe.HTTPXClient(timeout=2, allow_sync_methods=True)
        client = stripe.StripeClient(
            account.secret_key,
            base_addresses={"api": fake.base_url},
            http_client=http,
            max_network_retries=0,
        )
        refund = client.v1.refunds.create({"payment_intent": pi}, {"idempotency_key": "k1"})
        http.close()

What it implements, and how closely it follows Stripe:

* ``Authorization: Bearer <secret key>``; only keys from ``add_account`` are valid, every account
  has its own objects and its own idempotency keys. A bad key gets 401 (``AuthenticationError``).
* Form-encoded parameters with nested keys (``metadata[rma_id]=x``, ``expand[0]=y``); unknown
  parameters are rejected (400 ``parameter_unknown``) the way Stripe rejects them, which catches
  an ``idempotency_key`` put in the params instead of the options.
* Idempotency on every POST carrying ``Idempotency-Key``: the first response that reached
  execution (a success, a business error such as ``amount_too_large``, or an injected 500) is saved
  and replayed byte for byte (status, body, ``Stripe-Should-Retry``) with
  ``Idempotent-Replayed: true``; the same key with other parameters (or another endpoint) gets
  400 ``idempotency_error``. Parameter validation errors, 401s and injected 4xx faults are not
  saved. Keys expire after ``idempotency_ttl`` seconds of the fake's clock (default 24 h), see
  ``advance_time`` and ``expire_idempotency_keys``. Executions are serialized under one lock, so
  two concurrent requests with one key never both execute.
* Faults queued per endpoint with ``inject``: ``"timeout"`` (hold the request, never execute, close
  without answering once the client gives up), ``"drop"`` (close without answering, not executed),
  ``"drop_after_execute"`` (execute and save, then close without answering) and any HTTP status
  (``"500"``, ``"429"``, ``"400"``, ``"409"``...), optionally with ``Stripe-Should-Retry``.
* Refunds (create, retrieve, update metadata, list with pagination, cancel), payment intents and
  charges (``amount_refunded``/``refunded`` kept in step), customers and customer balance
  transactions, events recorded for refunds (``refund.created``/``updated``/``failed``,
  ``charge.refunded``) and served at ``/v1/events``.
* Signed webhook deliveries: ``send_event``/``send_event_async`` POST an event envelope with a
  valid ``Stripe-Signature`` (HMAC-SHA256 hex over ``"{t}.{body}"``).

The server is a ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) in a background thread; the control
API is thread-safe and returns copies of the fake's objects.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from core.clock import SYSTEM_CLOCK
from testkit.fakes.http_server import FakeHandler, FakeServer, Outcome, Response, ServerErrors

API_VERSION = "2026-10-28.endive"
DAY = 24 * 60 * 60

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
REFUND_MODES = ("succeeded", "pending", "requires_action", "failed")
REFUND_FAILURE_REASONS = (
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
)
FAULT_KINDS = ("timeout", "drop", "drop_after_execute")
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)

JSON = dict[str, Any]

STRIPE_HTTPX_WARNING_FILTER = "ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"
"""stripe 16.1.0's HTTPXClient posts with ``data=<str>``, which httpx 0.28 deprecates; under
``filterwarnings = error`` every POST through it then fails as ``APIConnectionError``. Mark tests
that use ``stripe.HTTPXClient`` (or the async fallback) with
``pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING_FILTER)``."""


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeAccount:
    """A Stripe account on the fake. Pass it (or its id or secret key) to the control API."""

    id: str
    secret_key: str
    webhook_secret: str


@dataclass
class RecordedRequest:
    """One HTTP request the fake received, whatever became of it."""

    id: str
    method: str
    path: str
    query: JSON
    params: JSON
    headers: dict[str, str]
    idempotency_key: str | None
    api_key: str | None
    account_id: str | None
    at: float
    status: int | None = None
    """Status of the response the fake produced (also set when it was then dropped)."""
    delivered: bool = False
    """False when the response was never written (timeout, drop, drop_after_execute)."""
    replayed: bool = False
    """True when the response was an idempotent replay of a saved one."""
    executed: bool = False
    """True when the request reached execution (its response may have been saved)."""
    fault: str | None = None


@dataclass
class Fault:
    """A queued fault; returned by ``FakeStripe.inject`` (``hits`` counts how often it fired)."""

    kind: str
    times: int | None
    path_prefix: str
    method: str | None
    account_id: str | None
    delay: float
    status: int | None
    should_retry: bool | None
    save: bool
    error: JSON
    hits: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else self.times - self.hits

    def matches(self, method: str, path: str, account_id: str | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.account_id is not None and self.account_id != account_id:
            return False
        return path.startswith(self.path_prefix)


def sign_payload(payload: str | bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload`` (``t=<ts>,v1=<hex hmac>``)."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    ts = int(SYSTEM_CLOCK.now().timestamp()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), f"{ts}.{text}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """An error response. ``executed`` says whether it is saved under the idempotency key."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        executed: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.executed = executed
        self.headers = headers or {}

    def body(self) -> JSON:
        error: JSON = {"message": self.message, "type": self.type}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


@dataclass
class _Saved:
    fingerprint: tuple[str, str, str]
    response: Response
    request_id: str
    created: float


@dataclass
class _State:
    account: FakeAccount
    payment_intents: dict[str, JSON] = field(default_factory=dict)
    charges: dict[str, JSON] = field(default_factory=dict)
    refunds: dict[str, JSON] = field(default_factory=dict)
    customers: dict[str, JSON] = field(default_factory=dict)
    balance_transactions: dict[str, dict[str, JSON]] = field(default_factory=dict)
    events: dict[str, JSON] = field(default_factory=dict)
    idempotency: dict[str, _Saved] = field(default_factory=dict)


@dataclass
class _Ctx:
    state: _State
    request: RecordedRequest | None = None

    @property
    def livemode(self) -> bool:
        return self.state.account.secret_key.startswith(("sk_live", "rk_live"))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _split_key(key: str) -> list[str]:
    if "[" not in key or not key.endswith("]"):
        return [key]
    head, _, rest = key.partition("[")
    return [head, *rest[:-1].split("][")]


def _listify(node: Any, name: str = "") -> Any:
    """Turn ``{"0": a, "1": b}`` into ``[a, b]``, except for metadata (numeric keys are real)."""
    if isinstance(node, dict):
        node = {k: _listify(v, k) for k, v in node.items()}
        if name != "metadata" and node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def parse_form(text: str) -> JSON:
    """Decode Stripe-style form encoding (``a[b]=1&c[0]=x``) into nested dicts and lists."""
    root: JSON = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _split_key(key)
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        last = parts[-1] or str(len(node))
        node[last] = value
    result: JSON = _listify(root)
    return result


def _canonical(params: JSON) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _fmt_amount(amount: int, currency: str) -> str:
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    major = f"{amount / 100:.2f}"
    return f"${major}" if currency.lower() == "usd" else f"{major} {currency.upper()}"


def _only(params: JSON, allowed: set[str]) -> None:
    for key in params:
        if key not in allowed and key != "expand":
            raise _ApiError(
                400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key
            )


def _int_param(params: JSON, name: str, *, minimum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _ApiError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name
        ) from None
    if minimum is not None and value < minimum:
        message = (
            "Invalid positive integer" if minimum == 1 else f"This value must be >= {minimum}."
        )
        raise _ApiError(400, message, code="parameter_invalid_integer", param=name)
    return value


def _str_param(params: JSON, name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _ApiError(400, f"Invalid string: {raw!r}", param=name)
    return raw


def _metadata(params: JSON, current: dict[str, str] | None = None) -> dict[str, str]:
    """Merge ``params["metadata"]`` into ``current``; an empty value unsets a key (Stripe rules)."""
    result = dict(current or {})
    raw = params.get("metadata")
    if raw is None:
        return result
    if raw == "":
        return {}
    if isinstance(raw, list):
        raw = {str(i): v for i, v in enumerate(raw)}
    if not isinstance(raw, dict):
        raise _ApiError(400, "Invalid hash", code="parameter_invalid_hash", param="metadata")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise _ApiError(400, "Invalid metadata value", param=f"metadata[{key}]")
        if len(key) > 40:
            raise _ApiError(
                400,
                f"Metadata keys can have up to 40 characters; {key!r} is too long.",
                param=f"metadata[{key}]",
            )
        if len(value) > 500:
            raise _ApiError(
                400,
                "Metadata values can have up to 500 characters.",
                param=f"metadata[{key}]",
            )
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    if len(result) > 50:
        raise _ApiError(400, "Metadata can have up to 50 keys.", param="metadata")
    return result


def _missing(kind: str, ident: str, *, param: str = "id", status: int = 404) -> _ApiError:
    return _ApiError(
        status,
        f"No such {kind}: '{ident}'",
        code="resource_missing",
        param=param,
        executed=True,
    )


def _paginate(items: list[JSON], params: JSON, url: str, kind: str) -> JSON:
    """Stripe list envelope over ``items`` (already newest first)."""
    limit = _int_param(params, "limit", minimum=1)
    limit = 10 if limit is None else limit
    if limit > 100:
        raise _ApiError(400, "This value must be less than or equal to 100.", param="limit")
    ids = [item["id"] for item in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise _missing(kind, after, param="starting_after", status=400)
        rest = items[ids.index(after) + 1 :]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        if before not in ids:
            raise _missing(kind, before, param="ending_before", status=400)
        rest = items[: ids.index(before)]
        page, has_more = rest[-limit:], len(rest) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def _fault_defaults(status: int) -> JSON:
    if status == 402:
        return {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
    if status == 404:
        return {"type": "invalid_request_error", "code": "resource_missing", "message": "Not found"}
    if status == 409:
        return {
            "type": "idempotency_error",
            "message": "There is currently another in-progress request using this Stripe "
            "Idempotent Key (that probably means you submitted twice, and the other request "
            "is still going through).",
        }
    if status == 429:
        return {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "message": "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
        }
    if status >= 500:
        return {
            "type": "api_error",
            "message": "An unknown error occurred (injected by the fake Stripe server).",
        }
    return {"type": "invalid_request_error", "message": f"Injected {status} fault."}


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _Handler(FakeHandler):
    server_version = "FakeStripe/1.0"

    def do_DELETE(self) -> None:
        self._serve("DELETE")


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------

_Endpoint = Callable[..., JSON]


class FakeStripe:
    """A fake Stripe API server. Use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        refund_mode: str = "succeeded",
        idempotency_ttl: float = DAY,
        timeout_hold: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self._server: FakeServer | None = None
        self._stopping = threading.Event()
        self._accounts: dict[str, _State] = {}
        self._by_key: dict[str, str] = {}
        self._owner: dict[str, str] = {}  # object id -> account id
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._server_errors = ServerErrors()
        self._clock_offset = 0.0
        self.refund_mode = refund_mode
        self.idempotency_ttl = idempotency_ttl
        """Age (fake-clock seconds) after which a saved idempotent response is forgotten."""
        self.timeout_hold = timeout_hold
        """Longest a ``"timeout"`` fault holds a request when the client never hangs up."""
        self._routes: list[tuple[str, re.Pattern[str], _Endpoint]] = [
            ("GET", re.compile(r"/v1/payment_intents/(?P<pi>[^/]+)"), self._get_payment_intent),
            ("GET", re.compile(r"/v1/charges/(?P<ch>[^/]+)"), self._get_charge),
            ("POST", re.compile(r"/v1/refunds"), self._create_refund),
            ("GET", re.compile(r"/v1/refunds"), self._list_refunds),
            ("GET", re.compile(r"/v1/refunds/(?P<rid>[^/]+)"), self._get_refund),
            ("POST", re.compile(r"/v1/refunds/(?P<rid>[^/]+)"), self._update_refund),
            ("POST", re.compile(r"/v1/refunds/(?P<rid>[^/]+)/cancel"), self._cancel_refund),
            ("POST", re.compile(r"/v1/customers"), self._create_customer),
            ("GET", re.compile(r"/v1/customers/(?P<cus>[^/]+)"), self._get_customer),
            ("POST", re.compile(r"/v1/customers/(?P<cus>[^/]+)"), self._update_customer),
            (
                "POST",
                re.compile(r"/v1/customers/(?P<cus>[^/]+)/balance_transactions"),
                self._create_balance_transaction,
            ),
            (
                "GET",
                re.compile(r"/v1/customers/(?P<cus>[^/]+)/balance_transactions"),
                self._list_balance_transactions,
            ),
            (
                "GET",
                re.compile(r"/v1/customers/(?P<cus>[^/]+)/balance_transactions/(?P<txn>[^/]+)"),
                self._get_balance_transaction,
            ),
            ("GET", re.compile(r"/v1/events"), self._list_events),
            ("GET", re.compile(r"/v1/events/(?P<evt>[^/]+)"), self._get_event),
        ]

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeStripe:
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
            name="fake-stripe",
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

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeStripe is not running; call start() first")
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: pass as ``base_addresses={"api": fake.base_url}``."""
        return f"http://{self._host}:{self.port}"

    # ---- configuration and clock -------------------------------------------------------------

    @property
    def refund_mode(self) -> str:
        """Status new refunds get: succeeded (default), pending, requires_action or failed."""
        return self._refund_mode

    @refund_mode.setter
    def refund_mode(self, mode: str) -> None:
        if mode not in REFUND_MODES:
            raise ValueError(f"refund_mode must be one of {REFUND_MODES}, not {mode!r}")
        self._refund_mode = mode

    def now(self) -> int:
        """The fake's clock (Unix seconds): wall time plus ``advance_time`` offsets."""
        return int(SYSTEM_CLOCK.now().timestamp() + self._clock_offset)

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward (ages idempotency keys; stamps ``created``)."""
        with self._lock:
            self._clock_offset += seconds

    def expire_idempotency_keys(
        self, older_than: float | None = None, *, account: FakeAccount | str | None = None
    ) -> int:
        """Forget saved idempotent responses (all, or those at least ``older_than`` s old).

        Returns how many were dropped. A key used again afterwards starts a new request.
        """
        with self._lock:
            states = [self._state(account)] if account is not None else self._accounts.values()
            now = self.now()
            dropped = 0
            for state in states:
                for key, saved in list(state.idempotency.items()):
                    if older_than is None or now - saved.created >= older_than:
                        del state.idempotency[key]
                        dropped += 1
            return dropped

    def idempotency_keys(self, account: FakeAccount | str) -> list[str]:
        """Keys with a saved response on ``account`` (oldest first)."""
        with self._lock:
            return list(self._state(account).idempotency)

    # ---- accounts and objects ----------------------------------------------------------------

    def add_account(
        self,
        secret_key: str | None = None,
        *,
        account_id: str | None = None,
        webhook_secret: str | None = None,
    ) -> FakeAccount:
        """Register an account; only registered secret keys authenticate."""
        account = FakeAccount(
            id=account_id or f"acct_{secrets.token_hex(8)}",
            secret_key=secret_key or f"sk_test_fake_{secrets.token_hex(12)}",
            webhook_secret=webhook_secret or f"whsec_{secrets.token_hex(16)}",
        )
        with self._lock:
            if account.secret_key in self._by_key or account.id in self._accounts:
                raise ValueError("account id or secret key already registered")
            self._accounts[account.id] = _State(account)
            self._by_key[account.secret_key] = account.id
        return account

    def accounts(self) -> list[FakeAccount]:
        with self._lock:
            return [state.account for state in self._accounts.values()]

    def create_payment(
        self,
        account: FakeAccount | str,
        amount: int,
        currency: str = "usd",
        customer: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[str, str]:
        """A succeeded PaymentIntent with one captured Charge; returns ``(pi_id, ch_id)``."""
        if amount <= 0:
            raise ValueError("amount must be a positive integer in minor units")
        with self._lock:
            state = self._state(account)
            if customer is not None and customer not in state.customers:
                raise KeyError(f"no customer {customer!r} on account {state.account.id}")
            ctx = _Ctx(state)
            now = self.now()
            pi_id, ch_id = _new_id("pi"), _new_id("ch")
            state.payment_intents[pi_id] = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": amount,
                "capture_method": "automatic",
                "created": now,
                "currency": currency.lower(),
                "customer": customer,
                "latest_charge": ch_id,
                "livemode": ctx.livemode,
                "metadata": dict(metadata or {}),
                "payment_method": _new_id("pm"),
                "status": "succeeded",
            }
            state.charges[ch_id] = {
                "id": ch_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "balance_transaction": _new_id("txn"),
                "captured": True,
                "created": now,
                "currency": currency.lower(),
                "customer": customer,
                "disputed": False,
                "livemode": ctx.livemode,
                "metadata": dict(metadata or {}),
                "paid": True,
                "payment_intent": pi_id,
                "refunded": False,
                "status": "succeeded",
            }
            self._owner[pi_id] = self._owner[ch_id] = state.account.id
            return pi_id, ch_id

    def create_customer(
        self,
        account: FakeAccount | str,
        *,
        email: str | None = None,
        name: str | None = None,
        balance: int = 0,
        currency: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """A customer made outside the API (e.g. in the dashboard); returns its id."""
        params: JSON = {"balance": str(balance), "metadata": dict(metadata or {})}
        if email is not None:
            params["email"] = email
        if name is not None:
            params["name"] = name
        with self._lock:
            state = self._state(account)
            customer = self._create_customer(_Ctx(state), params)
            if currency is not None:
                state.customers[customer["id"]]["currency"] = currency.lower()
            return str(customer["id"])

    def create_refund(
        self,
        account: FakeAccount | str,
        *,
        payment_intent: str | None = None,
        charge: str | None = None,
        amount: int | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> JSON:
        """A refund made outside the API (e.g. in the dashboard); same rules as POST."""
        params: JSON = {"metadata": dict(metadata or {})}
        for name, value in (
            ("payment_intent", payment_intent),
            ("charge", charge),
            ("amount", amount),
            ("reason", reason),
        ):
            if value is not None:
                params[name] = str(value)
        with self._lock:
            try:
                return copy.deepcopy(self._create_refund(_Ctx(self._state(account)), params))
            except _ApiError as exc:
                raise ValueError(exc.message) from None

    def settle_refund(
        self, refund_id: str, status: str, *, failure_reason: str | None = None
    ) -> JSON:
        """Move a refund on: pending/requires_action -> succeeded|failed|canceled, or
        succeeded -> failed. A failed or canceled refund gives its amount back to the charge.
        Emits ``refund.updated`` (and ``refund.failed``). Returns the refund."""
        if status not in ("succeeded", "failed", "canceled"):
            raise ValueError("status must be succeeded, failed or canceled")
        if status == "failed":
            failure_reason = failure_reason or "unknown"
            if failure_reason not in REFUND_FAILURE_REASONS:
                raise ValueError(f"failure_reason must be one of {REFUND_FAILURE_REASONS}")
        elif failure_reason is not None:
            raise ValueError("failure_reason only goes with status='failed'")
        with self._lock:
            state = self._state(self._owner_of(refund_id, "refund"))
            refund = state.refunds[refund_id]
            allowed = {
                "pending": ("succeeded", "failed", "canceled"),
                "requires_action": ("succeeded", "failed", "canceled"),
                "succeeded": ("failed",),
            }.get(refund["status"], ())
            if status not in allowed:
                raise ValueError(
                    f"refund {refund_id} is {refund['status']}; cannot become {status}"
                )
            self._transition(_Ctx(state), refund, status, failure_reason)
            return copy.deepcopy(refund)

    def refunds(
        self,
        account: FakeAccount | str,
        *,
        payment_intent: str | None = None,
        charge: str | None = None,
    ) -> list[JSON]:
        """Every refund on ``account`` in creation order (oldest first), whatever its status."""
        with self._lock:
            return [
                copy.deepcopy(r)
                for r in self._state(account).refunds.values()
                if (payment_intent is None or r["payment_intent"] == payment_intent)
                and (charge is None or r["charge"] == charge)
            ]

    def refund(self, refund_id: str) -> JSON:
        return self._get_object(refund_id, "refund", "refunds")

    def charge(self, charge_id: str) -> JSON:
        return self._get_object(charge_id, "charge", "charges")

    def payment_intent(self, payment_intent_id: str) -> JSON:
        return self._get_object(payment_intent_id, "payment_intent", "payment_intents")

    def customer(self, customer_id: str) -> JSON:
        return self._get_object(customer_id, "customer", "customers")

    def balance_transactions(self, account: FakeAccount | str, customer_id: str) -> list[JSON]:
        """The customer's balance transactions, oldest first."""
        with self._lock:
            txns = self._state(account).balance_transactions.get(customer_id, {})
            return [copy.deepcopy(t) for t in txns.values()]

    def events(self, account: FakeAccount | str, type: str | None = None) -> list[JSON]:
        """Events the fake emitted for ``account`` (oldest first), optionally of one type."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._state(account).events.values()
                if type is None or e["type"] == type
            ]

    # ---- requests and faults -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first (copies)."""
        with self._lock:
            return [dataclasses.replace(r, params=copy.deepcopy(r.params)) for r in self._requests]

    def requests_for(
        self, path_prefix: str = "", method: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.path.startswith(path_prefix) and (method is None or r.method == method.upper())
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of bugs inside the fake itself (answered with a 500); should stay empty."""
        return self._server_errors.snapshot()

    def inject(
        self,
        fault: str | int,
        times: int | None = 1,
        path_prefix: str = "/v1/refunds",
        method: str | None = "POST",
        *,
        account: FakeAccount | str | None = None,
        delay: float | None = None,
        should_retry: bool | None = None,
        save: bool | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> Fault:
        """Queue a fault for the next ``times`` matching requests (``times=None``: until cleared).

        ``fault``:
          * ``"timeout"``: hold the request without executing it until the client gives up
            (or ``delay``/``timeout_hold`` seconds pass), then close without a response.
          * ``"drop"``: close the connection without executing or answering.
          * ``"drop_after_execute"``: execute (and save under the idempotency key), then close
            without answering. On an idempotent replay, the replayed response is dropped.
          * an HTTP status (``"500"``, ``"503"``, ``"429"``, ``"400"``, ``"409"``, ``"402"``...):
            answer with a Stripe error body (override fields with ``error={"code": ...}``).
            ``should_retry`` adds ``Stripe-Should-Retry: true|false``. ``save`` (default: True
            for 5xx, False otherwise) says whether the request counts as having reached
            execution: a saved error is replayed for the same key and nothing is executed.
            An idempotent replay takes precedence over a saved status fault.

        Matching: ``method`` (None = any), path prefix, and ``account`` (None = any, including
        unauthenticated requests). Faults fire in the order they were injected.
        """
        kind = str(fault)
        status: int | None = None
        if kind not in FAULT_KINDS:
            if not (kind.isdigit() and 400 <= int(kind) <= 599):
                raise ValueError(f"unknown fault {fault!r}; use {FAULT_KINDS} or an HTTP status")
            status = int(kind)
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for unlimited)")
        with self._lock:
            account_id = self._state(account).account.id if account is not None else None
            handle = Fault(
                kind=kind,
                times=times,
                path_prefix=path_prefix or "",
                method=method.upper() if method else None,
                account_id=account_id,
                delay=self.timeout_hold if delay is None else delay,
                status=status,
                should_retry=should_retry,
                save=(status is not None and status >= 500) if save is None else save,
                error={**(_fault_defaults(status) if status else {}), **(error or {})},
            )
            self._faults.append(handle)
            return handle

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining is None or f.remaining > 0]

    def reset(self) -> None:
        """Forget objects, saved keys, events, requests and faults; keep the accounts."""
        with self._lock:
            for account_id, state in self._accounts.items():
                self._accounts[account_id] = _State(state.account)
            self._owner.clear()
            self._requests.clear()
            self._faults.clear()
            self._server_errors.clear()
            self._clock_offset = 0.0

    # ---- webhooks ----------------------------------------------------------------------------

    sign_payload = staticmethod(sign_payload)

    def build_event(
        self,
        event_type: str,
        data_object: Any,
        *,
        event_id: str | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
        created: int | None = None,
        request: Mapping[str, Any] | None = None,
        livemode: bool = False,
    ) -> JSON:
        """A Stripe event envelope around ``data_object`` (a dict or a StripeObject)."""
        if hasattr(data_object, "to_dict"):
            data_object = data_object.to_dict()
        data: JSON = {"object": copy.deepcopy(dict(data_object))}
        if previous_attributes is not None:
            data["previous_attributes"] = copy.deepcopy(dict(previous_attributes))
        return {
            "id": event_id or _new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now() if created is None else created,
            "data": data,
            "livemode": livemode,
            "pending_webhooks": 1,
            "request": dict(request) if request else {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def event_for_refund(
        self,
        refund_id: str,
        type: str = "refund.updated",
        *,
        event_id: str | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
    ) -> JSON:
        """An event carrying the refund as it is now (``charge.*`` types carry its charge)."""
        refund = self.refund(refund_id)
        obj = self.charge(refund["charge"]) if type.startswith("charge.") else refund
        if type == "charge.refund.updated":
            obj = refund
        return self.build_event(
            type, obj, event_id=event_id, previous_attributes=previous_attributes
        )

    def _delivery(
        self,
        webhook_secret: str,
        event_type: str | Mapping[str, Any],
        data_object: Any,
        event_id: str | None,
        previous_attributes: Mapping[str, Any] | None,
        timestamp: int | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[bytes, dict[str, str]]:
        if isinstance(event_type, Mapping):
            event = copy.deepcopy(dict(event_type))
            if event_id is not None:
                event["id"] = event_id
        else:
            if data_object is None:
                raise ValueError("data_object is required with an event type")
            event = self.build_event(
                event_type, data_object, event_id=event_id, previous_attributes=previous_attributes
            )
        body = json.dumps(event, indent=2)
        all_headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign_payload(body, webhook_secret, timestamp),
            **(headers or {}),
        }
        return body.encode(), all_headers

    def send_event(
        self,
        url: str,
        webhook_secret: str,
        event_type: str | Mapping[str, Any],
        data_object: Any = None,
        *,
        event_id: str | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
        request_timeout: float = 10.0,
    ) -> httpx.Response:
        """POST a signed event to ``url``. ``event_type`` may also be a whole envelope (e.g.
        from ``event_for_refund``/``events``). ``timestamp`` overrides ``t`` (to test
        staleness); ``client`` lets you post through your own ``httpx.Client`` (ASGI etc.)."""
        body, hdrs = self._delivery(
            webhook_secret, event_type, data_object, event_id, previous_attributes, timestamp,
            headers,
        )  # fmt: skip
        if client is not None:
            return client.post(url, content=body, headers=hdrs)
        with httpx.Client(timeout=request_timeout) as own:
            return own.post(url, content=body, headers=hdrs)

    async def send_event_async(
        self,
        url: str,
        webhook_secret: str,
        event_type: str | Mapping[str, Any],
        data_object: Any = None,
        *,
        event_id: str | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        request_timeout: float = 10.0,
    ) -> httpx.Response:
        """``send_event`` for async tests (``client`` may wrap ``httpx.ASGITransport(app)``)."""
        body, hdrs = self._delivery(
            webhook_secret, event_type, data_object, event_id, previous_attributes, timestamp,
            headers,
        )  # fmt: skip
        if client is not None:
            return await client.post(url, content=body, headers=hdrs)
        async with httpx.AsyncClient(timeout=request_timeout) as own:
            return await own.post(url, content=body, headers=hdrs)

    # ---- request pipeline --------------------------------------------------------------------

    def _state(self, account: FakeAccount | str | None) -> _State:
        if isinstance(account, FakeAccount):
            account = account.id
        if account in self._accounts:
            return self._accounts[account]
        if account in self._by_key:
            return self._accounts[self._by_key[account]]
        raise KeyError(f"unknown account {account!r}; use add_account() first")

    def _owner_of(self, object_id: str, kind: str) -> str:
        try:
            return self._owner[object_id]
        except KeyError:
            raise KeyError(f"no {kind} {object_id!r} on the fake") from None

    def _get_object(self, object_id: str, kind: str, store: str) -> JSON:
        with self._lock:
            state = self._state(self._owner_of(object_id, kind))
            obj = getattr(state, store).get(object_id)
            if obj is None:
                raise KeyError(f"no {kind} {object_id!r} on the fake")
            return copy.deepcopy(obj)

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Outcome:
        try:
            return self._handle_inner(method, target, headers, body)
        except Exception as exc:
            self._server_errors.note(exc)
            error = _ApiError(500, f"Fake Stripe bug: {exc!r}", type="api_error")
            return Outcome(Response(500, _json_bytes(error.body()), self._headers(headers, "")))

    def _headers(self, request_headers: dict[str, str], request_id: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Request-Id": request_id,
            "Stripe-Version": request_headers.get("stripe-version", API_VERSION),
            "Cache-Control": "no-cache, no-store",
        }

    def _handle_inner(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Outcome:
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = parse_form(split.query)
        try:
            form = parse_form(body.decode("utf-8")) if body else {}
        except UnicodeDecodeError:
            form = {}
        params = {**query, **form} if method == "POST" else query
        auth = headers.get("authorization", "")
        api_key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        key = (headers.get("idempotency-key") or None) if method == "POST" else None
        request_id = f"req_{secrets.token_hex(7)}"

        with self._lock:
            account_id = self._by_key.get(api_key) if api_key else None
            record = RecordedRequest(
                id=request_id,
                method=method,
                path=path,
                query=query,
                params=params,
                headers=dict(headers),
                idempotency_key=key,
                api_key=api_key,
                account_id=account_id,
                at=SYSTEM_CLOCK.now().timestamp(),
            )
            self._requests.append(record)
            fault = next((f for f in self._faults if f.matches(method, path, account_id)), None)
            if fault is not None:
                fault.hits += 1
                record.fault = fault.kind

        response_headers = self._headers(headers, request_id)
        if key:
            response_headers["Idempotency-Key"] = key

        def answer(status: int, payload: Any, extra: Mapping[str, str] | None = None) -> Outcome:
            with self._lock:
                record.status, record.delivered = status, True
            return Outcome(
                Response(status, _json_bytes(payload), {**response_headers, **(extra or {})})
            )

        if fault is not None and fault.kind == "timeout":
            return Outcome(hold=fault.delay)
        if fault is not None and fault.kind == "drop":
            return Outcome(drop=True)
        fault_error: _ApiError | None = None
        if fault is not None and fault.status is not None:
            extra = {}
            if fault.should_retry is not None:
                extra["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
            err = fault.error
            fault_error = _ApiError(
                fault.status,
                str(err.get("message", "Injected fault.")),
                type=str(err.get("type", "api_error")),
                code=err.get("code"),
                param=err.get("param"),
                executed=fault.save,
                headers=extra,
            )
            if not fault.save:
                return answer(fault_error.status, fault_error.body(), fault_error.headers)

        if api_key is None:
            return answer(
                401,
                _ApiError(
                    401,
                    "You did not provide an API key. You need to provide your API key in the "
                    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                    "YOUR_SECRET_KEY').",
                ).body(),
            )
        if account_id is None:
            shown = api_key[:8] + "*" * max(0, len(api_key) - 12) + api_key[-4:]
            return answer(
                401,
                _ApiError(401, f"Invalid API Key provided: {shown}", code="api_key_invalid").body(),
            )
        if key is not None and len(key) > 255:
            return answer(
                400,
                _ApiError(
                    400,
                    "Idempotency-Key is too long; it can be at most 255 characters.",
                    type="idempotency_error",
                ).body(),
            )

        drop = fault is not None and fault.kind == "drop_after_execute"
        with self._lock:
            state = self._accounts[account_id]
            fingerprint = (method, path, _canonical(params))
            if key is not None:
                saved = state.idempotency.get(key)
                if saved is not None and self.now() - saved.created >= self.idempotency_ttl:
                    del state.idempotency[key]
                    saved = None
                if saved is not None:
                    if saved.fingerprint != fingerprint:
                        outcome = answer(
                            400,
                            _ApiError(
                                400,
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other "
                                f"than '{key}' if you meant to execute a different request.",
                                type="idempotency_error",
                            ).body(),
                        )
                    else:
                        record.replayed = True
                        record.status, record.delivered = saved.response.status, not drop
                        outcome = Outcome(
                            Response(
                                saved.response.status,
                                saved.response.body,
                                {
                                    **response_headers,
                                    **saved.response.headers,
                                    "Idempotent-Replayed": "true",
                                    "Original-Request": saved.request_id,
                                },
                            )
                        )
                    return Outcome(drop=True) if drop and record.replayed else outcome

            ctx = _Ctx(state, record)
            extra_headers: dict[str, str] = {}
            try:
                if fault_error is not None:
                    raise fault_error
                handler, groups = self._route(method, path)
                status, payload, executed = 200, handler(ctx, params, **groups), True
            except _ApiError as exc:
                status, payload, executed = exc.status, exc.body(), exc.executed
                extra_headers = exc.headers
            record.executed = executed
            outcome = answer(status, payload, extra_headers)
            if executed and key is not None:
                assert outcome.response is not None
                state.idempotency[key] = _Saved(
                    fingerprint,
                    Response(status, outcome.response.body, dict(extra_headers)),
                    request_id,
                    self.now(),
                )
        if drop:
            record.delivered = False
            return Outcome(drop=True)
        return outcome

    def _route(self, method: str, path: str) -> tuple[_Endpoint, dict[str, str]]:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler, match.groupdict()
        raise _ApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    # ---- events ------------------------------------------------------------------------------

    def _emit(
        self,
        ctx: _Ctx,
        event_type: str,
        obj: JSON,
        previous_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        request: dict[str, str | None] = {"id": None, "idempotency_key": None}
        if ctx.request is not None:
            request = {"id": ctx.request.id, "idempotency_key": ctx.request.idempotency_key}
        event = self.build_event(
            event_type,
            obj,
            previous_attributes=previous_attributes,
            request=request,
            livemode=ctx.livemode,
        )
        ctx.state.events[event["id"]] = event
        self._owner[event["id"]] = ctx.state.account.id

    # ---- endpoint handlers (called with the lock held) ---------------------------------------

    def _get_payment_intent(self, ctx: _Ctx, params: JSON, pi: str) -> JSON:
        _only(params, set())
        obj = ctx.state.payment_intents.get(pi)
        if obj is None:
            raise _missing("payment_intent", pi)
        return obj

    def _get_charge(self, ctx: _Ctx, params: JSON, ch: str) -> JSON:
        _only(params, set())
        obj = ctx.state.charges.get(ch)
        if obj is None:
            raise _missing("charge", ch)
        return obj

    def _create_refund(self, ctx: _Ctx, params: JSON) -> JSON:
        _only(
            params,
            {
                "amount",
                "charge",
                "currency",
                "customer",
                "instructions_email",
                "metadata",
                "origin",
                "payment_intent",
                "reason",
                "refund_application_fee",
                "reverse_transfer",
            },
        )
        pi_id, ch_id = _str_param(params, "payment_intent"), _str_param(params, "charge")
        if not pi_id and not ch_id:
            raise _ApiError(
                400,
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
            )
        amount = _int_param(params, "amount", minimum=1)
        reason = _str_param(params, "reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise _ApiError(
                400,
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                param="reason",
            )
        metadata = _metadata(params)
        # -- execution begins: errors from here on are saved under the idempotency key --
        state = ctx.state
        if pi_id:
            pi = state.payment_intents.get(pi_id)
            if pi is None:
                raise _missing("payment_intent", pi_id, param="payment_intent", status=400)
            charge = state.charges[pi["latest_charge"]]
            if ch_id and ch_id != charge["id"]:
                raise _ApiError(
                    400,
                    f"The charge '{ch_id}' does not belong to payment intent '{pi_id}'.",
                    param="charge",
                    executed=True,
                )
        else:
            assert ch_id is not None
            found = state.charges.get(ch_id)
            if found is None:
                raise _missing("charge", ch_id, param="charge", status=400)
            charge = found
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise _ApiError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
                executed=True,
            )
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise _ApiError(
                400,
                f"Refund amount ({_fmt_amount(amount, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({_fmt_amount(remaining, charge['currency'])})",
                code="amount_too_large",
                param="amount",
                executed=True,
            )
        status = self._refund_mode
        refund_id = _new_id("re")
        refund: JSON = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": None if status == "requires_action" else _new_id("txn"),
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "destination_details": {"type": "card", "card": {"type": "refund"}},
            "failure_balance_transaction": None,
            "failure_reason": None,
            "instructions_email": _str_param(params, "instructions_email"),
            "metadata": metadata,
            "next_action": None,
            "payment_intent": charge["payment_intent"],
            "pending_reason": "processing" if status == "pending" else None,
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": status,
            "transfer_reversal": None,
        }
        if status == "requires_action":
            refund["next_action"] = {
                "type": "display_details",
                "display_details": {
                    "email_sent": {"email_sent_at": self.now(), "email_sent_to": "c@example.com"},
                    "expires_at": self.now() + 30 * DAY,
                },
            }
        if status == "failed":
            refund["failure_reason"] = "declined"
            refund["failure_balance_transaction"] = _new_id("txn")
        state.refunds[refund_id] = refund
        self._owner[refund_id] = state.account.id
        self._emit(ctx, "refund.created", refund)
        if status != "failed":
            previous = {
                "amount_refunded": charge["amount_refunded"],
                "refunded": charge["refunded"],
            }
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
            self._emit(ctx, "charge.refunded", charge, previous)
        else:
            self._emit(ctx, "refund.failed", refund)
        return refund

    def _transition(self, ctx: _Ctx, refund: JSON, status: str, failure_reason: str | None) -> None:
        previous: JSON = {"status": refund["status"]}
        if refund["pending_reason"] is not None:
            previous["pending_reason"] = refund["pending_reason"]
        refund["status"] = status
        refund["pending_reason"] = None
        refund["next_action"] = None
        if status in ("failed", "canceled"):
            charge = ctx.state.charges[refund["charge"]]
            charge["amount_refunded"] = max(0, charge["amount_refunded"] - refund["amount"])
            charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        if status == "failed":
            previous["failure_reason"] = refund["failure_reason"]
            refund["failure_reason"] = failure_reason
            refund["failure_balance_transaction"] = _new_id("txn")
        self._emit(ctx, "refund.updated", refund, previous)
        if status == "failed":
            self._emit(ctx, "refund.failed", refund, previous)

    def _list_refunds(self, ctx: _Ctx, params: JSON) -> JSON:
        _only(
            params,
            {"charge", "payment_intent", "limit", "starting_after", "ending_before", "created"},
        )
        pi_id, ch_id = _str_param(params, "payment_intent"), _str_param(params, "charge")
        if pi_id and pi_id not in ctx.state.payment_intents:
            raise _missing("payment_intent", pi_id, param="payment_intent", status=400)
        if ch_id and ch_id not in ctx.state.charges:
            raise _missing("charge", ch_id, param="charge", status=400)
        items = [
            r
            for r in reversed(ctx.state.refunds.values())
            if (not pi_id or r["payment_intent"] == pi_id) and (not ch_id or r["charge"] == ch_id)
        ]
        return _paginate(items, params, "/v1/refunds", "refund")

    def _get_refund(self, ctx: _Ctx, params: JSON, rid: str) -> JSON:
        _only(params, set())
        refund = ctx.state.refunds.get(rid)
        if refund is None:
            raise _missing("refund", rid)
        return refund

    def _update_refund(self, ctx: _Ctx, params: JSON, rid: str) -> JSON:
        _only(params, {"metadata"})
        refund = ctx.state.refunds.get(rid)
        if refund is None:
            raise _missing("refund", rid)
        new = _metadata(params, refund["metadata"])
        if new != refund["metadata"]:
            previous = {"metadata": refund["metadata"]}
            refund["metadata"] = new
            self._emit(ctx, "refund.updated", refund, previous)
        return refund

    def _cancel_refund(self, ctx: _Ctx, params: JSON, rid: str) -> JSON:
        _only(params, set())
        refund = ctx.state.refunds.get(rid)
        if refund is None:
            raise _missing("refund", rid)
        if refund["status"] != "requires_action":
            raise _ApiError(
                400,
                f"Refund {rid} cannot be canceled because it has a status of "
                f"{refund['status']}. Only refunds with status requires_action can be canceled.",
                code="refund_cancel_not_allowed"
                if refund["status"] != "canceled"
                else "refund_already_canceled",
                executed=True,
            )
        self._transition(ctx, refund, "canceled", None)
        return refund

    def _create_customer(self, ctx: _Ctx, params: JSON) -> JSON:
        _only(params, {"balance", "description", "email", "metadata", "name", "phone"})
        balance = _int_param(params, "balance") or 0
        metadata = _metadata(params)
        customer_id = _new_id("cus")
        customer: JSON = {
            "id": customer_id,
            "object": "customer",
            "address": None,
            "balance": balance,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": _str_param(params, "description"),
            "email": _str_param(params, "email"),
            "invoice_prefix": secrets.token_hex(4).upper(),
            "livemode": ctx.livemode,
            "metadata": metadata,
            "name": _str_param(params, "name"),
            "phone": _str_param(params, "phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
        }
        ctx.state.customers[customer_id] = customer
        ctx.state.balance_transactions[customer_id] = {}
        self._owner[customer_id] = ctx.state.account.id
        return customer

    def _customer(self, ctx: _Ctx, cus: str) -> JSON:
        customer = ctx.state.customers.get(cus)
        if customer is None:
            raise _missing("customer", cus)
        return customer

    def _get_customer(self, ctx: _Ctx, params: JSON, cus: str) -> JSON:
        _only(params, set())
        return self._customer(ctx, cus)

    def _update_customer(self, ctx: _Ctx, params: JSON, cus: str) -> JSON:
        _only(params, {"balance", "description", "email", "metadata", "name", "phone"})
        balance = _int_param(params, "balance")
        customer = self._customer(ctx, cus)
        customer["metadata"] = _metadata(params, customer["metadata"])
        for name in ("description", "email", "name", "phone"):
            if name in params:
                customer[name] = _str_param(params, name) or None
        if balance is not None:
            customer["balance"] = balance
        return customer

    def _create_balance_transaction(self, ctx: _Ctx, params: JSON, cus: str) -> JSON:
        _only(params, {"amount", "currency", "description", "metadata"})
        amount = _int_param(params, "amount")
        if amount is None:
            raise _ApiError(
                400, "Missing required param: amount.", code="parameter_missing", param="amount"
            )
        currency = _str_param(params, "currency")
        if not currency:
            raise _ApiError(
                400, "Missing required param: currency.", code="parameter_missing", param="currency"
            )
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise _ApiError(400, f"Invalid currency: {currency}", param="currency")
        currency = currency.lower()
        metadata = _metadata(params)
        description = _str_param(params, "description")
        # -- execution --
        customer = self._customer(ctx, cus)
        if customer["currency"] not in (None, currency):
            raise _ApiError(
                400,
                f"The currency of this balance transaction ({currency}) must match the "
                f"customer's currency ({customer['currency']}).",
                param="currency",
                executed=True,
            )
        customer["currency"] = currency
        customer["balance"] += amount
        txn_id = _new_id("cbtxn")
        txn: JSON = {
            "id": txn_id,
            "object": "customer_balance_transaction",
            "amount": amount,
            "checkout_session": None,
            "created": self.now(),
            "credit_note": None,
            "currency": currency,
            "customer": cus,
            "description": description,
            "ending_balance": customer["balance"],
            "invoice": None,
            "livemode": ctx.livemode,
            "metadata": metadata,
            "type": "adjustment",
        }
        ctx.state.balance_transactions.setdefault(cus, {})[txn_id] = txn
        self._owner[txn_id] = ctx.state.account.id
        return txn

    def _list_balance_transactions(self, ctx: _Ctx, params: JSON, cus: str) -> JSON:
        _only(params, {"limit", "starting_after", "ending_before", "created", "invoice"})
        self._customer(ctx, cus)
        items = list(reversed(ctx.state.balance_transactions.get(cus, {}).values()))
        return _paginate(
            items,
            params,
            f"/v1/customers/{cus}/balance_transactions",
            "customer_balance_transaction",
        )

    def _get_balance_transaction(self, ctx: _Ctx, params: JSON, cus: str, txn: str) -> JSON:
        _only(params, set())
        self._customer(ctx, cus)
        found = ctx.state.balance_transactions.get(cus, {}).get(txn)
        if found is None:
            raise _missing("customer_balance_transaction", txn)
        return found

    def _list_events(self, ctx: _Ctx, params: JSON) -> JSON:
        _only(
            params,
            {
                "type",
                "types",
                "limit",
                "starting_after",
                "ending_before",
                "created",
                "delivery_success",
            },
        )
        wanted = _str_param(params, "type")
        types = params.get("types") or []
        items = [
            e
            for e in reversed(ctx.state.events.values())
            if (not wanted or _type_matches(e["type"], wanted))
            and (not types or any(_type_matches(e["type"], t) for t in types))
        ]
        return _paginate(items, params, "/v1/events", "event")

    def _get_event(self, ctx: _Ctx, params: JSON, evt: str) -> JSON:
        _only(params, set())
        event = ctx.state.events.get(evt)
        if event is None:
            raise _missing("event", evt)
        return event


def _type_matches(event_type: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern
