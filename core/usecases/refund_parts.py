"""A refund split over the payments of an order paid several ways (split tender).

Each part is a :class:`Resolution` row of its own, with its own payment, amount, idempotency
key and status, so each moves its money exactly once through the same path as any refund.
Part 0 carries the decision (lines, fees, shipping, adjustments); the others carry money only.

Where each part goes:

- a Stripe payment: refunded on that payment; several Stripe payments are several parts;
- a platform's payments (Shopify, a WooCommerce store's gateway): one part, which the platform
  spreads over its own payments (a Shopify gift card gets its share back on the gift card);
- store credit spent here (a LEDGER payment): credited back to the ledger, and kept there;
- any other payment (a gift card the storefront keeps, cash): refunded by staff, or returned as
  store credit when the policy says ``non_card_refunds_as_store_credit``.

A group settles together: the receipt is resolved when every part succeeded. A part that fails
before any other part moved money cancels the rest, and the receipt can be resolved again. One
that fails after another part paid out waits for staff (REQUIRES_REVIEW): they retry it, or
refund it another way and say so with ``completeManualRefund``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Order, Resolution, ReturnPolicy
from core.enums import (
    DEAD_RESOLUTION_STATUSES,
    PaymentProviderName,
    ResolutionKind,
    ResolutionStatus,
)
from core.rules.tender import NON_CARD, Tender, merge_platform_tenders, split_refund


@dataclass(frozen=True, slots=True)
class PlannedPart:
    kind: ResolutionKind
    provider: PaymentProviderName
    payment_reference: str | None
    amount_minor: int
    keep_in_ledger: bool = False  # store credit that was spent here goes back here


async def _refunded_per_payment(session: AsyncSession, order_id: uuid.UUID) -> dict[str, int]:
    """What live parts already take back from each payment of the order, by the payment's
    reference (a part may go back another way than the payment came: a gift card's share as
    store credit)."""
    rows = (
        await session.exec(
            select(
                Resolution.payment_reference,
                sa.func.sum(Resolution.amount_minor - Resolution.bonus_minor),
            )
            .where(
                Resolution.order_id == order_id,
                col(Resolution.payment_reference).is_not(None),
                col(Resolution.status).not_in([s.value for s in DEAD_RESOLUTION_STATUSES]),
            )
            .group_by(col(Resolution.payment_reference))
        )
    ).all()
    return {str(reference): int(total) for reference, total in rows}


async def plan_refund_parts(
    session: AsyncSession, order: Order, policy: ReturnPolicy, amount_minor: int
) -> list[PlannedPart]:
    """How a refund of ``amount_minor`` is split over the order's payments (see the module)."""
    taken = await _refunded_per_payment(session, order.id)
    tenders = merge_platform_tenders(
        [
            Tender(
                provider=payment.provider,
                reference=payment.reference,
                position=payment.position,
                refundable_minor=payment.captured_minor - taken.get(payment.reference, 0),
            )
            for payment in order.payments
            if payment.captured_minor > 0
        ]
    )
    parts = []
    for share in split_refund(amount_minor, tenders):
        if share.provider is PaymentProviderName.LEDGER:
            parts.append(
                PlannedPart(
                    ResolutionKind.STORE_CREDIT,
                    PaymentProviderName.LEDGER,
                    share.reference,
                    share.amount_minor,
                    keep_in_ledger=True,
                )
            )
        elif share.provider in NON_CARD and policy.non_card_refunds_as_store_credit:
            parts.append(
                PlannedPart(
                    ResolutionKind.STORE_CREDIT,
                    PaymentProviderName.LEDGER,
                    share.reference,
                    share.amount_minor,
                )
            )
        else:
            provider = PaymentProviderName.MANUAL if share.provider in NON_CARD else share.provider
            parts.append(
                PlannedPart(ResolutionKind.REFUND, provider, share.reference, share.amount_minor)
            )
    return parts


async def parts_of(session: AsyncSession, resolution: Resolution) -> list[Resolution]:
    """Every part of the resolution's group, its own row included, locked, in part order.

    The caller holds the RMA's lock: every path that settles a part takes it first.
    """
    group = resolution.group_id or resolution.id
    rows = (
        await session.exec(
            select(Resolution)
            .where(col(Resolution.group_id) == group)
            .order_by(col(Resolution.part))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    return list(rows) or [resolution]


def moved_money(part: Resolution) -> bool:
    """Whether a part may have moved money: anything but a part never attempted, or dead."""
    if part.status in DEAD_RESOLUTION_STATUSES:
        return False
    return not (part.status is ResolutionStatus.PENDING and part.attempts == 0)
