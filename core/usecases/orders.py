"""Customers and orders, upserted from the platforms or pushed by a storefront."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Customer, Merchant, Order, OrderLine, OrderPayment, Rma
from core.enums import PaymentProviderName, Platform
from core.errors import Conflict, CurrencyMismatch, InvalidInput, NotFound
from core.money import MAX_MINOR, normalize_currency
from core.usecases.inputs import (
    as_uuid,
    checked_now,
    clean_text,
    parse_enum,
    require_time,
    require_unique,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if len(cleaned) > 320 or not _EMAIL.match(cleaned):
        raise InvalidInput("email", f"{email!r} is not an e-mail address")
    return cleaned


@dataclass(frozen=True, slots=True)
class CustomerInput:
    email: str
    name: str = ""
    external_id: str | None = None
    stripe_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLineInput:
    external_id: str
    title: str
    quantity: int
    unit_price_minor: int
    discount_minor: int = 0
    tax_minor: int = 0
    sku: str = ""
    category: str | None = None
    tags: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class PaymentInput:
    provider: PaymentProviderName | str
    reference: str
    captured_minor: int
    currency: str
    gateway: str = ""


@dataclass(frozen=True, slots=True)
class OrderInput:
    platform: Platform | str
    external_id: str
    order_number: str
    currency: str
    placed_at: datetime
    customer: CustomerInput
    lines: Sequence[OrderLineInput]
    delivered_at: datetime | None = None
    shipping_minor: int = 0
    payments: Sequence[PaymentInput] = field(default_factory=tuple)
    # When the platform last changed the order: an older copy than the stored one is skipped.
    source_updated_at: datetime | None = None
    # Refunded on the platform by someone other than this service (its admin, its staff).
    refunded_elsewhere_minor: int = 0


def _non_negative(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(name, f"{name} must be a whole number of minor units, not negative")
    if value > MAX_MINOR:
        raise InvalidInput(name, f"{name} is above {MAX_MINOR} minor units")
    return value


def _validate_line(line: OrderLineInput, index: int) -> None:
    where = f"lines[{index}]"
    if not line.external_id.strip() or len(line.external_id) > 64:
        raise InvalidInput(
            f"{where}.externalId", "each line needs the platform's line id (at most 64 chars)"
        )
    if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or line.quantity <= 0:
        raise InvalidInput(f"{where}.quantity", "quantity must be a whole number above zero")
    _non_negative(line.unit_price_minor, f"{where}.unitPriceMinor")
    _non_negative(line.discount_minor, f"{where}.discountMinor")
    _non_negative(line.tax_minor, f"{where}.taxMinor")
    if line.discount_minor > line.unit_price_minor * line.quantity:
        raise InvalidInput(f"{where}.discountMinor", "a discount cannot exceed the line's price")
    if len(line.tags) > 50:
        raise InvalidInput(f"{where}.tags", "a line has at most 50 tags")


def _validate(order: OrderInput) -> tuple[Platform, str]:
    platform = parse_enum(
        Platform, order.platform, "platform", f"unknown platform {order.platform!r}"
    )
    currency = normalize_currency(order.currency)
    if not order.external_id.strip() or len(order.external_id) > 64:
        raise InvalidInput("externalId", "an order needs the platform's id (at most 64 chars)")
    if not order.order_number.strip() or len(order.order_number) > 64:
        raise InvalidInput("orderNumber", "an order needs a number (at most 64 characters)")
    # The columns' own sizes, checked here: SQLite would store what PostgreSQL refuses.
    for name, value in (
        ("customer.externalId", order.customer.external_id),
        ("customer.stripeCustomerId", order.customer.stripe_customer_id),
    ):
        if value is not None and len(value) > 64:
            raise InvalidInput(name, f"{name} is longer than 64 characters")
    require_time(order.placed_at, "placedAt")
    if order.delivered_at is not None:
        require_time(order.delivered_at, "deliveredAt")
    if order.delivered_at is not None and order.delivered_at < order.placed_at:
        raise InvalidInput("deliveredAt", "an order cannot be delivered before it was placed")
    if not order.lines:
        raise InvalidInput("lines", "an order has at least one line")
    require_unique([line.external_id for line in order.lines], "lines")
    for index, line in enumerate(order.lines):
        _validate_line(line, index)
    _non_negative(order.shipping_minor, "shippingMinor")
    _non_negative(order.refunded_elsewhere_minor, "refundedElsewhereMinor")
    if order.source_updated_at is not None:
        require_time(order.source_updated_at, "sourceUpdatedAt")
    total = order.shipping_minor + sum(
        line.unit_price_minor * line.quantity - line.discount_minor + line.tax_minor
        for line in order.lines
    )
    if total > MAX_MINOR:
        raise InvalidInput("lines", f"the order's total is above {MAX_MINOR} minor units")
    for index, payment in enumerate(order.payments):
        if normalize_currency(payment.currency) != currency:
            raise CurrencyMismatch(
                f"payment in {payment.currency} on an order in {currency}",
                field=f"payments[{index}].currency",
            )
        _non_negative(payment.captured_minor, f"payments[{index}].capturedMinor")
        if len(payment.reference) > 100 or not payment.reference.strip():
            raise InvalidInput(f"payments[{index}].reference", "1 to 100 characters")
        parse_enum(
            PaymentProviderName,
            payment.provider,
            f"payments[{index}].provider",
            f"unknown provider {payment.provider!r}",
        )
    return platform, currency


async def _upsert_customer(
    session: AsyncSession, merchant_id: uuid.UUID, data: CustomerInput
) -> Customer:
    email = normalize_email(data.email)
    statement = select(Customer).where(Customer.merchant_id == merchant_id, Customer.email == email)
    customer = _merge_customer((await session.exec(statement)).first(), merchant_id, data)
    session.add(customer)
    await session.flush()
    return customer


def _merge_customer(
    customer: Customer | None, merchant_id: uuid.UUID, data: CustomerInput
) -> Customer:
    """The customer created, or brought up to date with what the order says of them."""
    if customer is None:
        customer = Customer(merchant_id=merchant_id, email=normalize_email(data.email))
    customer.name = clean_text(data.name, "customer.name", limit=200) or customer.name
    customer.external_id = data.external_id or customer.external_id
    customer.stripe_customer_id = data.stripe_customer_id or customer.stripe_customer_id
    return customer


async def upsert_order(
    session: AsyncSession,
    merchant_id: uuid.UUID | str,
    data: OrderInput,
    *,
    now: datetime,
    connection_id: uuid.UUID | None = None,
) -> Order:
    """Create the order or bring it up to date, keyed by platform and the platform's id.

    Calling it again with the same data changes nothing, so sync and webhooks may repeat it;
    a copy older than the stored one (by ``source_updated_at``) is skipped, so deliveries and
    sync pages may arrive in any order.
    Lines are matched by the platform's line id; a line that is already on an RMA is never
    removed, and its quantity never drops below what has been returned.
    """
    platform, currency = _validate(data)
    merchant_uuid = as_uuid(merchant_id, "merchantId")
    source = (merchant_uuid, platform, currency, connection_id)
    try:
        return await _upsert_order_once(session, source, data, now)
    except IntegrityError:
        # A concurrent call created the same order or customer first; now it exists, and the
        # second attempt updates it instead.
        return await _upsert_order_once(session, source, data, now)


# Who an order belongs to and where it came from: merchant, platform, currency, connection.
_Source = tuple[uuid.UUID, Platform, str, uuid.UUID | None]


async def _upsert_order_once(
    session: AsyncSession, source: _Source, data: OrderInput, now: datetime
) -> Order:
    async with session.begin():
        if await session.get(Merchant, source[0]) is None:
            raise NotFound("Merchant", source[0], field="merchantId")
        return await _apply_order(session, source, data, now)


async def upsert_orders(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    orders: Sequence[OrderInput],
    *,
    now: datetime,
    connection_id: uuid.UUID | None = None,
) -> int:
    """Apply a page of orders from a sync in one transaction (one commit for many orders).

    The page's customers, stored orders and their returns are read with a few statements and
    everything is written in one flush, whatever the page's size. All or nothing: when one of
    them is refused, nothing is written and the caller applies them one by one with
    :func:`upsert_order`, so that the others still land.
    """
    checked = [(data, *_validate(data)) for data in orders]
    moment = checked_now(now)
    async with session.begin():
        if await session.get(Merchant, merchant_id) is None:
            raise NotFound("Merchant", merchant_id, field="merchantId")
        customers = await _customers_by_email(
            session, merchant_id, {normalize_email(data.customer.email) for data, *_ in checked}
        )
        stored = await _orders_by_reference(
            session,
            merchant_id,
            {(platform, data.external_id.strip()) for data, platform, _ in checked},
        )
        returned = await _orders_with_rmas(session, [order.id for order in stored.values()])
        for data, platform, currency in checked:
            email = normalize_email(data.customer.email)
            customer = _merge_customer(customers.get(email), merchant_id, data.customer)
            customers[email] = customer
            session.add(customer)
            key = (platform, data.external_id.strip())
            order = stored.get(key)
            stored[key] = _merge_order(
                session,
                (merchant_id, platform, currency, connection_id),
                data,
                moment,
                customer,
                order,
                has_rmas=order is not None and order.id in returned,
            )
        await session.flush()
    return len(checked)


async def _customers_by_email(
    session: AsyncSession, merchant_id: uuid.UUID, emails: set[str]
) -> dict[str, Customer]:
    rows = await session.exec(
        select(Customer).where(
            Customer.merchant_id == merchant_id, col(Customer.email).in_(sorted(emails))
        )
    )
    return {customer.email: customer for customer in rows.all()}


async def _orders_by_reference(
    session: AsyncSession, merchant_id: uuid.UUID, references: set[tuple[Platform, str]]
) -> dict[tuple[Platform, str], Order]:
    found: dict[tuple[Platform, str], Order] = {}
    for platform in {platform for platform, _ in references}:
        ids = sorted(external for chosen, external in references if chosen is platform)
        rows = await session.exec(
            select(Order)
            .where(
                Order.merchant_id == merchant_id,
                Order.platform == platform,
                col(Order.external_id).in_(ids),
            )
            .options(selectinload(Order.lines), selectinload(Order.payments))  # type: ignore[arg-type]
            .with_for_update(of=Order)
        )
        found.update({(platform, order.external_id): order for order in rows.all()})
    return found


async def _orders_with_rmas(session: AsyncSession, order_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not order_ids:
        return set()
    rows = await session.exec(select(Rma.order_id).where(col(Rma.order_id).in_(order_ids)))
    return set(rows.all())


async def _apply_order(
    session: AsyncSession, source: _Source, data: OrderInput, now: datetime
) -> Order:
    """Within the caller's transaction: the order created or brought up to date."""
    merchant_uuid, platform, _currency, _connection = source
    customer = await _upsert_customer(session, merchant_uuid, data.customer)
    statement = (
        select(Order)
        .where(
            Order.merchant_id == merchant_uuid,
            Order.platform == platform,
            Order.external_id == data.external_id.strip(),
        )
        .options(selectinload(Order.lines), selectinload(Order.payments))  # type: ignore[arg-type]
        .with_for_update(of=Order)
    )
    order = (await session.exec(statement)).first()
    has_rmas = order is not None and bool(await _orders_with_rmas(session, [order.id]))
    merged = _merge_order(
        session, source, data, checked_now(now), customer, order, has_rmas=has_rmas
    )
    await session.flush()
    return merged


