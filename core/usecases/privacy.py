"""Privacy requests a platform passes on: a customer's data exported, a customer forgotten, a
shop's data erased after it left. Money records stay (the law that asks for erasure also
obliges merchants to keep their books); what identifies a person goes."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import (
    Connection,
    Customer,
    DataExport,
    Feedback,
    Merchant,
    Order,
    Rma,
    StoreCreditEntry,
    WebhookDelivery,
)
from core.enums import WebhookState
from core.errors import InvalidInput
from core.usecases.inputs import checked_now, clean_text
from core.usecases.orders import normalize_email


async def _customers(
    session: AsyncSession, merchant_id: uuid.UUID, email: str | None, external_id: str | None
) -> list[Customer]:
    conditions = []
    if email:
        with contextlib.suppress(InvalidInput):  # not an address we could hold
            conditions.append(col(Customer.email) == normalize_email(email))
    if external_id:
        conditions.append(col(Customer.external_id) == external_id)
    if not conditions:
        return []
    statement = select(Customer).where(Customer.merchant_id == merchant_id, sa.or_(*conditions))
    return list((await session.exec(statement)).all())


def _forget(customer: Customer) -> None:
    customer.email = f"redacted-{customer.id.hex}@redacted.invalid"
    customer.name = ""
    customer.external_id = None
    customer.stripe_customer_id = None


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def _document(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    orders = (
        await session.exec(
            select(Order)
            .where(Order.customer_id == customer.id)
            .options(selectinload(Order.lines), selectinload(Order.payments))  # type: ignore[arg-type]
        )
    ).all()
    rmas = (
        await session.exec(
            select(Rma).where(Rma.customer_id == customer.id).options(selectinload(Rma.lines))  # type: ignore[arg-type]
        )
    ).all()
    feedback = {
        row.rma_id: row
        for row in (
            await session.exec(
                select(Feedback).where(col(Feedback.rma_id).in_([rma.id for rma in rmas]))
            )
        ).all()
    }
    credit = (
        await session.exec(
            select(StoreCreditEntry).where(StoreCreditEntry.customer_id == customer.id)
        )
    ).all()
    return {
        "customer": {
            "email": customer.email,
            "name": customer.name,
            "platformId": customer.external_id,
            "since": _when(customer.created_at),
        },
        "orders": [
            {
                "orderNumber": order.order_number,
                "platform": order.platform.value,
                "placedAt": _when(order.placed_at),
                "deliveredAt": _when(order.delivered_at),
                "currency": order.currency,
                "lines": [
                    {"title": line.title, "sku": line.sku, "quantity": line.quantity}
                    for line in order.lines
                ],
                "payments": [
                    {"gateway": p.gateway or p.provider.value, "capturedMinor": p.captured_minor}
                    for p in order.payments
                ],
            }
            for order in orders
        ],
        "returns": [
            {
                "number": rma.number,
                "status": rma.status.value,
                "requestedAt": _when(rma.created_at),
                "customerNote": rma.customer_note,
                "lines": [
                    {"quantity": line.quantity, "reason": line.reason.value} for line in rma.lines
                ],
                "feedback": (
                    {"rating": feedback[rma.id].rating, "comment": feedback[rma.id].comment}
                    if rma.id in feedback
                    else None
                ),
            }
            for rma in rmas
        ],
        "storeCredit": [
            {
                "amountMinor": entry.amount_minor,
                "currency": entry.currency,
                "note": entry.note,
                "at": _when(entry.created_at),
            }
            for entry in credit
        ],
    }


async def export_customer_data(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    *,
    email: str | None,
    external_id: str | None,
    request_reference: str,
    now: datetime,
) -> DataExport:
    """Gather everything held about a customer into one document for the merchant to send."""
    moment = checked_now(now)
    async with session.begin():
        customers = await _customers(session, merchant_id, email, external_id)
        document: dict[str, Any] = {
            "requestedAt": moment.isoformat(),
            "customers": [await _document(session, customer) for customer in customers],
        }
        export = DataExport(
            merchant_id=merchant_id,
            request_reference=clean_text(request_reference, "request", limit=100),
            customer_email=(email or "")[:320],
            document=document,
            created_at=moment,
        )
        session.add(export)
    return export


async def redact_customer(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    *,
    email: str | None,
    external_id: str | None,
    now: datetime,
) -> int:
    """Forget who a customer is: their address, name, platform ids, notes and comments.
    Orders, returns and money movements stay, no longer pointing at a person. Returns how
    many customer records were redacted."""
    checked_now(now)
    async with session.begin():
        customers = await _customers(session, merchant_id, email, external_id)
        for customer in customers:
            asked = [email or "", customer.email]
            _forget(customer)
            session.add(customer)
            rma_ids = select(Rma.id).where(Rma.customer_id == customer.id)
            await session.exec(
                sa.update(Rma).where(col(Rma.customer_id) == customer.id).values(customer_note="")
            )
            await session.exec(
                sa.update(Feedback).where(col(Feedback.rma_id).in_(rma_ids)).values(comment="")
            )
            await session.exec(
                sa.delete(DataExport).where(
                    col(DataExport.merchant_id) == merchant_id,
                    col(DataExport.customer_email).in_(asked),
                )
            )
            await _forget_deliveries(session, merchant_id, [a for a in asked if a])
    return len(customers)


# Deliveries read per round when looking for a customer's data in the inbox.
_DELIVERY_BATCH = 500


async def _forget_deliveries(
    session: AsyncSession, merchant_id: uuid.UUID, marks: list[str]
) -> None:
    """Empty the stored bodies of processed deliveries that carry the customer's address:
    platforms put whole orders (addresses, phone numbers) in them. Deliveries still waiting
    are left alone; their processing is what the request is about."""
    needles = [mark.lower().encode() for mark in marks]
    last: uuid.UUID | None = None
    while True:
        statement = (
            select(WebhookDelivery.id, WebhookDelivery.body)
            .where(
                WebhookDelivery.merchant_id == merchant_id,
                WebhookDelivery.state != WebhookState.RECEIVED,
            )
            .order_by(col(WebhookDelivery.id))
            .limit(_DELIVERY_BATCH)
        )
        if last is not None:
            statement = statement.where(col(WebhookDelivery.id) > last)
        rows = (await session.exec(statement)).all()
        if not rows:
            return
        matching = [row[0] for row in rows if any(n in bytes(row[1]).lower() for n in needles)]
        if matching:
            await session.exec(
                sa.update(WebhookDelivery)
                .where(col(WebhookDelivery.id).in_(matching))
                .values(body=b"{}", error="body erased for a customer's privacy request")
            )
        last = rows[-1][0]


async def erase_shop(session: AsyncSession, connection_id: uuid.UUID, *, now: datetime) -> str:
    """A shop left for good (its connection disabled by the uninstall): when it was the
    merchant's only connection and all its orders came from it, the merchant and everything
    it holds is deleted; otherwise the connection (with its credentials and deliveries) goes
    and the customers of its orders are redacted, money records kept. Returns what was done."""
    checked_now(now)
    async with session.begin():
        connection = await session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return "nothing held for this shop"
        if connection.disabled_at is None:
            # Installed again since (or never uninstalled): the request is stale or forged.
            return "refused: the shop's connection is enabled"
        merchant_id = connection.merchant_id
        others = (
            await session.exec(
                select(sa.func.count())
                .select_from(Connection)
                .where(Connection.merchant_id == merchant_id, Connection.id != connection_id)
            )
        ).one()
        foreign_orders = (
            await session.exec(
                select(sa.func.count())
                .select_from(Order)
                .where(
                    Order.merchant_id == merchant_id,
                    sa.or_(
                        col(Order.connection_id).is_(None),
                        col(Order.connection_id) != connection_id,
                    ),
                )
            )
        ).one()
        if not others and not foreign_orders:
            await session.exec(sa.delete(Merchant).where(col(Merchant.id) == merchant_id))
            return "the merchant and all its data were erased"
        customers = (
            await session.exec(
                select(Customer).where(
                    col(Customer.id).in_(
                        select(Order.customer_id).where(Order.connection_id == connection_id)
                    )
                )
            )
        ).all()
        for customer in customers:
            _forget(customer)
            session.add(customer)
        await session.exec(
            sa.delete(WebhookDelivery).where(col(WebhookDelivery.connection_id) == connection_id)
        )
        await session.exec(sa.delete(Connection).where(col(Connection.id) == connection_id))
        return "the shop's connection was erased and its customers redacted"


async def list_data_exports(
    session: AsyncSession, merchant_id: uuid.UUID, *, limit: int
) -> list[DataExport]:
    statement = (
        select(DataExport)
        .where(DataExport.merchant_id == merchant_id)
        .order_by(col(DataExport.created_at).desc())
        .limit(limit)
    )
    return list((await session.exec(statement)).all())
