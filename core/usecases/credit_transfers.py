"""Store credit moved to a platform's own store credit, and what the customer spent there.

Credit is spendable in exactly one place. When a merchant keeps store credit on its platform,
the credit a return earns is issued there and the ledger records the transfer (a negative
entry), so the service cannot spend it again; what the customer later spends at the
platform's checkout is read back into the ledger's history, outside the balance.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Customer, Order, Resolution, Rma, StoreCreditEntry
from core.enums import ResolutionKind, ResolutionStatus, StoreCreditKind
from core.errors import InsufficientCredit
from core.ports.commerce import CreditSpent
from core.usecases.inputs import checked_now
from core.usecases.money_movement import lock_resolution_unless
from core.usecases.store_credit import TRANSFER, confirm_transfer, reserve_for_transfer
from core.usecases.timeline import record_event


@dataclass(frozen=True, slots=True)
class CreditTransfer:
    merchant_id: uuid.UUID
    resolution_id: uuid.UUID
    customer_reference: str  # the customer on the platform
    amount_minor: int
    currency: str
    idempotency_key: str
    note: str
    attempts: int
    first_attempt_at: datetime
    # The customer's credits already recorded as moved: never taken for this one's.
    claimed: frozenset[str]


async def begin_credit_transfer(
    session: AsyncSession, resolution_id: uuid.UUID, *, now: datetime, by_email: bool = False
) -> CreditTransfer | None:
    """Count an attempt at moving a settled store credit to the platform, before any call,
    and hold the credit back here meanwhile; None when there is nothing to move (moved
    already, or the customer is not known there), :class:`InsufficientCredit` when it was
    spent here first. ``by_email``: the platform knows the customer by e-mail rather than by
    its own id."""
    moment = checked_now(now)
    async with session.begin():
        resolution = await session.get(Resolution, resolution_id, with_for_update=True)
        if (
            resolution is None
            or resolution.kind is not ResolutionKind.STORE_CREDIT
            or resolution.status is not ResolutionStatus.SUCCEEDED
            or resolution.breakdown.get("transferredAs")
        ):
            return None
        order = await session.get(Order, resolution.order_id)
        customer = await session.get(Customer, order.customer_id) if order else None
        rma = await session.get(Rma, resolution.rma_id)
        reference = None if customer is None else _reference(customer, by_email)
        if customer is None or not reference:
            return None
        if not await reserve_for_transfer(
            session,
            resolution,
            customer.id,
            TRANSFER,
            note="moving to the platform's store credit",
            now=moment,
        ):
            raise InsufficientCredit(
                "the credit was spent here before it could move to the platform; it stays "
                "in the ledger's history"
            )
        earlier = resolution.breakdown.get("transfer") or {}
        attempts = int(earlier.get("attempts", 0)) + 1
        started = str(earlier.get("startedAt") or moment.isoformat())
        resolution.breakdown = {
            **resolution.breakdown,
            "transfer": {"attempts": attempts, "startedAt": started},
        }
        session.add(resolution)
        claimed = (
            await session.exec(
                select(StoreCreditEntry.reference).where(
                    StoreCreditEntry.merchant_id == resolution.merchant_id,
                    StoreCreditEntry.customer_id == customer.id,
                    StoreCreditEntry.kind == StoreCreditKind.TRANSFERRED,
                )
            )
        ).all()
        return CreditTransfer(
            merchant_id=resolution.merchant_id,
            resolution_id=resolution.id,
            customer_reference=reference,
            amount_minor=resolution.amount_minor,
            currency=resolution.currency,
            idempotency_key=f"{resolution.idempotency_key}-transfer",
            note=f"Store credit for {rma.number if rma else 'a return'}",
            attempts=attempts,
            first_attempt_at=datetime.fromisoformat(started),
            claimed=frozenset(reference for reference in claimed if reference),
        )


async def record_credit_transferred(
    session: AsyncSession, resolution_id: uuid.UUID, reference: str, *, now: datetime
) -> None:
    """The credit is now the platform's to spend: a negative ledger entry, once."""
    moment = checked_now(now)
    async with session.begin():
        locked = await lock_resolution_unless(session, resolution_id, "transferredAs")
        if locked is None:
            return
        resolution, rma = locked
        order = await session.get(Order, resolution.order_id)
        assert order is not None
        await confirm_transfer(
            session,
            resolution,
            order.customer_id,
            TRANSFER,
            reference,
            note="moved to the platform's store credit",
            now=moment,
        )
        resolution.breakdown = {**resolution.breakdown, "transferredAs": reference}
        resolution.updated_at = moment
        session.add(resolution)
        await record_event(
            session,
            rma,
            actor="system",
            kind="STORE_CREDIT_TRANSFERRED",
            message=f"{resolution.amount_minor} {resolution.currency} of store credit moved to "
            "the platform, where the customer spends it",
            data={"resolutionId": str(resolution.id), "reference": reference},
            now=moment,
        )


def _reference(customer: Customer, by_email: bool) -> str | None:
    return customer.email if by_email else customer.external_id


async def customers_with_transfers(
    session: AsyncSession, merchant_id: uuid.UUID, *, by_email: bool = False
) -> list[tuple[uuid.UUID, str]]:
    """Customers (id, platform id or e-mail) holding credit moved to a platform: whose
    spending to read."""
    chosen = Customer.email if by_email else Customer.external_id
    statement = (
        select(Customer.id, chosen)
        .join(StoreCreditEntry, col(StoreCreditEntry.customer_id) == col(Customer.id))
        .where(
            StoreCreditEntry.merchant_id == merchant_id,
            StoreCreditEntry.kind == StoreCreditKind.TRANSFERRED,
            col(chosen).is_not(None),
        )
        .distinct()
    )
    return [(row[0], str(row[1])) for row in (await session.exec(statement)).all() if row[1]]


async def record_platform_spending(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    spent: Sequence[CreditSpent],
    *,
    now: datetime,
) -> int:
    """What the customer spent at the platform, into the ledger's history once each (by the
    platform's transaction id). It does not touch the balance. Returns how many were new."""
    checked_now(now)
    if not spent:
        return 0
    async with session.begin():
        known = set(
            (
                await session.exec(
                    select(StoreCreditEntry.reference).where(
                        StoreCreditEntry.merchant_id == merchant_id,
                        col(StoreCreditEntry.reference).in_([s.reference for s in spent]),
                    )
                )
            ).all()
        )
        new = [s for s in spent if s.reference not in known]
        for item in new:
            session.add(
                StoreCreditEntry(
                    merchant_id=merchant_id,
                    customer_id=customer_id,
                    amount_minor=-abs(item.amount_minor),
                    currency=item.currency,
                    kind=StoreCreditKind.SPENT_ON_PLATFORM,
                    reference=item.reference[:100],
                    note="spent at the platform's checkout",
                    created_at=item.at,
                )
            )
    return len(new)