def _merge_order(
    session: AsyncSession,
    source: _Source,
    data: OrderInput,
    now: datetime,
    customer: Customer,
    order: Order | None,
    *,
    has_rmas: bool,
) -> Order:
    """The order created or brought up to date in the session (flushed by the caller)."""
    merchant_uuid, platform, currency, connection_id = source
    if order is None:
        order = Order(
            merchant_id=merchant_uuid,
            platform=platform,
            external_id=data.external_id.strip(),
            customer_id=customer.id,
            order_number=data.order_number.strip(),
            currency=currency,
            placed_at=data.placed_at,
            created_at=now,
        )
        order.lines = []
        order.payments = []
        session.add(order)
    elif order.currency != currency:
        raise CurrencyMismatch(
            f"order {order.order_number} is in {order.currency}, not {currency}",
            field="currency",
        )
    elif _is_older(data.source_updated_at, order.source_updated_at):
        return order
    elif has_rmas:
        _ensure_lines_kept(order, data)
    order.customer_id = customer.id
    order.connection_id = connection_id or order.connection_id
    order.order_number = data.order_number.strip()
    order.placed_at = data.placed_at
    order.delivered_at = data.delivered_at
    order.shipping_minor = data.shipping_minor
    order.refunded_elsewhere_minor = data.refunded_elsewhere_minor
    order.source_updated_at = data.source_updated_at or order.source_updated_at
    order.updated_at = now
    _merge_lines(order, data.lines)
    _merge_payments(order, data.payments)
    return order


