"""Placing an exchange's replacement: what the job reports back, each one transaction.

The job (:mod:`core.jobs.exchanges`) places the replacement outside any transaction, on the
order's platform or (a storefront's order) nowhere; these record the outcome on the exchange
and settle the resolution's exchange part through the path every part takes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Exchange, Resolution
from core.enums import ExchangeStatus, ResolutionKind, ResolutionStatus
from core.usecases.attempts import claim_attempt
from core.usecases.exchanges import exchange_of
from core.usecases.inputs import checked_now, clean_text
from core.usecases.owned_rows import lock_rma
from core.usecases.resolutions import settle_resolution
from core.usecases.timeline import record_event


@dataclass(frozen=True, slots=True)
class Placement:
    """An attempt at placing a replacement, claimed like a refund's attempt."""

    resolution: Resolution
    exchange: Exchange
    attempts: int


async def begin_placement(
    session: AsyncSession, resolution_id: uuid.UUID, *, now: datetime
) -> Placement | None:
    """Claim the next attempt (SUBMITTING, attempts + 1) before the platform is asked, so the
    rest of the resolution knows the replacement may exist; None when there is nothing to do
    (settled, called off, or waiting for staff)."""
    moment = checked_now(now)
    async with session.begin():
        claimed = await claim_attempt(
            session, resolution_id, col(Resolution.kind) == ResolutionKind.EXCHANGE, now=moment
        )
        if claimed is None:
            return None
        exchange = await exchange_of(session, claimed.id)
        if exchange.status is not ExchangeStatus.PLACING:
            return None
        return Placement(claimed, exchange, claimed.attempts)


async def record_exchange_placed(
    session: AsyncSession,
    resolution_id: uuid.UUID,
    platform_reference: str | None,
    *,
    now: datetime,
) -> Exchange | None:
    """The replacement exists (on the platform, or recorded for the storefront): the exchange
    waits for fulfilment and its part of the resolution is settled. Repeating it is a no-op."""
    moment = checked_now(now)
    async with session.begin():
        resolution = await session.get(Resolution, resolution_id)
        if resolution is None:
            return None
        rma = await lock_rma(session, resolution.merchant_id, resolution.rma_id)
        await session.refresh(resolution, with_for_update=True)
        exchange = await exchange_of(session, resolution.id)
        if exchange.status is not ExchangeStatus.PLACING:
            return exchange
        exchange.status = ExchangeStatus.WAITING_FOR_FULFILMENT
        exchange.platform_reference = platform_reference
        exchange.placed_at = moment
        exchange.updated_at = moment
        session.add(exchange)
        await record_event(
            session,
            rma,
            actor="system",
            kind="EXCHANGE_PLACED",
            now=moment,
            message=(
                f"replacement order {platform_reference} placed"
                if platform_reference
                else "replacement waiting for the storefront to fulfil it"
            )
            + (f"; {exchange.due_minor} {exchange.currency} due" if exchange.due_minor else ""),
            data={"exchangeId": str(exchange.id), "platformReference": platform_reference},
        )
        if resolution.status in (ResolutionStatus.PENDING, ResolutionStatus.SUBMITTING):
            await settle_resolution(
                session,
                rma,
                resolution,
                ResolutionStatus.SUCCEEDED,
                actor="system",
                now=moment,
                provider_reference=platform_reference or f"exchange-{exchange.id}",
                reason="",
            )
    return exchange


async def record_exchange_refused(
    session: AsyncSession, resolution_id: uuid.UUID, reason: str, *, now: datetime
) -> None:
    """The platform would not take the replacement order: the exchange's part fails (and with
    it the resolution, unless money already moved; then staff decide)."""
    moment = checked_now(now)
    async with session.begin():
        resolution = await session.get(Resolution, resolution_id)
        if resolution is None:
            return
        rma = await lock_rma(session, resolution.merchant_id, resolution.rma_id)
        await session.refresh(resolution, with_for_update=True)
        if resolution.status not in (ResolutionStatus.PENDING, ResolutionStatus.SUBMITTING):
            return
        message = clean_text(reason[:2000], "reason") or "the platform refused the replacement"
        await settle_resolution(
            session,
            rma,
            resolution,
            ResolutionStatus.FAILED,
            actor="system",
            now=moment,
            provider_reference=None,
            reason=message,
        )
