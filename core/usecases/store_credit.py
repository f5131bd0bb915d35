"""Spending a customer's store credit through the API, and reading their ledger.

Credit kept in the service is spent here (a storefront's checkout calls
``redeemStoreCredit``); credit transferred to a platform left the balance when it moved, so it
cannot be spent twice. The customer's row lock serializes spendings, so the balance never goes
below zero however many checkouts spend at once, and the caller's idempotency key makes a
repeated call return the entry the first one wrote.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Customer, Resolution, StoreCreditEntry
from core.enums import BALANCE_KINDS, StoreCreditKind
from core.errors import Conflict, InsufficientCredit, InvalidInput
from core.money import MAX_MINOR, normalize_currency
from core.usecases.inputs import checked_now, clean_text
from core.usecases.owned_rows import get_owned


@dataclass(frozen=True, slots=True)
class Redemption:
    entry: StoreCreditEntry
    balance_minor: int  # what is left in the entry's currency


async def redeem_store_credit(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID | str,
    *,
    amount_minor: int,
    currency: str,
    reference: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
) -> Redemption:
    """Spend ``amount_minor`` of the customer's credit in ``currency``, once per key."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise InvalidInput("amount.amountMinor", "the amount must be whole minor units above zero")
    if amount_minor > MAX_MINOR:
        raise InvalidInput("amount.amountMinor", f"the amount is above {MAX_MINOR} minor units")
    try:
        chosen = normalize_currency(currency)
    except InvalidInput as error:
        raise InvalidInput("amount.currency", error.message) from error
    note = clean_text(reference, "reference", limit=200)
    if not note:
        raise InvalidInput("reference", "say what the credit paid for (an order or checkout)")
    given = clean_text(idempotency_key, "idempotencyKey", limit=240)
    if not given:
        raise InvalidInput("idempotencyKey", "send a key, so that a retry spends nothing twice")
    # A namespace of their own: a caller's key can never name the service's own entries.
    key = f"redeem:{given}"
    moment = checked_now(now)
    try:
        async with session.begin():
            customer = await get_owned(
                session, Customer, merchant_id, customer_id, field="customerId", for_update=True
            )
            earlier = (
                await session.exec(
                    select(StoreCreditEntry).where(
                        StoreCreditEntry.merchant_id == merchant_id,
                        StoreCreditEntry.request_key == key,
                    )
                )
            ).first()
            if earlier is not None:
                _same_spending(earlier, customer.id, amount_minor, chosen)
                return Redemption(earlier, await _balance(session, earlier))
            entry = StoreCreditEntry(
                merchant_id=merchant_id,
                customer_id=customer.id,
                amount_minor=-amount_minor,
                currency=chosen,
                kind=StoreCreditKind.REDEEMED,
                note=note,
                request_key=key,
                actor=actor[:200],
                created_at=moment,
            )
            available = await _balance(session, entry)
            if available < amount_minor:
                raise InsufficientCredit(
                    f"{available} {chosen} of store credit is available here, less than "
                    f"{amount_minor}",
                    field="amount.amountMinor",
                )
            session.add(entry)
            await session.flush()
            return Redemption(entry, available - amount_minor)
    except IntegrityError as error:
        # The same key, sent for another customer at the same moment, lost the race.
        raise Conflict(
            "this idempotency key was used for another spending", field="idempotencyKey"
        ) from error


def _same_spending(
    earlier: StoreCreditEntry, customer_id: uuid.UUID, amount_minor: int, currency: str
) -> None:
    if (earlier.kind, earlier.customer_id, -earlier.amount_minor, earlier.currency) != (
        StoreCreditKind.REDEEMED,
        customer_id,
        amount_minor,
        currency,
    ):
        raise Conflict("this idempotency key was used for another spending", field="idempotencyKey")