def _is_older(incoming: datetime | None, stored: datetime | None) -> bool:
    return incoming is not None and stored is not None and incoming < stored


def _ensure_lines_kept(order: Order, data: OrderInput) -> None:
    """An order with returns keeps its lines, and their quantities do not drop."""
    incoming = {line.external_id: line for line in data.lines}
    for line in order.lines:
        replacement = incoming.get(line.external_id)
        if replacement is None or replacement.quantity < line.quantity:
            raise Conflict(
                f"line {line.external_id} of order {order.order_number} has returns and cannot "
                "be removed or reduced",
                field="lines",
            )


def _merge_lines(order: Order, lines: Sequence[OrderLineInput]) -> None:
    existing = {line.external_id: line for line in order.lines}
    kept: list[OrderLine] = []
    for position, data in enumerate(lines):
        values: dict[str, Any] = {
            "position": position,
            "title": clean_text(data.title, f"lines[{position}].title", limit=300) or "Item",
            "sku": clean_text(data.sku, f"lines[{position}].sku", limit=100),
            "quantity": data.quantity,
            "unit_price_minor": data.unit_price_minor,
            "discount_minor": data.discount_minor,
            "tax_minor": data.tax_minor,
            "category": clean_text(data.category, "category", limit=100) or None,
            "tags": [clean_text(tag, "tags", limit=100) for tag in data.tags if tag.strip()],
        }
        line = existing.pop(data.external_id, None)
        if line is None:
            # Built with every value at once: setting them one by one afterwards costs a
            # validation and an ORM event each, and a sync builds thousands of lines.
            line = OrderLine(
                merchant_id=order.merchant_id,
                order_id=order.id,
                external_id=data.external_id,
                **values,
            )
        else:
            _update(line, values)
        kept.append(line)
    order.lines = kept


def _update(row: Any, values: dict[str, Any]) -> None:
    """Set what changed only: an unchanged row stays clean and is not written again."""
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def _merge_payments(order: Order, payments: Sequence[PaymentInput]) -> None:
    existing = {(p.provider.value, p.reference): p for p in order.payments}
    kept: list[OrderPayment] = []
    for position, data in enumerate(payments):
        provider = PaymentProviderName(str(data.provider).lower())
        payment = existing.pop((provider.value, data.reference), None) or OrderPayment(
            merchant_id=order.merchant_id,
            order_id=order.id,
            provider=provider,
            reference=data.reference,
            captured_minor=data.captured_minor,
            currency=order.currency,
        )
        payment.captured_minor = data.captured_minor
        payment.gateway = clean_text(data.gateway, "payments.gateway", limit=100)
        payment.position = position
        kept.append(payment)
    order.payments = kept
