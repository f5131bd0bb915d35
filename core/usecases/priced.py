"""What live resolutions of an order already priced: units and amounts per line, shipping."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Resolution
from core.enums import DEAD_RESOLUTION_STATUSES


@dataclass(slots=True)
class Priced:
    units: int = 0
    goods_minor: int = 0
    tax_minor: int = 0


async def priced_units(session: AsyncSession, order_id: uuid.UUID) -> dict[uuid.UUID, Priced]:
    """What live resolutions already priced of each order line (earlier receipts of this RMA
    included): the next units are priced as the line's share for all of them less that."""
    breakdowns = (
        await session.exec(
            select(Resolution.breakdown).where(
                Resolution.order_id == order_id,
                col(Resolution.status).not_in([s.value for s in DEAD_RESOLUTION_STATUSES]),
            )
        )
    ).all()
    priced: dict[uuid.UUID, Priced] = {}
    for breakdown in breakdowns:
        for entry in breakdown.get("lines", []):
            line = priced.setdefault(uuid.UUID(entry["orderLineId"]), Priced())
            line.units += int(entry["quantity"])
            line.goods_minor += int(entry.get("goodsMinor", 0))
            line.tax_minor += int(entry.get("taxMinor", 0))
    return priced


async def shipping_refunded_minor(session: AsyncSession, order_id: uuid.UUID) -> int:
    """Shipping that live resolutions of the order refund."""
    total = (
        await session.exec(
            select(sa.func.coalesce(sa.func.sum(Resolution.shipping_minor), 0)).where(
                Resolution.order_id == order_id,
                col(Resolution.status).not_in([s.value for s in DEAD_RESOLUTION_STATUSES]),
            )
        )
    ).one()
    return int(total)
