"""The phases of moving money for a resolution, each one transaction.

Phase A marks an attempt (``SUBMITTING``, attempts + 1) before any provider call; the provider is
then called outside any transaction with the resolution's stored idempotency key; phase B
records what the provider said (:func:`core.usecases.provider_reports.record_provider_refund`). A
crash anywhere leaves a state from which the next attempt continues without paying twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Customer, Order, OrderLine, Resolution, Rma
from core.enums import (
    PaymentProviderName,
    Platform,
    ResolutionKind,
    ResolutionStatus,
)
from core.errors import Conflict, InsufficientCredit
from core.outbox.kinds import EXECUTE_REFUND, PLACE_EXCHANGE
from core.outbox.queue import enqueue
from core.ports.payments import RefundedLine
from core.usecases.attempts import ATTEMPTABLE, claim_attempt
from core.usecases.inputs import checked_now
from core.usecases.owned_rows import get_owned, lock_rma
from core.usecases.resolutions import ChosenResolution
from core.usecases.store_credit import MIRROR, confirm_transfer, reserve_for_transfer
from core.usecases.timeline import record_event


@dataclass(frozen=True, slots=True)
class RefundAttempt:
    merchant_id: uuid.UUID
    resolution_id: uuid.UUID
    rma_number: str
    payment_reference: str | None
    amount_minor: int
    currency: str
    idempotency_key: str
    attempts: int
    key_created_at: datetime
    order_reference: str | None = None  # the platform's id of the order
    # The order's platform and the connection it came from (a merchant may have several).
    platform: Platform | None = None
    connection_id: uuid.UUID | None = None
    lines: tuple[RefundedLine, ...] = ()  # the units refunded, by the platform's line ids

    @property
    def metadata(self) -> dict[str, str]:
        """What the refund carries, so that it can be found again by its resolution."""
        return {
            "merchant_id": str(self.merchant_id),
            "rma_number": self.rma_number,
            "resolution_id": str(self.resolution_id),
        }


async def begin_refund_attempt(
    session: AsyncSession,
    resolution_id: uuid.UUID,
    provider: PaymentProviderName,
    *,
    now: datetime,
) -> RefundAttempt | None:
    """Phase A: claim the next attempt at a refund; ``None`` when there is nothing left to do.

    The update is conditional on the status, so a stale worker that lost its job cannot start
    an attempt on a resolution that has moved on.
    """
    moment = checked_now(now)
    async with session.begin():
        claimed = await claim_attempt(
            session,
            resolution_id,
            col(Resolution.kind) == ResolutionKind.REFUND,
            col(Resolution.provider) == provider,
            now=moment,
        )
        if claimed is None:
            return None
        rma = await session.get(Rma, claimed.rma_id)
        order = await session.get(Order, claimed.order_id)
        lines = await _refunded_lines(session, claimed)
        return RefundAttempt(
            merchant_id=claimed.merchant_id,
            resolution_id=claimed.id,
            rma_number=rma.number if rma else "",
            payment_reference=claimed.payment_reference,
            amount_minor=claimed.amount_minor,
            currency=claimed.currency,
            idempotency_key=claimed.idempotency_key,
            attempts=claimed.attempts,
            key_created_at=claimed.created_at,
            order_reference=order.external_id if order else None,
            platform=order.platform if order else None,
            connection_id=order.connection_id if order else None,
            lines=lines,
        )


async def _refunded_lines(
    session: AsyncSession, resolution: Resolution
) -> tuple[RefundedLine, ...]:
    quantities = {
        uuid.UUID(line["orderLineId"]): int(line["quantity"])
        for line in resolution.breakdown.get("lines", [])
    }
    if not quantities:
        return ()
    rows = (
        await session.exec(
            select(OrderLine.id, OrderLine.external_id).where(
                col(OrderLine.id).in_(list(quantities))
            )
        )
    ).all()
    return tuple(RefundedLine(external, quantities[line_id]) for line_id, external in rows)


async def retry_resolution(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    resolution_id: uuid.UUID | str,
    *,
    actor: str,
    now: datetime,
) -> ChosenResolution:
    """Staff send a refund that needed review back to work, once they checked the provider.

    The next attempt looks the refund up before sending anything, so a refund that was made
    after all is recorded, not repeated.
    """
    moment = checked_now(now)
    async with session.begin():
        resolution = await get_owned(
            session, Resolution, merchant_id, resolution_id, field="resolutionId"
        )
        rma = await lock_rma(session, merchant_id, resolution.rma_id)
        await session.refresh(resolution, with_for_update=True)
        if resolution.status is not ResolutionStatus.REQUIRES_REVIEW:
            raise Conflict(
                f"only a resolution that needs review can be retried; this one is "
                f"{resolution.status.value}",
                field="resolutionId",
            )
        resolution.status = ResolutionStatus.SUBMITTING
        resolution.attempts = 1  # so the next attempt looks first, with a fresh budget
        resolution.updated_at = moment
        session.add(resolution)
        enqueue(
            session,
            # An exchange's part places its replacement (the platform looks first, too).
            PLACE_EXCHANGE if resolution.kind is ResolutionKind.EXCHANGE else EXECUTE_REFUND,
            {
                "resolutionId": str(resolution.id),
                "merchantId": str(merchant_id),
                "provider": resolution.provider.value,
            },
            now=moment,
            merchant_id=merchant_id,
            lock_key=f"rma:{rma.id}",
        )
        await record_event(
            session,
            rma,
            actor=actor,
            kind="RESOLUTION_RETRIED",
            now=moment,
            message="sent back to the provider after review",
            data={"resolutionId": str(resolution.id)},
        )
    return ChosenResolution(rma, resolution)


async def mark_requires_review(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    resolution_id: uuid.UUID,
    reason: str,
    *,
    actor: str = "system",
    now: datetime,
) -> None:
    """Stop automatic handling: a person must look before any money moves again."""
    moment = checked_now(now)
    async with session.begin():
        resolution = await session.get(Resolution, resolution_id)
        if resolution is None or resolution.merchant_id != merchant_id:
            return
        # The RMA first, then the resolution: the order every path takes, so none deadlock.
        rma = await lock_rma(session, merchant_id, resolution.rma_id)
        await session.refresh(resolution, with_for_update=True)
        if resolution.status not in (*ATTEMPTABLE, ResolutionStatus.PROCESSING):
            return
        resolution.status = ResolutionStatus.REQUIRES_REVIEW
        resolution.failure_reason = reason[:2000]
        resolution.updated_at = moment
        session.add(resolution)
        await record_event(
            session,
            rma,
            actor=actor,
            kind="RESOLUTION_NEEDS_REVIEW",
            now=moment,
            message=reason[:2000],
            data={"resolutionId": str(resolution.id)},
        )


@dataclass(frozen=True, slots=True)
class CreditMirror:
    merchant_id: uuid.UUID
    resolution_id: uuid.UUID
    customer_reference: str | None
    amount_minor: int
    currency: str
    idempotency_key: str
    description: str
    already_mirrored: bool


async def store_credit_mirror(
    session: AsyncSession, resolution_id: uuid.UUID, *, now: datetime
) -> CreditMirror | None:
    """What to mirror to the provider's customer balance for a settled store credit.

    The credit is held back here first (it is spendable in one place only):
    :class:`InsufficientCredit` when it was spent here before it could move.
    """
    moment = checked_now(now)
    async with session.begin():
        resolution = await session.get(Resolution, resolution_id)
        if (
            resolution is None
            or resolution.kind is not ResolutionKind.STORE_CREDIT
            or resolution.status is not ResolutionStatus.SUCCEEDED
        ):
            return None
        order = await session.get(Order, resolution.order_id)
        customer = await session.get(Customer, order.customer_id) if order else None
        rma = await session.get(Rma, resolution.rma_id)
        already = bool(resolution.breakdown.get("mirroredAs"))
        if (
            customer is not None
            and customer.stripe_customer_id
            and not already
            and not await reserve_for_transfer(
                session,
                resolution,
                customer.id,
                MIRROR,
                note="moving to the customer's balance at the payment provider",
                now=moment,
            )
        ):
            raise InsufficientCredit(
                "the credit was spent here before it could move to the customer's balance"
            )
        return CreditMirror(
            merchant_id=resolution.merchant_id,
            resolution_id=resolution.id,
            customer_reference=customer.stripe_customer_id if customer else None,
            amount_minor=resolution.amount_minor,
            currency=resolution.currency,
            idempotency_key=f"{resolution.idempotency_key}-balance",
            description=f"Store credit for {rma.number if rma else 'a return'}",
            already_mirrored=already,
        )


async def lock_resolution_unless(
    session: AsyncSession, resolution_id: uuid.UUID, recorded_as: str
) -> tuple[Resolution, Rma] | None:
    """Within the caller's transaction: the resolution and its RMA, locked in that order;
    None when it is gone or its breakdown already names ``recorded_as`` (the step is done)."""
    resolution = await session.get(Resolution, resolution_id)
    if resolution is None:
        return None
    rma = await lock_rma(session, resolution.merchant_id, resolution.rma_id)
    await session.refresh(resolution, with_for_update=True)
    if resolution.breakdown.get(recorded_as):
        return None
    return resolution, rma


async def record_credit_mirrored(
    session: AsyncSession,
    resolution_id: uuid.UUID,
    transaction_reference: str,
    *,
    now: datetime,
) -> None:
    """Note on the resolution and the timeline that the provider's balance was credited."""
    moment = checked_now(now)
    async with session.begin():
        locked = await lock_resolution_unless(session, resolution_id, "mirroredAs")
        if locked is None:
            return
        resolution, rma = locked
        await confirm_transfer(
            session,
            resolution,
            rma.customer_id,
            MIRROR,
            transaction_reference,
            note="moved to the customer's balance at the payment provider",
            now=moment,
        )
        resolution.breakdown = {**resolution.breakdown, "mirroredAs": transaction_reference}
        resolution.updated_at = moment
        session.add(resolution)
        await record_event(
            session,
            rma,
            actor="system",
            kind="STORE_CREDIT_MIRRORED",
            now=moment,
            message=f"customer balance credited {resolution.amount_minor} {resolution.currency}",
            data={
                "resolutionId": str(resolution.id),
                "providerReference": transaction_reference,
                "amountMinor": resolution.amount_minor,
                "currency": resolution.currency,
            },
        )