async def _balance(session: AsyncSession, entry: StoreCreditEntry) -> int:
    """The customer's spendable credit in the entry's currency (the entry itself included
    once it is in the session)."""
    total = (
        await session.exec(
            select(sa.func.coalesce(sa.func.sum(StoreCreditEntry.amount_minor), 0)).where(
                StoreCreditEntry.merchant_id == entry.merchant_id,
                StoreCreditEntry.customer_id == entry.customer_id,
                StoreCreditEntry.currency == entry.currency,
                col(StoreCreditEntry.kind).in_([kind.value for kind in BALANCE_KINDS]),
            )
        )
    ).one()
    return int(total)


# Credit leaving for another place (a platform's store credit, a provider's customer balance)
# is reserved before any call: a negative entry under the customer's lock, so the service
# cannot spend it meanwhile; confirmed with the destination's reference once it moved, removed
# if the destination refused it. Credit spent here first is not moved at all.
TRANSFER = "transfer"  # to the order platform's own store credit
MIRROR = "mirror"  # to the payment provider's customer balance


def _reservation_key(destination: str, resolution_id: uuid.UUID) -> str:
    return f"{destination}:{resolution_id}"


async def reserve_for_transfer(
    session: AsyncSession,
    resolution: Resolution,
    customer_id: uuid.UUID,
    destination: str,
    *,
    note: str,
    now: datetime,
) -> bool:
    """Within the caller's transaction: hold a settled store credit back for ``destination``;
    False when less than it is left here (spent here already, or moved elsewhere)."""
    key = _reservation_key(destination, resolution.id)
    await session.exec(select(Customer.id).where(Customer.id == customer_id).with_for_update())
    held = (
        await session.exec(
            select(StoreCreditEntry.id).where(
                StoreCreditEntry.merchant_id == resolution.merchant_id,
                StoreCreditEntry.request_key == key,
                StoreCreditEntry.kind == StoreCreditKind.TRANSFERRED,
            )
        )
    ).first()
    if held is not None:
        return True  # a retry of the same move
    entry = StoreCreditEntry(
        merchant_id=resolution.merchant_id,
        customer_id=customer_id,
        amount_minor=-resolution.amount_minor,
        currency=resolution.currency,
        kind=StoreCreditKind.TRANSFERRED,
        note=note[:500],
        request_key=key,
        actor="system",
        created_at=now,
    )
    if await _balance(session, entry) < resolution.amount_minor:
        return False
    session.add(entry)
    return True


async def confirm_transfer(
    session: AsyncSession,
    resolution: Resolution,
    customer_id: uuid.UUID,
    destination: str,
    reference: str,
    *,
    note: str,
    now: datetime,
) -> None:
    """Within the caller's transaction: the reserved credit moved, as ``reference`` there
    (recorded now when a move was begun before credit was held back)."""
    entry = (
        await session.exec(
            select(StoreCreditEntry).where(
                StoreCreditEntry.merchant_id == resolution.merchant_id,
                StoreCreditEntry.request_key == _reservation_key(destination, resolution.id),
                StoreCreditEntry.kind == StoreCreditKind.TRANSFERRED,
            )
        )
    ).first()
    if entry is None:
        entry = StoreCreditEntry(
            merchant_id=resolution.merchant_id,
            customer_id=customer_id,
            amount_minor=-resolution.amount_minor,
            currency=resolution.currency,
            kind=StoreCreditKind.TRANSFERRED,
            actor="system",
            created_at=now,
        )
    entry.reference = reference[:100]
    entry.note = note[:500]
    session.add(entry)


async def release_transfer(
    session: AsyncSession, merchant_id: uuid.UUID, resolution_id: uuid.UUID, destination: str
) -> None:
    """The destination refused the credit: it is spendable here again."""
    async with session.begin():
        entry = (
            await session.exec(
                select(StoreCreditEntry).where(
                    StoreCreditEntry.merchant_id == merchant_id,
                    StoreCreditEntry.request_key == _reservation_key(destination, resolution_id),
                    StoreCreditEntry.kind == StoreCreditKind.TRANSFERRED,
                    col(StoreCreditEntry.reference).is_(None),
                )
            )
        ).first()
        if entry is not None:
            await session.delete(entry)
